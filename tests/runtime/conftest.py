"""Tiny exported models for the backend tests, built once per session with TensorFlow.

The tests may import TensorFlow to make real model files; the code under test (runtime/)
never does. The model is the tutorial architecture with a 50-word vocabulary and seeded
random weights, large enough that its probabilities spread over (0, 1).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pytest

NUM_WORDS = 50
MAXLEN = 256


@dataclass(frozen=True)
class TinyModels:
    keras_model: object
    onnx: str  # float
    onnx_int8: str  # dynamic int8 (onnxruntime quantize_dynamic)
    tflite: str  # float
    tflite_dynamic: str  # int8 weights, float activations
    tflite_int8: str  # full integer, int8 output with scale/zero point
    tflite_int8_float_out: str  # full integer, float32 output
    ids: np.ndarray  # [40, 256] int32
    keras_probs: np.ndarray  # [40] float32, the Keras model on ``ids``


def random_ids(n: int, seed: int, num_words: int = NUM_WORDS, maxlen: int = MAXLEN) -> np.ndarray:
    """Rows shaped like ``Tokenizer.encode_batch``: <START>, 1..maxlen-1 word ids, <PAD>s."""
    rng = np.random.default_rng(seed)
    ids = np.zeros((n, maxlen), dtype=np.int32)  # [n, maxlen]
    for row, length in enumerate(rng.integers(1, maxlen, size=n)):
        ids[row, 0] = 1
        ids[row, 1:length + 1] = rng.integers(2, num_words, size=length)
    return ids


@pytest.fixture(scope="session")
def make_ids():
    """``make_ids(n, seed) -> [n, 256] int32`` (a function: test files cannot import a conftest)."""
    return random_ids


def _tiny_keras_model():
    import keras

    from trainer.model import build_model

    keras.utils.set_random_seed(7)
    model = build_model(num_words=NUM_WORDS, maxlen=MAXLEN)
    rng = np.random.default_rng(7)
    weights = [rng.normal(0, 1.0, w.shape).astype(np.float32) for w in model.get_weights()]
    model.set_weights(weights)
    # Centre the logits: shift the output bias by the median logit over typical rows.
    probs = np.asarray(model(random_ids(64, seed=1), training=False)).reshape(-1)
    weights[-1] -= np.median(np.log(probs / (1 - probs))).astype(np.float32)
    model.set_weights(weights)
    return model


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> TinyModels:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from export.onnx_export import quantize_onnx, to_onnx
    from export.tflite_export import to_tflite

    out = tmp_path_factory.mktemp("tiny_models")
    model = _tiny_keras_model()
    calibration = random_ids(64, seed=11)
    paths = {name: str(out / name) for name in (
        "model.onnx", "model_int8.onnx", "float.tflite", "dynamic.tflite", "int8.tflite",
        "int8_float_out.tflite")}
    to_onnx(model, paths["model.onnx"])
    quantize_onnx(paths["model.onnx"], paths["model_int8.onnx"])
    flatbuffers = {
        "float.tflite": to_tflite(model, "float"),
        "dynamic.tflite": to_tflite(model, "dynamic"),
        "int8.tflite": to_tflite(model, "int8", calibration, int8_io=True),
        "int8_float_out.tflite": to_tflite(model, "int8", calibration),
    }
    for name, data in flatbuffers.items():
        with open(paths[name], "wb") as f:
            f.write(data)
    ids = random_ids(40, seed=3)
    keras_probs = np.asarray(model(ids, training=False)).reshape(-1).astype(np.float32)
    return TinyModels(model, paths["model.onnx"], paths["model_int8.onnx"], paths["float.tflite"],
                      paths["dynamic.tflite"], paths["int8.tflite"], paths["int8_float_out.tflite"],
                      ids, keras_probs)


@pytest.fixture(scope="session")
def bundle(tiny_bundle) -> str:
    """The shared tiny bundle (tests/conftest.py), under the name the CLI tests use."""
    return tiny_bundle


@pytest.fixture(scope="session")
def clf(bundle):
    """A Classifier on the tiny bundle, one onnxruntime thread (as batch workers use)."""
    from runtime import Classifier

    return Classifier.load(bundle, threads=1)


@pytest.fixture(scope="session")
def spark_session(tmp_path_factory):
    """One local[2] Spark session for every Spark test (bound to 127.0.0.1, JVM log in a temp file)."""
    from runtime import spark as rs

    log = str(tmp_path_factory.mktemp("spark") / "jvm.log")
    spark = rs.local_session("local[2]", app_name="reviewkit-tests", log=log)
    yield spark
    spark.stop()
