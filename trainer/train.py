"""Train a model on labelled texts (IMDB's reviews, or the user's own: ``trainer.dataset``) and
write the training outputs.

Stages hand over files: ``train(config)`` writes ``model.keras``, ``vocab.txt``,
``tokenizer.json`` (maxlen, num_words), ``history.json``, ``metrics.json``, ``loss.png`` and ``accuracy.png``
into ``config.out``.
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from dataclasses import asdict, dataclass, replace

import numpy as np

from runtime.files import atomic_write_text
from runtime.tokenizer import DEFAULT_MAXLEN, DEFAULT_NUM_WORDS, Tokenizer

from runtime.bundle import MANIFEST
from runtime.errors import UserError

from .data import recorded_source, resolve_source
from .dataset import Dataset, Request, load_dataset, stratified_split

logger = logging.getLogger(__name__)


TOKENIZER_FILE = "tokenizer.json"  # beside vocab.txt: maxlen and num_words the model was trained with


class TrainError(UserError):
    """A training parameter or output location is invalid."""


ARCHS = ("tutorial", "bigram", "linear")  # built by trainer/model.py; named here so that checking
# an option never imports Keras (seconds, before the user hears of a typo)


@dataclass
class TrainConfig:
    data: str | None = None  # a table, label folders, or IMDB; None -> $IMDB_DATA, then the official URL
    test_data: str | None = None  # a table or label folders; None: hold out test_size of data (not IMDB)
    test_size: float | int = 0.2  # a fraction, or a count of rows
    text_column: str = "text"
    label_column: str = "label"
    labels: tuple[str, ...] | None = None  # the class order; None: sorted
    out: str = "artifacts"
    epochs: int = 40
    batch_size: int = 512
    num_words: int = DEFAULT_NUM_WORDS
    maxlen: int = DEFAULT_MAXLEN
    validation_size: int | None = None  # None: DEFAULT_VALIDATION_SIZE for IMDB (see validation_size)
    early_stopping: int = 0  # patience in epochs; 0 = off (the tutorial runs all 40 epochs)
    seed: int = 42
    force: bool = False  # train into a directory holding a verified bundle (its manifest goes)
    arch: str = "tutorial"  # one of ARCHS
    mask_padding: bool = False  # tutorial arch: average over real tokens only (bigram/linear always mask)
    buckets: int = 0  # hashed-bigram table rows; 0 = the architecture's default

    def validate(self) -> None:
        for name in ("epochs", "batch_size", "maxlen", "validation_size"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise TrainError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.num_words <= 4:
            raise TrainError(f"--num-words must be greater than 4, got {self.num_words}")
        if self.early_stopping < 0:
            raise TrainError(f"--early-stopping must be 0 (off) or a patience >= 1, got {self.early_stopping}")
        self._validate_data()
        self._validate_arch()

    def _validate_data(self) -> None:
        if not (isinstance(self.test_size, int) and self.test_size >= 1 or
                isinstance(self.test_size, float) and 0 < self.test_size < 1):
            raise TrainError(f"--test-size must be a fraction between 0 and 1 or a count of at least 1, "
                             f"got {self.test_size}")
        if self.text_column == self.label_column:
            raise TrainError(f"--text-column and --label-column both name {self.text_column!r}")
        labels = list(self.labels or ())
        if "" in labels:
            raise TrainError("--labels names an empty label")
        if twice := next((label for label in labels if labels.count(label) > 1), None):
            raise TrainError(f"--labels names {twice!r} twice")

    def _validate_arch(self) -> None:
        if self.arch not in ARCHS:
            raise TrainError(f"--arch must be one of {', '.join(ARCHS)}, got {self.arch!r}")
        if self.buckets < 0:
            raise TrainError(f"--buckets must be 0 (the default) or positive, got {self.buckets}")
        if self.arch != "tutorial":
            from .ngrams import check_bigram_range  # imports Keras: only for the n-gram architectures

            try:
                check_bigram_range(self.num_words, self.buckets or 1)
            except ValueError as e:
                raise TrainError(f"--num-words/--buckets: {e}") from None


def refuse_verified_bundle(out: str, force: bool) -> None:
    """A new model.keras would no longer match the bundle's manifest.json: refuse, or with
    ``force`` remove the manifest (``export verify`` writes a new one)."""
    path = os.path.join(out, MANIFEST)
    if not os.path.lexists(path):
        return
    if not force:
        raise TrainError(f"{out} holds a verified bundle ({MANIFEST}); training there would replace its "
                         "model and break it: choose another --out, or pass --force")
    os.unlink(path)
    logger.info(f"removed {path}: it would no longer match the new model")


DEFAULT_VALIDATION_SIZE = 10_000  # IMDB's validation reviews, and the most taken from other data


def validation_size(data: Dataset, asked: int | None) -> int:
    """--validation-size, else 10,000 IMDB reviews, else a tenth of the training rows (at most 10,000)."""
    if asked is not None:
        return asked
    if data.imdb:
        return DEFAULT_VALIDATION_SIZE
    return max(1, min(DEFAULT_VALIDATION_SIZE, int(len(data.train_texts) * 0.1 + 0.5)))


def split_validation(data: Dataset, size: int, seed: int):
    """((train texts, labels), (validation texts, labels)): IMDB as ``split_train_validation``,
    other data stratified (every class on both sides), both seeded."""
    if data.imdb:
        return split_train_validation(data.train_texts, data.train_labels, size, seed)
    _check_validation_size(size, len(data.train_texts))
    kept, held = stratified_split(data.train_labels, size, seed)
    return (([data.train_texts[i] for i in kept], data.train_labels[kept]),
            ([data.train_texts[i] for i in held], data.train_labels[held]))


def _check_validation_size(size: int, n: int) -> None:
    if size >= n:
        raise TrainError(f"--validation-size {size} leaves no training reviews (have {n})")


def training_request(config: TrainConfig, source: str) -> Request:
    """What ``load_dataset`` reads for ``config``, from the resolved training ``source``."""
    return Request(source, config.test_data, config.text_column, config.label_column,
                   tuple(config.labels) if config.labels else None, config.test_size, config.seed)


def split_train_validation(texts: list[str], labels: np.ndarray, size: int, seed: int):
    """Shuffle with ``seed``; the first ``size`` reviews validate, the rest train."""
    _check_validation_size(size, len(texts))
    order = np.random.default_rng(seed).permutation(len(texts))
    texts = [texts[i] for i in order]
    labels = labels[order]
    return (texts[size:], labels[size:]), (texts[:size], labels[:size])


def train(config: TrainConfig) -> dict:
    """Run the whole training stage; returns the metrics written to ``metrics.json``."""
    from export.verify import probabilities

    config.validate()
    refuse_verified_bundle(config.out, config.force)
    source = resolve_source(config.data)
    t0 = time.perf_counter()
    data = load_dataset(training_request(config, source))  # every row checked: before any folder or Keras
    config = replace(config, validation_size=validation_size(data, config.validation_size))  # recorded
    (x_train, y_train), (x_val, y_val) = split_validation(data, config.validation_size, config.seed)
    os.makedirs(config.out, exist_ok=True)  # only once there is something to write into it
    logger.info(f"loaded {len(data.train_texts)} training and {len(data.test_texts)} test reviews "
                f"({len(data.labels)} classes) in {time.perf_counter() - t0:.1f} s")

    t0 = time.perf_counter()
    # The vocabulary comes from the whole training split, never from the test split.
    tokenizer = Tokenizer.build(data.train_texts, config.num_words, config.maxlen)
    x_train, x_val = tokenizer.encode_batch(x_train), tokenizer.encode_batch(x_val)  # [n, maxlen] int32
    x_test = tokenizer.encode_batch(data.test_texts)
    logger.info(f"built a {tokenizer.num_words}-word vocabulary and tokenized "
                        f"{len(data.train_texts) + len(data.test_texts)} reviews in {time.perf_counter() - t0:.1f} s")

    fitter = fit_linear if config.arch == "linear" else fit
    model, history, seconds, extra = fitter(config, len(data.labels), x_train, y_train, x_val, y_val)
    test_loss, test_accuracy = model.evaluate(x_test, data.test_labels, batch_size=config.batch_size, verbose=0)
    probs = probabilities(model.predict(x_test, batch_size=config.batch_size, verbose=0))
    metrics = {**summarize(config, history, seconds, test_loss, test_accuracy), **extra,
               **class_figures(data.labels, data.test_labels, probs)}
    metrics["data"] = recorded_source(source)  # export's calibration and verify default to it
    if config.test_data is not None:
        metrics["test_data"] = recorded_source(config.test_data)
    write_outputs(config.out, model, tokenizer, history, metrics)
    logger.info(f"test accuracy {test_accuracy:.4f} (loss {test_loss:.4f}); outputs in {config.out}")
    return metrics


def fit(config: TrainConfig, num_classes: int, x_train, y_train, x_val, y_val):
    import keras
    import tensorflow as tf

    from .model import build_model

    keras.utils.set_random_seed(config.seed)
    tf.config.experimental.enable_op_determinism()  # same weights on every run on one machine
    model = build_model(config.num_words, config.maxlen, arch=config.arch, mask_padding=config.mask_padding,
                        buckets=config.buckets or None, num_classes=num_classes)
    callbacks = [epoch_logger(keras, config.epochs)]
    if config.early_stopping:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=config.early_stopping, restore_best_weights=True))
    t0 = time.perf_counter()
    history = model.fit(x_train, y_train, epochs=config.epochs, batch_size=config.batch_size,
                        validation_data=(x_val, y_val), callbacks=callbacks, verbose=0)
    return model, {k: [float(v) for v in vs] for k, vs in history.history.items()}, time.perf_counter() - t0, {}


def fit_linear(config: TrainConfig, num_classes: int, x_train, y_train, x_val, y_val):
    """The linear architecture: one deterministic NB-LR fit (no epochs, no seed)."""
    from export.verify import probabilities
    from runtime.errors import require

    from .linear import count_features, fit_nblr, log_loss_and_accuracy, refit_nblr, set_linear_weights
    from .model import DEFAULT_BUCKETS, build_model

    buckets = config.buckets or DEFAULT_BUCKETS["linear"]
    t0 = time.perf_counter()
    x_tr, x_va = (count_features(x, config.num_words, buckets) for x in (x_train, x_val))
    weights, bias, c, scores = fit_nblr(x_tr, y_train, x_va, y_val, num_classes)
    model = build_model(config.num_words, config.maxlen, arch="linear", buckets=buckets, num_classes=num_classes)
    set_linear_weights(model, weights, bias)
    seconds = time.perf_counter() - t0
    # One "epoch" of history, so metrics.json, report.md and the plots keep their shape.
    history = {}  # of the model fitted on the training part only: honest validation figures
    for prefix, x, y in (("", x_train, y_train), ("val_", x_val, y_val)):
        loss, acc = log_loss_and_accuracy(probabilities(model.predict(x, batch_size=config.batch_size, verbose=0)), y)
        history[prefix + "loss"], history[prefix + "accuracy"] = [loss], [acc]
    t0 = time.perf_counter()
    stacked = require("scipy.sparse", "train").vstack([x_tr, x_va])
    set_linear_weights(model, *refit_nblr(stacked, np.concatenate([y_train, y_val]), c, num_classes))
    seconds += time.perf_counter() - t0
    logger.info(f"NB-LR C={c:g} refitted on all {len(y_train) + len(y_val)} training reviews")
    return model, history, seconds, {"fit_on_validation": True, "linear": {
        "C": c, "validation_accuracy_by_C": {str(k): v for k, v in scores.items()}, "buckets": buckets,
        "nb_alpha": 1.0, "final_fit": "train + validation, with the C chosen on validation"}}


def epoch_logger(keras, epochs: int):
    """One line per epoch on stderr (Keras' own progress bars are too noisy for logs)."""

    class EpochLogger(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            parts = [f"{k} {logs[k]:.4f}" for k in ("loss", "accuracy", "val_loss", "val_accuracy") if k in logs]
            logger.info(f"epoch {epoch + 1:>3}/{epochs}  " + "  ".join(parts) +
                                f"  ({time.perf_counter() - self.t0:.1f} s)")

    return EpochLogger()


def class_figures(labels: list[str], truth: np.ndarray, probs: np.ndarray) -> dict:
    """metrics.json's ``labels``, ``per_class`` {label: precision, recall, f1, support} and
    ``confusion`` (rows the true class, columns the predicted one) on the test split."""
    from export.verify import predicted

    n = len(labels)
    confusion = np.zeros((n, n), dtype=np.int64)
    np.add.at(confusion, (truth, predicted(probs)), 1)
    per_class = {}
    for i, label in enumerate(labels):
        hits, called, support = int(confusion[i, i]), int(confusion[:, i].sum()), int(confusion[i].sum())
        precision, recall = hits / called if called else 0.0, hits / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[label] = {"precision": precision, "recall": recall, "f1": f1, "support": support}
    return {"labels": list(labels), "per_class": per_class, "confusion": confusion.tolist()}


def summarize(config: TrainConfig, history: dict, seconds: float, test_loss: float, test_accuracy: float) -> dict:
    val_loss = history["val_loss"]
    best = int(np.argmin(val_loss))
    return {
        "test_loss": float(test_loss),
        "test_accuracy": float(test_accuracy),
        "best_epoch": best + 1,
        "best_val_loss": float(val_loss[best]),
        "best_val_accuracy": float(history["val_accuracy"][best]),
        "epochs_run": len(val_loss),
        "train_seconds": round(seconds, 2),
        "config": asdict(config),
    }


def write_outputs(out: str, model, tokenizer: Tokenizer, history: dict, metrics: dict) -> None:
    from .plots import plot_history

    # Keras insists on a ".keras" suffix, so save into a temp dir beside the target, then rename.
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        tmp_model = os.path.join(tmp, "model.keras")
        model.save(tmp_model)
        os.replace(tmp_model, os.path.join(out, "model.keras"))
    tokenizer.save(os.path.join(out, "vocab.txt"))
    # The tokenizer parameters travel with the model: export rebuilds the tokenizer from this file.
    atomic_write_text(os.path.join(out, TOKENIZER_FILE),
                      json.dumps({"vocab_file": "vocab.txt", "maxlen": tokenizer.maxlen,
                                  "num_words": tokenizer.num_words}, indent=2) + "\n")
    atomic_write_text(os.path.join(out, "history.json"), json.dumps(history, indent=2) + "\n")
    atomic_write_text(os.path.join(out, "metrics.json"), json.dumps(metrics, indent=2) + "\n")
    plot_history(history, out)
