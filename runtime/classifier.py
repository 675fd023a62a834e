"""``Classifier``: raw review text in, positive-class probabilities out. No TensorFlow."""
from __future__ import annotations

import os
from typing import Iterable, Iterator, TypeVar

import numpy as np

from .backends import BackendError, open_backend, resolve_backend
from .bundle import MODEL_SUFFIXES, Bundle, BundleError

DEFAULT_MODELS = {"onnx": "model.onnx", "tflite": "model.int8.tflite"}
DEFAULT_BATCH_SIZE = 256
T = TypeVar("T")


class Classifier:
    """``Classifier.load().predict(["a great film"])`` -> ``array([0.93], dtype=float32)``."""

    def __init__(self, bundle: Bundle, model: str, backend, batch_size: int = DEFAULT_BATCH_SIZE):
        self.bundle = bundle
        self.model = model
        self.backend_name = "onnx" if model.endswith(".onnx") else "tflite"
        self._backend = backend
        self.deterministic = getattr(backend, "deterministic", False)  # built-in TFLite kernels only
        self.tokenizer = bundle.tokenizer()
        self.batch_size = batch_size

    @classmethod
    def load(cls, path: str | os.PathLike | None = None, backend: str = "auto", model: str | None = None,
             threads: int | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
             deterministic: bool = False) -> "Classifier":
        """``path``: bundle directory or a model file in one (``None``: the bundled default model).

        ``backend``: ``onnx``, ``tflite`` or ``auto``; ``model``: a model file name in the bundle.
        ``deterministic``: TFLite on its built-in kernels (``auto`` then means tflite), so int8
        scores are bit-identical on every CPU.
        """
        if path is not None and os.path.isfile(path) and model is None:
            if not os.fspath(path).endswith(MODEL_SUFFIXES):
                raise BundleError(f"{path}: not a model file: give a bundle directory, or a "
                                  f"{' or '.join(MODEL_SUFFIXES)} file in one")
            model = os.path.basename(path)
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        bundle = Bundle.load(path)
        try:
            name = resolve_backend("tflite" if deterministic and backend == "auto" and model is None
                                   else backend, model)
        except BackendError as e:
            raise BundleError(str(e)) from None
        model = model or DEFAULT_MODELS[name]
        if model not in bundle.models:
            raise BundleError(f"{bundle.root}: no model {model!r} in this bundle "
                              f"(it has: {', '.join(bundle.models) or 'none'})")
        try:
            runner = open_backend(bundle.path(model), name, threads, deterministic)
        except BackendError as e:
            raise BundleError(str(e)) from None
        check_model_fits(bundle, model, runner)
        return cls(bundle, model, runner, batch_size)

    @property
    def manifest(self) -> dict:
        return self.bundle.manifest

    @property
    def labels(self) -> list[str]:
        return self.bundle.labels

    @property
    def threshold(self) -> float:
        return self.bundle.threshold

    def predict_ids(self, ids: np.ndarray) -> np.ndarray:
        """``[n, maxlen]`` int32 ids -> ``[n]`` float32 probabilities."""
        return self._backend.run(ids)

    def predict(self, texts: Iterable[str]) -> np.ndarray:
        """Positive-class probability of each text, ``[n]`` float32, in input order."""
        if isinstance(texts, str):
            raise TypeError("predict() takes an iterable of texts; use predict_one() for a single text")
        parts = [self.predict_ids(self.tokenizer.encode_batch(batch)) for batch in batched(texts, self.batch_size)]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)

    def predict_one(self, text: str) -> float:
        return float(self.predict([text])[0])

    def label_of(self, probability: float, threshold: float | None = None) -> str:
        negative, positive = self.labels
        return positive if probability >= (self.threshold if threshold is None else threshold) else negative

    def classify(self, texts: Iterable[str], threshold: float | None = None) -> list[tuple[str, float]]:
        """``[(label, probability), ...]`` using the manifest threshold unless one is given."""
        return [(self.label_of(p, threshold), float(p)) for p in self.predict(texts)]


def check_model_fits(bundle: Bundle, model: str, runner) -> None:
    """The model takes ``maxlen`` ids per review and has a table row for every vocabulary id."""
    cfg = bundle.spec.tokenizer
    if list(runner.input_shape)[1:] != [cfg.maxlen]:
        raise BundleError(f"{bundle.path(model)}: model input shape {list(runner.input_shape)} "
                          f"does not take {cfg.maxlen} ids per review")
    if runner.vocab_rows is not None and cfg.num_words > runner.vocab_rows:
        raise BundleError(f"{bundle.path(model)}: the model's embedding table has {runner.vocab_rows} rows, "
                          f"fewer than the {cfg.num_words} words of {cfg.vocab_file}")


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Lists of ``size`` items (the last one shorter), lazily: memory stays flat."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
