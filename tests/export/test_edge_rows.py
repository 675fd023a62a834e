"""Rows no test review looks like -- empty, whitespace only, '<br />' only, one token, maxlen + 1
tokens -- must be scored by every exported format, and verification must say so when one is not."""
import numpy as np
import pytest

from export import verify as V
from runtime.tokenizer import Tokenizer

MAXLEN = 256  # the default: the count of a bigram model reaches 2 * 256 - 1 = 511 positions
WORDS = [f"w{i}" for i in range(46)]  # with the 4 special tokens: a 50-word vocabulary


@pytest.fixture(scope="module")
def tok():
    return Tokenizer.build([" ".join(WORDS)], num_words=50, maxlen=MAXLEN)


@pytest.fixture(scope="module")
def bigram_int8(tiny_ids, tmp_path_factory):
    """(a small untrained bigram model, its full-integer int8 TFLite file) calibrated on rows that
    include a full one: the count's 8-bit range is [0, 511] as with real reviews at maxlen 256."""
    import keras

    from export.tflite_export import to_tflite
    from trainer.model import build_model

    keras.utils.set_random_seed(0)
    model = build_model(num_words=50, maxlen=MAXLEN, arch="bigram", buckets=512)
    calibration, _ = tiny_ids(32, seed=0)
    calibration[0, 1:] = 30  # one review of maxlen words: 256 unigrams + 255 bigrams
    path = tmp_path_factory.mktemp("bigram") / "model.int8.tflite"
    path.write_bytes(to_tflite(model, "int8", calibration_ids=calibration))
    return model, str(path)


def test_edge_rows_are_the_documented_cases(tok):
    names, ids = V.edge_rows(tok)
    assert len(names) == 5 and ids.shape == (5, MAXLEN) and ids.dtype == np.int32
    assert [int((row != 0).sum()) for row in ids] == [1, 1, 1, 2, MAXLEN]  # <START> (+ words)
    assert names[-1] == f"maxlen+1 = {MAXLEN + 1} tokens"


def test_full_integer_bigram_scores_an_empty_review(bigram_int8, tok):
    model, path = bigram_int8
    empty = tok.encode_batch([""])  # [1, 256]: <START> alone, a count of 1
    for deterministic in (False, True):  # XNNPACK and LiteRT's built-in kernels
        from runtime.model import open_backend

        p = open_backend(path, "tflite", deterministic=deterministic).run(empty)
        keras_p = model.predict(empty, verbose=0)[:, 0]
        assert p.shape == (1,) and 0.0 <= p[0] <= 1.0
        assert abs(float(p[0]) - float(keras_p[0])) < 0.1  # an 8-bit model of the same function


def test_verification_passes_the_full_integer_bigram_on_every_edge_row(bigram_int8, tok):
    _, path = bigram_int8
    result = V.Result("model.int8.tflite", {})
    V.check_edge_rows(result, path, *V.edge_rows(tok))
    assert result.passed, result.failures
    assert set(result.figures["edge_rows"]) == {"default kernels", "built-in kernels"}
    assert all(len(scores) == 5 for scores in result.figures["edge_rows"].values())


class _Refuses:
    """A scorer that raises on a row of only <START> (like the int8 DIV) and scores the rest."""

    def run(self, ids):
        if int((ids != 0).sum()) == 1:
            raise RuntimeError("tflite/kernels/div.cc:262 data[i] != zero_point was not true.\nNode 24 (DIV)")
        return np.full(len(ids), 0.5, np.float32)


class _NotAProbability:
    def run(self, ids):
        return np.full(len(ids), np.nan, np.float32)


def test_verification_names_every_edge_row_a_format_cannot_score(tok):
    result = V.Result("model.int8.tflite", {"agreement": 1.0})
    V.check_edge_rows(result, "model.int8.tflite", *V.edge_rows(tok),
                      backends=lambda path: [("default kernels", _Refuses()), ("built-in kernels", _NotAProbability())])
    assert not result.passed
    refused = [f for f in result.failures if "(default kernels)" in f]
    assert refused == [f"the edge row {name} (default kernels) cannot be scored: RuntimeError: "
                       "tflite/kernels/div.cc:262 data[i] != zero_point was not true."
                       for name in ("empty", "whitespace only", "'<br />' only")]
    assert sum("(built-in kernels) scored [nan], not one probability" in f for f in result.failures) == 5
    assert result.figures["edge_rows"]["default kernels"] == {"one token": 0.5, f"maxlen+1 = {MAXLEN + 1} tokens": 0.5}
