"""Keras model -> ONNX (float) and its dynamically quantized int8 twin.

Graph contract (checked by ``check_onnx``): input ``input_ids`` int32 ``[batch, maxlen]``,
output ``probability`` float32 ``[batch, 1]``, batch dimension symbolic (``batch``).
"""
from __future__ import annotations

import os
import tempfile

import onnx

from runtime.files import atomic_write_bytes

from .tflite_export import INPUT_NAME, OUTPUT_NAME, model_maxlen, serving_function

DEFAULT_OPSET = 17
BATCH_DIM = "batch"
# Ops whose weights the dynamic quantizer turns to 8 bit: the embedding table (Gather,
# ~99% of the bytes) and the two Dense kernels (MatMul).
QUANTIZED_OP_TYPES = ("Gather", "MatMul")


class OnnxExportError(ValueError):
    """An ONNX export produced a graph that breaks the input/output contract."""


def to_onnx(model, path: str | os.PathLike, opset: int = DEFAULT_OPSET) -> None:
    """Convert the Keras ``model`` to ONNX at ``path`` (checked, written atomically)."""
    import tf2onnx  # heavy (pulls TensorFlow); keep ``quantize_onnx`` importable without it

    if opset < DEFAULT_OPSET:
        raise OnnxExportError(f"opset must be >= {DEFAULT_OPSET}, got {opset}")
    # tf2onnx.convert.from_keras fails on Keras 3 models (KeyError 'keras_tensor_...': it
    # looks up Keras-2 tensor names). Tracing our own tf.function with a named int32
    # signature sidesteps that and fixes the input name and dtype.
    serve = serving_function(model)
    proto, _ = tf2onnx.convert.from_function(
        serve, input_signature=serve.input_signature, opset=opset)
    _name_batch_dim(proto)
    check_onnx(proto, model_maxlen(model))
    atomic_write_bytes(path, proto.SerializeToString())


def _name_batch_dim(proto: onnx.ModelProto) -> None:
    """tf2onnx calls the unknown batch dimension ``unk__N``; give it one readable name."""
    for value in list(proto.graph.input) + list(proto.graph.output):
        dim = value.type.tensor_type.shape.dim[0]
        if not dim.HasField("dim_value"):
            dim.dim_param = BATCH_DIM


def check_onnx(proto: onnx.ModelProto, maxlen: int) -> None:
    """Run the ONNX checker and verify the ``input_ids`` -> ``probability`` contract."""
    onnx.checker.check_model(proto)
    graph = proto.graph
    if len(graph.input) != 1 or len(graph.output) != 1:
        raise OnnxExportError(
            f"expected 1 input and 1 output, got {len(graph.input)} and {len(graph.output)}")
    _check_value(graph.input[0], INPUT_NAME, onnx.TensorProto.INT32, maxlen)
    _check_value(graph.output[0], OUTPUT_NAME, onnx.TensorProto.FLOAT, 1)


def _check_value(value: onnx.ValueInfoProto, name: str, elem_type: int, width: int) -> None:
    tensor = value.type.tensor_type
    dims = [d.dim_value if d.HasField("dim_value") else d.dim_param for d in tensor.shape.dim]
    if value.name != name or tensor.elem_type != elem_type or dims != [BATCH_DIM, width]:
        raise OnnxExportError(
            f"ONNX {value.name!r} is {onnx.TensorProto.DataType.Name(tensor.elem_type)} {dims}, "
            f"expected {name!r} {onnx.TensorProto.DataType.Name(elem_type)} [{BATCH_DIM}, {width}]")


def quantize_onnx(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Dynamic int8 quantization of the Gather table and MatMul kernels of ``src``.

    Weights are QUInt8 (see WEIGHT_TYPE). Activations feeding MatMul are quantized at run
    time with a scale computed over the whole input tensor (DynamicQuantizeLinear), so a
    review's probability can shift slightly with the other rows of its batch.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    src, dst = os.fspath(src), os.fspath(dst)
    with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(dst))) as tmp:
        out = os.path.join(tmp, "quantized.onnx")  # quantize_dynamic writes a path itself
        quantize_dynamic(src, out, op_types_to_quantize=list(QUANTIZED_OP_TYPES),
                         weight_type=getattr(QuantType, WEIGHT_TYPE))
        proto = onnx.load(out)
    check_onnx(proto, _input_width(proto))
    missing = set(QUANTIZED_OP_TYPES) - quantized_op_types(proto)
    if missing:
        raise OnnxExportError(f"quantization left {sorted(missing)} in float")
    atomic_write_bytes(dst, proto.SerializeToString())


WEIGHT_TYPE = "QUInt8"


def _input_width(proto: onnx.ModelProto) -> int:
    return proto.graph.input[0].type.tensor_type.shape.dim[1].dim_value


def quantized_op_types(proto: onnx.ModelProto) -> set[str]:
    """Float op types whose weights were quantized: Gather fed by a DequantizeLinear'd
    table counts as Gather, MatMulInteger/DynamicQuantizeMatMul count as MatMul."""
    dequantized = {n.output[0] for n in proto.graph.node if n.op_type == "DequantizeLinear"}
    found = set()
    for node in proto.graph.node:
        if node.op_type == "Gather" and node.input[0] in dequantized:
            found.add("Gather")
        elif node.op_type in ("MatMulInteger", "DynamicQuantizeMatMul"):
            found.add("MatMul")
    return found
