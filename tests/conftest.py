"""Shared fixtures: a tiny trained model and a complete tiny bundle built by the real export code."""
from __future__ import annotations

import logging
import os
import random

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_ARCHIVE = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "aclImdb_v1_labeled.tar.gz")

POSITIVE = "great wonderful superb moving brilliant loved enjoyable masterpiece".split()
NEGATIVE = "awful boring terrible dull waste worst hated mess".split()
NEUTRAL = "the film movie it was a and plot acting story this".split()


def tiny_corpus(n: int = 400, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """Reviews whose sentiment words decide the label: a model learns them in a few epochs."""
    rng = random.Random(seed)
    texts, labels = [], []
    for i in range(n):
        label = i % 2
        words = rng.choices(NEUTRAL, k=rng.randint(3, 12)) + rng.choices(POSITIVE if label else NEGATIVE, k=2)
        rng.shuffle(words)
        texts.append(" ".join(words).capitalize() + ".")
        labels.append(label)
    return texts, np.array(labels, dtype=np.int32)


@pytest.fixture
def progress_lines():
    """The INFO lines the trainer and export libraries log (what their CLIs print), in order."""
    lines = []

    class Collect(logging.Handler):
        def emit(self, record):
            lines.append(record.getMessage())

    handler, loggers = Collect(), [logging.getLogger(name) for name in ("trainer", "export")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    yield lines
    for logger, level in zip(loggers, levels):
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.fixture(scope="session")
def tiny_trained(tmp_path_factory):
    """(keras model, Tokenizer, texts, labels): num_words=50, maxlen=256, trained on tiny_corpus."""
    import keras

    from runtime.tokenizer import Tokenizer
    from trainer.model import build_model

    texts, labels = tiny_corpus()
    tok = Tokenizer.build(texts, num_words=50)
    keras.utils.set_random_seed(0)
    model = build_model(num_words=50, maxlen=256)
    model.fit(tok.encode_batch(texts), labels, epochs=30, batch_size=64, verbose=0)
    return model, tok, texts, labels


@pytest.fixture(scope="session")
def tiny_bundle(tiny_trained, tmp_path_factory) -> str:
    """A bundle directory with every format, labels, vocab and a manifest, as ``export`` writes it."""
    from export.manifest import IMDB_LABELS, build_manifest, labels_file_lines, write_manifest
    from export.metadata import add_metadata
    from export.onnx_export import quantize_onnx, to_onnx
    from export.tflite_export import to_tflite
    from runtime.files import atomic_write_bytes

    model, tok, texts, _ = tiny_trained
    out = str(tmp_path_factory.mktemp("bundle"))
    tok.save(os.path.join(out, "vocab.txt"))
    with open(os.path.join(out, "labels.txt"), "w") as f:
        f.write("".join(f"{label}\n" for label in labels_file_lines(IMDB_LABELS)))
    model.save(os.path.join(out, "model.keras"))
    to_onnx(model, os.path.join(out, "model.onnx"))
    quantize_onnx(os.path.join(out, "model.onnx"), os.path.join(out, "model.int8.onnx"))
    calib = tok.encode_batch(texts)
    for mode, name in (("float", "model.tflite"), ("dynamic", "model.dynamic.tflite"), ("int8", "model.int8.tflite")):
        flat = to_tflite(model, mode, calibration_ids=calib if mode == "int8" else None)
        flat = add_metadata(flat, vocab_path=os.path.join(out, "vocab.txt"), labels=labels_file_lines(IMDB_LABELS),
                            name="tiny", description="tiny test model", version="0.0.1")
        atomic_write_bytes(os.path.join(out, name), flat)
    write_manifest(out, build_manifest(out, tok, None, {"results": {}}))
    return out


THREE_LABELS = ["alpha", "beta", "gamma"]  # column i = P(THREE_LABELS[i])
CLASS_WORDS = ("apple pear plum fig".split(), "river lake sea pond".split(), "stone rock sand clay".split())
CLASS_SHARED = "the a of and it was this that".split()


def three_class_corpus(n: int, seed: int) -> tuple[list[str], np.ndarray]:
    """Texts whose class words decide the class (0, 1, 2 in turn): learnt in a few epochs."""
    rng = random.Random(seed)
    texts = []
    for i in range(n):
        words = rng.choices(CLASS_SHARED, k=rng.randint(2, 10)) + rng.choices(CLASS_WORDS[i % 3], k=rng.randint(1, 3))
        rng.shuffle(words)
        texts.append(" ".join(words))
    return texts, np.arange(n, dtype=np.int32) % 3


def write_three_class_files(out: str, model, tok, calibration: np.ndarray) -> None:
    """What the onnx and tflite steps write, with the existing converters and the labels rules."""
    from export.manifest import labels_file_lines, metadata_texts
    from export.metadata import add_metadata
    from export.onnx_export import quantize_onnx, to_onnx
    from export.tflite_export import to_tflite
    from runtime.files import atomic_write_bytes

    tok.save(os.path.join(out, "vocab.txt"))
    with open(os.path.join(out, "labels.txt"), "w", encoding="utf-8") as f:
        f.write("".join(f"{line}\n" for line in labels_file_lines(THREE_LABELS)))
    model.save(os.path.join(out, "model.keras"))
    to_onnx(model, os.path.join(out, "model.onnx"))
    quantize_onnx(os.path.join(out, "model.onnx"), os.path.join(out, "model.int8.onnx"))
    for mode, name in (("float", "model.tflite"), ("int8", "model.int8.tflite")):
        flat = to_tflite(model, mode, calibration_ids=calibration if mode == "int8" else None)
        flat = add_metadata(flat, vocab_path=os.path.join(out, "vocab.txt"), labels=labels_file_lines(THREE_LABELS),
                            version="0.0.1", **metadata_texts(THREE_LABELS, mode))
        atomic_write_bytes(os.path.join(out, name), flat)


@pytest.fixture(scope="session")
def three_class_bundle(tmp_path_factory) -> str:
    """A complete, verified-manifest bundle of a trained 3-class tutorial model (labels alpha,
    beta, gamma; vocab of 50, maxlen 64): ONNX float/int8, TFLite float/int8 with metadata."""
    import keras

    from export.manifest import build_manifest, write_manifest
    from runtime.tokenizer import Tokenizer
    from trainer.model import build_model

    texts, labels = three_class_corpus(300, seed=0)
    tok = Tokenizer.build(texts, num_words=50, maxlen=64)
    keras.utils.set_random_seed(0)
    model = build_model(num_words=50, maxlen=64, num_classes=3)
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss="sparse_categorical_crossentropy")
    model.fit(tok.encode_batch(texts), labels, epochs=8, batch_size=32, verbose=0)
    out = str(tmp_path_factory.mktemp("three_class"))
    write_three_class_files(out, model, tok, tok.encode_batch(texts[:100]))
    write_manifest(out, build_manifest(out, tok, {"labels": THREE_LABELS}, {"results": {}}))
    return out


def write_imdb_tar(path, n_per_split: int = 200, seed: int = 0, ratings=((2,), (8,))) -> str:
    """A .tar.gz in the aclImdb layout whose reviews come from ``tiny_corpus``; the k-th review
    of a label (neg 0, pos 1) in a split is named ``<id>_<ratings[label][k % len]>.txt``."""
    import io
    import tarfile

    with tarfile.open(path, "w:gz") as tar:
        for split_no, split in enumerate(("train", "test")):
            texts, labels = tiny_corpus(n_per_split, seed + split_no)
            seen = [0, 0]
            for i, (text, label) in enumerate(zip(texts, labels)):
                data = text.encode("utf-8")
                stars = ratings[label][seen[label] % len(ratings[label])]
                seen[label] += 1
                info = tarfile.TarInfo(f"aclImdb/{split}/{'pos' if label else 'neg'}/{i}_{stars}.txt")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return str(path)


@pytest.fixture(scope="session")
def tiny_imdb_tar(tmp_path_factory) -> str:
    return write_imdb_tar(tmp_path_factory.mktemp("imdb") / "tiny_imdb.tar.gz")


@pytest.fixture(scope="session")
def real_export(tmp_path_factory):
    """``python -m export all`` on the real IMDB archive: (bundle dir, CompletedProcess). One run
    serves the end-to-end tests and the browser tests (tests/web)."""
    import subprocess
    import sys

    assert os.path.isfile(SHARED_ARCHIVE), f"the shared IMDB archive is missing: {SHARED_ARCHIVE}"
    out = str(tmp_path_factory.mktemp("artifacts"))
    proc = subprocess.run([sys.executable, "-m", "export", "all", "--data", SHARED_ARCHIVE, "--out", out],
                          cwd=ROOT, capture_output=True, text=True, timeout=1200)
    return out, proc
