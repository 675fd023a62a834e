"""End to end on the real IMDB archive: the linear architecture (deterministic, fast to fit)
exported and verified like the tutorial model, and the issue's targets for the best model."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import SHARED_ARCHIVE

pytestmark = pytest.mark.e2e
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def linear_export(tmp_path_factory):
    assert os.path.isfile(SHARED_ARCHIVE), f"the shared IMDB archive is missing: {SHARED_ARCHIVE}"
    out = str(tmp_path_factory.mktemp("linear"))
    proc = subprocess.run([sys.executable, "-m", "export", "all", "--arch", "linear", "--maxlen", "1024",
                           "--data", SHARED_ARCHIVE, "--out", out], cwd=ROOT, capture_output=True, text=True,
                          timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, json.load(open(os.path.join(out, "manifest.json")))


def test_every_check_passes_on_the_full_test_set(linear_export):
    _, manifest = linear_export
    results = manifest["verification"]["results"]
    assert set(results) == {"model.onnx", "model.int8.onnx", "model.tflite", "model.dynamic.tflite",
                            "model.int8.tflite", "mediapipe:model.tflite", "mediapipe:model.int8.tflite"}
    assert all(r["passed"] for r in results.values()), {k: r["failures"] for k, r in results.items()}
    assert results["model.onnx"]["n"] == 25000 and results["mediapipe:model.int8.tflite"]["n"] >= 500
    assert manifest["tokenizer"]["maxlen"] == 1024  # MediaPipe ran the 1024-id input from the stored shape


def test_targets_of_the_best_model(linear_export):
    out, manifest = linear_export
    keras_accuracy = manifest["verification"]["reference"]["accuracy"]
    shipped = manifest["verification"]["results"]["model.int8.tflite"]
    assert keras_accuracy >= 0.90
    assert keras_accuracy - shipped["accuracy"] <= 0.003
    assert os.path.getsize(os.path.join(out, "model.int8.tflite")) <= 2_000_000
    arch = manifest["arch"]
    assert arch["name"] == "linear" and arch["ngrams"]["buckets"] == 2**20
    shipped = arch["shipped_int8"]
    # the final fit used the validation reviews too: no held-out figures, so dynamic-range ships
    assert shipped["mode"] == "dynamic" and shipped["validation"]["held_out"] is False
    assert shipped["validation"]["n"] == 10_000
    assert manifest["training"]["linear"]["C"] in (0.03, 0.1, 0.3, 1.0)


def test_runtime_reproduces_the_verified_accuracy(linear_export):
    from runtime import Classifier
    from trainer.data import load_imdb

    out, manifest = linear_export
    imdb = load_imdb(SHARED_ARCHIVE)
    clf = Classifier.load(out, backend="tflite")  # model.int8.tflite
    probs = clf.predict(imdb.test_texts)
    accuracy = float(np.mean((probs >= 0.5) == (imdb.test_labels == 1)))
    assert abs(accuracy - manifest["verification"]["results"]["model.int8.tflite"]["accuracy"]) <= 1e-9
