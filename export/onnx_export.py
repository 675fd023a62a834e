"""Keras model -> ONNX (float) and its 8-bit (dynamically quantized) twin.

Graph contract (checked by ``check_onnx``): input ``input_ids`` int32 ``[batch, maxlen]``,
output ``probability`` float32 ``[batch, 1]`` (two classes) or ``[batch, N]``, batch dimension
symbolic (``batch``).
"""
from __future__ import annotations

import hashlib
import os
import tempfile

import onnx
import tf2onnx
from onnx import helper, numpy_helper
from onnxruntime.quantization import QuantType, quantize_dynamic

from runtime.files import atomic_write_bytes

from .errors import ConversionError
from .row_quantization import per_row, row_scales
from .signature import INPUT_NAME, OUTPUT_NAME, model_maxlen, serving_function

DEFAULT_OPSET = 17
BATCH_DIM = "batch"
QUANTIZABLE_OP_TYPES = ("Gather", "MatMul")
# Only the embedding table (Gather, 160 000 of the 160 289 weights) is quantized by default.
# Quantizing the MatMuls too saves ~1 KB but makes the file *bigger* (DynamicQuantizeLinear
# nodes and scales), is less accurate, and makes scores batch-dependent: their activations
# are quantized with one scale per call, over the whole batch. Measured on the tutorial
# model trained on IMDB, 1000 test reviews, each scored alone vs in batches of 64:
#   Gather only:     |p - keras| max 9.4e-2, mean 1.0e-2; alone vs batch max 3e-6
#   Gather + MatMul: |p - keras| max 1.0e-1, mean 1.0e-2; alone vs batch max 3.6e-2
DEFAULT_QUANTIZED_OP_TYPES = ("Gather",)
# Weight type for MatMul kernels (Gather tables are always uint8 + zero point: onnxruntime
# quantizes them as activations, so this setting does not touch them). With MatMul quantized,
# QUInt8 measured marginally closer to Keras than QInt8 (max 1.02e-1 vs 1.03e-1).
WEIGHT_TYPE = QuantType.QUInt8

class OnnxExportError(ConversionError, ValueError):
    """An ONNX export produced a graph that breaks the input/output contract."""


def to_onnx(model, path: str | os.PathLike, opset: int = DEFAULT_OPSET) -> None:
    """Convert the Keras ``model`` to ONNX at ``path`` (checked, written atomically)."""
    if opset < DEFAULT_OPSET:
        raise OnnxExportError(f"opset must be >= {DEFAULT_OPSET}, got {opset}")
    # tf2onnx.convert.from_keras fails on Keras 3 models (KeyError 'keras_tensor_...': it
    # looks up Keras-2 tensor names). Tracing our own tf.function with a named int32
    # signature sidesteps that and fixes the input name and dtype.
    serve = serving_function(model)
    proto, _ = tf2onnx.convert.from_function(
        serve, input_signature=serve.input_signature, opset=opset)
    _name_batch_dim(proto)
    canonicalize(proto)
    check_onnx(proto, model_maxlen(model), int(model.output_shape[-1]))
    atomic_write_bytes(path, proto.SerializeToString(deterministic=True))


def _name_batch_dim(proto: onnx.ModelProto) -> None:
    """tf2onnx calls the unknown batch dimension ``unk__N``; give it one readable name."""
    for value in list(proto.graph.input) + list(proto.graph.output):
        dim = value.type.tensor_type.shape.dim[0]
        if not dim.HasField("dim_value"):
            dim.dim_param = BATCH_DIM


def canonicalize(proto: onnx.ModelProto) -> None:
    """Make the bytes depend on the graph alone, not on the converting process.

    Measured: tf2onnx names inserted nodes from a process-wide counter (``Less__6`` in one
    conversion, ``Less__27`` in the next), orders equal-rank nodes by those names, and writes the
    traced function's name (``__inference_serve_100``, another counter) into the graph's
    doc_string. So nodes are re-ordered topologically by their own content (op, attributes and
    inputs, an initializer known by its bytes), internal tensors and nodes are renamed ``t<k>`` /
    ``<op>_<k>`` and initializers ``w<k>`` in that order; the graph input and output keep their
    names. A graph with subgraphs (If/Loop) is left as it is; this model has none.
    """
    graph = proto.graph
    subgraph_types = (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
    if any(a.type in subgraph_types for node in graph.node for a in node.attribute):
        return
    graph.doc_string = ""
    inits = {t.name: t for t in graph.initializer}
    content = {name: _tensor_digest(t) for name, t in inits.items()}
    rename = {"": ""} | {v.name: v.name for v in list(graph.input) + list(graph.output)}
    ordered, used_inits = _order_nodes(graph, inits, content, rename)
    for k, node in enumerate(ordered):
        node.name = f"{node.op_type}_{k}"
        node.input[:] = [rename[i] for i in node.input]
        node.output[:] = [rename.get(o, o) for o in node.output]
    _rename_tensors(graph, inits, content, rename, used_inits)
    del graph.node[:]
    graph.node.extend(ordered)


def _order_nodes(graph, inits: dict, content: dict, rename: dict) -> tuple[list, list[str]]:
    """The nodes in a topological order decided by their content; fills ``rename`` for every
    internal tensor (``t<k>``) and used initializer (``w<k>``), in that order."""
    interface = set(rename)
    used_inits: list[str] = []

    def key(node):
        inputs = tuple(rename.get(i) or f"init:{content[i]}" for i in node.input)
        return (node.op_type, node.domain, inputs, b"".join(a.SerializeToString() for a in node.attribute))

    pending, ordered = list(graph.node), []
    while pending:
        ready = [n for n in pending if all(i in rename or i in inits for i in n.input)]
        if not ready:
            raise OnnxExportError("the ONNX graph has a cycle or an undefined input")
        node = min(ready, key=key)
        pending.remove(node)
        for name in node.input:
            if name not in rename:  # an initializer, first used here
                rename[name] = f"w{len(used_inits)}"
                used_inits.append(name)
        for name in node.output:
            if name not in interface:
                rename[name] = f"t{len(rename)}"
        ordered.append(node)
    return ordered, used_inits


def _rename_tensors(graph, inits: dict, content: dict, rename: dict, used_inits: list[str]) -> None:
    """Initializers in order of first use (unused ones last, by content) and value_info, renamed."""
    unused = sorted((n for n in inits if n not in rename), key=lambda n: content[n])
    tensors = [inits[n] for n in used_inits + unused]
    for n in unused:
        rename[n] = f"w{len(used_inits) + unused.index(n)}"
    for t in tensors:
        t.name = rename[t.name]
    graph.ClearField("initializer")
    graph.initializer.extend(tensors)
    infos = sorted((v for v in graph.value_info if v.name in rename), key=lambda v: rename[v.name])
    for v in infos:
        v.name = rename[v.name]
    graph.ClearField("value_info")
    graph.value_info.extend(infos)


def _tensor_digest(tensor: onnx.TensorProto) -> str:
    copy = onnx.TensorProto()
    copy.CopyFrom(tensor)
    copy.name = ""
    return hashlib.sha256(copy.SerializeToString(deterministic=True)).hexdigest()


def check_onnx(proto: onnx.ModelProto, maxlen: int, outputs: int) -> None:
    """Run the ONNX checker and verify the ``input_ids`` [batch, maxlen] -> ``probability``
    [batch, outputs] contract."""
    onnx.checker.check_model(proto)
    graph = proto.graph
    if len(graph.input) != 1 or len(graph.output) != 1:
        raise OnnxExportError(
            f"expected 1 input and 1 output, got {len(graph.input)} and {len(graph.output)}")
    _check_value(graph.input[0], INPUT_NAME, onnx.TensorProto.INT32, maxlen)
    _check_value(graph.output[0], OUTPUT_NAME, onnx.TensorProto.FLOAT, outputs)


def _check_value(value: onnx.ValueInfoProto, name: str, elem_type: int, width: int) -> None:
    tensor = value.type.tensor_type
    dims = [d.dim_value if d.HasField("dim_value") else d.dim_param for d in tensor.shape.dim]
    if value.name != name or tensor.elem_type != elem_type or dims != [BATCH_DIM, width]:
        raise OnnxExportError(
            f"ONNX {value.name!r} is {onnx.TensorProto.DataType.Name(tensor.elem_type)} {dims}, "
            f"expected {name!r} {onnx.TensorProto.DataType.Name(elem_type)} [{BATCH_DIM}, {width}]")


def quantize_onnx(src: str | os.PathLike, dst: str | os.PathLike,
                  op_types: tuple[str, ...] = DEFAULT_QUANTIZED_OP_TYPES) -> None:
    """Dynamic 8-bit quantization of the weights of ``op_types`` nodes of ``src`` into ``dst``.

    The default (Gather only) keeps results independent of the batch: see
    DEFAULT_QUANTIZED_OP_TYPES for the measurements. Gather tables of an N-class graph get a
    scale per row (quantize_tables_per_row; the rule and its figures: export.row_quantization).
    """
    unknown = set(op_types) - set(QUANTIZABLE_OP_TYPES)
    if not op_types or unknown:
        raise OnnxExportError(
            f"op_types must be a non-empty subset of {QUANTIZABLE_OP_TYPES}, got {tuple(op_types)}")
    src, dst = os.fspath(src), os.fspath(dst)
    proto = onnx.load(src)
    by_row = "Gather" in op_types and per_row(_width(proto.graph.output[0]))
    if by_row:
        quantize_tables_per_row(proto)
        canonicalize(proto)
    dynamic = tuple(t for t in op_types if not (by_row and t == "Gather"))
    if dynamic:
        proto = _quantize_dynamic(proto if by_row else src, dynamic, dst)
    check_onnx(proto, _width(proto.graph.input[0]), _width(proto.graph.output[0]))
    missing = set(op_types) - quantized_op_types(proto)
    if missing:
        raise OnnxExportError(f"quantization left {sorted(missing)} weights in float")
    atomic_write_bytes(dst, proto.SerializeToString(deterministic=True))


def _quantize_dynamic(model: "onnx.ModelProto | str", op_types: tuple[str, ...], dst: str) -> onnx.ModelProto:
    """onnxruntime's dynamic quantization of ``op_types`` (one scale per weight tensor) of a model
    file, or of a rewritten graph (written to a temp file first: quantize_dynamic takes paths)."""
    with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(dst))) as tmp:
        out = os.path.join(tmp, "quantized.onnx")
        if not isinstance(model, str):
            onnx.save(model, os.path.join(tmp, "float.onnx"))
            model = os.path.join(tmp, "float.onnx")
        quantize_dynamic(model, out, op_types_to_quantize=list(op_types), weight_type=WEIGHT_TYPE)
        return onnx.load(out)


def quantize_tables_per_row(proto: onnx.ModelProto) -> None:
    """Every 2-D float table a Gather (axis 0) reads -> int8 rows, each with its own scale.

    ``Gather(table, ids)`` becomes ``Cast(Gather(q, ids)) * Gather(scale, ids)``: q int8
    [rows, width], scale float32 [rows, 1] (symmetric: max |w| of the row / 127).
    """
    graph = proto.graph
    inits = {t.name: t for t in graph.initializer}
    nodes, replaced = [], set()
    for node in graph.node:
        table = inits.get(node.input[0]) if node.op_type == "Gather" else None
        axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
        if table is None or table.data_type != onnx.TensorProto.FLOAT or len(table.dims) != 2 or axis != 0:
            nodes.append(node)
            continue
        q, scale = row_scales(numpy_helper.to_array(table))
        out = name = node.output[0]  # the Mul writes the Gather's output; its inputs are named after it
        graph.initializer.extend([numpy_helper.from_array(q, f"{name}/q"),
                                  numpy_helper.from_array(scale, f"{name}/scale")])
        nodes += [helper.make_node("Gather", [f"{name}/q", node.input[1]], [f"{name}/q_rows"], axis=0),
                  helper.make_node("Cast", [f"{name}/q_rows"], [f"{name}/rows"], to=onnx.TensorProto.FLOAT),
                  helper.make_node("Gather", [f"{name}/scale", node.input[1]], [f"{name}/scales"], axis=0),
                  helper.make_node("Mul", [f"{name}/rows", f"{name}/scales"], [out])]
        replaced.add(table.name)
    del graph.node[:]
    graph.node.extend(nodes)
    still_read = {i for n in graph.node for i in n.input}
    kept = [t for t in graph.initializer if t.name not in replaced or t.name in still_read]
    graph.ClearField("initializer")
    graph.initializer.extend(kept)


def _width(value: onnx.ValueInfoProto) -> int:
    """The second dimension of a [batch, width] graph input or output."""
    return value.type.tensor_type.shape.dim[1].dim_value


def quantized_op_types(proto: onnx.ModelProto) -> set[str]:
    """Which of Gather/MatMul run on 8-bit weights in ``proto``.

    A quantized Gather reads a (u)int8 initializer (its output is then DequantizeLinear'd);
    a quantized MatMul becomes MatMulInteger (or DynamicQuantizeMatMul).
    """
    eight_bit = {onnx.TensorProto.INT8, onnx.TensorProto.UINT8}
    tables = {t.name for t in proto.graph.initializer if t.data_type in eight_bit}
    found = set()
    for node in proto.graph.node:
        if node.op_type == "Gather" and node.input[0] in tables:
            found.add("Gather")
        elif node.op_type in ("MatMulInteger", "DynamicQuantizeMatMul"):
            found.add("MatMul")
    return found
