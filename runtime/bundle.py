"""A model bundle: a directory with ``manifest.json`` that vouches for every file beside it.

``Bundle.load(path)`` trusts nothing the manifest does not vouch for. The manifest is read once
(capped, and only if it is a regular file: never a FIFO or a device) into a checked ``Manifest``:
every key the runtime uses is checked here and nowhere else -- its presence, its type, its range,
and for the tokenizer contract that it *equals* what ``runtime.tokenizer`` reproduces. All the
problems of one manifest are reported together in one ``BundleError``, each naming its key
(``tokenizer.maxlen: missing``). Sections the runtime does not use (``training``,
``verification``, ``tools``, ``web``, ...) are kept in ``Manifest.raw`` and never checked.

Every file the manifest lists must then be a regular file that resolves inside the bundle
directory (a symlink out of it is refused before its size is looked at) with the listed size and
sha256. Errors are ``BundleError``: one line naming the file and the problem, or a first line
and one line per problem when there are several.
"""
from __future__ import annotations

import json
import math
import os
import re
import stat
from dataclasses import dataclass, field
from importlib import resources
from types import MappingProxyType
from typing import Any, Callable, Mapping

from .errors import UserError
from .files import UnsafeFile, read_regular_file, sha256_stream
from .tokenizer import CONTRACT, SPECIAL_TOKENS, Tokenizer, TokenizerError

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
SUPPORTED_FORMAT_VERSIONS = (1,)
MAX_MANIFEST_BYTES = 4 << 20  # a real one is ~4 KB
MAX_MAXLEN = 16_384  # ids per review; IMDB's longest review has ~2,500 words
MAX_NUM_WORDS = 10_000_000
MAX_LABELS = 1000
MODEL_SUFFIXES = (".onnx", ".tflite")

_SHA256 = re.compile(r"[0-9a-f]{64}")


class BundleError(UserError):
    """A bundle is missing, incomplete, tampered with or of an unknown format.

    ``problems``: one line each (a single problem is the whole message).
    """

    def __init__(self, message: str, problems: tuple[str, ...] = ()):
        super().__init__(message)
        self.problems = problems or (message,)

    @classmethod
    def collected(cls, where: str, problems: list[str], single: Callable[[str], str]) -> "BundleError":
        """One problem: ``single(problem)``; several: a first line, then one line per problem."""
        if len(problems) == 1:
            return cls(single(problems[0]), tuple(problems))
        lines = [f"{where}: {len(problems)} problems:", *(f"  - {p}" for p in problems)]
        return cls("\n".join(lines), tuple(problems))


@dataclass(frozen=True)
class FileEntry:
    size: int
    sha256: str


@dataclass(frozen=True)
class TokenizerSpec:
    """The ``tokenizer`` section's own values (its contract fields equal ``CONTRACT`` once parsed)."""
    maxlen: int
    num_words: int
    vocab_file: str


@dataclass(frozen=True)
class Manifest:
    path: str
    format_version: int
    tokenizer: TokenizerSpec
    labels: tuple[str, ...]  # two: (below the threshold, at or above it); N >= 3: the output columns
    threshold: float | None  # None for N >= 3 labels: the arg-max
    files: Mapping[str, FileEntry]  # plain names, in manifest order
    raw: dict = field(repr=False, compare=False)  # the whole JSON object, other sections included

    @property
    def models(self) -> list[str]:
        return [name for name in self.files if name.endswith(MODEL_SUFFIXES)]


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
EXPORTED_MODELS = tuple(name for name in FILES if name.startswith("model.") and name != "model.keras")
DEFAULT_MODELS = {"onnx": "model.onnx", "tflite": "model.int8.tflite"}  # per backend
LABELS_FILE = "labels.txt"


def labels_file_lines(labels) -> list[str]:
    """labels.txt, one line per output score (MediaPipe's categories): two classes have one
    sigmoid score, P(labels[1]); N >= 3 classes one softmax score per label."""
    return [labels[1]] if len(labels) == 2 else list(labels)


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
            bundle._check_labels_file()
        return bundle

    def path(self, name: str) -> str:
        return os.path.join(self.root, name)

    def verify_files(self) -> None:
        """Every listed file is inside the bundle, regular, and of the listed size and sha256."""
        problems = [p for name, entry in self.spec.files.items()
                    if (p := file_problem(self.root, name, entry)) is not None]
        if problems:
            raise BundleError.collected(self.root, problems, lambda p: p)

    def _check_labels_file(self) -> None:
        """labels.txt, when the bundle has one, is what ``labels_file_lines`` makes of the labels."""
        if LABELS_FILE not in self.spec.files:
            return
        with open(self.path(LABELS_FILE), "rb") as f:  # verified: a regular file of the listed size
            lines = f.read().decode("utf-8", "replace").split("\n")
        expected = labels_file_lines(self.spec.labels)
        if lines[-1:] == [""]:
            lines.pop()
        if lines != expected:
            raise BundleError(f"{self.path(LABELS_FILE)}: lines {_show(lines)} do not match the labels of "
                              f"{MANIFEST} (expected {_show(expected)})")

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
    def threshold(self) -> float | None:
        return self.spec.threshold

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


# -- the manifest, read and checked ---------------------------------------------------------
def load_manifest(path: str) -> Manifest:
    """Read and parse ``path``; ``BundleError`` names the file and every problem."""
    try:
        data = read_regular_file(path, MAX_MANIFEST_BYTES)
    except FileNotFoundError:
        raise BundleError(f"{path}: missing (not a model bundle?)") from None
    except UnsafeFile as e:
        raise BundleError(f"{path}: {e}") from None
    except OSError as e:
        raise BundleError(f"{path}: unreadable manifest: {e.strerror or e}") from None
    try:
        obj = json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicate_keys)
    except UnicodeDecodeError as e:
        raise BundleError(f"{path}: unreadable manifest: not UTF-8 ({e.reason} at byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise BundleError(f"{path}: unreadable manifest: {e}") from None
    except _DuplicateKey as e:
        raise BundleError(f"{path}: unreadable manifest: duplicate key {e.args[0]!r}") from None
    except RecursionError:
        raise BundleError(f"{path}: unreadable manifest: nested too deeply") from None
    except ValueError as e:  # e.g. an integer of more than 4,300 digits
        raise BundleError(f"{path}: unreadable manifest: {e}") from None
    return parse_manifest(obj, path)


class _DuplicateKey(ValueError):
    pass


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict:
    """A JSON object; a key given twice is refused (which one would the runtime use?)."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        raise _DuplicateKey(next(k for k, _ in pairs if k in seen or seen.add(k)))
    return obj


def parse_manifest(obj: Any, path: str) -> Manifest:
    """The checked ``Manifest`` of a decoded JSON value, or ``BundleError`` listing every problem."""
    if not isinstance(obj, dict):
        raise BundleError(f"{path}: not a manifest (a JSON {_json_type(obj)}, not an object)")
    version = obj.get("format_version")
    if type(version) is not int or version not in SUPPORTED_FORMAT_VERSIONS:  # noqa: E721 (True is no version)
        # Another format may be laid out otherwise: its other keys are not worth reporting.
        shown = "missing" if "format_version" not in obj else _show(version)
        raise BundleError(f"{path}: unknown format_version {shown} "
                          f"(this runtime reads {', '.join(map(str, SUPPORTED_FORMAT_VERSIONS))})")
    problems: list[str] = []
    tokenizer = _section(obj, "tokenizer", _tokenizer, problems)
    labels, threshold = _classes(obj, problems)
    files = _section(obj, "files", _files, problems)
    if tokenizer is not None and files is not None and tokenizer.vocab_file not in files:
        problems.append(f"tokenizer.vocab_file: {tokenizer.vocab_file!r} is not listed in files")
    if problems:
        raise BundleError.collected(path, problems, lambda p: f"{path}: {p}")
    return Manifest(path, version, tokenizer, labels, threshold, files, obj)


# -- the sections: each reader gives the section's value, or None with its problems noted ----
def _tokenizer(cfg: Any, problems: list[str]) -> TokenizerSpec | None:
    if not isinstance(cfg, dict):
        problems.append(f"tokenizer: must be an object, got {_show(cfg)}")
        return None
    before = len(problems)
    for key, expected in CONTRACT.items():
        where = f"tokenizer.{key}"
        if key not in cfg:
            problems.append(f"{where}: missing")
        elif not _same(cfg[key], expected):
            problems.append(f"{where}: {_show(cfg[key])} is not what this runtime reproduces ({_show(expected)})")
    maxlen = _int(cfg, "maxlen", 1, MAX_MAXLEN, problems, "tokenizer.")
    num_words = _int(cfg, "num_words", len(SPECIAL_TOKENS) + 1, MAX_NUM_WORDS, problems, "tokenizer.")
    vocab_file = _name(cfg, "vocab_file", problems, "tokenizer.")
    return None if len(problems) > before else TokenizerSpec(maxlen, num_words, vocab_file)


def _labels(labels: Any, problems: list[str]) -> tuple[str, ...] | None:
    if (not isinstance(labels, list) or not 2 <= len(labels) <= MAX_LABELS
            or not all(isinstance(x, str) and x for x in labels) or len(set(labels)) != len(labels)):
        problems.append(f"labels: must be 2 to {MAX_LABELS} distinct non-empty strings (the class names, in "
                        f"output order), got {_show(labels)}")
        return None
    return tuple(labels)


def _classes(obj: dict, problems: list[str]) -> tuple[tuple[str, ...] | None, float | None]:
    """(labels, threshold): a threshold in (0, 1) for two labels, null (the arg-max) for N >= 3;
    either while the labels are unusable."""
    labels = _section(obj, "labels", _labels, problems)
    if "threshold" not in obj:
        problems.append(f"threshold: missing ({_WHAT['threshold']})")
        return labels, None
    value = obj["threshold"]
    if labels is not None and len(labels) > 2:
        if value is not None:
            problems.append(f"threshold: must be null for {len(labels)} labels (the arg-max), got {_show(value)}")
        return labels, None
    if value is None and labels is None:  # which labels it is for is not known: null may be right
        return labels, None
    if not _is_number(value) or not math.isfinite(value) or not 0 < value < 1:
        problems.append(f"threshold: must be a number between 0 and 1 (exclusive), got {_show(value)}")
        return labels, None
    return labels, float(value)


def _files(files: Any, problems: list[str]) -> Mapping[str, FileEntry] | None:
    if not isinstance(files, dict):
        problems.append(f"files: must be an object of name -> {{size, sha256}}, got {_show(files)}")
        return None
    entries, before = {}, len(problems)
    for name, entry in files.items():
        where = f"files[{name!r}]"
        if (why := _name_problem(name)) is not None:
            problems.append(f"{where}: {why}")
            continue
        if not isinstance(entry, dict):
            problems.append(f"{where}: must be an object {{size, sha256}}, got {_show(entry)}")
            continue
        size = _int(entry, "size", 0, None, problems, f"{where}.")
        digest = entry.get("sha256")
        if "sha256" not in entry:
            problems.append(f"{where}.sha256: missing")
        elif not isinstance(digest, str) or not _SHA256.fullmatch(digest):
            problems.append(f"{where}.sha256: must be 64 lowercase hex digits, got {_show(digest)}")
        else:
            entries[name] = FileEntry(size, digest)
    return None if len(problems) > before else MappingProxyType(entries)


_WHAT = {"tokenizer": "the tokenizer contract", "labels": "the class names, in output order",
         "threshold": "two labels: the probability from which the second is predicted; more: null",
         "files": "the size and sha256 of every file"}  # each section, as a missing one is reported


def _section(obj: dict, key: str, read: Callable[[Any, list[str]], Any], problems: list[str]) -> Any:
    """``read(obj[key])``; None, with the problems noted, when it is missing or has problems."""
    if key not in obj:
        problems.append(f"{key}: missing ({_WHAT[key]})")
        return None
    return read(obj[key], problems)


# -- values ---------------------------------------------------------------------------------
def _int(obj: dict, key: str, low: int, high: int | None, problems: list[str], prefix: str) -> int | None:
    if key not in obj:
        problems.append(f"{prefix}{key}: missing")
        return None
    value = obj[key]
    if type(value) is not int or value < low or (high is not None and value > high):  # noqa: E721 (not bool)
        limits = f"from {low} to {high}" if high is not None else f"at least {low}"
        problems.append(f"{prefix}{key}: must be an integer {limits}, got {_show(value)}")
        return None
    return value


def _name(obj: dict, key: str, problems: list[str], prefix: str) -> str | None:
    if key not in obj:
        problems.append(f"{prefix}{key}: missing")
        return None
    if (why := _name_problem(obj[key])) is not None:
        problems.append(f"{prefix}{key}: {why}")
        return None
    return obj[key]


def _name_problem(name: Any) -> str | None:
    """Why ``name`` is not a plain file name inside the bundle directory (None: it is)."""
    if not isinstance(name, str) or not name:
        return f"must be a file name, got {_show(name)}"
    if name in (".", "..") or any(c in name for c in "/\\\0") or os.path.isabs(name):
        return "must be a plain file name inside the bundle (no /, \\, .., NUL)"
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _same(value: Any, expected: Any) -> bool:
    """``value == expected`` with the same JSON types (``true`` is not ``1``, ``1.0`` is not ``1``)."""
    if type(value) is not type(expected):
        return False
    if isinstance(expected, dict):
        return value.keys() == expected.keys() and all(_same(value[k], v) for k, v in expected.items())
    return value == expected


def _json_type(value: Any) -> str:
    for types, name in ((bool, "boolean"), ((int, float), "number"), (str, "string"), (list, "array"),
                        (dict, "object"), (type(None), "null")):
        if isinstance(value, types):
            return name
    return type(value).__name__


def _show(value: Any) -> str:
    """A JSON value as one short piece of text for an error message."""
    try:
        text = json.dumps(value, ensure_ascii=True, allow_nan=True)
    except (TypeError, ValueError, RecursionError):
        text = repr(value)
    return text if len(text) <= 100 else text[:97] + "..."
