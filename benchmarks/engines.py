"""The ways to score a review that the benchmark compares, behind one small interface.

Every engine maps raw texts to ``[n]`` float32 positive-class probabilities. Engines that have
a separate tokenizer and model (Keras, ``runtime.Classifier``) also expose them, so both can
be timed alone; MediaPipe tokenizes inside its C++ graph and only has the end-to-end path.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from runtime.errors import UserError

BATCH = 256  # texts per call on the batched paths (the runtime's default batch size)

RUNTIME_MODELS = [  # (row name, model file) scored by runtime.Classifier
    ("onnxruntime float", "model.onnx"),
    ("onnxruntime int8", "model.int8.onnx"),
    ("LiteRT float", "model.tflite"),
    ("LiteRT dynamic-range", "model.dynamic.tflite"),
    ("LiteRT int8", "model.int8.tflite"),
]
MEDIAPIPE_MODELS = [("MediaPipe float", "model.tflite"), ("MediaPipe int8", "model.int8.tflite")]
KERAS = ("Keras/TensorFlow (baseline)", "model.keras")


class BenchmarkError(UserError):
    """The benchmark cannot run: missing data or bundle, or an engine failed (one line)."""


@dataclass
class Engine:
    name: str  # the table row
    model: str  # model file name in the bundle
    kind: str  # keras, runtime or mediapipe: what benchmarks.child loads for the cold start
    predict: Callable[[list[str]], np.ndarray]  # texts -> [n] float32, in batches of BATCH
    predict_one: Callable[[str], float]  # one text, as a single request
    tokenize: Optional[Callable[[list[str]], np.ndarray]] = None  # <= BATCH texts -> [n, maxlen] int32
    predict_ids: Optional[Callable[[np.ndarray], np.ndarray]] = None  # [n, maxlen] int32 -> [n] float32
    close: Callable[[], None] = lambda: None
    # Other ways to serve one request with the same model, timed for latency only.
    latency_variants: dict[str, Callable[[str], float]] = field(default_factory=dict)


def batches(items: list, size: int = BATCH) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def keras_engine(bundle: str) -> Engine:
    """The tutorial's way: the plain regex tokenizer, then ``model.predict``."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from runtime.tokenizer import Tokenizer

    import trainer.ngrams  # noqa: F401  registers the custom layers of the bigram/linear architectures

    name, model = KERAS
    net = keras.saving.load_model(os.path.join(bundle, model), safe_mode=True)
    tok = Tokenizer.load(os.path.join(bundle, "vocab.txt"), maxlen=net.input_shape[1])  # a --maxlen model too

    def predict_ids(ids: np.ndarray) -> np.ndarray:
        return net.predict(ids, batch_size=BATCH, verbose=0).reshape(-1).astype(np.float32)

    def on_batch(text: str) -> float:  # no tf.data pipeline per call, unlike predict()
        return float(np.asarray(net.predict_on_batch(tok.encode_batch_reference([text]))).reshape(-1)[0])

    return Engine(name, model, "keras",
                  predict=lambda texts: predict_ids(tok.encode_batch_reference(texts)),
                  predict_one=lambda text: float(predict_ids(tok.encode_batch_reference([text]))[0]),
                  tokenize=tok.encode_batch_reference, predict_ids=predict_ids,
                  latency_variants={"model.predict_on_batch": on_batch})


def runtime_engine(bundle: str, name: str, model: str) -> Engine:
    """``runtime.Classifier``: the fast tokenizer and onnxruntime or LiteRT, default threads."""
    from runtime import Classifier

    clf = Classifier.load(bundle, model=model, batch_size=BATCH)

    def predict_ids(ids: np.ndarray) -> np.ndarray:  # as Classifier.predict feeds the backend
        return np.concatenate([clf.predict_ids(ids[i:i + BATCH]) for i in range(0, len(ids), BATCH)])

    return Engine(name, model, "runtime", predict=clf.predict, predict_one=clf.predict_one,
                  tokenize=clf.tokenizer.encode_batch, predict_ids=predict_ids)


def mediapipe_available() -> bool:
    try:
        from mediapipe.tasks.python.text import text_classifier  # noqa: F401
    except ImportError:
        return False
    return True


def mediapipe_engine(bundle: str, name: str, model: str) -> Engine:
    """MediaPipe Tasks ``TextClassifier`` on the metadata-carrying ``.tflite``, one text per call.

    MediaPipe does not lowercase, so the text is lowercased first (as ``export.mediapipe_check``).
    """
    from mediapipe.tasks.python.core.base_options import BaseOptions
    from mediapipe.tasks.python.text import text_classifier

    from export.mediapipe_check import POSITIVE_LABEL

    options = text_classifier.TextClassifierOptions(
        base_options=BaseOptions(model_asset_path=os.path.join(bundle, model)),
        max_results=-1, score_threshold=0.0)  # every category, none filtered out
    try:
        classifier = text_classifier.TextClassifier.create_from_options(options)
    except (RuntimeError, ValueError, OSError) as e:
        raise BenchmarkError(f"MediaPipe cannot load {model}: {str(e).splitlines()[0]}") from None

    def predict_one(text: str) -> float:
        categories = classifier.classify(text.lower()).classifications[0].categories
        return next(c.score for c in categories if c.category_name == POSITIVE_LABEL)

    return Engine(name, model, "mediapipe",
                  predict=lambda texts: np.array([predict_one(t) for t in texts], dtype=np.float32),
                  predict_one=predict_one, close=classifier.close)
