"""Per-architecture export choices: which quantization ships as ``model.int8.tflite``, and the
manifest's ``"arch"`` section.

``model.int8.tflite`` is the file the runtime and MediaPipe load by default. Full-integer int8
holds the pooled sums in 8 bits, which can degrade for long inputs (sums over up to ~2,000
positions), so the choice is made on figures, never on test data: after the tflite step wrote
the full-integer and the dynamic-range model, both are scored against the float model on
VALIDATION reviews; full-integer ships when it keeps >= ``INT8_MIN_AGREEMENT`` label agreement,
loses <= ``INT8_MAX_ACCURACY_DROP`` accuracy and flips at most ``INT8_MAX_DISAGREEMENT_RATIO``
times as many labels as dynamic-range (same size, float activations), otherwise the
dynamic-range model is copied over it. The choice and its figures go to
``quantization.json`` and from there into the manifest's ``"arch"`` section.
"""
from __future__ import annotations

import json
import logging
import os
import shutil

import numpy as np

from runtime.files import atomic_write_text

from .verify import accuracy, predicted, score_file

logger = logging.getLogger(__name__)

QUANTIZATION_FILE = "quantization.json"
# Verify's bar is 99% on the test set; 0.3 pt of margin for the validation-to-test difference.
# Measured agreement of full-integer vs float on IMDB test: tutorial 99.50% (ships int8),
# bigram 2^18 x 16 at maxlen 1024 99.07%, tutorial --mask-padding at maxlen 512 ~98.9% (dynamic).
INT8_MIN_AGREEMENT = 0.993
INT8_MAX_ACCURACY_DROP = 0.002
# Label flips of full-integer vs dynamic-range on validation (10,000 reviews): tutorial 0.59% vs
# 0.23% (2.6x: full-integer ships), bigram 0.67% vs 0.06% (11x), --mask-padding 512 0.98% vs 0.05%.
INT8_MAX_DISAGREEMENT_RATIO = 5.0
VALIDATION_REVIEWS = 10_000  # the whole default validation split: standard error of agreement ~0.07 pt
MODE_NAMES = {"int8": "full-integer int8", "dynamic": "dynamic-range (int8 weights, float activations)"}


def model_arch(model) -> str:
    from trainer.model import arch_of

    return arch_of(model)


def int8_figures(probs: np.ndarray, reference: np.ndarray, labels: np.ndarray) -> dict:
    """Agreement, accuracy drop and max |dp| of ``probs`` against ``reference`` (both [n] or both
    [n, N]; the predicted class as ``verify.predicted``) on class indices ``labels`` [n]."""
    agree = float(np.mean(predicted(probs) == predicted(reference)))
    drop = accuracy(reference, labels) - accuracy(probs, labels)
    return {"agreement": agree, "accuracy_drop": drop,
            "max_abs_diff": float(np.max(np.abs(probs.astype(np.float64) - reference), initial=0.0))}


def int8_passes(int8: dict, dynamic: dict | None = None) -> bool:
    """Full-integer is good enough on its own (agreement, accuracy) and, when the dynamic-range
    figures are given, not far behind them: at most INT8_MAX_DISAGREEMENT_RATIO times its label
    flips (a floor of 0.1% keeps a near-perfect dynamic-range model from vetoing everything)."""
    if int8["agreement"] < INT8_MIN_AGREEMENT or int8["accuracy_drop"] > INT8_MAX_ACCURACY_DROP:
        return False
    if dynamic is None:
        return True
    return 1 - int8["agreement"] <= max(INT8_MAX_DISAGREEMENT_RATIO * (1 - dynamic["agreement"]), 0.001)


def choose_shipped_int8(out: str, ids: np.ndarray, labels: np.ndarray,
                        held_out: bool = True) -> dict:
    """Keep the full-integer ``model.int8.tflite`` or replace it by ``model.dynamic.tflite``.

    ``ids`` [n, maxlen] int32 and ``labels`` [n]: validation reviews. ``held_out=False`` (the
    model was fitted on them too, as the linear model's final fit is) makes their figures
    optimistic -- measured: 99.99% agreement there, 98.89% on test -- so dynamic-range ships.
    Writes and returns the record.
    """
    reference = score_file(os.path.join(out, "model.tflite"), ids)
    figures = {mode: int8_figures(score_file(os.path.join(out, name), ids), reference, labels)
               for mode, name in (("int8", "model.int8.tflite"), ("dynamic", "model.dynamic.tflite"))}
    mode = "int8" if held_out and int8_passes(figures["int8"], figures["dynamic"]) else "dynamic"
    if mode == "dynamic":
        tmp = os.path.join(out, ".model.int8.tflite.tmp")
        shutil.copyfile(os.path.join(out, "model.dynamic.tflite"), tmp)
        os.replace(tmp, os.path.join(out, "model.int8.tflite"))
    record = {"file": "model.int8.tflite", "mode": mode, "what": MODE_NAMES[mode],
              "rule": f"full-integer if, against model.tflite on held-out validation reviews, its agreement >= "
                      f"{INT8_MIN_AGREEMENT:.1%}, accuracy drop <= {INT8_MAX_ACCURACY_DROP * 100:.1f} pt and label "
                      f"flips <= {INT8_MAX_DISAGREEMENT_RATIO:g}x dynamic-range's",
              "validation": {"n": int(len(ids)), "held_out": held_out, **figures}}
    if not held_out:
        record["rule"] = "dynamic-range: the model was fitted on the validation reviews too, no held-out figures"
    atomic_write_text(os.path.join(out, QUANTIZATION_FILE), json.dumps(record, indent=2) + "\n")
    f = figures["int8"]
    logger.info(f"model.int8.tflite: {MODE_NAMES[mode]} (full-integer on {len(ids)} validation reviews: "
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
