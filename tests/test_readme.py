"""The docs' scoring examples run verbatim, on small inputs with the names they use.

Every shell line of README.md and docs/*.md that calls ``runtime.predict`` or ``runtime.batch``
is run as written (in a directory holding ``reviews.jsonl``, ``big.txt``, ``reviews.parquet`` ...
and an ``artifacts`` bundle), except those that need a cluster (``hdfs://``, ``s3a://``, ``yarn``).
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
CLUSTER = ("hdfs://", "s3a://", "--master yarn")
REVIEWS = ["A wonderful, moving film.", "Dull and far too long.", "", "Great acting, weak plot."]


DOCS = ["README.md"] + sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "docs", "*.md")))
# every markdown file that may hold a table (the target READMEs are copied into bundles)
TABLE_FILES = DOCS + ["web/README.md", "micro/README.md", "samples/README.md"]


def _read(name: str) -> str:
    return open(os.path.join(ROOT, name), encoding="utf-8").read()


def doc_examples(name: str) -> list[str]:
    """Shell lines of a doc's ```bash blocks that run the scoring CLIs (continuations joined)."""
    text = _read(name)
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #")[0].strip()
            if re.search(r"(^|\| )python -m runtime\.(predict|batch) ", line):
                lines.append(line)
    return lines


EXAMPLES = [line for name in DOCS for line in doc_examples(name)]


def _inputs(where: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    os.makedirs(os.path.join(where, "samples"))
    shutil.copy(os.path.join(ROOT, "samples", "reviews.txt"), os.path.join(where, "samples"))
    shutil.copytree(default_bundle_path(), os.path.join(where, "artifacts"))
    with open(os.path.join(where, "reviews.txt"), "w") as f:
        f.write("".join(r + "\n" for r in REVIEWS))
    with open(os.path.join(where, "big.txt"), "w") as f:
        f.write("".join(r + "\n" for r in REVIEWS * 50))
    with open(os.path.join(where, "reviews.jsonl"), "w") as f:
        f.write("".join(json.dumps({"id": f"r{i}", "text": r}) + "\n" for i, r in enumerate(REVIEWS)))
    pq.write_table(pa.table({"review_id": [10, 11, 12, 13], "text": REVIEWS}), os.path.join(where, "reviews.parquet"))
    os.makedirs(os.path.join(where, "reviews"))
    for part in range(2):
        pq.write_table(pa.table({"body": REVIEWS, "movie_id": [1, 2, 3, 4], "date": ["2026-11-29"] * 4}),
                       os.path.join(where, "reviews", f"part-{part}.parquet"))


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


@pytest.mark.parametrize("line", EXAMPLES)
def test_doc_example_runs_verbatim(line, tmp_path):
    if any(c in line for c in CLUSTER):
        assert "--engine spark" in line  # documented for clusters; the Spark tests cover file:// URIs
        return
    _inputs(str(tmp_path))
    path = os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]  # `python` is this interpreter
    env = {**os.environ, "PYTHONPATH": ROOT, "PATH": path}
    done = subprocess.run(["bash", "-o", "pipefail", "-c", line], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, f"{line}\n{done.stderr}"
    assert done.stderr.splitlines()[-1].startswith("scored "), done.stderr
    words = line.split()
    if "runtime.batch" in words or "-o" in words:  # a file output: INPUT OUTPUT for batch, -o FILE for predict
        out = words[words.index("-o") + 1] if "-o" in words else words[words.index("runtime.batch") + 2]
        assert os.path.exists(tmp_path / out), (line, os.listdir(tmp_path))
    else:
        assert done.stdout.strip(), line  # predict to stdout: the scored rows
