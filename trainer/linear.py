"""Fit the ``linear`` architecture: NB-weighted logistic regression (Wang & Manning's NB-LR)
over exactly the uni+bigram ids the graph computes, written into ``Embedding(V + B, 1)``.

The graph sums one weight per id occurrence, so the features here are the same counts:
``x[j]`` = occurrences of id ``j`` among the ``2 maxlen - 1`` ids of a row (<PAD> excluded).
NB log-count ratios ``r`` (from binarized features, smoothed by ``alpha``) scale the features,
a logistic regression is fitted for each C of a small grid, the C with the best validation
accuracy wins, and the deployed weight of id ``j`` is ``coef[j] * r[j]`` (bias = intercept).
One deterministic fit (liblinear, fixed random_state): no seeds.

N >= 3 classes: one-vs-rest, one NB-LR per class (its own ratios ``r_k`` of class k against the
rest, one C for all, chosen by the arg-max's validation accuracy) in ``Embedding(V + B, N)``; the
graph's softmax over the N logits picks the class whose model scores highest, as one-vs-rest does.
"""
from __future__ import annotations

import logging
import time

import numpy as np

from runtime.errors import require

from .ngrams import PAD, ngram_ids_numpy

logger = logging.getLogger(__name__)

C_GRID = (0.03, 0.1, 0.3, 1.0)
NB_ALPHA = 1.0


def count_features(ids: np.ndarray, num_words: int, buckets: int):
    """[n, maxlen] word ids -> scipy CSR [n, num_words + buckets] float32 id counts."""
    sparse = require("scipy.sparse", "train")
    grams = ngram_ids_numpy(ids, num_words, buckets)  # [n, 2 maxlen - 1]
    rows = np.repeat(np.arange(len(grams)), grams.shape[1])
    cols = grams.reshape(-1)
    keep = cols != PAD
    x = sparse.csr_matrix((np.ones(int(keep.sum()), np.float32), (rows[keep], cols[keep])),
                          shape=(len(grams), num_words + buckets))
    x.sum_duplicates()
    return x


def nb_ratios(x, y: np.ndarray, alpha: float = NB_ALPHA) -> np.ndarray:
    """Log-count ratios r [V + B] float64 from binarized features."""
    xb = (x > 0).astype(np.float64)
    p = alpha + np.asarray(xb[y == 1].sum(axis=0)).ravel()
    q = alpha + np.asarray(xb[y != 1].sum(axis=0)).ravel()
    return np.log(p / p.sum()) - np.log(q / q.sum())


def _logistic(c: float):
    linear_model = require("sklearn.linear_model", "train")
    return linear_model.LogisticRegression(C=c, solver="liblinear", max_iter=1000, random_state=0)


def _targets(y: np.ndarray, num_classes: int) -> list[np.ndarray]:
    """The binary problems: two classes one (class 1 or not), N classes one per class (k or not)."""
    return [(y == k).astype(np.int32) for k in ([1] if num_classes == 2 else range(num_classes))]


def _predict(clfs: list, xrs: list) -> np.ndarray:
    """Class indices: the one model's prediction, or the arg-max of the one-vs-rest scores."""
    if len(clfs) == 1:
        return clfs[0].predict(xrs[0])
    return np.argmax(np.stack([clf.decision_function(xr) for clf, xr in zip(clfs, xrs)], axis=1), axis=1)


def fit_nblr(x_train, y_train, x_val, y_val, num_classes: int = 2, c_grid=C_GRID):
    """-> (weights [V + B] (two classes) or [V + B, N] float32, bias (float or [N]), chosen C,
    {C: validation accuracy})."""
    targets = _targets(y_train, num_classes)
    ratios = [nb_ratios(x_train, t) for t in targets]
    xr_train = [x_train.multiply(r).tocsr() for r in ratios]
    xr_val = [x_val.multiply(r).tocsr() for r in ratios]
    best, scores = None, {}
    for c in c_grid:
        t0 = time.perf_counter()
        clfs = [_logistic(c).fit(xr, t) for xr, t in zip(xr_train, targets)]
        scores[c] = float(np.mean(_predict(clfs, xr_val) == y_val))
        logger.info(f"NB-LR C={c:g}: validation accuracy {scores[c]:.4f} ({time.perf_counter() - t0:.1f} s)")
        if best is None or scores[c] > scores[best[0]]:
            best = (c, clfs)
    c, clfs = best
    return (*_deployed(clfs, ratios), c, scores)


def refit_nblr(x, y: np.ndarray, c: float, num_classes: int = 2):
    """NB-LR with a fixed C on all of ``x``: -> (weights, bias) as ``fit_nblr`` gives them."""
    targets = _targets(y, num_classes)
    ratios = [nb_ratios(x, t) for t in targets]
    return _deployed([_logistic(c).fit(x.multiply(r).tocsr(), t) for r, t in zip(ratios, targets)], ratios)


def _deployed(clfs: list, ratios: list) -> tuple:
    """(weights [V + B] float32, bias float) for one model; ([V + B, N], [N]) for N."""
    weights = np.stack([(clf.coef_[0] * r).astype(np.float32) for clf, r in zip(clfs, ratios)], axis=1)
    weights[PAD] = 0.0  # never read (masked), kept 0 so the table holds no stray value
    bias = np.array([float(clf.intercept_[0]) for clf in clfs])
    return (weights[:, 0], float(bias[0])) if len(clfs) == 1 else (weights, bias)


def set_linear_weights(model, weights: np.ndarray, bias) -> None:
    """Write NB-LR weights into a ``build_linear`` model (kernel the identity: the Dense adds only the bias)."""
    table = weights.reshape(len(weights), -1)  # [V + B, K]
    root = np.sign(table) * np.sqrt(np.abs(table))  # the graph squares it back (SignedSquare)
    model.get_layer("weights").set_weights([root.astype(np.float32)])
    width = table.shape[1]
    model.get_layer("probability").set_weights([np.eye(width, dtype=np.float32),
                                                np.asarray(bias, np.float32).reshape(width)])


def log_loss_and_accuracy(probs: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Log loss and accuracy of [n] P(class 1) (two classes) or [n, N] probabilities."""
    if probs.ndim == 2:
        p = np.clip(probs[np.arange(len(y)), y].astype(np.float64), 1e-7, 1.0)
        return float(-np.mean(np.log(p))), float(np.mean(np.argmax(probs, axis=1) == y))
    p = np.clip(probs.astype(np.float64), 1e-7, 1 - 1e-7)
    loss = float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    return loss, float(np.mean((probs >= 0.5) == (y == 1)))
