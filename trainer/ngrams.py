"""In-graph n-gram ids and masked pooling: the layers that let every architecture keep the
int32 word-id input ``[batch, maxlen]`` (so the tokenizer contract, MediaPipe's RegexTokenizer
metadata and the runtime stay unchanged).

Bigram ids are ``num_words + ((a * P + b) mod B)`` for consecutive word ids ``a, b`` with
``P`` the first prime >= num_words: ``a * P + b`` is unique per pair and below 2^31, so Keras,
TFLite and ONNX all compute the same int32 ids. Pairs touching ``<PAD>`` (id 0) become 0,
which the pooling layers mask out like padding.

Constants are Python ints used inside ``call`` (a tensor captured from outside the graph
function became a second ONNX input). Pooling sums first and divides by the count computed
in the same graph: a count looked up in a small table is quantized to 8 bits by onnxruntime.
"""
from __future__ import annotations

import keras
import numpy as np
from keras import ops

INT32_MAX = 2**31 - 1
PAD = 0
SMALL_COUNT = 128  # masked_mean: counts up to here divide in their own (finer) 8-bit range


def first_prime_at_least(n: int) -> int:
    n = max(n, 2)
    while any(n % d == 0 for d in range(2, int(n**0.5) + 1)):
        n += 1
    return n


def check_bigram_range(num_words: int, buckets: int) -> None:
    """Every intermediate value of the id formula must fit in int32."""
    if num_words < 1 or buckets < 1:
        raise ValueError(f"num_words and buckets must be >= 1, got {num_words} and {buckets}")
    p = first_prime_at_least(num_words)
    largest_key = (num_words - 1) * p + (num_words - 1)  # a, b < num_words
    if largest_key > INT32_MAX or num_words + buckets - 1 > INT32_MAX:
        raise ValueError(f"num_words {num_words} with {buckets} buckets overflows int32 bigram ids")


def ngram_ids_numpy(ids: np.ndarray, num_words: int, buckets: int) -> np.ndarray:
    """Reference for :class:`NgramIds` in int64 NumPy: [n, L] -> [n, 2L - 1] int32."""
    ids = np.asarray(ids, dtype=np.int64)
    a, b = ids[:, :-1], ids[:, 1:]
    hashed = num_words + (a * first_prime_at_least(num_words) + b) % buckets
    bigrams = np.where((a != PAD) & (b != PAD), hashed, PAD)
    return np.concatenate([ids, bigrams], axis=1).astype(np.int32)


@keras.saving.register_keras_serializable(package="reviewkit")
class NgramIds(keras.layers.Layer):
    """Word ids [batch, L] int32 -> unigram + hashed-bigram ids [batch, 2L - 1] int32 (< num_words + buckets)."""

    def __init__(self, num_words: int, buckets: int, **kwargs):
        super().__init__(**kwargs)
        check_bigram_range(num_words, buckets)
        self.num_words, self.buckets = int(num_words), int(buckets)
        self.prime = first_prime_at_least(self.num_words)

    def call(self, ids):
        ids = ops.cast(ids, "int32")
        a, b = ids[:, :-1], ids[:, 1:]  # [batch, L - 1] each
        hashed = self.num_words + ops.mod(a * self.prime + b, self.buckets)
        keep = ops.logical_and(ops.not_equal(a, PAD), ops.not_equal(b, PAD))
        bigrams = ops.where(keep, hashed, ops.zeros_like(hashed))
        return ops.concatenate([ids, bigrams], axis=1)

    def compute_output_shape(self, input_shape):
        length = input_shape[1]
        return (input_shape[0], None if length is None else 2 * length - 1)

    def get_config(self):
        return {**super().get_config(), "num_words": self.num_words, "buckets": self.buckets}


def masked_mean(total, ids):
    """``total`` [batch, d] / the number of non-<PAD> ``ids`` [batch, T], floored at 1.

    The count is exact in int32 and divides in one of two ranges, [1, SMALL_COUNT] or
    [SMALL_COUNT, T]: the float result is ``total / max(count, 1)`` bit for bit, and in a
    full-integer model each denominator is a tensor of its own whose 8-bit scale (its range /
    255) keeps the smallest value it can hold apart from zero. One count tensor over [0, T]
    had a scale of ~2 at T = 511, so a count of 1 (an empty review: only <START>) was stored
    as the zero point and LiteRT's int8 DIV refused to run.
    """
    count = ops.sum(ops.cast(ops.not_equal(ids, PAD), "int32"), axis=1, keepdims=True)  # [batch, 1]
    small = ops.cast(ops.clip(count, 1, SMALL_COUNT), total.dtype)  # 8-bit step <= 0.5
    large = ops.cast(ops.maximum(count, SMALL_COUNT), total.dtype)  # 8-bit step T / 255 < 2 SMALL_COUNT
    return ops.where(count <= SMALL_COUNT, total / small, total / large)


@keras.saving.register_keras_serializable(package="reviewkit")
class MaskedPooling(keras.layers.Layer):
    """(vectors [batch, T, d], ids [batch, T]) -> [batch, d]: sum over non-<PAD> positions,
    divided by their count (``mean``) or not (``sum``). A row of only <PAD> gives 0."""

    def __init__(self, mode: str = "mean", **kwargs):
        super().__init__(**kwargs)
        if mode not in ("mean", "sum"):
            raise ValueError(f"mode must be 'mean' or 'sum', got {mode!r}")
        self.mode = mode

    def call(self, inputs):
        vectors, ids = inputs
        mask = ops.cast(ops.not_equal(ids, PAD), vectors.dtype)  # [batch, T]
        total = ops.sum(vectors * ops.expand_dims(mask, -1), axis=1)  # [batch, d]
        if self.mode == "sum":
            return total
        return masked_mean(total, ids)

    def compute_output_shape(self, input_shapes):
        vectors_shape = input_shapes[0]
        return (vectors_shape[0], vectors_shape[2])

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


@keras.saving.register_keras_serializable(package="reviewkit")
class SignedSquare(keras.layers.Layer):
    """x -> x * |x|: a table stores sign(w) sqrt(|w|) and the graph gets w back.

    Why: 8-bit quantization gives a table one scale for all its rows. The linear model's weights
    are mostly tiny (std 0.03) with a few large ones (max 3.6), so a linear int8 grid (step
    3.6 / 127 = 0.028) rounds most of them to 0 or 1 step; on the square-root scale the step
    near a typical weight is ~10x finer. The float model is unchanged (up to float rounding).
    """

    def call(self, x):
        return x * ops.abs(x)
