"""The bundled default model: what `pip install .` users get with no training."""
import os

import pytest

from export.manifest import tokenizer_contract
from runtime import Bundle, Classifier
from runtime.bundle import default_bundle_path
from runtime.bundle import load_manifest

SAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "samples")


def test_bundled_files_match_their_manifest():
    bundle = Bundle.load()  # verifies every size and sha256
    assert sorted(bundle.manifest["files"]) == ["labels.txt", "model.int8.tflite", "model.onnx", "vocab.txt"]
    assert sorted(os.listdir(default_bundle_path())) == ["labels.txt", "manifest.json", "model.int8.tflite",
                                                         "model.onnx", "vocab.txt"]
    total = sum(entry["size"] for entry in bundle.manifest["files"].values())
    assert total < 2 * 1024 * 1024


def test_bundled_manifest_passes_the_checks_of_a_fresh_export():
    spec = load_manifest(os.path.join(default_bundle_path(), "manifest.json"))  # the strict parse
    bundle = Bundle.load()
    tok = bundle.tokenizer()
    # The tokenizer section is exactly what `export` writes today for this vocabulary.
    assert bundle.manifest["tokenizer"] == tokenizer_contract(tok)
    assert spec.num_words == len(tok.vocab) == 10_000 and spec.maxlen == 256
    assert spec.labels == ("negative", "positive") and spec.threshold == 0.5
    for backend, model in (("onnx", "model.onnx"), ("tflite", "model.int8.tflite")):
        clf = Classifier.load(backend=backend)  # input shape checked
        assert clf.model == model


def test_manifest_records_tutorial_accuracy():
    manifest = Bundle.load().manifest
    assert manifest["training"]["test_accuracy"] >= 0.855
    for name in ("model.onnx", "model.int8.tflite"):
        result = manifest["verification"]["results"][name]
        assert result["passed"] and result["n"] == 25000 and result["accuracy"] >= 0.855


@pytest.mark.parametrize("backend", ["onnx", "tflite"])
def test_classifies_the_samples_as_labelled(backend):
    with open(os.path.join(SAMPLES, "reviews.txt"), encoding="utf-8") as f:
        reviews = f.read().splitlines()
    with open(os.path.join(SAMPLES, "reviews.labels"), encoding="utf-8") as f:
        labels = f.read().split()
    assert len(reviews) == len(labels) == 12
    clf = Classifier.load(backend=backend)
    assert [label for label, _ in clf.classify(reviews)] == labels


def test_bundled_manifest_describes_only_what_ships():
    manifest = Bundle.load().manifest
    assert "web" not in manifest and "micro" not in manifest  # directories the package does not ship
    assert manifest["tools"]["tensorflow"]  # made by the current export (the key, whatever the wheel)
    data = manifest["training"]["data"]
    assert not os.path.isabs(data) and data.endswith(".tar.gz")  # never the builder's file system
    assert _absolute_paths(manifest) == [] and "out" not in manifest["training"]["config"]


def _absolute_paths(value) -> list[str]:
    if isinstance(value, dict):
        return [p for v in value.values() for p in _absolute_paths(v)]
    if isinstance(value, list):
        return [p for v in value for p in _absolute_paths(v)]
    return [value] if isinstance(value, str) and os.path.isabs(value) else []
