"""Parity of every exported format against Keras, Optimum-style: score, compare with a stated
tolerance, collect every failure and report them all at once."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Tolerances are part of the contract; the manifest records them next to the figures.
FLOAT_MAX_ABS_DIFF = 1e-5
QUANT_MIN_AGREEMENT = 0.99
QUANT_MAX_ACCURACY_DROP = 0.005  # 0.5 points
MEDIAPIPE_MAX_ABS_DIFF = 1e-5
BATCH_MAX_ABS_DIFF = 1e-6  # a review scored alone vs inside a batch: the runtime promises no dependence
BATCH_CHECK_ROWS = 64
THRESHOLD = 0.5
SCORE_BATCH = 1024  # rows per interpreter call: bounds memory of the resized TFLite tensors

QUANTIZED = ("model.int8.onnx", "model.dynamic.tflite", "model.int8.tflite")


def tolerances() -> dict:
    """What the checks allow, recorded in the manifest next to the figures."""
    return {"float_max_abs_diff": FLOAT_MAX_ABS_DIFF, "quantized_min_agreement": QUANT_MIN_AGREEMENT,
            "quantized_max_accuracy_drop": QUANT_MAX_ACCURACY_DROP, "mediapipe_max_abs_diff": MEDIAPIPE_MAX_ABS_DIFF,
            "batch_max_abs_diff": BATCH_MAX_ABS_DIFF}


@dataclass
class Result:
    name: str  # file name, or "mediapipe:<file>"
    figures: dict
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


def accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean((probs >= THRESHOLD) == (labels == 1)))


def compare(name: str, probs: np.ndarray, reference: np.ndarray, labels: np.ndarray | None,
            quantized: bool, reference_accuracy: float | None = None,
            max_abs_diff: float = FLOAT_MAX_ABS_DIFF) -> Result:
    """Figures of ``probs`` against ``reference`` and the checks that apply to this kind of format."""
    diff = np.abs(probs.astype(np.float64) - reference.astype(np.float64))
    figures = {
        "n": int(len(probs)),
        "agreement": float(np.mean((probs >= THRESHOLD) == (reference >= THRESHOLD))),
        "max_abs_diff": float(diff.max()) if len(diff) else 0.0,
        "mean_abs_diff": float(diff.mean()) if len(diff) else 0.0,
    }
    if labels is not None:
        figures["accuracy"] = accuracy(probs, labels)
    result = Result(name, figures)
    if quantized:
        if figures["agreement"] < QUANT_MIN_AGREEMENT:
            result.failures.append(f"label agreement {figures['agreement']:.4%} < {QUANT_MIN_AGREEMENT:.0%}")
        if reference_accuracy is not None and "accuracy" in figures:
            drop = reference_accuracy - figures["accuracy"]
            figures["accuracy_drop"] = drop
            if drop > QUANT_MAX_ACCURACY_DROP:
                result.failures.append(f"accuracy {figures['accuracy']:.4f} is {drop * 100:.2f} points below "
                                       f"Keras (allowed {QUANT_MAX_ACCURACY_DROP * 100:.1f})")
    else:
        if figures["max_abs_diff"] > max_abs_diff:
            result.failures.append(f"max |dp| {figures['max_abs_diff']:.3g} > {max_abs_diff:g}")
        if figures["agreement"] < 1.0:
            result.failures.append(f"label agreement {figures['agreement']:.4%} < 100%")
    return result


def score_file(path: str, ids: np.ndarray, threads: int | None = None) -> np.ndarray:
    """Score ``ids`` ([n, maxlen] int32) with the format's own interpreter -> [n] float32."""
    from runtime.model import open_backend

    backend = open_backend(path, "auto", threads)
    return np.concatenate([backend.run(ids[i:i + SCORE_BATCH]) for i in range(0, len(ids), SCORE_BATCH)]
                          or [np.zeros(0, np.float32)])


def kernel_figures(path: str, ids: np.ndarray, reference: np.ndarray, labels: np.ndarray) -> dict:
    """Which LiteRT kernels produced a .tflite file's figures here; if XNNPACK (CPU-dependent),
    also the figures of the built-in kernels, which ``deterministic=True`` gives on every CPU."""
    from runtime.model import open_backend

    kernels = open_backend(path, "tflite").kernels
    if kernels == "builtin":
        return {"kernels": kernels}
    fixed = open_backend(path, "tflite", deterministic=True)
    probs = np.concatenate([fixed.run(ids[i:i + SCORE_BATCH]) for i in range(0, len(ids), SCORE_BATCH)]
                           or [np.zeros(0, np.float32)])
    figures = compare("builtin", probs, reference, labels, quantized=True).figures
    return {"kernels": kernels, "builtin_kernels": {k: figures[k] for k in ("agreement", "max_abs_diff", "accuracy")}}


def check_batch_independence(result: Result, path: str, ids: np.ndarray, probs: np.ndarray) -> None:
    """Score the first rows one at a time; they must match their scores inside a batch."""
    from runtime.model import open_backend

    backend = open_backend(path, "auto")
    rows = min(BATCH_CHECK_ROWS, len(ids))
    alone = np.concatenate([backend.run(ids[i:i + 1]) for i in range(rows)] or [np.zeros(0, np.float32)])
    diff = float(np.abs(alone.astype(np.float64) - probs[:rows]).max()) if rows else 0.0
    result.figures["batch_max_abs_diff"] = diff
    if diff > BATCH_MAX_ABS_DIFF:
        result.failures.append(f"a review scored alone differs from the same review in a batch by {diff:.3g} "
                               f"> {BATCH_MAX_ABS_DIFF:g}")


def check_vocab_fits(results: list[Result], out: str, num_words: int) -> None:
    """Every ``.onnx`` model's embedding table (the 2-D initializer a Gather reads) has a row for
    each of the ``num_words`` vocabulary ids: more words would feed ids past its end. Checked
    here, once, where ``onnx`` is at hand; the manifest's sha256 then vouches for the pair."""
    import os

    import onnx

    for result in results:
        if not result.name.endswith(".onnx"):
            continue
        graph = onnx.load(os.path.join(out, result.name), load_external_data=False).graph
        shapes = {t.name: list(t.dims) for t in graph.initializer}
        rows = [shapes[n.input[0]][0] for n in graph.node
                if n.op_type == "Gather" and n.input and len(shapes.get(n.input[0], ())) == 2]
        if rows and min(rows) < num_words:
            result.failures.append(f"the embedding table has {min(rows)} rows, fewer than the {num_words} "
                                   f"words of vocab.txt")
