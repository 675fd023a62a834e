"""``manifest.json``: what a bundle is, how it tokenizes, and proof of every file and figure."""
from __future__ import annotations

import copy
import json
import os
import platform
from datetime import datetime, timezone
from importlib import metadata

# labels_file_lines is the runtime's rule (a bundle is checked by it); export's modules import it from here
from runtime.bundle import FILES, FORMAT_VERSION, MANIFEST, labels_file_lines, parse_manifest  # noqa: F401
from runtime.files import atomic_write_text, sha256_file
from runtime.tokenizer import CONTRACT, Tokenizer
from trainer.dataset import IMDB_LABELS  # also what a metrics.json without "labels" (older training) means

BUNDLE_FILES = tuple(FILES)  # every file a bundle may hold, in the order the manifest lists them
THRESHOLD = 0.5  # two classes: labels[1] from this probability on
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


def trained_labels(training: dict | None) -> list[str]:
    """The class names, in output order, of the trainer's metrics.json (``{}``/None: none written)."""
    return list((training or {}).get("labels") or IMDB_LABELS)


def describe(labels: list[str]) -> tuple[str, str]:
    """(name, description) of the bundle: IMDB sentiment only for IMDB's two labels."""
    if labels == IMDB_LABELS:
        return "imdb_basic_text_classification", "IMDB review sentiment: probability that a review is positive."
    if len(labels) == 2:
        return "text_classification", f"Text classification: probability that a text is {labels[1]!r}."
    return "text_classification", f"Text classification into {len(labels)} labels: one probability per label."


def metadata_texts(labels: list[str], mode: str) -> dict:
    """The TFLite metadata's name, description and scores description (``add_metadata``) of a
    ``mode`` ("float", "dynamic", "int8") model; IMDB's two labels keep the IMDB wording."""
    if labels == IMDB_LABELS:
        return {"name": "IMDB review sentiment",
                "description": f"Probability that a movie review is positive ({mode} TFLite). "
                               "Lowercase the text before classifying."}
    scores = (f"Probability that the text is {labels[1]!r}." if len(labels) == 2
              else "One probability per label, in the order of labels.txt.")
    return {"name": "Text classification", "scores_description": scores,
            "description": f"{scores[:-1]} ({mode} TFLite). Lowercase the text before classifying."}


def build_manifest(out: str, tok: Tokenizer, training: dict | None, verification: dict) -> dict:
    labels = trained_labels(training)
    name, description = describe(labels)
    return {
        "format_version": FORMAT_VERSION,
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "name": name,
        "description": description,
        "tools": tool_versions(),
        "tokenizer": tokenizer_contract(tok),
        "labels": labels,
        "labels_file": "labels.txt",
        "threshold": THRESHOLD if len(labels) == 2 else None,  # N >= 3: the arg-max, no threshold
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
