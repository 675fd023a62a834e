"""In-graph n-gram ids and masked pooling against NumPy references."""
import numpy as np
import pytest

from trainer.ngrams import (INT32_MAX, SMALL_COUNT, MaskedPooling, NgramIds, check_bigram_range,
                            first_prime_at_least, ngram_ids_numpy)


def _random_ids(rng, n, maxlen, num_words):
    """Rows like the tokenizer's: <START>, words, a <PAD> tail of random length (some rows full)."""
    ids = rng.integers(1, num_words, size=(n, maxlen)).astype(np.int32)
    ids[:, 0] = 1
    for row, length in zip(ids, rng.integers(1, maxlen + 1, size=n)):
        row[length:] = 0
    return ids


def test_first_prime_at_least():
    assert [first_prime_at_least(n) for n in (0, 2, 4, 40, 10_000)] == [2, 2, 5, 41, 10_007]


@pytest.mark.parametrize("num_words,buckets", [(10_000, 2**20), (10_000, 2**18), (50, 7), (40, 1024)])
def test_layer_equals_numpy_reference(num_words, buckets):
    ids = _random_ids(np.random.default_rng(num_words + buckets), 64, 96, num_words)
    got = np.asarray(NgramIds(num_words, buckets)(ids))
    want = ngram_ids_numpy(ids, num_words, buckets)
    assert got.dtype == np.int32 and got.shape == (64, 2 * 96 - 1)
    np.testing.assert_array_equal(got, want)
    assert got.min() >= 0 and got.max() < num_words + buckets


def test_reference_by_hand():
    ids = np.array([[1, 5, 7, 0, 0]], np.int32)
    p = first_prime_at_least(10)  # 11
    bigrams = [10 + (1 * p + 5) % 16, 10 + (5 * p + 7) % 16, 0, 0]  # pairs touching <PAD> -> 0
    np.testing.assert_array_equal(ngram_ids_numpy(ids, 10, 16), [[1, 5, 7, 0, 0] + bigrams])


def test_pairs_touching_pad_are_dropped():
    ids = np.array([[1, 0, 9, 9, 0]], np.int32)  # a <PAD> inside the row too
    out = np.asarray(NgramIds(10, 64)(ids))[0]
    assert list(out[:5]) == [1, 0, 9, 9, 0]
    bigrams = out[5:]
    assert bigrams[0] == 0 and bigrams[1] == 0 and bigrams[2] >= 10 and bigrams[3] == 0


def test_int32_bounds_at_the_largest_vocabulary():
    num_words = 46_000  # (num_words - 1) * P + num_words - 1 is just below 2^31
    p = first_prime_at_least(num_words)
    assert (num_words - 1) * p + num_words - 1 <= INT32_MAX
    ids = np.full((2, 8), num_words - 1, np.int32)
    ids[1, 4:] = 0
    np.testing.assert_array_equal(np.asarray(NgramIds(num_words, 2**20)(ids)), ngram_ids_numpy(ids, num_words, 2**20))


@pytest.mark.parametrize("num_words,buckets", [(47_000, 2**20), (10_000, INT32_MAX), (0, 16), (10, 0)])
def test_overflowing_or_empty_ranges_are_refused(num_words, buckets):
    with pytest.raises(ValueError):
        check_bigram_range(num_words, buckets)
    with pytest.raises(ValueError):
        NgramIds(num_words, buckets)


def test_masked_pooling_ignores_pad_and_an_empty_row_gives_zero():
    rng = np.random.default_rng(0)
    ids = _random_ids(rng, 16, 12, 30)
    ids[3] = 0  # only <PAD>: no division by zero
    vectors = rng.normal(size=(16, 12, 4)).astype(np.float32)
    mask = (ids != 0)[..., None]
    total = (vectors * mask).sum(axis=1)
    np.testing.assert_allclose(np.asarray(MaskedPooling("sum")([vectors, ids])), total, rtol=1e-5, atol=1e-6)
    mean = np.asarray(MaskedPooling("mean")([vectors, ids]))
    np.testing.assert_allclose(mean, total / np.maximum(mask.sum(axis=1), 1), rtol=1e-5, atol=1e-6)
    assert np.all(mean[3] == 0)


def test_masked_mean_is_the_plain_float_mean_bit_for_bit():
    """Its two denominator ranges (kept for 8-bit models) change no float32 result: every count
    from 0 (only <PAD>) to 511, both sides of SMALL_COUNT, divides exactly as total / max(count, 1)."""
    rng = np.random.default_rng(0)
    t = 511
    ids = np.zeros((t + 1, t), np.int32)
    for count, row in enumerate(ids):
        row[:count] = rng.integers(1, 50, size=count)
    vectors = rng.normal(size=(t + 1, t, 3)).astype(np.float32)
    total = np.asarray(MaskedPooling("sum")([vectors, ids]))  # the same sum the mean divides
    plain = total / np.maximum((ids != 0).sum(axis=1, keepdims=True), 1).astype(np.float32)
    got = np.asarray(MaskedPooling("mean")([vectors, ids]))
    assert got.dtype == np.float32 and SMALL_COUNT < t
    np.testing.assert_array_equal(got, plain)


def test_models_round_trip_through_safe_mode(tmp_path):
    import keras

    from trainer.model import build_model

    ids = _random_ids(np.random.default_rng(1), 4, 32, 50)
    for arch in ("tutorial", "bigram", "linear"):
        model = build_model(50, 32, arch=arch, mask_padding=True, buckets=64)
        path = str(tmp_path / f"{arch}.keras")
        model.save(path)
        loaded = keras.models.load_model(path, safe_mode=True, compile=False)
        np.testing.assert_array_equal(loaded.predict(ids, verbose=0), model.predict(ids, verbose=0))
        assert loaded.name == model.name


def test_linear_model_computes_the_nblr_logit():
    from trainer.linear import set_linear_weights
    from trainer.model import build_model

    num_words, buckets, maxlen = 50, 64, 16
    rng = np.random.default_rng(3)
    weights = (rng.standard_t(2, size=num_words + buckets) * 0.05).astype(np.float32)  # heavy tails, like NB-LR
    weights[0] = 0.0
    model = build_model(num_words, maxlen, arch="linear", buckets=buckets)
    set_linear_weights(model, weights, bias=0.25)
    ids = _random_ids(rng, 8, maxlen, num_words)
    grams = ngram_ids_numpy(ids, num_words, buckets)
    logit = weights[grams].sum(axis=1) + 0.25  # weights[0] = 0 stands for the masked <PAD>
    np.testing.assert_allclose(model.predict(ids, verbose=0)[:, 0], 1 / (1 + np.exp(-logit)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kw", [dict(arch="trigram"), dict(arch="linear", buckets=-1),
                                dict(arch="bigram", num_words=50_000)])
def test_train_config_refuses_bad_architecture_options(kw):
    from trainer.train import TrainConfig, TrainError

    with pytest.raises(TrainError):
        TrainConfig(**kw).validate()
    TrainConfig(arch="tutorial", num_words=50_000).validate()  # no bigram ids: any vocabulary size
