"""TensorFlow-free scoring of raw review text: ``from runtime import Classifier``."""

__all__ = ["Bundle", "BundleError", "Classifier", "Tokenizer"]


def __getattr__(name):
    # Lazy: importing ``runtime`` or any of its modules loads no inference runtime (onnxruntime,
    # LiteRT) until a Classifier is made: ``runtime.tokenizer`` (the trainer), ``--help``.
    if name == "Classifier":
        from .classifier import Classifier
        return Classifier
    if name in ("Bundle", "BundleError"):
        from . import bundle
        return getattr(bundle, name)
    if name == "Tokenizer":
        from .tokenizer import Tokenizer
        return Tokenizer
    raise AttributeError(f"module 'runtime' has no attribute {name!r}")
