"""The docs' scoring examples run verbatim, on small inputs with the names they use.

Every shell line of README.md and docs/*.md that calls ``runtime.predict`` or ``runtime.batch``
is run as written (in a directory holding ``reviews.jsonl``, ``big.txt``, ``reviews.parquet`` ...
and an ``artifacts`` bundle), except those that need a cluster (``hdfs://``, ``s3a://``, ``yarn``, ``spark://``).
A docs change that breaks an example, or adds one this file cannot feed, fails here. The README
stays a map (short, the layout near the top), and a table row is written in one file only.
"""
import glob
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from runtime.bundle import default_bundle_path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLUSTER = ("hdfs://", "s3a://", "--master yarn", "spark://")  # spark://: tests/runtime/test_spark_cluster.py
REVIEWS = ["A wonderful, moving film.", "Dull and far too long.", "", "Great acting, weak plot."]


DOCS = ["README.md"] + sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "docs", "*.md")))
# every markdown file that may hold a table (the target READMEs are copied into bundles)
TABLE_FILES = DOCS + ["web/README.md", "micro/README.md", "samples/README.md"]


def _read(name: str) -> str:
    return open(os.path.join(ROOT, name), encoding="utf-8").read()


def shell_lines(name: str, command: str) -> list[str]:
    """Shell lines of a doc's ```bash blocks that run ``command`` (continuations joined)."""
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", _read(name), re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #")[0].strip()
            if re.search(rf"(^|\| |\S+=\S+ ){re.escape(command)} ", line):
                lines.append(line)
    return lines


def doc_examples(name: str) -> list[str]:
    """The lines that run the scoring CLIs."""
    return shell_lines(name, "python -m runtime.predict") + shell_lines(name, "python -m runtime.batch")


EXAMPLES = [line for name in DOCS for line in doc_examples(name)]


def _inputs(where: str, own_bundle: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    os.makedirs(os.path.join(where, "samples"))
    shutil.copy(os.path.join(ROOT, "samples", "reviews.txt"), os.path.join(where, "samples"))
    shutil.copytree(default_bundle_path(), os.path.join(where, "artifacts"))
    shutil.copytree(own_bundle, os.path.join(where, "mybundle"))  # "Your own data": a 3-class bundle
    with open(os.path.join(where, "reviews.txt"), "w") as f:
        f.write("".join(r + "\n" for r in REVIEWS))
    with open(os.path.join(where, "big.txt"), "w") as f:
        f.write("".join(r + "\n" for r in REVIEWS * 50))
    with open(os.path.join(where, "reviews.jsonl"), "w") as f:
        f.write("".join(json.dumps({"id": f"r{i}", "text": r}) + "\n" for i, r in enumerate(REVIEWS)))
    pq.write_table(pa.table({"review_id": [10, 11, 12, 13], "text": REVIEWS}), os.path.join(where, "reviews.parquet"))
    os.makedirs(os.path.join(where, "reviews"))
    for part in range(2):
        ids = [f"p{part}r{i}" for i in range(len(REVIEWS))]
        columns = {"review_id": ids, "body": REVIEWS, "movie_id": [1, 2, 3, 4], "date": ["2026-11-29"] * 4}
        pq.write_table(pa.table(columns), os.path.join(where, "reviews", f"part-{part}.parquet"))


def test_the_docs_have_scoring_examples():
    assert len(doc_examples("README.md")) >= 2, doc_examples("README.md")
    assert len(doc_examples("docs/cli.md")) >= 6, doc_examples("docs/cli.md")
    assert len(EXAMPLES) == len(set(EXAMPLES)), "an example is written twice"


def test_the_readme_is_a_map():
    lines = _read("README.md").splitlines()
    assert len(lines) <= 200, len(lines)
    headings = [line for line in lines if line.startswith("## ")]
    assert headings[0] == "## Layout", headings
    for name in DOCS[1:]:  # every doc is reachable from the README
        assert f"({name})" in "\n".join(lines), name


def table_rows(name: str) -> list[str]:
    """The body rows of a markdown file's tables (not the header row, not the |---| line)."""
    rows, run = [], []
    for line in _read(name).splitlines() + [""]:
        if line.startswith("|"):
            run.append(line.strip())
        else:
            rows += run[2:]
            run = []
    return rows


def test_a_table_row_is_written_once():
    seen = {}
    for name in TABLE_FILES:
        for row in table_rows(name):
            assert seen.setdefault(row, name) == name, f"{row!r} in {seen[row]} and {name}"


def _run(line: str, where) -> subprocess.CompletedProcess:
    path = os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]  # `python` is this interpreter
    env = {**os.environ, "PYTHONPATH": ROOT, "PATH": path}
    return subprocess.run(["bash", "-o", "pipefail", "-c", line], cwd=where, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize("line", EXAMPLES)
def test_doc_example_runs_verbatim(line, tmp_path, three_class_bundle):
    if any(c in line for c in CLUSTER):
        assert "--engine spark" in line  # documented for clusters; the Spark tests cover file:// URIs
        return
    _inputs(str(tmp_path), three_class_bundle)
    done = _run(line, tmp_path)
    assert done.returncode == 0, f"{line}\n{done.stderr}"
    assert done.stderr.splitlines()[-1].startswith("scored "), done.stderr
    words = line.split()
    if "runtime.batch" in words or "-o" in words:  # a file output: INPUT OUTPUT for batch, -o FILE for predict
        out = words[words.index("-o") + 1] if "-o" in words else words[words.index("runtime.batch") + 2]
        assert os.path.exists(tmp_path / out), (line, os.listdir(tmp_path))
    else:
        assert done.stdout.strip(), line  # predict to stdout: the scored rows


def test_the_spark_submit_example_runs_verbatim(tmp_path, three_class_bundle):
    """docs/cli.md's score_reviews.py and its local, quiet, loopback-only spark-submit line."""
    import pyarrow.parquet as pq

    script = re.search(r"```python\n(# score_reviews\.py .*?)```", _read("docs/cli.md"), re.S).group(1)
    lines = [line for line in shell_lines("docs/cli.md", "spark-submit") if "--master yarn" not in line]
    assert len(lines) == 1 and "spark.ui.enabled=false" in lines[0] and "127.0.0.1" in lines[0], lines
    _inputs(str(tmp_path), three_class_bundle)
    (tmp_path / "score_reviews.py").write_text(script)
    done = _run(lines[0], tmp_path)
    assert done.returncode == 0, done.stderr
    after_start = done.stderr.split("Setting Spark log level")[-1]
    assert " INFO " not in after_start and "SparkUI" not in done.stderr, done.stderr
    scored = pq.read_table(tmp_path / "review_scores")
    assert scored.column_names == ["review_id", "label", "probability", "error", "movie_id"]
    assert sorted(scored.column("review_id").to_pylist()) == sorted(f"p{p}r{i}" for p in range(2) for i in range(4))
    errors = dict(zip(scored.column("review_id").to_pylist(), scored.column("error").to_pylist()))
    assert errors["p0r2"] == errors["p1r2"] == "empty text" and errors["p0r0"] is None  # a good row's error: null
