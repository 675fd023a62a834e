"""model.int8.onnx of an N-class graph: one int8 scale per embedding row (export.row_quantization)."""
from __future__ import annotations

import os

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

from export.onnx_export import quantize_onnx, quantized_op_types
from export.row_quantization import row_scales


def _run(path: str, ids: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return session.run(["probability"], {"input_ids": ids})[0]


def _eight_bit_tables(proto: onnx.ModelProto) -> list[np.ndarray]:
    return [numpy_helper.to_array(t) for t in proto.graph.initializer
            if t.data_type in (onnx.TensorProto.INT8, onnx.TensorProto.UINT8) and len(t.dims) == 2]


@pytest.mark.parametrize("seed", range(5))
def test_row_scales_round_trip_within_half_a_step(seed):
    rng = np.random.default_rng(seed)
    table = rng.normal(0, rng.uniform(0.01, 3), size=(50, 16)).astype(np.float32) * rng.uniform(0, 4, (50, 1))
    table[3] = 0  # a row of zeros (e.g. an unused id) must not divide by zero
    q, scale = row_scales(table)
    assert q.dtype == np.int8 and q.shape == table.shape and scale.shape == (50, 1)
    assert np.all(np.abs(table - q * scale) <= scale / 2 + 1e-7)
    peaks = np.abs(q).max(axis=1)
    assert np.all(peaks[np.abs(table).max(axis=1) > 0] == 127) and peaks[3] == 0


def _three_class_ids(bundle: str) -> np.ndarray:
    from runtime.tokenizer import Tokenizer
    from tests.conftest import three_class_corpus

    tok = Tokenizer.load(os.path.join(bundle, "vocab.txt"), maxlen=64)
    return tok.encode_batch(three_class_corpus(60, seed=7)[0])  # [60, 64]


def test_three_class_table_is_quantized_per_row(three_class_bundle, tmp_path):
    import keras

    proto = onnx.load(os.path.join(three_class_bundle, "model.int8.onnx"))
    assert quantized_op_types(proto) == {"Gather"}
    (q,) = _eight_bit_tables(proto)
    assert q.dtype == np.int8 and q.shape == (50, 16)
    floats = [tuple(t.dims) for t in proto.graph.initializer if t.data_type == onnx.TensorProto.FLOAT]
    assert (50, 16) not in floats and (50, 1) in floats  # the float table is gone; its scales are there
    # The graph computes exactly the Keras model whose table is replaced by the dequantized rows.
    model = keras.saving.load_model(os.path.join(three_class_bundle, "model.keras"), safe_mode=True)
    embedding = next(layer for layer in model.layers if isinstance(layer, keras.layers.Embedding))
    table = embedding.get_weights()[0]
    rows, scale = row_scales(table)
    np.testing.assert_array_equal(rows, q)
    embedding.set_weights([rows * scale])
    ids = _three_class_ids(three_class_bundle)
    expected = model.predict(ids, verbose=0)
    np.testing.assert_allclose(_run(os.path.join(three_class_bundle, "model.int8.onnx"), ids), expected, atol=1e-5)


def test_three_class_quantization_is_reproducible(three_class_bundle, tmp_path):
    again = tmp_path / "again.onnx"
    quantize_onnx(os.path.join(three_class_bundle, "model.onnx"), again)
    with open(os.path.join(three_class_bundle, "model.int8.onnx"), "rb") as f:
        assert again.read_bytes() == f.read()


def test_three_class_matmul_option_quantizes_both(three_class_bundle, tmp_path):
    path = tmp_path / "both.onnx"
    quantize_onnx(os.path.join(three_class_bundle, "model.onnx"), path, op_types=("Gather", "MatMul"))
    proto = onnx.load(path)
    assert quantized_op_types(proto) == {"Gather", "MatMul"}
    ids = _three_class_ids(three_class_bundle)
    float_scores = _run(os.path.join(three_class_bundle, "model.onnx"), ids)
    assert np.abs(_run(str(path), ids) - float_scores).max() < 0.05


def test_two_class_table_keeps_one_scale(tiny_bundle):
    # Today's bundles are unchanged: onnxruntime's uint8 table with one scale and zero point.
    proto = onnx.load(os.path.join(tiny_bundle, "model.int8.onnx"))
    (q,) = _eight_bit_tables(proto)
    assert q.dtype == np.uint8 and q.ndim == 2
    scalars = [t for t in proto.graph.initializer if t.data_type == onnx.TensorProto.FLOAT and not t.dims]
    assert scalars  # the table's one scale
