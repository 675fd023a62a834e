"""Keras model -> TFLite flatbuffer (float, dynamic-range or full-integer int8).

The converter is fed a ``tf.function`` whose input signature is ``[None, maxlen]`` int32,
so the stored input shape is ``[1, maxlen]`` with ``shape_signature`` ``[-1, maxlen]``:
LiteRT can ``resize_tensor_input`` to any batch. The tensors are named ``input_ids`` and
``probability`` and a ``serving_default`` signature is added (the frozen-function route
below names the output ``Identity`` and writes no signature).
"""
from __future__ import annotations

import warnings
from typing import Iterator

import numpy as np
import tensorflow as tf
from tensorflow.lite.python import schema_py_generated as schema
from tensorflow.lite.tools import flatbuffer_utils

from .errors import ConversionError

MODES = ("float", "dynamic", "int8")
INPUT_NAME = "input_ids"
OUTPUT_NAME = "probability"

class TFLiteExportError(ConversionError, ValueError):
    """A TFLite conversion was asked with invalid arguments or produced an unexpected model."""


def model_maxlen(model) -> int:
    """Sequence length of the Keras model's ``[batch, maxlen]`` input."""
    shape = tuple(model.input_shape)
    if len(shape) != 2 or not shape[1]:
        raise TFLiteExportError(f"model input must be [batch, maxlen], got {shape}")
    return int(shape[1])


def serving_function(model) -> tf.types.experimental.PolymorphicFunction:
    """``input_ids`` [batch, maxlen] int32 -> ``{"probability": [batch, 1] float32}``."""
    spec = tf.TensorSpec([None, model_maxlen(model)], tf.int32, name=INPUT_NAME)

    @tf.function(input_signature=[spec])
    def serve(input_ids):
        return {OUTPUT_NAME: model(input_ids, training=False)}

    return serve


def to_tflite(model, mode: str = "float", calibration_ids: np.ndarray | None = None,
              int8_io: bool = False) -> bytes:
    """Convert ``model`` and return the flatbuffer bytes.

    ``float``: no quantization. ``dynamic``: int8 weights, float activations.
    ``int8``: full-integer, calibrated on ``calibration_ids`` (int32 [n, maxlen], n >= 1);
    the int32 ids stay int32, the output is float32 unless ``int8_io`` (then int8 with
    scale/zero point in the output's quantization parameters).
    """
    if mode not in MODES:
        raise TFLiteExportError(f"unknown TFLite mode {mode!r}; valid modes: {', '.join(MODES)}")
    if int8_io and mode != "int8":
        raise TFLiteExportError(f"int8_io=True needs mode 'int8', got {mode!r}")
    maxlen = model_maxlen(model)
    if mode == "int8":
        calibration_ids = _check_calibration(calibration_ids, maxlen)
    serve = serving_function(model)
    # trackable_obj must be the tf.function, not the Keras model: with a Keras 3 model the
    # converter goes through a SavedModel and keeps the weights as resource variables
    # (VAR_HANDLE/READ_VARIABLE) that are never initialised, so outputs are garbage and
    # int8 calibration fails. With the function it freezes the weights into constants.
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [serve.get_concrete_function()], serve)
    if mode in ("dynamic", "int8"):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "int8":
        converter.representative_dataset = lambda: _representative(calibration_ids)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        # inference_input_type only applies to float inputs: the int32 ids are left alone.
        converter.inference_output_type = tf.int8 if int8_io else tf.float32
    with warnings.catch_warnings():
        # int8 mode warns that the int32 ids have no calibration statistics: ids need none.
        warnings.filterwarnings("ignore", "Statistics for quantized inputs were expected")
        flatbuffer = converter.convert()
    return _rename_io(flatbuffer)


def _check_calibration(ids, maxlen: int) -> np.ndarray:
    if ids is None:
        raise TFLiteExportError("mode 'int8' needs calibration_ids (int32 [n, maxlen], n >= 1)")
    ids = np.asarray(ids)
    if ids.ndim != 2 or ids.shape[1] != maxlen or ids.shape[0] < 1:
        raise TFLiteExportError(f"calibration_ids must be [n >= 1, {maxlen}], got {list(ids.shape)}")
    if not np.issubdtype(ids.dtype, np.integer):
        raise TFLiteExportError(f"calibration_ids must be integer ids, got {ids.dtype}")
    return ids.astype(np.int32)


def _representative(ids: np.ndarray) -> Iterator[list[np.ndarray]]:
    for row in ids:
        yield [row[None, :]]  # [1, maxlen] int32, one review per calibration step


def _rename_io(flatbuffer: bytes) -> bytes:
    """Name the input/output tensors and add a ``serving_default`` signature, so that
    ``Interpreter.get_signature_runner()`` works by name."""
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(flatbuffer))
    graph = model.subgraphs[0]
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise TFLiteExportError(
            f"expected 1 input and 1 output, got {len(graph.inputs)} and {len(graph.outputs)}")
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
