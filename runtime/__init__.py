"""TensorFlow-free scoring of raw review text: ``from runtime import Classifier``."""

__all__ = ["Bundle", "BundleError", "Classifier", "Tokenizer"]


def __getattr__(name):
    # Lazy, so that ``runtime.tokenizer`` (imported by the trainer) does not load onnxruntime.
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
