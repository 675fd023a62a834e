"""Fit the ``linear`` architecture: NB-weighted logistic regression (Wang & Manning's NB-LR)
over exactly the uni+bigram ids the graph computes, written into ``Embedding(V + B, 1)``.

The graph sums one weight per id occurrence, so the features here are the same counts:
``x[j]`` = occurrences of id ``j`` among the ``2 maxlen - 1`` ids of a row (<PAD> excluded).
NB log-count ratios ``r`` (from binarized features, smoothed by ``alpha``) scale the features,
a logistic regression is fitted for each C of a small grid, the C with the best validation
accuracy wins, and the deployed weight of id ``j`` is ``coef[j] * r[j]`` (bias = intercept).
One deterministic fit (liblinear, fixed random_state): no seeds.
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


def fit_nblr(x_train, y_train, x_val, y_val, c_grid=C_GRID):
    """-> (weights [V + B] float32, bias float, chosen C, {C: validation accuracy})."""
    r = nb_ratios(x_train, y_train)
    xr_train, xr_val = x_train.multiply(r).tocsr(), x_val.multiply(r).tocsr()
    best, scores = None, {}
    for c in c_grid:
        t0 = time.perf_counter()
        clf = _logistic(c)
        clf.fit(xr_train, y_train)
        scores[c] = float(np.mean(clf.predict(xr_val) == y_val))
        logger.info(f"NB-LR C={c:g}: validation accuracy {scores[c]:.4f} ({time.perf_counter() - t0:.1f} s)")
        if best is None or scores[c] > scores[best[0]]:
            best = (c, clf)
    c, clf = best
    return _deployed(clf, r), float(clf.intercept_[0]), c, scores


def refit_nblr(x, y: np.ndarray, c: float) -> tuple[np.ndarray, float]:
    """NB-LR with a fixed C on all of ``x``: -> (weights [V + B] float32, bias)."""
    r = nb_ratios(x, y)
    clf = _logistic(c).fit(x.multiply(r).tocsr(), y)
    return _deployed(clf, r), float(clf.intercept_[0])


def _deployed(clf, r: np.ndarray) -> np.ndarray:
    weights = (clf.coef_[0] * r).astype(np.float32)
    weights[PAD] = 0.0  # never read (masked), kept 0 so the table holds no stray value
    return weights


def set_linear_weights(model, weights: np.ndarray, bias: float) -> None:
    """Write NB-LR weights into a ``build_linear`` model (kernel 1: the Dense adds only the bias)."""
    root = np.sign(weights) * np.sqrt(np.abs(weights))  # the graph squares it back (SignedSquare)
    model.get_layer("weights").set_weights([root.astype(np.float32).reshape(-1, 1)])
    model.get_layer("probability").set_weights([np.ones((1, 1), np.float32), np.array([bias], np.float32)])


def log_loss_and_accuracy(probs: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    p = np.clip(probs.astype(np.float64), 1e-7, 1 - 1e-7)
    loss = float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    return loss, float(np.mean((probs >= 0.5) == (y == 1)))
