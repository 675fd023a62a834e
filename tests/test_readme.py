"""The README's scoring examples run verbatim, on small inputs with the names they use.

Every shell line of the README that calls ``runtime.predict`` or ``runtime.batch`` is run as
written (in a directory holding ``reviews.jsonl``, ``big.txt``, ``reviews.parquet`` ... and an
``artifacts`` bundle), except those that need a cluster (``hdfs://``, ``s3a://``, ``yarn``).
A README change that breaks an example, or adds one this file cannot feed, fails here.
"""
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


def readme_examples() -> list[str]:
    """Shell lines of the README's ```bash blocks that run the scoring CLIs (continuations joined)."""
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #")[0].strip()
            if re.search(r"(^|\| )python -m runtime\.(predict|batch) ", line):
                lines.append(line)
    return lines


EXAMPLES = readme_examples()


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


def test_the_readme_has_scoring_examples():
    assert len(EXAMPLES) >= 8, EXAMPLES


@pytest.mark.parametrize("line", EXAMPLES)
def test_readme_example_runs_verbatim(line, tmp_path):
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
