"""The model architectures (no I/O here). Every one takes int32 word ids [batch, maxlen] and
ends in one head (``head``): for two classes one sigmoid [batch, 1], the probability of the
second label; for N >= 3 classes a softmax [batch, N], one probability per label in order. The
tokenizer, the runtime and every exporter are shared by all of them.

- ``tutorial`` (default): the TensorFlow tutorial model exactly; ``mask_padding`` swaps its
  plain average for an average over the real tokens only (same weights, same size).
- ``bigram``: unigram + in-graph hashed-bigram ids -> one embedding table -> masked mean ->
  small dense head.
- ``linear``: the same uni+bigram ids -> Embedding(V + B, 1) -> masked sum -> sigmoid; its
  weights are fitted by ``trainer.linear`` (NB-weighted logistic regression), not by SGD.
"""
from __future__ import annotations

import keras
from keras import layers

from .ngrams import MaskedPooling, NgramIds, SignedSquare
from .train import ARCHS
DEFAULT_BUCKETS = {"bigram": 2**18, "linear": 2**20}  # hashed-bigram table rows
BIGRAM_EMBEDDING_DIM = 16
# Keras model names: export reads the architecture back from the saved model's name.
MODEL_NAMES = {"tutorial": "imdb_basic_text_classification", "bigram": "imdb_bigram", "linear": "imdb_linear"}


def arch_of(model: keras.Model) -> str:
    """The architecture of a model built here (an unknown name is treated as the tutorial)."""
    return {v: k for k, v in MODEL_NAMES.items()}.get(model.name, "tutorial")


def build_model(num_words: int = 10_000, maxlen: int = 256, embedding_dim: int = 16,
                arch: str = "tutorial", mask_padding: bool = False, buckets: int | None = None,
                num_classes: int = 2) -> keras.Model:
    if arch not in ARCHS:
        raise ValueError(f"unknown architecture {arch!r}; valid: {', '.join(ARCHS)}")
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes}")
    if arch == "tutorial":
        return build_tutorial(num_words, maxlen, embedding_dim, mask_padding, num_classes)
    buckets = buckets or DEFAULT_BUCKETS[arch]
    if arch == "bigram":
        return build_bigram(num_words, maxlen, buckets, num_classes)
    return build_linear(num_words, maxlen, buckets, num_classes)


def outputs(num_classes: int) -> int:
    """The width of the head: 1 (a sigmoid) for two classes, else one softmax unit per class."""
    return 1 if num_classes == 2 else num_classes


def head(x, num_classes: int):
    """[batch, d] -> [batch, 1] sigmoid (two classes) or [batch, N] softmax, named "probability"."""
    activation = "sigmoid" if num_classes == 2 else "softmax"
    return layers.Dense(outputs(num_classes), activation=activation, name="probability")(x)


def _compile(model: keras.Model, optimizer: str = "adam") -> keras.Model:
    two = model.output_shape[-1] == 1
    loss = "binary_crossentropy" if two else "sparse_categorical_crossentropy"
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
    return model


def build_tutorial(num_words: int, maxlen: int, embedding_dim: int = 16, mask_padding: bool = False,
                   num_classes: int = 2) -> keras.Model:
    """Embedding -> mean over positions -> Dense(16, relu) -> the head (Dense(1, sigmoid) for two).

    Without ``mask_padding`` the mean includes the ``<PAD>`` positions, as in the tutorial.
    """
    ids = keras.Input(shape=(maxlen,), dtype="int32", name="input_ids")  # [batch, maxlen] int32
    x = layers.Embedding(num_words, embedding_dim, name="embedding")(ids)  # [batch, maxlen, 16]
    if mask_padding:
        x = MaskedPooling("mean", name="pooling")([x, ids])  # [batch, 16], real tokens only
    else:
        x = layers.GlobalAveragePooling1D(name="pooling")(x)  # [batch, 16]
    x = layers.Dense(16, activation="relu", name="hidden")(x)  # [batch, 16]
    prob = head(x, num_classes)  # [batch, 1] or [batch, N]
    return _compile(keras.Model(ids, prob, name=MODEL_NAMES["tutorial"]))


def build_bigram(num_words: int, maxlen: int, buckets: int, num_classes: int = 2) -> keras.Model:
    ids = keras.Input(shape=(maxlen,), dtype="int32", name="input_ids")  # [batch, maxlen] int32
    grams = NgramIds(num_words, buckets, name="ngram_ids")(ids)  # [batch, 2 maxlen - 1] int32
    x = layers.Embedding(num_words + buckets, BIGRAM_EMBEDDING_DIM, name="embedding")(grams)
    x = MaskedPooling("mean", name="pooling")([x, grams])  # [batch, 16]
    x = layers.Dense(16, activation="relu", name="hidden")(x)
    prob = head(x, num_classes)  # [batch, 1] or [batch, N]
    return _compile(keras.Model(ids, prob, name=MODEL_NAMES["bigram"]))


def build_linear(num_words: int, maxlen: int, buckets: int, num_classes: int = 2) -> keras.Model:
    """sigmoid(sum of one weight per uni/bigram occurrence + bias); weights set by trainer.linear.
    For N classes one weight per id and class: softmax(the N sums + N biases).

    The table holds sign(w) sqrt(|w|) (see ngrams.SignedSquare): quantized to 8 bits it keeps
    the many small weights apart."""
    ids = keras.Input(shape=(maxlen,), dtype="int32", name="input_ids")  # [batch, maxlen] int32
    grams = NgramIds(num_words, buckets, name="ngram_ids")(ids)  # [batch, 2 maxlen - 1] int32
    width = outputs(num_classes)  # K = 1 or N
    root = layers.Embedding(num_words + buckets, width, name="weights")(grams)  # [batch, T, K], sign(w) sqrt|w|
    w = SignedSquare(name="weight")(root)  # [batch, T, K]: finer 8-bit steps for the many small weights
    logit = MaskedPooling("sum", name="pooling")([w, grams])  # [batch, K]
    # Kernel fixed at the identity by trainer.linear: this layer only adds the bias and the activation.
    prob = head(logit, num_classes)  # [batch, K]
    # Never trained by an optimizer; plain SGD has no slot variables, so loading the saved model
    # with compile=True does not warn about optimizer variables that were never built.
    return _compile(keras.Model(ids, prob, name=MODEL_NAMES["linear"]), optimizer="sgd")
