"""What every benchmark shares: the repository root, the IMDB data (its option and its path)
and the test reviews they time."""
from __future__ import annotations

import argparse
import os

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the repository
DEFAULT_DATA = os.path.normpath(os.path.join(ROOT, "..", "shared", "data", "aclImdb_v1_labeled.tar.gz"))


def add_data_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", default=None,
                        help=f"IMDB archive or folder (default: $IMDB_DATA, else {os.path.relpath(DEFAULT_DATA)})")


def data_path(given: str | None) -> str:
    """The IMDB data every benchmark reads: ``--data``, else ``$IMDB_DATA``, else the shared copy."""
    return given or os.environ.get("IMDB_DATA") or DEFAULT_DATA


def load_reviews(data: str, limit: int | None) -> tuple[list[str], np.ndarray]:
    """The IMDB test texts and labels; with ``limit``, an evenly spaced subset (neg and pos)."""
    from trainer.data import DataError, load_imdb

    from .engines import BenchmarkError

    try:
        imdb = load_imdb(data)
    except DataError as e:
        raise BenchmarkError(str(e)) from None
    texts, labels = imdb.test_texts, imdb.test_labels
    if limit is not None and limit < len(texts):
        keep = np.linspace(0, len(texts) - 1, limit).round().astype(int)
        texts, labels = [texts[i] for i in keep], labels[keep]
    return texts, labels
