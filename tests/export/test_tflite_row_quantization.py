"""model.dynamic.tflite of an N-class graph: int8 embedding rows gathered, cast to float and times
their own scales (export.tflite_export.quantize_tables_per_row); two-class graphs unchanged."""
from __future__ import annotations

import os

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter
from tensorflow.lite.python import schema_py_generated as schema
from tensorflow.lite.tools import flatbuffer_utils

from export import verify as V
from export.manifest import labels_file_lines, metadata_texts
from export.metadata import add_metadata
from export.row_quantization import row_scales
from export.signature import convert, converter, serving_function
from export.tflite_export import CAST_INT8_VERSION, GATHER_INT8_VERSION, INT8_CAST_RUNTIME, to_tflite
from tests.conftest import THREE_LABELS, three_class_corpus

TABLE = [50, 16]  # both fixtures: a vocabulary of 50, 16 dimensions


def _keras(bundle: str):
    import keras

    return keras.saving.load_model(os.path.join(bundle, "model.keras"), safe_mode=True)


@pytest.fixture(scope="module")
def three(three_class_bundle, tmp_path_factory):
    """(keras model, path of its dynamic model with metadata as the tflite step writes it, 60 texts,
    their ids [60, 64])."""
    from runtime.tokenizer import Tokenizer

    model = _keras(three_class_bundle)
    vocab = os.path.join(three_class_bundle, "vocab.txt")
    flat = add_metadata(to_tflite(model, "dynamic"), vocab_path=vocab, labels=labels_file_lines(THREE_LABELS),
                        version="0.0.1", **metadata_texts(THREE_LABELS, "dynamic"))
    path = tmp_path_factory.mktemp("dynamic") / "model.dynamic.tflite"
    path.write_bytes(flat)
    texts = three_class_corpus(60, seed=7)[0]
    return model, str(path), texts, Tokenizer.load(vocab, maxlen=64).encode_batch(texts)


def _read(path_or_bytes) -> "schema.ModelT":
    data = path_or_bytes if isinstance(path_or_bytes, bytes) else open(path_or_bytes, "rb").read()
    return flatbuffer_utils.read_model_from_bytearray(bytearray(data))


def _tables(model: "schema.ModelT", shape: list[int] = TABLE) -> list:
    """The constant tensors of the embedding table's ``shape``."""
    tensors = model.subgraphs[0].tensors
    return [t for t in tensors if list(t.shape) == shape and model.buffers[t.buffer].data is not None]


def _op_names(model: "schema.ModelT") -> list[str]:
    return [flatbuffer_utils.opcode_to_name(model, op.opcodeIndex) for op in model.subgraphs[0].operators]


def test_three_class_table_is_int8_with_a_scale_per_row(three):
    keras_model, path, _, _ = three
    model = _read(path)
    graph = model.subgraphs[0]
    (table,) = _tables(model)
    assert flatbuffer_utils.type_to_name(table.type) == "INT8"
    assert table.quantization is None or table.quantization.scale is None  # plain int8
    q, scale = row_scales(_embedding(keras_model).get_weights()[0])
    np.testing.assert_array_equal(_data(model, table, np.int8), q)
    (scales,) = _tables(model, [50, 1])
    np.testing.assert_array_equal(_data(model, scales, "<f4"), scale)  # [50, 1]: one per row
    # GATHER(q, ids) -> CAST; GATHER(scale, ids) [.., 1]; MUL into the old GATHER's output.
    names, ops = _op_names(model), graph.operators
    assert "DEQUANTIZE" not in names and names.count("GATHER") == 2
    first, second = (op for op, name in zip(ops, names) if name == "GATHER")
    assert [graph.tensors[op.inputs[0]] for op in (first, second)] == [table, scales]
    assert first.inputs[1] == second.inputs[1] and second.builtinOptions.axis == 0
    cast, mul = ops[names.index("CAST")], ops[names.index("MUL")]
    assert list(cast.inputs) == list(first.outputs) and list(mul.inputs) == [cast.outputs[0], second.outputs[0]]
    float_graph = _read(convert(converter(serving_function(keras_model)))).subgraphs[0]
    (gathered,) = [float_graph.tensors[op.outputs[0]] for op in float_graph.operators if op.inputs[0] != -1
                   and list(float_graph.tensors[op.inputs[0]].shape) == TABLE]
    assert graph.tensors[mul.outputs[0]].name == gathered.name  # what the ops after the GATHER read
    assert model.operatorCodes[cast.opcodeIndex].version == CAST_INT8_VERSION
    assert model.operatorCodes[first.opcodeIndex].version == GATHER_INT8_VERSION
    assert _runtime_version(model) == INT8_CAST_RUNTIME


def _data(model: "schema.ModelT", tensor, dtype) -> np.ndarray:
    return np.frombuffer(bytes(model.buffers[tensor.buffer].data), dtype).reshape(tensor.shape)


def _embedding(keras_model):
    import keras

    return next(layer for layer in keras_model.layers if isinstance(layer, keras.layers.Embedding))


def _runtime_version(model: "schema.ModelT") -> str:
    (entry,) = [m for m in model.metadata if m.name == b"min_runtime_version"]
    return bytes(model.buffers[entry.buffer].data).rstrip(b"\0").decode()


@pytest.mark.parametrize("batch", [60, 1])
def test_three_class_scores_are_keras_with_the_dequantized_rows(three, batch):
    keras_model, path, _, ids = three
    embedding = _embedding(keras_model)
    table = embedding.get_weights()[0]
    q, scale = row_scales(table)
    embedding.set_weights([q * scale])
    try:
        expected = keras_model.predict(ids[:batch], verbose=0)
    finally:
        embedding.set_weights([table])
    np.testing.assert_allclose(_litert(path, ids[:batch]), expected, rtol=0, atol=1e-5)


def _litert(path: str, ids: np.ndarray) -> np.ndarray:
    """LiteRT's default kernels, batch resized to len(ids): resized twice, from one row, so that
    the gathered rows and their scales [.., 1] are reallocated."""
    interpreter = Interpreter(model_path=path)
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    for rows in (ids[:1], ids):
        interpreter.resize_tensor_input(inp["index"], list(rows.shape))
        interpreter.allocate_tensors()
        interpreter.set_tensor(inp["index"], rows)
        interpreter.invoke()
    return interpreter.get_tensor(out["index"])


def test_three_class_dynamic_model_scores_as_int8_onnx_and_mediapipe(three, three_class_bundle):
    from export.mediapipe_check import mediapipe_scores

    _, path, texts, ids = three
    scores = V.score_file(path, ids)  # the runtime's backend, as verify scores it
    # One rule, the same rows: model.int8.onnx computes the same scores.
    onnx_scores = V.score_file(os.path.join(three_class_bundle, "model.int8.onnx"), ids)
    np.testing.assert_allclose(scores, onnx_scores, rtol=0, atol=1e-5)
    got = mediapipe_scores(path, texts, labels_file_lines(THREE_LABELS))
    mediapipe = V.compare("mediapipe", got, scores, None, quantized=False, max_abs_diff=V.MEDIAPIPE_MAX_ABS_DIFF)
    assert mediapipe.passed, mediapipe.failures


def test_three_class_dynamic_model_is_reproducible(three):
    keras_model = three[0]
    assert to_tflite(keras_model, "dynamic") == to_tflite(keras_model, "dynamic")


def test_two_class_dynamic_flatbuffer_is_the_converters(tiny_bundle):
    # Today's bytes: the converter's dynamic-range output, untouched (no CAST or MUL inserted).
    model = _keras(tiny_bundle)
    todays = convert(converter(serving_function(model), dynamic_range=True))
    assert to_tflite(model, "dynamic") == todays
    assert "DEQUANTIZE" not in _op_names(_read(todays))  # a 50 x 16 table is below its 1024-weight bar


def test_two_class_vocabulary_sized_table_keeps_one_scale():
    from trainer.model import build_model

    model = build_model(num_words=128, maxlen=256)  # 2048-element table: the converter quantizes it
    flat = to_tflite(model, "dynamic")
    assert flat == convert(converter(serving_function(model), dynamic_range=True))
    (table,) = _tables(_read(flat), [128, 16])
    assert flatbuffer_utils.type_to_name(table.type) == "INT8" and len(table.quantization.scale) == 1
