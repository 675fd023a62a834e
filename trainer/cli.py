"""The training options shared by ``python -m trainer``, ``python -m trainer.seeds`` and
``python -m export all|train``, and the config they make."""
from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import fields

from .data import add_data_argument
from .train import ARCHS, DEFAULT_VALIDATION_SIZE, TrainConfig


def _test_size(value: str) -> float | int:
    """A fraction (``0.2``) or a count of rows (``500``); TrainConfig.validate checks the range."""
    try:
        return float(value) if any(c in value for c in ".eE") else int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a fraction or a count: {value!r}") from None


def _labels(value: str) -> tuple[str, ...]:
    return tuple(value.split(","))


def add_table_arguments(parser: argparse.ArgumentParser) -> None:
    """How the trainer reads a labelled table (not the IMDB forms) and where its test rows come from."""
    d = TrainConfig()
    parser.add_argument("--test-data", metavar="PATH", default=None,
                        help="a separate labelled test set (a table or label folders, as --data); default: "
                             "hold out --test-size rows of --data (IMDB has its own test split)")
    parser.add_argument("--test-size", type=_test_size, default=d.test_size, metavar="SIZE",
                        help="without --test-data: the rows held out to test, a fraction or a count, "
                             f"stratified by label and seeded (default {d.test_size})")
    parser.add_argument("--text-column", default=d.text_column, metavar="NAME",
                        help="the column (JSONL: field) of the text in a table (default %(default)s)")
    parser.add_argument("--label-column", default=d.label_column, metavar="NAME",
                        help="the column (JSONL: field) of the label in a table (default %(default)s)")
    parser.add_argument("--labels", type=_labels, default=None, metavar="A,B,...",
                        help="the labels in output order (labels.txt, the manifest); every label of the "
                             "data, no other (default: sorted as text)")


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """The training options shared by ``python -m trainer`` and ``python -m export all|train``."""
    d = TrainConfig()
    add_data_argument(parser)
    add_table_arguments(parser)
    parser.add_argument("--epochs", type=int, default=d.epochs, help=f"training epochs (default {d.epochs})")
    parser.add_argument("--batch-size", type=int, default=d.batch_size, help=f"batch size (default {d.batch_size})")
    parser.add_argument("--num-words", type=int, default=d.num_words,
                        help=f"vocabulary size including the 4 special tokens (default {d.num_words})")
    parser.add_argument("--maxlen", type=int, default=d.maxlen, help=f"ids per review (default {d.maxlen})")
    parser.add_argument("--validation-size", type=int, default=d.validation_size,
                        help=f"shuffled training reviews held out for validation (default {DEFAULT_VALIDATION_SIZE} "
                             "for IMDB; for other data a tenth of the training rows, at most "
                             f"{DEFAULT_VALIDATION_SIZE}, stratified by label)")
    parser.add_argument("--early-stopping", type=int, default=d.early_stopping, metavar="PATIENCE",
                        help="stop after PATIENCE epochs without a better validation loss and restore "
                             "the best weights (default 0: off, run every epoch as the tutorial does)")
    parser.add_argument("--seed", type=int, default=d.seed, help=f"random seed (default {d.seed})")
    parser.add_argument("--arch", choices=ARCHS, default=d.arch,
                        help="tutorial: the TensorFlow tutorial model (default); bigram: + in-graph hashed "
                             "bigrams, masked mean, dense head; linear: NB-weighted logistic regression over "
                             "the same uni+bigram ids (one deterministic fit, no epochs or seed)")
    parser.add_argument("--mask-padding", action="store_true",
                        help="tutorial arch: average over the real tokens only, not the <PAD> tail "
                             "(recipe: --mask-padding --maxlen 512 --early-stopping 3)")
    parser.add_argument("--buckets", type=int, default=d.buckets,
                        help="hashed-bigram table rows for bigram/linear (default 0: 2^18 bigram, 2^20 linear)")
    parser.add_argument("--force", action="store_true",
                        help="train even into a directory that holds a verified bundle (manifest.json); "
                             "its manifest is removed, as it would no longer match")


def add_verbose_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--verbose", action="store_true",
                        help="also show TensorFlow's, LiteRT's and the converters' own log lines")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig) if hasattr(args, f.name)})


class _Stderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a line is logged (a test may have replaced it)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):  # StreamHandler.__init__ sets it; the property above wins
        pass


def log_to_stderr() -> None:
    """The CLIs' progress lines: the ``trainer`` and ``export`` loggers' INFO lines, as they are,
    on stderr (stdout carries data only). Libraries log there too but print nothing unless asked."""
    for name in ("trainer", "export"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.INFO)
        logger.propagate = False  # TensorFlow's absl may give the root logger a handler of its own
        if not any(isinstance(h, _Stderr) for h in logger.handlers):
            handler = _Stderr()
            handler.setFormatter(logging.Formatter("%(message)s"))
            logger.addHandler(handler)
