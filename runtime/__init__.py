"""TensorFlow-free scoring of raw review text: ``from runtime import Classifier``.

Importing it loads numpy and this package only: onnxruntime or LiteRT load when a model opens.
"""
from .bundle import Bundle, BundleError
from .model import Classifier
from .tokenizer import Tokenizer

__all__ = ["Bundle", "BundleError", "Classifier", "Tokenizer"]
