"""The one rule for N-class embedding tables, shared by model.int8.onnx, model.dynamic.tflite and
the micro model: symmetric int8 with one float32 scale per table row.

With several close classes many reviews sit near a tie, and one scale for the whole table (set by
its largest weight) moves the arg-max of some of them; a scale per row keeps each word's
embedding to within half of its own step. Two-class graphs keep the converters' one scale per
table (today's bundles, byte for byte).
"""
from __future__ import annotations

import numpy as np

# Measured on the four star classes (docs/models.md), 25,000 test reviews, agreement with Keras,
# one scale per table -> per row (file sizes with metadata):
#   model.int8.onnx, tutorial --early-stopping 3: 96.28% -> 99.36% (159 -> 198 KiB).
#   model.dynamic.tflite (the converter's dynamic range -> export.tflite_export), tutorial
#   40 epochs: 97.89% -> 99.47%; --early-stopping 3: 99.27% -> 99.36%; --mask-padding 98.92% ->
#   99.47% (285 -> 324 KiB); --arch bigram 99.67% -> 99.73%, 4,385 -> 5,449 KiB: a 16-wide row
#   takes 16 + 4 bytes (its float32 scale) instead of 16.
#   Both files then score alike (the same rows; 25,000 reviews: arg-max equal, |diff| <= 1.6e-5).
PER_ROW_MIN_OUTPUTS = 3


def per_row(outputs: int) -> bool:
    """Whether a graph with ``outputs`` scores gets a scale per table row."""
    return outputs >= PER_ROW_MIN_OUTPUTS


def row_scales(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int8 rows and their float32 scales: [rows, width] -> ([rows, width] int8, [rows, 1] float32)."""
    peak = np.abs(table).max(axis=1, keepdims=True)
    scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    q = np.clip(np.rint(table / scale), -127, 127).astype(np.int8)
    return q, scale
