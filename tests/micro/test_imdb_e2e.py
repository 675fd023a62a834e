"""The C tokenizer on all 50,000 labelled IMDB reviews, as the raw bytes of the archive."""
from __future__ import annotations

import os
import re
import tarfile

import numpy as np
import pytest

from runtime.tokenizer import Tokenizer
from tests.conftest import SHARED_ARCHIVE
from tests.micro.conftest import python_ids

pytestmark = pytest.mark.e2e
REVIEW = re.compile(r"aclImdb/(train|test)/(pos|neg)/\d+_\d+\.txt")


def raw_reviews(path: str) -> list[bytes]:
    with tarfile.open(path, "r:gz") as tar:
        return [tar.extractfile(m).read() for m in tar if m.isfile() and REVIEW.fullmatch(m.name)]


def test_all_imdb_reviews_give_the_python_ids(driver, vocab):
    assert os.path.isfile(SHARED_ARCHIVE), f"the shared IMDB archive is missing: {SHARED_ARCHIVE}"
    reviews = raw_reviews(SHARED_ARCHIVE)
    assert len(reviews) == 50_000
    tok = Tokenizer(vocab, 256)
    expected = python_ids(tok, reviews)
    assert sum(b"<br />" in r for r in reviews) > 20_000 and (expected[:, 255] != 0).sum() > 10_000
    np.testing.assert_array_equal(driver.ids(reviews, 256), expected)
