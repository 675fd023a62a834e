"""Keras model -> TFLite flatbuffer (float, dynamic-range or full-integer int8).

The converter is fed a ``tf.function`` whose input signature is ``[None, maxlen]`` int32,
so the stored input shape is ``[1, maxlen]`` with ``shape_signature`` ``[-1, maxlen]``:
LiteRT can ``resize_tensor_input`` to any batch. The tensors are named ``input_ids`` and
``probability`` and a ``serving_default`` signature is added (the frozen-function route
below names the output ``Identity`` and writes no signature). The signature and the int8 set-up
are export/signature.py's, shared with ONNX and the micro model.

Dynamic mode of an N-class graph (export.row_quantization) does not use the converter's dynamic-
range quantization, which stores the embedding table with one int8 scale: it converts to float
and stores each table GATHER reads as int8 with one scale per row (per-axis quantization,
dimension 0), read through a DEQUANTIZE. LiteRT's DEQUANTIZE takes per-channel int8 and, for a
constant input, keeps its output in a persistent tensor filled once, at the first invoke
(tensorflow/lite/kernels/dequantize.cc, dequantize.h): the float table is in memory as in the
float model, the file holds it in 8 bits. The other weights stay float (the tutorial's dense
layers: under the converter's 1,024-weight bar, which leaves them float too). Measured with
LiteRT 2.3.0 on the four star classes (tutorial, 40 epochs), 1,024 test reviews, one thread, us
per review at batch 1 / 64, default (XNNPACK) and built-in kernels: float 2.4 / 0.9 and 3.5 /
1.5; the converter's dynamic range (dequantizes the gathered rows at every invoke) 2.6 / 1.1 and
3.9 / 2.1; per-row 2.4 / 0.9 and 3.3 / 1.4, plus ~0.5 ms once, at the first invoke (the whole
10,000 x 16 table; --arch bigram, 272,144 rows: 18-32 ms, then as fast as float and the
converter's dynamic range).
"""
from __future__ import annotations

import numpy as np
from tensorflow.lite.python import schema_py_generated as schema
from tensorflow.lite.tools import flatbuffer_utils

from .row_quantization import per_row, row_scales
from .signature import SignatureError, check_calibration, convert, converter, int8_flatbuffer, model_maxlen, \
    serving_function

MODES = ("float", "dynamic", "int8")
# A DEQUANTIZE of a per-channel int8 tensor is op version 5 (tflite/tools/versioning/op_version.cc),
# which LiteRT runs from 2.7.0 on (runtime_version.cc): written to the min_runtime_version metadata.
DEQUANTIZE_PER_CHANNEL_VERSION = 5
PER_CHANNEL_RUNTIME = "2.7.0"
MIN_RUNTIME_VERSION = b"min_runtime_version"


class TFLiteExportError(SignatureError):
    """A TFLite conversion was asked with invalid arguments."""


def to_tflite(model, mode: str = "float", calibration_ids: np.ndarray | None = None,
              int8_io: bool = False) -> bytes:
    """Convert ``model`` and return the flatbuffer bytes.

    ``float``: no quantization. ``dynamic``: int8 weights, float activations (an N-class
    graph: int8 embedding rows with a scale each, see ``quantize_tables_per_row``).
    ``int8``: full-integer, calibrated on ``calibration_ids`` (int32 [n, maxlen], n >= 1);
    the int32 ids stay int32, the output is float32 unless ``int8_io`` (then int8 with
    scale/zero point in the output's quantization parameters).
    """
    if mode not in MODES:
        raise TFLiteExportError(f"unknown TFLite mode {mode!r}; valid modes: {', '.join(MODES)}")
    if int8_io and mode != "int8":
        raise TFLiteExportError(f"int8_io=True needs mode 'int8', got {mode!r}")
    serve = serving_function(model)
    if mode == "int8":
        return int8_flatbuffer(serve, check_calibration(calibration_ids, model_maxlen(model)), int8_io)
    if mode == "dynamic" and per_row(int(model.output_shape[-1])):
        return quantize_tables_per_row(convert(converter(serve)))
    return convert(converter(serve, dynamic_range=mode == "dynamic"))


def quantize_tables_per_row(flatbuffer: bytes) -> bytes:
    """Every constant float32 2-D tensor a GATHER reads as its input 0 -> int8 rows, each with its own scale.

    The table tensor becomes int8 [rows, width] with per-axis quantization parameters (scale
    [rows] = ``row_scales``, zero point 0, quantizedDimension 0); a DEQUANTIZE inserted before its
    first reader writes a new float32 [rows, width] tensor, which every reader reads instead.
    """
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(flatbuffer))
    graph = model.subgraphs[0]
    tables = _gathered_tables(model, graph)
    for index in tables:
        _quantize_table(model, graph, index)
    if tables:
        _require_runtime(model, PER_CHANNEL_RUNTIME)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _gathered_tables(model, graph) -> list[int]:
    """Indices of the constant float32 2-D tensors GATHER ops read as input 0, in op order. The
    GATHER's axis does not matter: the whole table is dequantized before it."""
    tables = []
    for op in graph.operators:
        tensor = graph.tensors[op.inputs[0]]
        if (_builtin(model.operatorCodes[op.opcodeIndex]) == schema.BuiltinOperator.GATHER
                and tensor.type == schema.TensorType.FLOAT32 and len(tensor.shape) == 2
                and model.buffers[tensor.buffer].data is not None and int(op.inputs[0]) not in tables):
            tables.append(int(op.inputs[0]))
    return tables


def _quantize_table(model, graph, index: int) -> None:
    table = graph.tensors[index]
    weights = np.frombuffer(bytes(model.buffers[table.buffer].data), "<f4").reshape(table.shape)  # [rows, width]
    q, scale = row_scales(weights)
    dequantized = len(graph.tensors)
    graph.tensors.append(_float_twin(table))
    table.type, table.buffer = schema.TensorType.INT8, _own_buffer(graph, model, index)
    model.buffers[table.buffer].data = np.frombuffer(q.tobytes(), np.uint8)
    table.quantization = _per_row_parameters(scale)
    first = min(k for k, op in enumerate(graph.operators) if index in op.inputs)
    for op in graph.operators:
        op.inputs = np.where(op.inputs == index, dequantized, op.inputs).astype(np.int32)
    graph.operators.insert(first, _dequantize(model, index, dequantized))


def _own_buffer(graph, model, index: int) -> int:
    """The table's buffer, or a new one if another tensor shares it (its float data stays for that one)."""
    buffer = graph.tensors[index].buffer
    if sum(t.buffer == buffer for t in graph.tensors) == 1:
        return buffer
    model.buffers.append(schema.BufferT())
    return len(model.buffers) - 1


def _float_twin(table) -> "schema.TensorT":
    """A float32 tensor of the table's shape and no data (buffer 0 is the empty sentinel)."""
    twin = schema.TensorT()
    twin.name, twin.type, twin.buffer = table.name + b"/dequantized", schema.TensorType.FLOAT32, 0
    twin.shape, twin.hasRank = np.array(table.shape, np.int32), True
    return twin


def _per_row_parameters(scale: np.ndarray) -> "schema.QuantizationParametersT":
    """``scale`` [rows, 1] float32 -> per-axis parameters along dimension 0, zero points 0."""
    params = schema.QuantizationParametersT()
    params.scale, params.zeroPoint = scale.ravel(), np.zeros(len(scale), np.int64)
    params.quantizedDimension = 0
    return params


def _dequantize(model, src: int, dst: int) -> "schema.OperatorT":
    op = schema.OperatorT()
    op.opcodeIndex = _opcode(model, schema.BuiltinOperator.DEQUANTIZE, DEQUANTIZE_PER_CHANNEL_VERSION)
    op.inputs, op.outputs = np.array([src], np.int32), np.array([dst], np.int32)
    return op


def _opcode(model, builtin: int, version: int) -> int:
    """Index of ``builtin``'s operator code, at least at ``version`` (added if missing)."""
    for k, code in enumerate(model.operatorCodes):
        if _builtin(code) == builtin:
            code.version = max(code.version, version)
            return k
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = builtin  # < 127: both fields hold it
    code.version = version
    model.operatorCodes.append(code)
    return len(model.operatorCodes) - 1


def _builtin(code) -> int:
    return max(code.builtinCode, code.deprecatedBuiltinCode)


def _require_runtime(model, version: str) -> None:
    """Raise the converter's ``min_runtime_version`` metadata (a NUL-padded string) to ``version``."""
    for entry in model.metadata or []:
        buffer = model.buffers[entry.buffer]
        if entry.name != MIN_RUNTIME_VERSION or buffer.data is None:
            continue
        old = bytes(buffer.data).rstrip(b"\0").decode()
        if _version(old) < _version(version):
            buffer.data = np.frombuffer(version.encode().ljust(len(buffer.data), b"\0"), np.uint8)


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))
