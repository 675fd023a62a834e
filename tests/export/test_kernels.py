"""The manifest's TFLite figures say which LiteRT kernels produced them (export.verify.kernel_figures)."""
from __future__ import annotations

import os

import numpy as np

from export import verify as V
from runtime.model import open_backend

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
INT8 = os.path.join(ROOT, "runtime", "default_model", "model.int8.tflite")


def test_kernel_figures_name_the_kernels_and_give_the_builtin_figures():
    ids = np.random.default_rng(5).integers(0, 10000, size=(200, 256), dtype=np.int32)  # [200, 256]
    builtin = open_backend(INT8, "tflite", deterministic=True).run(ids)
    labels = (builtin >= 0.5).astype(np.int32)
    figures = V.kernel_figures(INT8, ids, reference=builtin, labels=labels)
    assert figures["kernels"] == open_backend(INT8, "tflite").kernels
    if figures["kernels"] == "xnnpack":  # x86: the default path is not the reproducible one
        assert figures["builtin_kernels"] == {"agreement": 1.0, "max_abs_diff": 0.0, "accuracy": 1.0}
    else:
        assert set(figures) == {"kernels"}
