"""ONNX and TFLite converters against the Keras model they came from (tiny model, fast)."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from ai_edge_litert.interpreter import Interpreter
from tensorflow.lite.tools import flatbuffer_utils

from export.onnx_export import OnnxExportError, quantize_onnx, quantized_op_types, to_onnx
from export.signature import SignatureError
from export.tflite_export import TFLiteExportError, to_tflite

MAXLEN = 256
FLOAT_TOL = 1e-5
# 8-bit embedding tables: measured max |dp| 0.011 (ONNX) and 0.020 (TFLite int8) on this
# model; the real IMDB model measures ~0.1 at worst, ~0.01 on average.
ONNX_INT8_TOL = 0.03
TFLITE_QUANT_TOL = 0.05


@pytest.fixture(scope="module")
def ids(tiny_ids) -> np.ndarray:
    return tiny_ids(7, seed=1)[0]  # [7, 256] int32, unseen rows


@pytest.fixture(scope="module")
def expected(tiny_model, ids) -> np.ndarray:
    return tiny_model.predict(ids, verbose=0)  # [7, 1] float32


def test_fixture_model_is_not_constant(expected):
    # Quantization tolerances mean something only if probabilities spread out.
    assert expected.max() - expected.min() > 0.5


# --- ONNX -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def onnx_paths(tiny_model, tmp_path_factory) -> tuple[str, str]:
    out = tmp_path_factory.mktemp("onnx")
    float_path, int8_path = str(out / "model.onnx"), str(out / "model.int8.onnx")
    to_onnx(tiny_model, float_path)
    quantize_onnx(float_path, int8_path)
    return float_path, int8_path


def _ort_run(path: str, ids: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return session.run(["probability"], {"input_ids": ids})[0]


def _io_signature(value: onnx.ValueInfoProto) -> tuple:
    tensor = value.type.tensor_type
    dims = [d.dim_value if d.HasField("dim_value") else d.dim_param for d in tensor.shape.dim]
    return value.name, onnx.TensorProto.DataType.Name(tensor.elem_type), dims


@pytest.mark.parametrize("which", [0, 1], ids=["float", "int8"])
def test_onnx_checker_opset_and_io(onnx_paths, which):
    proto = onnx.load(onnx_paths[which])
    onnx.checker.check_model(proto, full_check=True)
    opset = {o.domain: o.version for o in proto.opset_import}
    assert opset[""] >= 17
    assert [_io_signature(v) for v in proto.graph.input] == [("input_ids", "INT32", ["batch", MAXLEN])]
    assert [_io_signature(v) for v in proto.graph.output] == [("probability", "FLOAT", ["batch", 1])]


@pytest.mark.parametrize("batch", [1, 7])
def test_onnx_matches_keras(onnx_paths, ids, expected, batch):
    got = _ort_run(onnx_paths[0], ids[:batch])
    assert got.shape == (batch, 1) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected[:batch], rtol=0, atol=FLOAT_TOL)


def test_quantized_onnx_is_smaller_and_gather_is_8_bit(onnx_paths):
    float_path, int8_path = onnx_paths
    proto = onnx.load(int8_path)
    assert quantized_op_types(proto) == {"Gather"}
    table = [t for t in proto.graph.initializer if list(t.dims) == [50, 16]]
    assert [onnx.TensorProto.DataType.Name(t.data_type) for t in table] == ["UINT8"]
    assert len(proto.SerializeToString()) < len(onnx.load(float_path).SerializeToString())


@pytest.mark.parametrize("batch", [1, 7])
def test_quantized_onnx_close_to_keras(onnx_paths, ids, expected, batch):
    got = _ort_run(onnx_paths[1], ids[:batch])
    np.testing.assert_allclose(got, expected[:batch], rtol=0, atol=ONNX_INT8_TOL)
    assert np.abs(got - expected[:batch]).max() > 0  # the weights really changed


def test_quantized_onnx_does_not_depend_on_batch(onnx_paths, ids):
    # Only the Gather is quantized: no per-call activation scale, so a row scores the same
    # alone or among others (up to float summation order).
    batched = _ort_run(onnx_paths[1], ids)
    alone = np.concatenate([_ort_run(onnx_paths[1], ids[i:i + 1]) for i in range(len(ids))])
    np.testing.assert_allclose(alone, batched, rtol=0, atol=FLOAT_TOL)


def test_quantize_onnx_matmul_option(onnx_paths, ids, expected, tmp_path):
    path = str(tmp_path / "both.onnx")
    quantize_onnx(onnx_paths[0], path, op_types=("Gather", "MatMul"))
    proto = onnx.load(path)
    assert quantized_op_types(proto) == {"Gather", "MatMul"}
    assert "MatMulInteger" in {n.op_type for n in proto.graph.node}
    np.testing.assert_allclose(_ort_run(path, ids), expected, rtol=0, atol=ONNX_INT8_TOL)


def test_quantize_onnx_rejects_unknown_op_types(onnx_paths, tmp_path):
    with pytest.raises(OnnxExportError, match="Conv"):
        quantize_onnx(onnx_paths[0], str(tmp_path / "x.onnx"), op_types=("Conv",))
    assert not (tmp_path / "x.onnx").exists()


def test_to_onnx_rejects_old_opset(tiny_model, tmp_path):
    with pytest.raises(OnnxExportError, match="opset"):
        to_onnx(tiny_model, tmp_path / "old.onnx", opset=13)


# --- TFLite -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def calibration_ids(tiny_ids) -> np.ndarray:
    return tiny_ids(100, seed=2)[0]


@pytest.fixture(scope="module")
def tflite_models(tiny_model, calibration_ids) -> dict[str, bytes]:
    return {
        "float": to_tflite(tiny_model, "float"),
        "dynamic": to_tflite(tiny_model, "dynamic"),
        "int8": to_tflite(tiny_model, "int8", calibration_ids=calibration_ids),
        "int8_io": to_tflite(tiny_model, "int8", calibration_ids=calibration_ids, int8_io=True),
    }


def _litert_run(flat: bytes, ids: np.ndarray) -> np.ndarray:
    """Resize the batch to len(ids), run, dequantize an int8 output."""
    interpreter = Interpreter(model_content=flat)
    inp = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(inp["index"], list(ids.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(inp["index"], ids)
    interpreter.invoke()
    out = interpreter.get_output_details()[0]
    got = interpreter.get_tensor(out["index"])
    if out["dtype"] == np.int8:
        scale, zero_point = out["quantization"]
        got = (got.astype(np.float32) - zero_point) * scale
    return got


def _ops(flat: bytes) -> list[tuple[str, set[str]]]:
    """(op name, types of all its input/output tensors) for each operator."""
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(flat))
    graph = model.subgraphs[0]
    return [(flatbuffer_utils.opcode_to_name(model, op.opcodeIndex),
             {flatbuffer_utils.type_to_name(graph.tensors[t].type)
              for t in list(op.inputs) + list(op.outputs) if t >= 0})
            for op in graph.operators]


def _table_types(flat: bytes, shape: list[int]) -> list[str]:
    """Types of the constant tensors of ``shape`` (the embedding table)."""
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(flat))
    return [flatbuffer_utils.type_to_name(t.type) for t in model.subgraphs[0].tensors
            if list(t.shape) == shape and model.buffers[t.buffer].data is not None]


@pytest.mark.parametrize("kind", ["float", "dynamic", "int8", "int8_io"])
def test_tflite_io_details(tflite_models, kind):
    interpreter = Interpreter(model_content=tflite_models[kind])
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    assert inp["name"] == "input_ids" and inp["dtype"] == np.int32
    assert inp["shape"].tolist() == [1, MAXLEN]
    assert inp["shape_signature"].tolist() == [-1, MAXLEN]
    assert out["name"] == "probability" and out["shape_signature"].tolist() == [-1, 1]
    assert out["dtype"] == (np.int8 if kind == "int8_io" else np.float32)
    assert interpreter.get_signature_list() == {
        "serving_default": {"inputs": ["input_ids"], "outputs": ["probability"]}}


@pytest.mark.parametrize("kind,tol", [("float", FLOAT_TOL), ("dynamic", FLOAT_TOL),
                                      ("int8", TFLITE_QUANT_TOL), ("int8_io", TFLITE_QUANT_TOL)])
@pytest.mark.parametrize("batch", [1, 7])
def test_tflite_matches_keras_after_batch_resize(tflite_models, ids, expected, kind, tol, batch):
    # "dynamic" equals float here: no tiny-model weight reaches the converter's 1024-element
    # quantization threshold (test_dynamic_quantizes_a_vocabulary_sized_table covers it).
    got = _litert_run(tflite_models[kind], ids[:batch])
    assert got.shape == (batch, 1)
    np.testing.assert_allclose(got, expected[:batch], rtol=0, atol=tol)


def test_tflite_signature_runner(tflite_models, ids, expected):
    runner = Interpreter(model_content=tflite_models["float"]).get_signature_runner("serving_default")
    got = runner(input_ids=ids)["probability"]
    np.testing.assert_allclose(got, expected, rtol=0, atol=FLOAT_TOL)


def test_int8_model_is_integer_only(tflite_models):
    for kind in ("int8", "int8_io"):
        ops = _ops(tflite_models[kind])
        names = {name for name, _ in ops}
        # LESS/ADD/SELECT_V2 are Keras's int32 negative-index wrap before the embedding Gather.
        assert {"GATHER", "MEAN", "FULLY_CONNECTED", "LOGISTIC"} <= names
        assert names <= {"GATHER", "MEAN", "FULLY_CONNECTED", "LOGISTIC", "DEQUANTIZE",
                         "LESS", "ADD", "SELECT_V2"}
        float_ops = [name for name, types in ops if "FLOAT32" in types]
        assert float_ops == ([] if kind == "int8_io" else ["DEQUANTIZE"])
        assert ("GATHER", {"INT8", "INT32"}) in ops  # int8 table, int32 ids
        assert _table_types(tflite_models[kind], [50, 16]) == ["INT8"]


def test_int8_io_output_quantization(tflite_models, ids, expected):
    interpreter = Interpreter(model_content=tflite_models["int8_io"])
    scale, zero_point = interpreter.get_output_details()[0]["quantization"]
    assert scale > 0 and -128 <= zero_point <= 127
    # Sigmoid output: the converter fixes the range to [0, 1) -> scale 1/256, zero point -128.
    assert (scale, zero_point) == (1 / 256, -128)
    raw_interpreter = Interpreter(model_content=tflite_models["int8_io"])
    raw_interpreter.allocate_tensors()
    raw_interpreter.set_tensor(raw_interpreter.get_input_details()[0]["index"], ids[:1])
    raw_interpreter.invoke()
    raw = raw_interpreter.get_tensor(raw_interpreter.get_output_details()[0]["index"])
    assert raw.dtype == np.int8
    np.testing.assert_allclose((raw.astype(np.float32) - zero_point) * scale, expected[:1],
                               rtol=0, atol=TFLITE_QUANT_TOL)


def test_dynamic_quantizes_a_vocabulary_sized_table(ids):
    from trainer.model import build_model

    model = build_model(num_words=128, maxlen=MAXLEN)  # 2048-element table, random init
    float_flat, dynamic_flat = to_tflite(model, "float"), to_tflite(model, "dynamic")
    assert _table_types(float_flat, [128, 16]) == ["FLOAT32"]
    assert _table_types(dynamic_flat, [128, 16]) == ["INT8"]  # stored int8, dequantized to run
    assert len(float_flat) - len(dynamic_flat) > 2048 * 2  # 4 -> 1 byte per table weight
    want = model.predict(ids, verbose=0)
    np.testing.assert_allclose(_litert_run(dynamic_flat, ids), want, rtol=0, atol=TFLITE_QUANT_TOL)
    assert np.abs(_litert_run(float_flat, ids) - want).max() <= FLOAT_TOL


def test_invalid_mode_names_the_choices(tiny_model):
    with pytest.raises(TFLiteExportError, match="valid modes: float, dynamic, int8"):
        to_tflite(tiny_model, "fp16")


@pytest.mark.parametrize("bad", [None, np.zeros((0, MAXLEN), np.int32), np.zeros((3, 10), np.int32),
                                 np.zeros((3, MAXLEN), np.float32)])
def test_int8_needs_valid_calibration_ids(tiny_model, bad):
    with pytest.raises(SignatureError, match="calibration_ids"):
        to_tflite(tiny_model, "int8", calibration_ids=bad)


def test_int8_io_needs_int8_mode(tiny_model):
    with pytest.raises(TFLiteExportError, match="int8_io"):
        to_tflite(tiny_model, "float", int8_io=True)
