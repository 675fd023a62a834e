"""A model bundle: a directory with ``manifest.json`` that vouches for every file beside it.

``Bundle.load(path)`` trusts nothing the manifest does not vouch for: the format version,
and the size and sha256 of every file it lists. Errors are ``BundleError`` with one line
naming the file and the problem.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from importlib import resources

from .files import sha256_file
from .tokenizer import DELIM_PATTERN, TOKENIZER_VERSION, Tokenizer, TokenizerError
from .errors import UserError

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
SUPPORTED_FORMAT_VERSIONS = (1,)
MODEL_SUFFIXES = (".onnx", ".tflite")


class BundleError(UserError):
    """A bundle is missing, incomplete, tampered with or of an unknown format."""


def default_bundle_path() -> str:
    """The bundle shipped inside the ``runtime`` package."""
    return str(resources.files("runtime") / "default_model")


@dataclass
class Bundle:
    root: str
    manifest: dict

    @classmethod
    def load(cls, path: str | os.PathLike | None = None, verify: bool = True) -> "Bundle":
        """``path``: a bundle directory, or any file inside one; ``None``: the bundled default."""
        root = os.fspath(path) if path is not None else default_bundle_path()
        if os.path.isfile(root):
            root = os.path.dirname(os.path.abspath(root))
        manifest_path = os.path.join(root, MANIFEST)
        if not os.path.isdir(root):
            raise BundleError(f"{root}: no such bundle directory")
        manifest = read_manifest(manifest_path)
        bundle = cls(root, manifest)
        if verify:
            bundle.verify_files()
        return bundle

    def path(self, name: str) -> str:
        return os.path.join(self.root, name)

    def verify_files(self) -> None:
        for name, entry in self.manifest["files"].items():
            check_file(self.path(name), entry)

    @property
    def models(self) -> list[str]:
        return [n for n in self.manifest["files"] if n.endswith(MODEL_SUFFIXES)]

    @property
    def labels(self) -> list[str]:
        return list(self.manifest["labels"])

    @property
    def threshold(self) -> float:
        return float(self.manifest.get("threshold", 0.5))

    def tokenizer(self) -> Tokenizer:
        cfg = self.manifest["tokenizer"]
        try:
            tok = Tokenizer.load(self.path(cfg["vocab_file"]), maxlen=int(cfg["maxlen"]))
        except TokenizerError as e:
            raise BundleError(str(e)) from None
        if len(tok.vocab) != int(cfg["num_words"]):
            raise BundleError(f"{self.path(cfg['vocab_file'])}: {len(tok.vocab)} words, "
                              f"manifest says {cfg['num_words']}")
        return tok


def read_manifest(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except FileNotFoundError:
        raise BundleError(f"{path}: missing (not a model bundle?)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BundleError(f"{path}: unreadable manifest: {e}") from None
    version = manifest.get("format_version") if isinstance(manifest, dict) else None
    if version not in SUPPORTED_FORMAT_VERSIONS:
        raise BundleError(f"{path}: unknown format_version {version!r} "
                          f"(this runtime reads {', '.join(map(str, SUPPORTED_FORMAT_VERSIONS))})")
    for key in ("files", "tokenizer", "labels"):
        if key not in manifest:
            raise BundleError(f"{path}: no {key!r} entry")
    check_tokenizer_contract(path, manifest["tokenizer"])
    return manifest


def check_tokenizer_contract(path: str, cfg: dict) -> None:
    """Refuse a bundle whose tokenizer this runtime would not reproduce exactly."""
    if cfg.get("version") != TOKENIZER_VERSION or cfg.get("delim_pattern") != DELIM_PATTERN \
            or cfg.get("lowercase") is not True:
        raise BundleError(f"{path}: tokenizer version {cfg.get('version')!r} with pattern "
                          f"{cfg.get('delim_pattern')!r} is not supported by this runtime")


def check_file(path: str, entry: dict) -> None:
    name = os.path.basename(path)
    if not os.path.isfile(path):
        raise BundleError(f"{path}: missing (listed in {MANIFEST})")
    size = os.path.getsize(path)
    if size != entry["size"]:
        raise BundleError(f"{path}: size {size} does not match {MANIFEST} ({entry['size']}); "
                          f"the file was changed or truncated")
    if sha256_file(path) != entry["sha256"]:
        raise BundleError(f"{path}: sha256 does not match {MANIFEST}; {name} was modified")
