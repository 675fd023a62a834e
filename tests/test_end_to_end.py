"""End to end on the real IMDB archive: ``python -m export all`` (train, convert, verify), then the
runtime on the result. One export run serves every test here (about a minute on 2 cores)."""
import json
import os

import numpy as np
import pytest

from tests.conftest import SHARED_ARCHIVE

pytestmark = pytest.mark.e2e
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def imdb():
    from trainer.data import load_imdb

    return load_imdb(SHARED_ARCHIVE)


def test_export_all_passes_every_check(real_export):
    out, proc = real_export
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| model") or line.startswith("| mediapipe")]
    assert len(rows) == 8 and all(row.rstrip(" |").endswith("PASS") for row in rows[1:]), proc.stdout
    assert "epoch  40/40" in proc.stderr and "test accuracy 0." in proc.stderr


def test_trainer_reaches_tutorial_accuracy(real_export):
    out, _ = real_export
    metrics = json.load(open(os.path.join(out, "metrics.json")))
    assert metrics["test_accuracy"] >= 0.85
    assert metrics["epochs_run"] == 40 and len(json.load(open(os.path.join(out, "history.json")))["loss"]) == 40


@pytest.mark.parametrize("plot", ["loss.png", "accuracy.png"])
def test_plots_are_real_png_images(real_export, plot):
    import matplotlib.image

    image = matplotlib.image.imread(os.path.join(real_export[0], plot))
    assert image.ndim == 3 and image.shape[0] >= 200 and image.shape[1] >= 300
    assert image[..., :3].std() > 0.05  # not a blank canvas


def test_manifest_records_parity_and_mediapipe(real_export):
    manifest = json.load(open(os.path.join(real_export[0], "manifest.json")))
    results = manifest["verification"]["results"]
    assert manifest["verification"]["dataset"]["n"] == 25000
    for name in ("model.onnx", "model.tflite"):
        assert results[name]["max_abs_diff"] <= 1e-5 and results[name]["agreement"] == 1.0
    for name in ("model.int8.onnx", "model.dynamic.tflite", "model.int8.tflite"):
        assert results[name]["agreement"] >= 0.99
        assert results[name]["accuracy"] >= manifest["verification"]["reference"]["accuracy"] - 0.005
    for name in ("model.onnx", "model.int8.onnx", "model.tflite", "model.dynamic.tflite", "model.int8.tflite"):
        assert results[name]["batch_max_abs_diff"] <= 1e-6
    for name in ("mediapipe:model.tflite", "mediapipe:model.int8.tflite"):
        assert results[name]["n"] >= 500 and results[name]["max_abs_diff"] <= 1e-5


def test_micro_target_runs_in_tflite_micro_within_budget(real_export):
    """export all ends with micro/: TFLM labels = LiteRT built-in labels on all 25k test reviews."""
    micro = json.load(open(os.path.join(real_export[0], "manifest.json")))["micro"]
    ver, sizes = micro["verification"], micro["sizes"]
    assert ver["n"] == 25000 and ver["passed"] and ver["agreement"] == 1.0 and ver["accuracy_drop"] <= 0.005
    assert ver["max_abs_diff_vs_model_int8_tflite"] == 0.0
    assert micro["ops"] == ["GATHER", "MEAN", "FULLY_CONNECTED", "LOGISTIC", "DEQUANTIZE"]
    assert micro["arena_bytes"] <= 8 * 1024
    code = sizes["tokenizer_code_bytes"]["cortex_m4_Os"] or sizes["tokenizer_code_bytes"]["host_gcc_Os"]
    assert sizes["model_bytes"] + sizes["vocab_bytes"] + code <= 300 * 1024
    assert os.path.getsize(os.path.join(real_export[0], "micro", "model.tflite")) == sizes["model_bytes"]


@pytest.mark.parametrize("backend, model", [("onnx", "model.onnx"), ("onnx", "model.int8.onnx"),
                                            ("tflite", "model.tflite"), ("tflite", "model.dynamic.tflite"),
                                            ("tflite", "model.int8.tflite")])
def test_runtime_reproduces_the_verified_accuracy(real_export, imdb, backend, model):
    from runtime import Classifier

    clf = Classifier.load(real_export[0], backend=backend, model=model)
    probs = clf.predict(imdb.test_texts)
    accuracy = float(np.mean((probs >= 0.5) == (imdb.test_labels == 1)))
    recorded = clf.bundle.manifest["verification"]["results"][model]["accuracy"]
    assert abs(accuracy - recorded) <= 1e-9  # same ids, same interpreter, batch-independent scores
