"""Fixtures shared by the export tests: one tiny trained tutorial model per session."""
from __future__ import annotations

import numpy as np
import pytest

TINY_NUM_WORDS = 50
MAXLEN = 256


def random_ids(n: int, seed: int, num_words: int = TINY_NUM_WORDS) -> np.ndarray:
    """[n, 256] int32 rows shaped like real ones: <START>, 10..256 word ids, then <PAD>."""
    rng = np.random.default_rng(seed)
    ids = np.zeros((n, MAXLEN), dtype=np.int32)
    for row, length in zip(ids, rng.integers(10, MAXLEN + 1, size=n)):
        row[0] = 1
        row[1:length] = rng.integers(4, num_words, size=length - 1)
    return ids


@pytest.fixture(scope="session")
def tiny_model():
    """The tutorial architecture with num_words=50, fit for a few steps on random ids.

    The label is "more ids in the upper half of the vocabulary", so the model learns
    something and its probabilities spread away from 0.5 (quantization errors show).
    """
    import keras

    from trainer.model import build_model

    keras.utils.set_random_seed(0)
    model = build_model(num_words=TINY_NUM_WORDS, maxlen=MAXLEN)
    ids = random_ids(256, seed=0)
    words = ids >= 4
    labels = ((ids >= TINY_NUM_WORDS // 2 + 2) & words).sum(1) > words.sum(1) / 2
    model.fit(ids, labels.astype(np.float32), epochs=8, batch_size=32, verbose=0)
    return model
