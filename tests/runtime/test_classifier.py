import subprocess
import sys

import numpy as np
import pytest

from runtime import BundleError, Classifier

MODELS = [("onnx", "model.onnx"), ("onnx", "model.int8.onnx"), ("tflite", "model.tflite"),
          ("tflite", "model.dynamic.tflite"), ("tflite", "model.int8.tflite")]


@pytest.fixture(scope="module")
def keras_reference(tiny_trained):
    model, tok, texts, labels = tiny_trained
    return texts, model.predict(tok.encode_batch(texts), verbose=0)[:, 0]


@pytest.mark.parametrize("backend, model", MODELS)
def test_every_backend_and_model_matches_keras(tiny_bundle, keras_reference, backend, model):
    texts, reference = keras_reference
    clf = Classifier.load(tiny_bundle, backend=backend, model=model)
    probs = clf.predict(texts)
    assert probs.dtype == np.float32 and probs.shape == (len(texts),)
    tolerance = 1e-5 if model in ("model.onnx", "model.tflite") else 0.05
    assert np.abs(probs - reference).max() <= tolerance
    assert np.mean((probs >= 0.5) == (reference >= 0.5)) >= 0.97


@pytest.mark.parametrize("backend, model", MODELS)
def test_results_do_not_depend_on_batch(tiny_bundle, keras_reference, backend, model):
    texts = keras_reference[0][:300]
    whole = Classifier.load(tiny_bundle, backend=backend, model=model, batch_size=256).predict(texts)
    clf = Classifier.load(tiny_bundle, backend=backend, model=model, batch_size=7)
    assert np.array_equal(clf.predict(texts), whole)  # other batch boundaries
    alone = np.array([clf.predict_one(t) for t in texts[:40]], dtype=np.float32)
    assert np.array_equal(alone, whole[:40])  # each text alone, no neighbours


def test_zero_texts_and_generators(tiny_bundle):
    clf = Classifier.load(tiny_bundle)
    assert clf.predict([]).shape == (0,) and clf.predict([]).dtype == np.float32
    assert clf.predict(t for t in ["great film", "awful film"]).shape == (2,)


def test_classify_uses_the_manifest_threshold(tiny_bundle):
    clf = Classifier.load(tiny_bundle)
    [(label, p)] = clf.classify(["wonderful superb great film"])
    assert label == "positive" and p >= 0.5
    assert clf.classify(["wonderful superb great film"], threshold=1.0)[0][0] == "negative"
    assert clf.classify(["awful boring worst film"])[0][0] == "negative"
    assert clf.labels == ["negative", "positive"] and clf.threshold == 0.5


def test_predict_refuses_a_bare_string(tiny_bundle):
    with pytest.raises(TypeError, match="use predict_one"):
        Classifier.load(tiny_bundle).predict("great film")


def test_model_file_path_picks_backend(tiny_bundle):
    clf = Classifier.load(f"{tiny_bundle}/model.int8.tflite")
    assert (clf.backend_name, clf.model) == ("tflite", "model.int8.tflite")
    assert Classifier.load(tiny_bundle, backend="tflite").model == "model.int8.tflite"
    assert Classifier.load(tiny_bundle).model == "model.onnx"


def test_load_errors_are_bundle_errors(tiny_bundle):
    with pytest.raises(BundleError, match=r"no model 'model.fp16.tflite' in this bundle \(it has: model.onnx, "):
        Classifier.load(tiny_bundle, model="model.fp16.tflite")
    with pytest.raises(BundleError, match="unknown backend 'torch': choose one of auto, onnx, tflite"):
        Classifier.load(tiny_bundle, backend="torch")
    with pytest.raises(BundleError, match="a .onnx model needs the onnx backend, not tflite"):
        Classifier.load(tiny_bundle, backend="tflite", model="model.onnx")
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        Classifier.load(tiny_bundle, batch_size=0)


def test_runtime_never_imports_tensorflow(tiny_bundle):
    code = (f"import sys; from runtime import Classifier\n"
            f"for b, m in {MODELS!r}:\n"
            f"    Classifier.load({tiny_bundle!r}, backend=b, model=m).predict(['a great film'])\n"
            f"bad = [m for m in ('tensorflow', 'keras', 'tf_keras') if m in sys.modules]\n"
            f"assert not bad, bad")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_model_must_take_the_manifest_sequence_length(tiny_bundle, tmp_path):
    import json
    import shutil

    shutil.copytree(tiny_bundle, tmp_path / "b")
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    manifest["tokenizer"]["maxlen"] = 128
    (tmp_path / "b" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match=r"model.onnx: model input shape \[None, 256\] does not take 128 ids"):
        Classifier.load(tmp_path / "b")
