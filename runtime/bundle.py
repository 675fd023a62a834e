"""A model bundle: a directory whose ``manifest.json`` vouches for every file beside it (size, sha256).
Every manifest key the runtime uses is checked here and nowhere else, all problems reported together."""
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


class BundleError(UserError):
    """A bundle is missing, incomplete, tampered with or of an unknown format."""

    @classmethod
    def collected(cls, where: str, problems: list[str], prefix: str = "") -> "BundleError":
        """One problem: ``prefix + problem``; several: a first line, then one line per problem."""
        if len(problems) == 1:
            return cls(prefix + problems[0])
        return cls("\n".join([f"{where}: {len(problems)} problems:", *(f"  - {p}" for p in problems)]))


@dataclass(frozen=True)
class Manifest:
    maxlen: int  # maxlen, num_words, vocab_file: the tokenizer section's own values (the rest equals CONTRACT)
    num_words: int
    vocab_file: str
    labels: tuple[str, ...]  # two: (below the threshold, at or above it); N >= 3: the output columns
    threshold: float | None  # None for N >= 3 labels: the arg-max
    files: Mapping[str, dict]  # plain name -> {"size": int, "sha256": hex}, in manifest order
    raw: dict = field(repr=False, compare=False)  # the whole JSON object, other sections included


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
    """labels.txt: a line per output score (MediaPipe's categories): P(labels[1]) for two classes, else each label."""
    return [labels[1]] if len(labels) == 2 else list(labels)


def default_bundle_path() -> str:
    """The bundle shipped inside the ``runtime`` package."""
    return str(resources.files("runtime") / "default_model")


@dataclass
class Bundle:
    root: str
    spec: Manifest  # the parsed, checked manifest

    def __post_init__(self):
        self.manifest = self.spec.raw  # every section, also those the runtime does not use
        self.models = [name for name in self.spec.files if name.endswith(MODEL_SUFFIXES)]
        self.labels = list(self.spec.labels)
        self.threshold = self.spec.threshold

    @classmethod
    def load(cls, path: str | os.PathLike | None = None, verify: bool = True) -> "Bundle":
        """``path``: a bundle directory, or any file inside one (None: the bundled default); ``verify``: the files."""
        root = os.fspath(path) if path is not None else default_bundle_path()
        if os.path.isfile(root):
            root = os.path.dirname(os.path.abspath(root))
        if not os.path.isdir(root):
            raise BundleError(f"{root}: no such bundle directory")
        bundle = cls(root, load_manifest(os.path.join(root, MANIFEST)))
        if verify:
            problems = [p for name, entry in bundle.spec.files.items() if (p := file_problem(root, name, entry))]
            if problems:
                raise BundleError.collected(root, problems)
            bundle._check_labels_file()
        return bundle

    def path(self, name: str) -> str:
        return os.path.join(self.root, name)

    def _check_labels_file(self) -> None:
        """labels.txt, when the bundle has one, is what ``labels_file_lines`` makes of the labels."""
        if LABELS_FILE not in self.spec.files:
            return
        with open(self.path(LABELS_FILE), "rb") as f:  # verified: a regular file of the listed size
            lines = f.read().decode("utf-8", "replace").split("\n")
        expected = labels_file_lines(self.labels)
        if lines[-1:] == [""]:
            lines.pop()
        if lines != expected:
            raise BundleError(f"{self.path(LABELS_FILE)}: lines {_show(lines)} do not match the labels of "
                              f"{MANIFEST} (expected {_show(expected)})")

    def tokenizer(self) -> Tokenizer:
        """The bundle's tokenizer; its vocabulary must hold exactly ``num_words`` words."""
        spec, path = self.spec, self.path(self.spec.vocab_file)
        try:
            tok = Tokenizer.load(path, maxlen=spec.maxlen)
        except TokenizerError as e:
            raise BundleError(str(e)) from None
        if len(tok.vocab) != spec.num_words:
            raise BundleError(f"{path}: {len(tok.vocab)} words, {MANIFEST} says tokenizer.num_words "
                              f"is {spec.num_words}")
        return tok


def file_problem(root: str, name: str, entry: dict) -> str | None:
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
        if info.st_size != entry["size"]:
            return (f"{path}: size {info.st_size} does not match {MANIFEST} ({entry['size']}); "
                    f"the file was changed or truncated")
        if sha256_stream(f) != entry["sha256"]:
            return f"{path}: sha256 does not match {MANIFEST}; {name} was modified"
    return None


def load_manifest(path: str) -> Manifest:
    """Read and parse ``path``; ``BundleError`` names the file and every problem."""
    try:
        text = read_regular_file(path, MAX_MANIFEST_BYTES).decode("utf-8")
        obj = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except FileNotFoundError:
        raise BundleError(f"{path}: missing (not a model bundle?)") from None
    except UnsafeFile as e:  # before ValueError, which it is
        raise BundleError(f"{path}: {e}") from None
    except OSError as e:
        raise BundleError(f"{path}: unreadable manifest: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise BundleError(f"{path}: unreadable manifest: not UTF-8 ({e.reason} at byte {e.start})") from None
    except RecursionError:
        raise BundleError(f"{path}: unreadable manifest: nested too deeply") from None
    except ValueError as e:  # bad JSON, a duplicate key, an integer of more than 4,300 digits
        raise BundleError(f"{path}: unreadable manifest: {e}") from None
    return parse_manifest(obj, path)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict:
    """A JSON object; a key given twice is refused (which one would the runtime use?)."""
    obj = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError(f"duplicate key {key!r}")
        obj[key] = value
    return obj


def parse_manifest(obj: Any, path: str) -> Manifest:
    """The checked ``Manifest`` of a decoded JSON value, or ``BundleError`` listing every problem."""
    _check_format(obj, path)
    problems: list[str] = []
    tok = _value(obj, "tokenizer", _object("an object"), problems)
    tok = tok if tok is None else _values(tok, _TOKENIZER, problems, "tokenizer.")
    labels = _value(obj, "labels", _LABELS, problems)
    threshold = _value(obj, "threshold", lambda v: _threshold_problem(v, labels), problems)
    files = _value(obj, "files", _object("an object of name -> {size, sha256}"), problems)
    files = files if files is None else _files(files, problems)
    if tok is not None and files is not None and tok["vocab_file"] not in files:
        problems.append(f"tokenizer.vocab_file: {tok['vocab_file']!r} is not listed in files")
    if problems:
        raise BundleError.collected(path, problems, f"{path}: ")
    return Manifest(tok["maxlen"], tok["num_words"], tok["vocab_file"], tuple(labels),
                    None if threshold is None else float(threshold), files, obj)


def _check_format(obj: Any, path: str) -> None:
    """A JSON object of a format this runtime reads (another's other keys are not worth reporting)."""
    if not isinstance(obj, dict):
        kinds = {list: "array", str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}
        kind = kinds.get(type(obj), type(obj).__name__)
        raise BundleError(f"{path}: not a manifest (a JSON {kind}, not an object)")
    version = obj.get("format_version")
    if type(version) is not int or version not in SUPPORTED_FORMAT_VERSIONS:  # True is no version
        shown = "missing" if "format_version" not in obj else _show(version)
        raise BundleError(f"{path}: unknown format_version {shown} "
                          f"(this runtime reads {', '.join(map(str, SUPPORTED_FORMAT_VERSIONS))})")


# -- checks: each gives why a value is wrong (None: it is right) ------------------------------
_MISSING = {"tokenizer": "missing (the tokenizer contract)", "labels": "missing (the class names, in output order)",
            "threshold": "missing (two labels: the probability from which the second is predicted; more: null)",
            "files": "missing (the size and sha256 of every file)"}  # a missing section says what it holds


def _value(obj: dict, key: str, why: Callable[[Any], str | None], problems: list[str], where: str = "") -> Any:
    """``obj[key]``; None, with the problem noted, when it is missing or ``why`` finds one."""
    name = where + key
    problem = why(obj[key]) if key in obj else _MISSING.get(name, "missing")
    if problem is None:
        return obj[key]
    problems.append(f"{name}: {problem}")
    return None


def _values(obj: dict, checks: dict, problems: list[str], where: str) -> dict | None:
    """Each key of ``checks`` in ``obj``, checked; None when any has a problem."""
    before = len(problems)
    values = {key: _value(obj, key, why, problems, where) for key, why in checks.items()}
    return values if len(problems) == before else None


def _files(files: dict, problems: list[str]) -> Mapping[str, dict] | None:
    entries, before = {}, len(problems)
    for name, entry in files.items():
        where = f"files[{name!r}]"
        if (why := _name_problem(name) or _object("an object {size, sha256}")(entry)) is not None:
            problems.append(f"{where}: {why}")
        elif (values := _values(entry, _ENTRY, problems, where + ".")) is not None:
            entries[name] = values
    return MappingProxyType(entries) if len(problems) == before else None


def _must(ok: Callable[[Any], Any], what: str) -> Callable[[Any], str | None]:
    """The check that refuses what ``ok`` does not accept as ``must be {what}, got {the value}``."""
    return lambda value: None if ok(value) else f"must be {what}, got {_show(value)}"


def _object(what: str) -> Callable[[Any], str | None]:
    return _must(lambda v: isinstance(v, dict), what)


def _integer(low: int, high: float = math.inf) -> Callable[[Any], str | None]:
    limits = f"at least {low}" if high == math.inf else f"from {low} to {high}"
    return _must(lambda v: type(v) is int and low <= v <= high, f"an integer {limits}")  # not bool


def _equals(expected: Any) -> Callable[[Any], str | None]:
    return lambda v: (None if _same(v, expected)
                      else f"{_show(v)} is not what this runtime reproduces ({_show(expected)})")


def _same(value: Any, expected: Any) -> bool:
    """``value == expected`` with the same JSON types (``true`` is not ``1``, ``1.0`` is not ``1``)."""
    if type(value) is not type(expected):
        return False
    if isinstance(expected, dict):
        return value.keys() == expected.keys() and all(_same(value[k], v) for k, v in expected.items())
    return value == expected


def _distinct_names(labels: Any) -> bool:
    return (isinstance(labels, list) and 2 <= len(labels) <= MAX_LABELS
            and all(isinstance(x, str) and x for x in labels) and len(set(labels)) == len(labels))


def _threshold_problem(value: Any, labels: list | None) -> str | None:
    """In (0, 1) for two labels, null (the arg-max) for N >= 3; either while the labels are unusable."""
    if labels is not None and len(labels) > 2:
        return None if value is None else f"must be null for {len(labels)} labels (the arg-max), got {_show(value)}"
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if (value is None and labels is None) or (number and math.isfinite(value) and 0 < value < 1):
        return None
    return f"must be a number between 0 and 1 (exclusive), got {_show(value)}"


def _name_problem(name: Any) -> str | None:
    """Why ``name`` is not a plain file name inside the bundle directory (None: it is)."""
    if not isinstance(name, str) or not name:
        return f"must be a file name, got {_show(name)}"
    if name in (".", "..") or any(c in name for c in "/\\\0") or os.path.isabs(name):
        return "must be a plain file name inside the bundle (no /, \\, .., NUL)"
    return None


_LABELS = _must(_distinct_names, f"2 to {MAX_LABELS} distinct non-empty strings (the class names, in output order)")
_TOKENIZER = {**{key: _equals(expected) for key, expected in CONTRACT.items()},
              "maxlen": _integer(1, MAX_MAXLEN), "num_words": _integer(len(SPECIAL_TOKENS) + 1, MAX_NUM_WORDS),
              "vocab_file": _name_problem}
_ENTRY = {"size": _integer(0),
          "sha256": _must(lambda v: isinstance(v, str) and re.fullmatch(r"[0-9a-f]{64}", v), "64 lowercase hex digits")}


def _show(value: Any) -> str:
    """A JSON value as one short piece of text for an error message."""
    try:
        text = json.dumps(value, ensure_ascii=True, allow_nan=True)
    except (TypeError, ValueError, RecursionError):
        text = repr(value)
    return text if len(text) <= 100 else text[:97] + "..."
