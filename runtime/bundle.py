"""A model bundle: a directory with ``manifest.json`` that vouches for every file beside it.

``Bundle.load(path)`` trusts nothing the manifest does not vouch for. The manifest is parsed
once into a checked ``Manifest`` (``runtime/manifest.py``: format version, tokenizer contract,
labels, threshold, plain file names). Every file it lists must then be a regular file that
resolves inside the bundle directory (a symlink out of it is refused before its size is
looked at) with the listed size and sha256. Errors are ``BundleError``: one line naming the
file and the problem, or a first line and one line per problem when there are several.
"""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from importlib import resources

from .files import sha256_stream
from .manifest import (FORMAT_VERSION, MANIFEST, MODEL_SUFFIXES, SUPPORTED_FORMAT_VERSIONS, BundleError,
                       FileEntry, Manifest, load_manifest)
from .tokenizer import Tokenizer, TokenizerError

__all__ = ["FILES", "MODEL_FILES", "EXPORTED_MODELS", "DEFAULT_MODELS", "Bundle", "BundleError", "Manifest",
           "MANIFEST", "FORMAT_VERSION", "SUPPORTED_FORMAT_VERSIONS", "MODEL_SUFFIXES",
           "default_bundle_path", "file_problem"]


# Every file a bundle may hold, in the order the manifest lists them, with its role: the one
# table of names that export, package, web, the benchmarks and the runtime read.
FILES = {
    "model.keras": "the trained Keras model: the reference every export is checked against",
    "model.onnx": "ONNX, float32: the runtime's default model",
    "model.int8.onnx": "ONNX, int8 weights (dynamic quantization)",
    "model.tflite": "TFLite, float32, with MediaPipe metadata",
    "model.dynamic.tflite": "TFLite, dynamic-range int8 weights, with MediaPipe metadata",
    "model.int8.tflite": "TFLite, int8 (full-integer or dynamic-range, chosen on validation), with MediaPipe metadata",
    "vocab.txt": "the tokenizer's vocabulary: one word a line, id = line number",
    "labels.txt": "the labels the model's output columns stand for (MediaPipe's label file)",
}
MODEL_FILES = tuple(name for name in FILES if name.startswith("model."))
EXPORTED_MODELS = tuple(name for name in MODEL_FILES if name != "model.keras")
DEFAULT_MODELS = {"onnx": "model.onnx", "tflite": "model.int8.tflite"}  # per backend


def default_bundle_path() -> str:
    """The bundle shipped inside the ``runtime`` package."""
    return str(resources.files("runtime") / "default_model")


@dataclass
class Bundle:
    root: str
    spec: Manifest  # the parsed, checked manifest

    @classmethod
    def load(cls, path: str | os.PathLike | None = None, verify: bool = True) -> "Bundle":
        """``path``: a bundle directory, or any file inside one; ``None``: the bundled default."""
        root = os.fspath(path) if path is not None else default_bundle_path()
        if os.path.isfile(root):
            root = os.path.dirname(os.path.abspath(root))
        if not os.path.isdir(root):
            raise BundleError(f"{root}: no such bundle directory")
        bundle = cls(root, load_manifest(os.path.join(root, MANIFEST)))
        if verify:
            bundle.verify_files()
        return bundle

    def path(self, name: str) -> str:
        return os.path.join(self.root, name)

    def verify_files(self) -> None:
        """Every listed file is inside the bundle, regular, and of the listed size and sha256."""
        problems = [p for name, entry in self.spec.files.items()
                    if (p := file_problem(self.root, name, entry)) is not None]
        if problems:
            raise BundleError.collected(self.root, problems, lambda p: p)

    @property
    def manifest(self) -> dict:
        """The manifest as JSON (every section, also those the runtime does not use)."""
        return self.spec.raw

    @property
    def models(self) -> list[str]:
        return self.spec.models

    @property
    def labels(self) -> list[str]:
        return list(self.spec.labels)

    @property
    def threshold(self) -> float:
        return self.spec.threshold

    @property
    def maxlen(self) -> int:
        return self.spec.tokenizer.maxlen

    def tokenizer(self) -> Tokenizer:
        """The bundle's tokenizer; its vocabulary must hold exactly ``num_words`` words."""
        cfg = self.spec.tokenizer
        path = self.path(cfg.vocab_file)
        try:
            tok = Tokenizer.load(path, maxlen=cfg.maxlen)
        except TokenizerError as e:
            raise BundleError(str(e)) from None
        if len(tok.vocab) != cfg.num_words:
            raise BundleError(f"{path}: {len(tok.vocab)} words, {MANIFEST} says tokenizer.num_words "
                              f"is {cfg.num_words}")
        return tok


def file_problem(root: str, name: str, entry: FileEntry) -> str | None:
    """Why the bundle file ``name`` is not what ``entry`` vouches for (None: it is)."""
    path = os.path.join(root, name)
    real_root, real = os.path.realpath(root), os.path.realpath(path)
    if os.path.dirname(real) != real_root:  # a symlink out: say nothing about what it points to
        return f"{path}: resolves outside the bundle directory (listed in {MANIFEST})"
    try:
        fd = os.open(real, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return f"{path}: missing (listed in {MANIFEST})"
    except OSError as e:
        return f"{path}: unreadable: {e.strerror}"
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        return f"{path}: not a regular file (listed in {MANIFEST})"
    with open(fd, "rb") as f:
        if info.st_size != entry.size:
            return (f"{path}: size {info.st_size} does not match {MANIFEST} ({entry.size}); "
                    f"the file was changed or truncated")
        if sha256_stream(f) != entry.sha256:
            return f"{path}: sha256 does not match {MANIFEST}; {name} was modified"
    return None
