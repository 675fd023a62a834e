"""``python -m export all`` on the user's own data: a tiny three-class CSV with named columns gives a
verified bundle with its three labels, and ``export verify`` re-runs on it from what was recorded."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.trainer.test_dataset import table, write_csv

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run(*args):
    return subprocess.run([sys.executable, "-m", "export", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=900, env={k: v for k, v in os.environ.items() if k != "IMDB_DATA"})


def test_export_all_on_a_three_class_csv_gives_a_verified_bundle(tmp_path):
    data = write_csv(tmp_path / "my.csv", table(3, 200), header=("body", "topic"))
    out = str(tmp_path / "mybundle")
    proc = _run("all", "--data", data, "--text-column", "body", "--label-column", "topic", "--out", out,
                "--epochs", "15", "--num-words", "30", "--maxlen", "8", "--calibration-size", "500",
                "--mediapipe-samples", "30")
    assert proc.returncode == 0, proc.stderr
    manifest = json.load(open(os.path.join(out, "manifest.json")))
    assert (manifest["labels"], manifest["threshold"]) == (["c0", "c1", "c2"], None)
    assert all(r["passed"] for r in manifest["verification"]["results"].values())
    assert manifest["verification"]["dataset"] == {"name": "test", "n": 120, "source": data}
    assert manifest["training"]["config"]["validation_size"] == 48  # a tenth of the 480 training rows
    assert open(os.path.join(out, "labels.txt")).read() == "c0\nc1\nc2\n"
    micro = manifest["micro"]  # TFLite Micro scored the same 120 test rows, by arg-max
    figures = micro["verification"]
    assert (micro["output"]["shape"], figures["n"], figures["passed"]) == ([1, 3], 120, True)
    proc = _run("verify", "--out", out, "--mediapipe-samples", "0")  # from metrics.json alone
    assert proc.returncode == 0, proc.stderr
    assert f"reading labelled texts from {data}" in proc.stderr
