"""TensorFlow-free scoring of raw review text; onnxruntime or LiteRT load only when a model opens."""
from .bundle import Bundle, BundleError
from .model import Classifier
from .tokenizer import Tokenizer

__all__ = ["Bundle", "BundleError", "Classifier", "Tokenizer"]
