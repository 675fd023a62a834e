"""Train the tutorial model on raw IMDB reviews and write the training outputs.

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
from dataclasses import asdict, dataclass

import numpy as np

from runtime.files import atomic_write_text
from runtime.tokenizer import DEFAULT_MAXLEN, DEFAULT_NUM_WORDS, Tokenizer

from runtime.bundle import MANIFEST
from runtime.errors import UserError

from .data import load_imdb, recorded_source, resolve_source

logger = logging.getLogger(__name__)


TOKENIZER_FILE = "tokenizer.json"  # beside vocab.txt: maxlen and num_words the model was trained with


class TrainError(UserError):
    """A training parameter or output location is invalid."""


ARCHS = ("tutorial", "bigram", "linear")  # built by trainer/model.py; named here so that checking
# an option never imports Keras (seconds, before the user hears of a typo)


@dataclass
class TrainConfig:
    data: str | None = None  # folder, .tar.gz or URL; None -> $IMDB_DATA, then the official URL
    out: str = "artifacts"
    epochs: int = 40
    batch_size: int = 512
    num_words: int = DEFAULT_NUM_WORDS
    maxlen: int = DEFAULT_MAXLEN
    validation_size: int = 10_000  # the first reviews of the shuffled training set
    early_stopping: int = 0  # patience in epochs; 0 = off (the tutorial runs all 40 epochs)
    seed: int = 42
    force: bool = False  # train into a directory holding a verified bundle (its manifest goes)
    arch: str = "tutorial"  # one of ARCHS
    mask_padding: bool = False  # tutorial arch: average over real tokens only (bigram/linear always mask)
    buckets: int = 0  # hashed-bigram table rows; 0 = the architecture's default

    def validate(self) -> None:
        for name in ("epochs", "batch_size", "maxlen", "validation_size"):
            if getattr(self, name) < 1:
                raise TrainError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.num_words <= 4:
            raise TrainError(f"--num-words must be greater than 4, got {self.num_words}")
        if self.early_stopping < 0:
            raise TrainError(f"--early-stopping must be 0 (off) or a patience >= 1, got {self.early_stopping}")
        self._validate_arch()

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


def split_train_validation(texts: list[str], labels: np.ndarray, size: int, seed: int):
    """Shuffle with ``seed``; the first ``size`` reviews validate, the rest train."""
    if size >= len(texts):
        raise TrainError(f"--validation-size {size} leaves no training reviews (have {len(texts)})")
    order = np.random.default_rng(seed).permutation(len(texts))
    texts = [texts[i] for i in order]
    labels = labels[order]
    return (texts[size:], labels[size:]), (texts[:size], labels[:size])


def train(config: TrainConfig) -> dict:
    """Run the whole training stage; returns the metrics written to ``metrics.json``."""
    config.validate()
    refuse_verified_bundle(config.out, config.force)
    source = resolve_source(config.data)
    t0 = time.perf_counter()
    imdb = load_imdb(source)
    os.makedirs(config.out, exist_ok=True)  # only once there is something to write into it
    logger.info(f"loaded {len(imdb.train_texts)} training and {len(imdb.test_texts)} test reviews "
                f"in {time.perf_counter() - t0:.1f} s")

    t0 = time.perf_counter()
    # The vocabulary comes from the whole training split, never from the test split.
    tokenizer = Tokenizer.build(imdb.train_texts, config.num_words, config.maxlen)
    (x_train, y_train), (x_val, y_val) = split_train_validation(
        imdb.train_texts, imdb.train_labels, config.validation_size, config.seed)
    x_train, x_val = tokenizer.encode_batch(x_train), tokenizer.encode_batch(x_val)  # [n, maxlen] int32
    x_test = tokenizer.encode_batch(imdb.test_texts)
    logger.info(f"built a {tokenizer.num_words}-word vocabulary and tokenized "
                        f"{len(imdb.train_texts) + len(imdb.test_texts)} reviews in {time.perf_counter() - t0:.1f} s")

    if config.arch == "linear":
        model, history, seconds, extra = fit_linear(config, x_train, y_train, x_val, y_val)
    else:
        (model, history, seconds), extra = fit(config, x_train, y_train, x_val, y_val), {}
    test_loss, test_accuracy = model.evaluate(x_test, imdb.test_labels, batch_size=config.batch_size, verbose=0)
    metrics = {**summarize(config, history, seconds, test_loss, test_accuracy), **extra}
    metrics["data"] = recorded_source(source)  # export's calibration and verify default to it
    write_outputs(config.out, model, tokenizer, history, metrics)
    logger.info(f"test accuracy {test_accuracy:.4f} (loss {test_loss:.4f}); outputs in {config.out}")
    return metrics


def fit(config: TrainConfig, x_train, y_train, x_val, y_val):
    import keras
    import tensorflow as tf

    from .model import build_model

    keras.utils.set_random_seed(config.seed)
    tf.config.experimental.enable_op_determinism()  # same weights on every run on one machine
    model = build_model(config.num_words, config.maxlen, arch=config.arch, mask_padding=config.mask_padding,
                        buckets=config.buckets or None)
    callbacks = [epoch_logger(keras, config.epochs)]
    if config.early_stopping:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=config.early_stopping, restore_best_weights=True))
    t0 = time.perf_counter()
    history = model.fit(x_train, y_train, epochs=config.epochs, batch_size=config.batch_size,
                        validation_data=(x_val, y_val), callbacks=callbacks, verbose=0)
    return model, {k: [float(v) for v in vs] for k, vs in history.history.items()}, time.perf_counter() - t0


def fit_linear(config: TrainConfig, x_train, y_train, x_val, y_val):
    """The linear architecture: one deterministic NB-LR fit (no epochs, no seed)."""
    from runtime.errors import require

    from .linear import count_features, fit_nblr, log_loss_and_accuracy, refit_nblr, set_linear_weights
    from .model import DEFAULT_BUCKETS, build_model

    buckets = config.buckets or DEFAULT_BUCKETS["linear"]
    t0 = time.perf_counter()
    x_tr, x_va = (count_features(x, config.num_words, buckets) for x in (x_train, x_val))
    weights, bias, c, scores = fit_nblr(x_tr, y_train, x_va, y_val)
    model = build_model(config.num_words, config.maxlen, arch="linear", buckets=buckets)
    set_linear_weights(model, weights, bias)
    seconds = time.perf_counter() - t0
    # One "epoch" of history, so metrics.json, report.md and the plots keep their shape.
    history = {}  # of the model fitted on the training part only: honest validation figures
    for prefix, x, y in (("", x_train, y_train), ("val_", x_val, y_val)):
        loss, acc = log_loss_and_accuracy(model.predict(x, batch_size=config.batch_size, verbose=0)[:, 0], y)
        history[prefix + "loss"], history[prefix + "accuracy"] = [loss], [acc]
    t0 = time.perf_counter()
    stacked = require("scipy.sparse", "train").vstack([x_tr, x_va])
    set_linear_weights(model, *refit_nblr(stacked, np.concatenate([y_train, y_val]), c))
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
