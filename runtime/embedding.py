"""How many word ids a model's embedding table holds, read from the model itself.

A vocabulary with more words than the table would feed ids past its end (an error at best,
another row's vector at worst), so ``Classifier.load`` compares the two. The table is the
data (input 0) of the model's gather: ``[rows, dims]``. ``None`` means the model does not
expose it (no such gather): the check is then skipped.

ONNX is read with a minimal protobuf walker (the runtime has no ``onnx`` package; onnxruntime
does not expose initializer shapes). Field numbers from onnx.proto3: ModelProto.graph = 7;
GraphProto.node = 1, initializer = 5; NodeProto.input = 1, op_type = 4, attribute = 5;
AttributeProto.name = 1, i = 3; TensorProto.dims = 1, name = 8.
"""
from __future__ import annotations

from typing import Iterator

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5


def onnx_table_rows(model: bytes) -> int | None:
    """Rows of the smallest 2-D initializer gathered along axis 0 in the main graph, or None."""
    try:
        graph = next((v for f, w, v in _fields(memoryview(model)) if f == 7 and w == _LEN), None)
        if graph is None:
            return None
        shapes: dict[str, list[int]] = {}
        tables: list[str] = []
        for f, w, v in _fields(graph):
            if f == 5 and w == _LEN:
                name, dims = _tensor_name_dims(v)
                shapes[name] = dims
            elif f == 1 and w == _LEN:
                data = _gather_data(v)
                if data is not None:
                    tables.append(data)
        rows = [shapes[t][0] for t in tables if len(shapes.get(t, ())) == 2]
        return min(rows) if rows else None
    except (IndexError, ValueError):  # not the protobuf onnxruntime accepted: say nothing
        return None


def tflite_table_rows(interpreter) -> int | None:
    """Rows of the smallest 2-D params tensor of a GATHER op, or None.

    Uses the interpreter's op listing (``_get_ops_details``, present in LiteRT and
    tflite_runtime); without it the check is skipped.
    """
    ops = getattr(interpreter, "_get_ops_details", None)
    if ops is None:
        return None
    try:
        shapes = {t["index"]: list(t["shape"]) for t in interpreter.get_tensor_details()}
        rows = [shapes[op["inputs"][0]][0] for op in ops()
                if op.get("op_name") == "GATHER" and len(op.get("inputs", ())) == 2
                and len(shapes.get(op["inputs"][0], ())) == 2]
    except (KeyError, IndexError, TypeError, ValueError, RuntimeError):
        return None
    return int(min(rows)) if rows else None


def _gather_data(node: memoryview) -> str | None:
    """The data input's name of a ``Gather`` node along axis 0, else None."""
    inputs, op_type, axis = [], "", 0
    for f, w, v in _fields(node):
        if f == 1 and w == _LEN:
            inputs.append(bytes(v).decode("utf-8", "replace"))
        elif f == 4 and w == _LEN:
            op_type = bytes(v).decode("utf-8", "replace")
        elif f == 5 and w == _LEN:
            fields = {af: av for af, aw, av in _fields(v) if (af, aw) in ((1, _LEN), (3, _VARINT))}
            if bytes(fields.get(1, b"")) == b"axis":
                axis = _signed(fields.get(3, 0))
    return inputs[0] if op_type == "Gather" and axis == 0 and len(inputs) == 2 else None


def _tensor_name_dims(tensor: memoryview) -> tuple[str, list[int]]:
    name, dims = "", []
    for f, w, v in _fields(tensor):
        if f == 8 and w == _LEN:
            name = bytes(v).decode("utf-8", "replace")
        elif f == 1 and w == _VARINT:
            dims.append(_signed(v))
        elif f == 1 and w == _LEN:  # packed
            pos = 0
            while pos < len(v):
                value, pos = _varint(v, pos)
                dims.append(_signed(value))
    return name, dims


def _fields(buf: memoryview) -> Iterator[tuple[int, int, object]]:
    """``(field number, wire type, value)`` of one message: an int, or a memoryview for LEN."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == _VARINT:
            value, pos = _varint(buf, pos)
        elif wire == _LEN:
            length, pos = _varint(buf, pos)
            if pos + length > len(buf):
                raise ValueError("truncated field")
            value, pos = buf[pos:pos + length], pos + length
        elif wire in (_I64, _I32):
            value, pos = None, pos + (8 if wire == _I64 else 4)
        else:
            raise ValueError(f"wire type {wire}")
        yield field, wire, value


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _signed(value: int) -> int:
    """An int64 field's value (negative numbers are 10-byte two's complement varints)."""
    return value - (1 << 64) if value >= 1 << 63 else value
