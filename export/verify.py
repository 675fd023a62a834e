"""Parity of every exported format against Keras, Optimum-style: score, compare with a stated
tolerance, collect every failure and report them all at once."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from runtime.model import predicted as runtime_predicted

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
ONE_TOKEN = "good"  # any word: an out-of-vocabulary one is still one <UNKNOWN> token


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


def probabilities(out: np.ndarray) -> np.ndarray:
    """A model's output as verify compares it: ``[n, 1]`` (a sigmoid) -> ``[n]`` P(labels[1]);
    ``[n, N]`` (a softmax) as is."""
    return out[:, 0] if out.ndim == 2 and out.shape[1] == 1 else out


def predicted(probs: np.ndarray) -> np.ndarray:
    """The predicted class index of each row: ``[n]`` -> 1 from THRESHOLD on; ``[n, N]`` -> the
    arg-max (ties: the lowest index) -- the runtime's rule, on the runtime's ``[n, N]`` scores."""
    if probs.ndim == 1:
        return runtime_predicted(np.stack([1 - probs, probs], axis=1), THRESHOLD)
    return runtime_predicted(probs, None)


def accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(predicted(probs) == labels))


def compare(name: str, probs: np.ndarray, reference: np.ndarray, labels: np.ndarray | None,
            quantized: bool, reference_accuracy: float | None = None,
            max_abs_diff: float = FLOAT_MAX_ABS_DIFF) -> Result:
    """Figures of ``probs`` against ``reference`` (both ``[n]`` or both ``[n, N]``, see
    ``probabilities``) and the checks that apply to this kind of format; |dp| over every output."""
    if probs.shape != reference.shape:
        return Result(name, {"n": int(len(probs)), "agreement": None, "max_abs_diff": None, "mean_abs_diff": None},
                      [f"scored shape {list(probs.shape)}, the reference {list(reference.shape)}"])
    diff = np.abs(probs.astype(np.float64) - reference.astype(np.float64))
    figures = {
        "n": int(len(probs)),
        "agreement": float(np.mean(predicted(probs) == predicted(reference))),
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
        figures["near_ties"] = near_ties(probs, reference, max_abs_diff)
        if figures["agreement"] < 1.0 - figures["near_ties"] / max(len(probs), 1):
            result.failures.append(f"label agreement {figures['agreement']:.4%} < 100%")
    return result


def near_ties(probs: np.ndarray, reference: np.ndarray, tolerance: float) -> int:
    """Rows labelled otherwise than the reference only because the reference's scores of the two
    labels are within ``2 * tolerance`` (two classes: p within ``tolerance`` of 0.5): a float format
    within the stated |dp| tolerance may give either label, so such a row is no disagreement. Seen
    on four star-rating classes: one row of 25,000 whose top two Keras scores differ by ~5e-6."""
    full = (lambda p: np.stack([1 - p, p], axis=1)) if probs.ndim == 1 else (lambda p: p)
    ref, got, want = full(reference.astype(np.float64)), predicted(probs), predicted(reference)
    rows = np.flatnonzero(got != want)
    return int(np.sum(ref[rows, want[rows]] - ref[rows, got[rows]] <= 2 * tolerance))


def score_file(path: str, ids: np.ndarray, threads: int | None = None) -> np.ndarray:
    """Score ``ids`` ([n, maxlen] int32) with the format's own interpreter -> float32 [n] (two
    classes: P(labels[1])) or [n, N]."""
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
    builtin = {k: figures.get(k) for k in ("agreement", "max_abs_diff", "accuracy")}  # None: not comparable
    return {"kernels": kernels, "builtin_kernels": builtin}


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


def edge_rows(tok) -> tuple[list[str], np.ndarray]:
    """The reviews a model must score although no test review looks like them: (their names,
    their ids [5, maxlen] int32 from ``tok``). No word at all gives a row of only <START>."""
    texts = {"empty": "", "whitespace only": " \t\n ", "'<br />' only": "<br />", "one token": ONE_TOKEN,
             f"maxlen+1 = {tok.maxlen + 1} tokens": " ".join([ONE_TOKEN] * (tok.maxlen + 1))}
    return list(texts), tok.encode_batch(list(texts.values()))


def edge_backends(path: str) -> list[tuple[str, object]]:
    """Every way the runtime opens ``path``: its default, and LiteRT's built-in kernels for .tflite."""
    from runtime.model import open_backend

    backends = [("default kernels", open_backend(path, "auto"))]
    if path.endswith(".tflite"):
        backends.append(("built-in kernels", open_backend(path, "tflite", deterministic=True)))
    return backends


def check_edge_rows(result: Result, path: str, names: list[str], ids: np.ndarray, backends=None,
                    width: int = 1) -> None:
    """Score each edge row alone with every backend of ``path`` (``backends(path)``, default
    ``edge_backends``); a row that raises or gives not ``width`` (the model's outputs) probabilities
    in [0, 1] is a failure, each one named. ``figures["edge_rows"]``: backend -> row -> score
    (``width`` 1) or its list of ``width`` scores."""
    result.figures["edge_rows"] = {}
    for kind, backend in (backends or edge_backends)(path):
        scores = result.figures["edge_rows"].setdefault(kind, {})
        for name, row in zip(names, ids):
            p, problem = _score_one(backend, row, width)
            if problem:
                result.failures.append(f"the edge row {name} ({kind}) {problem}")
            else:
                scores[name] = p


def _score_one(backend, row: np.ndarray, width: int) -> tuple[float | list[float] | None, str | None]:
    """(the probability of one row [maxlen], or its ``width`` probabilities, None) or (None, what
    went wrong)."""
    try:
        p = np.asarray(backend.run(row[None, :]), dtype=np.float64).reshape(-1)
    except Exception as e:  # whatever the interpreter raises, the row cannot be scored
        lines = str(e).strip().splitlines()
        return None, f"cannot be scored: {type(e).__name__}: {lines[0] if lines else ''}"
    if p.shape != (width,) or not all(0.0 <= x <= 1.0 for x in p):
        wanted = "one probability" if width == 1 else f"{width} probabilities"
        return None, f"scored {p.tolist()}, not {wanted} in [0, 1]"
    return float(p[0]) if width == 1 else p.tolist(), None


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
