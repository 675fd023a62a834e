"""Keras model -> TFLite flatbuffer (float, dynamic-range or full-integer int8).

The converter is fed a ``tf.function`` whose input signature is ``[None, maxlen]`` int32,
so the stored input shape is ``[1, maxlen]`` with ``shape_signature`` ``[-1, maxlen]``:
LiteRT can ``resize_tensor_input`` to any batch. The tensors are named ``input_ids`` and
``probability`` and a ``serving_default`` signature is added (the frozen-function route
below names the output ``Identity`` and writes no signature). The signature and the int8 set-up
are export/signature.py's, shared with ONNX and the micro model.

Dynamic mode of an N-class graph (export.row_quantization) does not use the converter's dynamic-
range quantization, which stores the embedding table with one int8 scale: it converts to float and
reads each table as model.int8.onnx does, int8 rows gathered, cast to float and multiplied by
their own scales (gathered too): the file and LiteRT's memory hold the table in 8 bits plus a
float32 scale per row, and only the gathered rows are ever float. The other weights stay float
(the tutorial's dense layers: under the converter's 1,024-weight bar, which leaves them float too).
Measured with LiteRT 2.3.0 on the four star classes (another job loading the machine: +-20%),
1,024 test reviews, one thread, us per review at batch 1 / 64, default (XNNPACK) and built-in
kernels. Tutorial, 40 epochs: float 3.3 / 1.1 and
4.3 / 1.7; per row 4.5 / 2.3 and 5.7 / 3.2 (the three ops more). --arch bigram: float 13.7 / 9-14
and 15 / 10.5; per row 16.3 / 11-12 and 17.9 / 12.9; the scoring process peaks at 60 MiB RSS
(float), 50 MiB (per row). The per-axis DEQUANTIZE this replaced (the same scores, bit for bit)
ran as fast as float but filled a float copy of the table at the first invoke (bigram: 20-32 ms,
70 MiB RSS).
"""
from __future__ import annotations

import copy

import numpy as np
from tensorflow.lite.python import schema_py_generated as schema
from tensorflow.lite.tools import flatbuffer_utils

from .row_quantization import per_row, row_scales
from .signature import SignatureError, check_calibration, convert, converter, int8_flatbuffer, model_maxlen, \
    serving_function

MODES = ("float", "dynamic", "int8")
# Op versions of an int8 input (tflite/tools/versioning/op_version.cc): GATHER 2, CAST to float32 3,
# which LiteRT runs from 2.8.0 on (runtime_version.cc; the converter writes 2.8.0 for
# tf.cast(tf.gather(int8 table, ids), tf.float32)): written to the min_runtime_version metadata.
GATHER_INT8_VERSION = 2
CAST_INT8_VERSION = 3
INT8_CAST_RUNTIME = "2.8.0"
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
    """Every constant float32 2-D tensor only GATHERs (axis 0) read -> int8 rows, each with its own scale.

    ``GATHER(table, ids)`` becomes ``CAST(GATHER(q, ids)) * GATHER(scale, ids)``, as in
    model.int8.onnx: q int8 [rows, width] (the table tensor, no quantization parameters), scale
    float32 [rows, 1] = ``row_scales``. The MUL writes the GATHER's output tensor: the ops after
    it are untouched.
    """
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(flatbuffer))
    graph = model.subgraphs[0]
    tables = _gathered_tables(model, graph)
    for index, gathers in tables.items():
        scale = _quantize_table(model, graph, index)
        for gather in gathers:
            _scale_gathered_rows(model, graph, gather, scale)
    if tables:
        _require_runtime(model, INT8_CAST_RUNTIME)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _gathered_tables(model, graph) -> dict[int, list]:
    """Constant float32 2-D tensor index -> the GATHERs reading it, in op order. Only tensors that
    nothing else reads, gathered along axis 0 (whole rows: the scales are per row)."""
    readers: dict[int, list] = {}
    for op in graph.operators:
        for index in dict.fromkeys(int(i) for i in op.inputs if i >= 0):  # -1: an omitted input
            readers.setdefault(index, []).append(op)
    return {index: ops for index, ops in readers.items()
            if _constant_table(model, graph.tensors[index]) and all(_row_gather(model, op, index) for op in ops)}


def _constant_table(model, tensor) -> bool:
    return (tensor.type == schema.TensorType.FLOAT32 and len(tensor.shape) == 2
            and model.buffers[tensor.buffer].data is not None)


def _row_gather(model, op, index: int) -> bool:
    """Whether ``op`` is a GATHER of whole rows of tensor ``index``: its input 0, axis 0 (of 2)."""
    return (_builtin(model.operatorCodes[op.opcodeIndex]) == schema.BuiltinOperator.GATHER
            and int(op.inputs[0]) == index and getattr(op.builtinOptions, "axis", 0) in (0, -2))  # no options: axis 0


def _quantize_table(model, graph, index: int) -> int:
    """Table ``index`` -> int8 rows, in place; returns the index of its new scale tensor."""
    table = graph.tensors[index]
    weights = np.frombuffer(bytes(model.buffers[table.buffer].data), "<f4").reshape(table.shape)  # [rows, width]
    q, scale = row_scales(weights)
    table.type, table.buffer = schema.TensorType.INT8, _own_buffer(graph, model, index)
    table.quantization = None  # plain int8: the CAST reads the values as they are
    model.buffers[table.buffer].data = np.frombuffer(q.tobytes(), np.uint8)
    scales = _like(table, b"/scale", schema.TensorType.FLOAT32, width=1)  # [rows, 1]
    scales.buffer = len(model.buffers)
    model.buffers.append(schema.BufferT())
    model.buffers[-1].data = np.frombuffer(scale.astype("<f4").tobytes(), np.uint8)
    graph.tensors.append(scales)
    return len(graph.tensors) - 1


def _own_buffer(graph, model, index: int) -> int:
    """The table's buffer, or a new one if another tensor shares it (its float data stays for that one)."""
    buffer = graph.tensors[index].buffer
    if sum(t.buffer == buffer for t in graph.tensors) == 1:
        return buffer
    model.buffers.append(schema.BufferT())
    return len(model.buffers) - 1


def _scale_gathered_rows(model, graph, gather, scale: int) -> None:
    """``gather`` (now of int8 rows) -> it, a GATHER of tensor ``scale``, a CAST and a MUL into its output."""
    ids, out = int(gather.inputs[1]), int(gather.outputs[0])
    output = graph.tensors[out]  # float32 [.., width]
    q_rows = _append(graph, _like(output, b"/q_rows", schema.TensorType.INT8))
    rows = _append(graph, _like(output, b"/rows", schema.TensorType.FLOAT32))
    scales = _append(graph, _like(output, b"/scales", schema.TensorType.FLOAT32, width=1))  # [.., 1]: broadcast
    gather.opcodeIndex = _opcode(model, schema.BuiltinOperator.GATHER, GATHER_INT8_VERSION)
    gather.outputs = np.array([q_rows], np.int32)
    scale_gather = _operator(model, schema.BuiltinOperator.GATHER, [scale, ids], scales)
    scale_gather.builtinOptionsType, scale_gather.builtinOptions = (gather.builtinOptionsType,
                                                                    copy.copy(gather.builtinOptions))
    cast = _operator(model, schema.BuiltinOperator.CAST, [q_rows], rows, CAST_INT8_VERSION)
    mul = _operator(model, schema.BuiltinOperator.MUL, [rows, scales], out)
    mul.builtinOptionsType, mul.builtinOptions = schema.BuiltinOptions.MulOptions, schema.MulOptionsT()
    at = graph.operators.index(gather) + 1
    graph.operators[at:at] = [scale_gather, cast, mul]


def _like(tensor, suffix: bytes, dtype: int, width: int | None = None) -> "schema.TensorT":
    """A computed tensor (buffer 0, the empty sentinel) of ``tensor``'s shape, last dimension ``width`` if given."""
    like = schema.TensorT()
    like.name, like.type, like.buffer, like.hasRank = tensor.name + suffix, dtype, 0, tensor.hasRank
    like.shape, like.shapeSignature = _last(tensor.shape, width), _last(tensor.shapeSignature, width)
    return like


def _last(shape, width: int | None):
    """A copy of ``shape`` (None stays None), its last dimension set to ``width`` if given."""
    if shape is None:
        return None
    shape = np.array(shape, np.int32)
    if width is not None:
        shape[-1] = width
    return shape


def _append(graph, tensor) -> int:
    graph.tensors.append(tensor)
    return len(graph.tensors) - 1


def _operator(model, builtin: int, inputs: list[int], output: int, version: int = 1) -> "schema.OperatorT":
    op = schema.OperatorT()
    op.opcodeIndex = _opcode(model, builtin, version)
    op.inputs, op.outputs = np.array(inputs, np.int32), np.array([output], np.int32)
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
