"""End to end on your own data: the star-rating table made from the shared IMDB archive's file
names (four classes, 25,000 training and 25,000 test rows), ``python -m export all`` on its CSV,
then every front end on the verified bundle: runtime.predict, runtime.batch (local and Spark), the
browser page. MediaPipe's TextClassifier is checked by the export itself (its conformance rows).
Training is seeded and runs on the CPU: the same figures on every run (docs/models.md).
"""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import ROOT, SHARED_ARCHIVE

pytestmark = pytest.mark.e2e
STAR_LABELS = ["1-2", "3-4", "7-8", "9-10"]
SPARK_ROWS = 3000  # the Spark comparison scores the first rows of the test table


def _run(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def stars(tmp_path_factory) -> str:
    out = str(tmp_path_factory.mktemp("stars"))
    proc = _run("trainer.stars", "--data", SHARED_ARCHIVE, "--out", out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out


@pytest.fixture(scope="module")
def star_export(stars, tmp_path_factory) -> tuple[str, subprocess.CompletedProcess]:
    out = str(tmp_path_factory.mktemp("star_bundle"))
    proc = _run("export", "all", "--data", os.path.join(stars, "stars_train.csv"),
                "--test-data", os.path.join(stars, "stars_test.csv"), "--out", out)  # the defaults: 40 epochs
    return out, proc


@pytest.fixture(scope="module")
def test_rows(stars) -> list[dict]:
    csv.field_size_limit(1 << 24)
    with open(os.path.join(stars, "stars_test.csv"), encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def test_export_all_verifies_every_format(star_export):
    out, proc = star_export
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    manifest = json.load(open(os.path.join(out, "manifest.json"), encoding="utf-8"))
    assert manifest["labels"] == STAR_LABELS and manifest["threshold"] is None
    assert open(os.path.join(out, "labels.txt"), encoding="utf-8").read().split() == STAR_LABELS
    ver = manifest["verification"]
    assert ver["dataset"]["n"] == 25000
    results = ver["results"]
    for name in ("model.onnx", "model.tflite"):
        assert results[name]["max_abs_diff"] <= 1e-5 and results[name]["passed"]
    for name in ("model.int8.onnx", "model.dynamic.tflite", "model.int8.tflite"):
        assert results[name]["agreement"] >= 0.99 and results[name]["passed"], (name, results[name])
        assert results[name]["accuracy"] >= ver["reference"]["accuracy"] - 0.005
    for name in ("mediapipe:model.tflite", "mediapipe:model.int8.tflite"):  # N categories = LiteRT's N scores
        assert results[name]["n"] >= 500 and results[name]["max_abs_diff"] <= 1e-5
    assert os.path.isfile(os.path.join(out, "web", "index.html"))  # a site only for a bundle that passed


def test_micro_target_scores_the_four_classes_in_tflite_micro(star_export):
    out = star_export[0]
    manifest = json.load(open(os.path.join(out, "manifest.json"), encoding="utf-8"))
    micro, reference = manifest["micro"], manifest["verification"]["reference"]["accuracy"]
    ver = micro["verification"]
    assert ver["n"] == 25000 and ver["passed"] and ver["agreement"] == 1.0  # TFLM = LiteRT's built-in kernels
    assert ver["agreement_with_keras"] >= 0.99 and ver["accuracy"] >= reference - 0.005
    assert micro["output"]["shape"] == [1, 4] and micro["ops"] == ["GATHER", "CAST", "MUL", "MEAN",
                                                                   "FULLY_CONNECTED", "SOFTMAX"]
    header = open(os.path.join(out, "micro", "model_data.cc"), encoding="utf-8").read()
    assert 'rk_labels[RK_NUM_CLASSES] = {\n    "1-2",\n    "3-4",\n    "7-8",\n    "9-10",\n};' in header


@pytest.mark.parametrize("backend, model", [("onnx", "model.int8.onnx"), ("tflite", "model.int8.tflite")])
def test_predict_reproduces_the_verified_accuracy(star_export, stars, test_rows, backend, model, tmp_path):
    out = star_export[0]
    scores = tmp_path / "scores.csv"
    proc = _run("runtime.predict", os.path.join(stars, "stars_test.csv"), "--input-format", "csv",
                "--model", os.path.join(out, model), "--backend", backend, "--all-scores", "-o", str(scores),
                "--no-progress")
    assert proc.returncode == 0, proc.stderr[-2000:]
    with open(scores, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["row", "label", "probability", *STAR_LABELS, "error"]
    assert [int(r["row"]) for r in rows] == list(range(1, len(test_rows) + 1))
    manifest = json.load(open(os.path.join(out, "manifest.json"), encoding="utf-8"))
    accuracy = np.mean([r["label"] == t["label"] for r, t in zip(rows, test_rows)])
    assert accuracy == pytest.approx(manifest["verification"]["results"][model]["accuracy"], abs=1e-9)
    for r in rows[:200]:  # the label is the arg-max column, the probability its value
        probs = [float(r[label]) for label in STAR_LABELS]
        assert r["label"] == STAR_LABELS[int(np.argmax(probs))] and float(r["probability"]) == max(probs)


def _spark_lines(folder) -> tuple[set[str], list[str]]:
    """(headers, data lines) of a Spark CSV output directory's part files."""
    headers, lines = set(), []
    for part in sorted(p for p in os.listdir(folder) if p.startswith("part-")):
        with open(os.path.join(folder, part), encoding="utf-8", newline="") as f:
            text = f.read()
        if text:
            first, _, rest = text.partition("\n")
            headers.add(first)
            lines += rest.splitlines()
    return headers, lines


def test_batch_local_and_spark_write_the_same_bytes(star_export, test_rows, tmp_path):
    src = tmp_path / "head.csv"
    with open(src, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["text", "stars"])
        writer.writerows([r["text"], r["label"]] for r in test_rows[:SPARK_ROWS])
    common = ["--model", star_export[0], "--keep-columns", "stars", "--all-scores", "--no-progress"]
    local = _run("runtime.batch", str(src), str(tmp_path / "local.csv"), *common)
    spark = _run("runtime.batch", str(src), str(tmp_path / "spark.csv"), "--engine", "spark", "--master", "local[2]",
                 *common, timeout=600)
    assert (local.returncode, spark.returncode) == (0, 0), local.stderr[-2000:] + spark.stderr[-2000:]
    want = (tmp_path / "local.csv").read_text(encoding="utf-8").split("\n")
    headers, lines = _spark_lines(tmp_path / "spark.csv")
    assert headers == {want[0]} == {"row,label,probability,1-2,3-4,7-8,9-10,error,stars"}
    assert want[-1] == "" and sorted(lines) == sorted(want[1:-1]) and len(lines) == SPARK_ROWS


def test_browser_page_shows_the_four_classes_as_runtime_does(star_export, test_rows, tmp_path):
    """Typed reviews: the top label and a bar per class; a dropped file of the same reviews: the CSV
    of ``runtime.predict`` (rows, labels exactly, probabilities within 1e-5, onnxruntime-web's)."""
    from benchmarks.web_browser import run_driver
    from runtime import Classifier
    from tests.web.test_web_browser_classes import predict_csv

    site = os.path.join(star_export[0], "web")
    texts = [r["text"] for r in test_rows[:40:4]]
    result = run_driver("classes", site, texts, str(tmp_path / "classes.json"), str(tmp_path / "shot.png"))
    assert result["errors"] == [] and result["foreign_requests"] == []
    probs = Classifier.load(site, backend="onnx").predict_proba(texts)  # [10, 4]
    assert [t["text"] for t in result["typed"]] == texts
    for shown, p in zip(result["typed"], probs):
        assert shown["label"] == STAR_LABELS[int(np.argmax(p))]
        assert [b["label"] for b in shown["bars"]] == STAR_LABELS
        assert max(abs(float(b["shown"]) - q) for b, q in zip(shown["bars"], p)) <= 5e-5 + 1e-5  # 4 decimals
    got, want = result["file"]["csv"].splitlines(), predict_csv(site, texts, tmp_path).splitlines()
    assert got[0] == want[0] == "row,label,probability,error" and len(got) == len(want) == len(texts) + 1
    cut = [[r.split(",", 3) for r in rows[1:]] for rows in (got, want)]  # row, label, probability, error
    assert [(r[0], r[1], r[3]) for r in cut[0]] == [(r[0], r[1], r[3]) for r in cut[1]]
    assert max(abs(float(a[2]) - float(b[2])) for a, b in zip(*cut)) <= 1e-5 + 1e-6
