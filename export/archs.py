"""Per-architecture export choices: which quantization ships as ``model.int8.tflite``, and the
manifest's ``"arch"`` section.

``model.int8.tflite`` is the file the runtime and MediaPipe load by default. Full-integer int8
holds the pooled sums in 8 bits, which can degrade for long inputs (sums over up to ~2,000
positions), so the choice is made on figures, never on test data: after the tflite step wrote
the full-integer and the dynamic-range model, both are scored against the float model on
VALIDATION reviews; full-integer ships when it keeps >= ``INT8_MIN_AGREEMENT`` label agreement
and loses <= ``INT8_MAX_ACCURACY_DROP`` accuracy, otherwise the dynamic-range model (int8
weights, float activations) is copied over it. The choice and its figures go to
``quantization.json`` and from there into the manifest's ``"arch"`` section.
"""
from __future__ import annotations

import json
import os
import shutil
from typing import Callable

import numpy as np

from runtime.files import atomic_write_text

QUANTIZATION_FILE = "quantization.json"
# Verify's bar is 99% on the test set; 0.3 pt of margin for the validation-to-test difference.
# Measured agreement of full-integer vs float on IMDB test: tutorial 99.50% (ships int8),
# bigram 2^18 x 16 at maxlen 1024 99.07%, tutorial --mask-padding at maxlen 512 ~98.9% (dynamic).
INT8_MIN_AGREEMENT = 0.993
INT8_MAX_ACCURACY_DROP = 0.002
VALIDATION_REVIEWS = 10_000  # the whole default validation split: standard error of agreement ~0.07 pt
MODE_NAMES = {"int8": "full-integer int8", "dynamic": "dynamic-range (int8 weights, float activations)"}


def model_arch(model) -> str:
    from trainer.model import arch_of

    return arch_of(model)


def int8_figures(probs: np.ndarray, reference: np.ndarray, labels: np.ndarray) -> dict:
    agree = float(np.mean((probs >= 0.5) == (reference >= 0.5)))
    drop = float(np.mean((reference >= 0.5) == (labels == 1)) - np.mean((probs >= 0.5) == (labels == 1)))
    return {"agreement": agree, "accuracy_drop": drop,
            "max_abs_diff": float(np.max(np.abs(probs.astype(np.float64) - reference), initial=0.0))}


def int8_passes(figures: dict) -> bool:
    return figures["agreement"] >= INT8_MIN_AGREEMENT and figures["accuracy_drop"] <= INT8_MAX_ACCURACY_DROP


def choose_shipped_int8(out: str, ids: np.ndarray, labels: np.ndarray, log: Callable[[str], None],
                        held_out: bool = True) -> dict:
    """Keep the full-integer ``model.int8.tflite`` or replace it by ``model.dynamic.tflite``.

    ``ids`` [n, maxlen] int32 and ``labels`` [n]: validation reviews. ``held_out=False`` (the
    model was fitted on them too, as the linear model's final fit is) makes their figures
    optimistic -- measured: 99.99% agreement there, 98.89% on test -- so dynamic-range ships.
    Writes and returns the record.
    """
    from .verify import score_file

    reference = score_file(os.path.join(out, "model.tflite"), ids)
    figures = {mode: int8_figures(score_file(os.path.join(out, name), ids), reference, labels)
               for mode, name in (("int8", "model.int8.tflite"), ("dynamic", "model.dynamic.tflite"))}
    mode = "int8" if held_out and int8_passes(figures["int8"]) else "dynamic"
    if mode == "dynamic":
        tmp = os.path.join(out, ".model.int8.tflite.tmp")
        shutil.copyfile(os.path.join(out, "model.dynamic.tflite"), tmp)
        os.replace(tmp, os.path.join(out, "model.int8.tflite"))
    record = {"file": "model.int8.tflite", "mode": mode, "what": MODE_NAMES[mode],
              "rule": f"full-integer if agreement >= {INT8_MIN_AGREEMENT:.1%} and accuracy drop <= "
                      f"{INT8_MAX_ACCURACY_DROP * 100:.1f} pt against model.tflite on validation reviews",
              "validation": {"n": int(len(ids)), "held_out": held_out, **figures}}
    if not held_out:
        record["rule"] = "dynamic-range: the model was fitted on the validation reviews too, no held-out figures"
    atomic_write_text(os.path.join(out, QUANTIZATION_FILE), json.dumps(record, indent=2) + "\n")
    f = figures["int8"]
    log(f"model.int8.tflite: {MODE_NAMES[mode]} (full-integer on {len(ids)} validation reviews: "
        f"agreement {f['agreement']:.2%}, accuracy drop {f['accuracy_drop'] * 100:.2f} pt)")
    return record


def shipped_int8(out: str) -> dict | None:
    """The record ``choose_shipped_int8`` wrote, if the bundle has one."""
    path = os.path.join(out, QUANTIZATION_FILE)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def arch_section(model, out: str) -> dict:
    """The manifest's ``"arch"`` section: what the model is and what ``model.int8.tflite`` holds."""
    from trainer.ngrams import MaskedPooling, NgramIds

    pooling = next((layer for layer in model.layers if layer.name == "pooling"), None)
    ngrams = next((layer for layer in model.layers if isinstance(layer, NgramIds)), None)
    return {
        "name": model_arch(model),
        "mask_padding": isinstance(pooling, MaskedPooling),
        "ngrams": {"n": 2, "buckets": ngrams.buckets, "prime": ngrams.prime,
                   "id": "num_words + ((a * prime + b) mod buckets)"} if ngrams else None,
        "parameters": int(model.count_params()),
        "shipped_int8": shipped_int8(out),
    }
