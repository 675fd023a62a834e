"""Keras model -> TFLite flatbuffer (float, dynamic-range or full-integer int8).

The converter is fed a ``tf.function`` whose input signature is ``[None, maxlen]`` int32,
so the stored input shape is ``[1, maxlen]`` with ``shape_signature`` ``[-1, maxlen]``:
LiteRT can ``resize_tensor_input`` to any batch. The tensors are named ``input_ids`` and
``probability`` and a ``serving_default`` signature is added (the frozen-function route
below names the output ``Identity`` and writes no signature). The signature and the int8 set-up
are export/signature.py's, shared with ONNX and the micro model.
"""
from __future__ import annotations

import numpy as np

from .signature import SignatureError, check_calibration, convert, converter, int8_flatbuffer, model_maxlen, \
    serving_function

MODES = ("float", "dynamic", "int8")


class TFLiteExportError(SignatureError):
    """A TFLite conversion was asked with invalid arguments."""


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
    serve = serving_function(model)
    if mode == "int8":
        return int8_flatbuffer(serve, check_calibration(calibration_ids, model_maxlen(model)), int8_io)
    return convert(converter(serve, dynamic_range=mode == "dynamic"))
