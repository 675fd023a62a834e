"""``manifest.json``: what a bundle is, how it tokenizes, and proof of every file and figure."""
from __future__ import annotations

import copy
import json
import os
import platform
from datetime import datetime, timezone
from importlib import metadata

from runtime.bundle import FILES, FORMAT_VERSION, MANIFEST, parse_manifest
from runtime.files import atomic_write_text, sha256_file
from runtime.tokenizer import CONTRACT, Tokenizer

BUNDLE_FILES = tuple(FILES)  # every file a bundle may hold, in the order the manifest lists them
LABELS = ["negative", "positive"]  # below / at or above the threshold
LABELS_FILE_LINES = ["positive"]  # MediaPipe: one label for a [batch, 1] sigmoid output
# manifest key -> the distributions that provide it (TensorFlow ships as tensorflow-cpu on x86_64 Linux)
TOOLS = {"tensorflow": ("tensorflow", "tensorflow-cpu"), "keras": ("keras",), "tf2onnx": ("tf2onnx",),
         "onnx": ("onnx",), "onnxruntime": ("onnxruntime",), "ai-edge-litert": ("ai-edge-litert",),
         "mediapipe": ("mediapipe",), "numpy": ("numpy",)}


def tool_versions() -> dict:
    versions = {"python": platform.python_version()}
    for key, dists in TOOLS.items():
        for dist in dists:
            try:
                versions[key] = metadata.version(dist)
                break
            except metadata.PackageNotFoundError:
                pass
    return versions


def tokenizer_contract(tok: Tokenizer) -> dict:
    """The manifest's ``tokenizer`` section: the runtime's contract plus this vocabulary's figures."""
    contract = copy.deepcopy(CONTRACT)
    head = ("type", "version", "delim_pattern", "lowercase")
    return {**{k: contract.pop(k) for k in head},
            "maxlen": tok.maxlen, "num_words": tok.num_words, "vocab_file": "vocab.txt", **contract}


def file_entries(out: str, names=BUNDLE_FILES) -> dict:
    return {n: {"size": os.path.getsize(os.path.join(out, n)), "sha256": sha256_file(os.path.join(out, n))}
            for n in names if os.path.isfile(os.path.join(out, n))}


def build_manifest(out: str, tok: Tokenizer, training: dict | None, verification: dict) -> dict:
    return {
        "format_version": FORMAT_VERSION,
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "name": "imdb_basic_text_classification",
        "description": "IMDB review sentiment: probability that a review is positive.",
        "tools": tool_versions(),
        "tokenizer": tokenizer_contract(tok),
        "labels": LABELS,
        "labels_file": "labels.txt",
        "threshold": 0.5,
        "training": training,
        "verification": verification,
        "files": file_entries(out),
    }


def write_manifest(out: str, manifest: dict) -> str:
    """Write ``manifest.json``; refused (``BundleError``) if the runtime would not accept it."""
    path = os.path.join(out, MANIFEST)
    parse_manifest(json.loads(json.dumps(manifest)), path)  # as the runtime will read it
    atomic_write_text(path, json.dumps(manifest, indent=2) + "\n")
    return path
