"""The tutorial model, exactly: no I/O here."""
from __future__ import annotations

import keras
from keras import layers


def build_model(num_words: int = 10_000, maxlen: int = 256, embedding_dim: int = 16) -> keras.Model:
    """Embedding -> mean over positions -> Dense(16, relu) -> Dense(1, sigmoid).

    The mean includes the ``<PAD>`` positions, as in the tutorial (no masking), so every
    runtime only needs the fixed-length id row.
    """
    ids = keras.Input(shape=(maxlen,), dtype="int32", name="input_ids")  # [batch, maxlen] int32
    x = layers.Embedding(num_words, embedding_dim, name="embedding")(ids)  # [batch, maxlen, 16]
    x = layers.GlobalAveragePooling1D(name="pooling")(x)  # [batch, 16]
    x = layers.Dense(16, activation="relu", name="hidden")(x)  # [batch, 16]
    prob = layers.Dense(1, activation="sigmoid", name="probability")(x)  # [batch, 1]
    model = keras.Model(ids, prob, name="imdb_basic_text_classification")
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return model
