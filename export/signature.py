"""The one signature every export traces and writes: int32 ``input_ids`` [batch, maxlen] ->
float32 ``probability`` [batch, 1] (two classes) or [batch, N], and the one full-integer int8 converter set-up.

ONNX, the TFLite files and the micro model all start from ``serving_function``; the two int8
TFLite models (``model.int8.tflite`` and the micro model) both come from ``int8_flatbuffer``,
so a quantization setting changes both or neither.
"""
from __future__ import annotations

import warnings
from typing import Callable

import numpy as np
import tensorflow as tf
from tensorflow.lite.python import schema_py_generated as schema
from tensorflow.lite.tools import flatbuffer_utils

from .errors import ConversionError

INPUT_NAME = "input_ids"
OUTPUT_NAME = "probability"


class SignatureError(ConversionError, ValueError):
    """A model, calibration set or converted graph that does not fit the signature."""


def model_maxlen(model) -> int:
    """Sequence length of the Keras model's ``[batch, maxlen]`` input."""
    shape = tuple(model.input_shape)
    if len(shape) != 2 or not shape[1]:
        raise SignatureError(f"model input must be [batch, maxlen], got {shape}")
    return int(shape[1])


def serving_function(model, batch: int | None = None, body: Callable | None = None):
    """``input_ids`` [batch, maxlen] int32 -> ``{"probability": [batch, 1 or N] float32}``, computed by
    ``body(ids)`` (default: the model itself). ``batch``: a fixed batch (TFLM does not resize)."""
    spec = tf.TensorSpec([batch, model_maxlen(model)], tf.int32, name=INPUT_NAME)
    body = body or (lambda ids: model(ids, training=False))

    @tf.function(input_signature=[spec])
    def serve(input_ids):
        return {OUTPUT_NAME: body(input_ids)}

    return serve


def check_calibration(ids, maxlen: int) -> np.ndarray:
    if ids is None:
        raise SignatureError("mode 'int8' needs calibration_ids (int32 [n, maxlen], n >= 1)")
    ids = np.asarray(ids)
    if ids.ndim != 2 or ids.shape[1] != maxlen or ids.shape[0] < 1:
        raise SignatureError(f"calibration_ids must be [n >= 1, {maxlen}], got {list(ids.shape)}")
    if not np.issubdtype(ids.dtype, np.integer):
        raise SignatureError(f"calibration_ids must be integer ids, got {ids.dtype}")
    return ids.astype(np.int32)


def converter(serve, dynamic_range: bool = False) -> "tf.lite.TFLiteConverter":
    # The tf.function, not the Keras model, as trackable_obj: with a Keras 3 model the converter
    # goes through a SavedModel and keeps the weights as resource variables (VAR_HANDLE /
    # READ_VARIABLE) that are never initialised, so outputs are garbage and int8 calibration
    # fails. With the function it freezes the weights into constants.
    conv = tf.lite.TFLiteConverter.from_concrete_functions([serve.get_concrete_function()], serve)
    if dynamic_range:
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    return conv


def int8_flatbuffer(serve, calibration_ids: np.ndarray, int8_output: bool = False) -> bytes:
    """Full-integer int8, calibrated one review at a time on ``calibration_ids`` (checked);
    the int32 ids stay int32, the output is float32 unless ``int8_output``. Named as ``rename_io``."""
    conv = converter(serve, dynamic_range=True)
    conv.representative_dataset = lambda: ([row[None, :]] for row in calibration_ids)  # [1, maxlen] each
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    # inference_input_type only applies to float inputs: the int32 ids are left alone.
    conv.inference_output_type = tf.int8 if int8_output else tf.float32
    return convert(conv)


def convert(conv) -> bytes:
    with warnings.catch_warnings():
        # int8 mode warns that the int32 ids have no calibration statistics: ids need none.
        warnings.filterwarnings("ignore", "Statistics for quantized inputs were expected")
        return rename_io(conv.convert())


def rename_io(flatbuffer: bytes) -> bytes:
    """Name the input/output tensors and add a ``serving_default`` signature, so that
    ``Interpreter.get_signature_runner()`` works by name (the frozen-function route names the
    output ``Identity`` and writes no signature)."""
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(flatbuffer))
    graph = model.subgraphs[0]
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise SignatureError(f"expected 1 input and 1 output, got {len(graph.inputs)} and {len(graph.outputs)}")
    graph.tensors[graph.inputs[0]].name = INPUT_NAME
    graph.tensors[graph.outputs[0]].name = OUTPUT_NAME
    signature = schema.SignatureDefT()
    signature.signatureKey = "serving_default"
    signature.subgraphIndex = 0
    signature.inputs = [_tensor_map(INPUT_NAME, graph.inputs[0])]
    signature.outputs = [_tensor_map(OUTPUT_NAME, graph.outputs[0])]
    model.signatureDefs = [signature]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _tensor_map(name: str, index: int):
    entry = schema.TensorMapT()
    entry.name, entry.tensorIndex = name, int(index)
    return entry
