"""Fixtures shared by the export tests: one tiny trained tutorial model per session."""
from __future__ import annotations

import numpy as np
import pytest

TINY_NUM_WORDS = 50
MAXLEN = 256
_FIRST_WORD = 4  # ids 0..3 are <PAD> <START> <UNKNOWN> <UNUSED>
_SPLIT = (_FIRST_WORD + TINY_NUM_WORDS) // 2  # "positive" words are ids >= 27


def _tiny_ids(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` id rows shaped like real ones (<START>, 9..255 words, <PAD> tail) and labels.

    Each row draws its words from the upper half of the vocabulary with its own
    probability q ~ U(0, 1); the label is q > 0.5. Returns ([n, 256] int32, [n] float32).
    """
    rng = np.random.default_rng(seed)
    q = rng.uniform(size=n)
    ids = np.zeros((n, MAXLEN), dtype=np.int32)
    for row, q_row, length in zip(ids, q, rng.integers(10, MAXLEN + 1, size=n)):
        upper = rng.uniform(size=length - 1) < q_row
        row[0] = 1
        row[1:length] = np.where(upper, rng.integers(_SPLIT, TINY_NUM_WORDS, size=length - 1),
                                 rng.integers(_FIRST_WORD, _SPLIT, size=length - 1))
    return ids, (q > 0.5).astype(np.float32)


@pytest.fixture(scope="session")
def tiny_ids():
    """``tiny_ids(n, seed) -> (ids [n, 256] int32, labels [n] float32)``, rows like the
    training rows of ``tiny_model`` (a function: test files cannot import a conftest)."""
    return _tiny_ids


@pytest.fixture(scope="session")
def tiny_model():
    """trainer.model.build_model(num_words=50, maxlen=256), fit 10 epochs (80 steps) on
    ``_tiny_ids(256, seed=0)``: probabilities spread over (0, 1), so quantization errors show."""
    import keras

    from trainer.model import build_model

    keras.utils.set_random_seed(0)
    model = build_model(num_words=TINY_NUM_WORDS, maxlen=MAXLEN)
    # A larger learning rate than the tutorial's so that 80 steps are enough to learn.
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy")
    ids, labels = _tiny_ids(256, seed=0)
    model.fit(ids, labels, epochs=10, batch_size=32, verbose=0)
    return model
