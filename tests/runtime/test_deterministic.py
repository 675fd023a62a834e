"""``deterministic=True``: int8 TFLite on LiteRT's built-in kernels, the same scores everywhere.

By default LiteRT hands the graph to XNNPACK when the CPU supports it, and XNNPACK's int8
arithmetic rounds differently from the built-in kernels; which path runs depends on the CPU.
The built-in kernels alone give one answer per input: here it must not depend on the
interpreter, the thread count, the batch a review comes in or the process. (x86 vs arm64 is
checked by .ci/arm64; TFLite Micro vs the built-in kernels by the micro tests.)
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import numpy as np
import pytest

from runtime import Classifier
from runtime.model import BackendError, TfliteBackend, open_backend
from runtime.bundle import BundleError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SAMPLES = os.path.join(ROOT, "samples", "reviews.txt")
INT8 = os.path.join(ROOT, "runtime", "default_model", "model.int8.tflite")
INT8_STEP = 1 / 256  # the int8 output's resolution: probabilities in [0, 1] over 256 levels


@pytest.fixture(scope="module")
def ids(make_ids):
    """The samples plus random rows over the default model's vocabulary: [312, 256] int32."""
    clf = Classifier.load(backend="tflite")
    with open(SAMPLES, encoding="utf-8") as f:
        samples = clf.tokenizer.encode_batch(f.read().splitlines())
    return np.concatenate([samples, make_ids(300, 3, num_words=clf.tokenizer.num_words)])


def test_deterministic_scores_do_not_depend_on_interpreter_threads_or_batch(ids):
    first = open_backend(INT8, "tflite", threads=1, deterministic=True)
    second = open_backend(INT8, "tflite", threads=2, deterministic=True)
    reference = first.run(ids)
    np.testing.assert_array_equal(second.run(ids), reference)
    one_by_one = np.concatenate([first.run(ids[i:i + 1]) for i in range(0, len(ids), 7)])
    np.testing.assert_array_equal(one_by_one, reference[::7])
    assert first.deterministic and second.deterministic


def test_default_kernels_differ_from_deterministic_by_a_few_int8_steps_at_most(ids):
    # Measured on x86 (XNNPACK applied): 29 of these 312 rows differ, by 1 to 6 output steps
    # (max 0.023); on a CPU where LiteRT skips XNNPACK both paths are the built-in kernels.
    fixed = open_backend(INT8, "tflite", deterministic=True).run(ids)
    default = open_backend(INT8, "tflite").run(ids)
    assert not open_backend(INT8, "tflite").deterministic
    steps = np.abs(default - fixed) / INT8_STEP
    assert np.allclose(steps, np.round(steps), atol=1e-3)  # both on the same int8 output grid
    assert steps.max() <= 8 and np.mean(steps > 0) < 0.25


def test_classifier_deterministic_picks_tflite_and_refuses_onnx():
    clf = Classifier.load(deterministic=True)
    assert (clf.backend_name, clf.model, clf.deterministic) == ("tflite", "model.int8.tflite", True)
    assert not Classifier.load(backend="tflite").deterministic
    with pytest.raises(BundleError, match="deterministic kernels are a tflite backend option"):
        Classifier.load(backend="onnx", deterministic=True)
    with pytest.raises(BackendError, match="tflite backend option"):
        open_backend(os.path.join(ROOT, "runtime", "default_model", "model.onnx"), deterministic=True)
    assert isinstance(open_backend(INT8, deterministic=True), TfliteBackend)


def _cli(*args: str) -> list[dict]:
    run = subprocess.run([sys.executable, "-m", "runtime.predict", SAMPLES, "--format", "jsonl",
                          "--no-progress", *args], capture_output=True, text=True, cwd=ROOT, check=True)
    return [json.loads(line) for line in run.stdout.splitlines()]


def test_cli_deterministic_is_the_same_in_every_process_and_worker():
    single = _cli("--deterministic")
    assert _cli("--deterministic") == single
    assert _cli("--deterministic", "--workers", "2") == single
    with open(SAMPLES, encoding="utf-8") as f:
        expected = Classifier.load(deterministic=True).predict(f.read().splitlines())
    assert [row["probability"] for row in single] == [float(f"{p:.6f}") for p in expected]


def test_cli_deterministic_with_an_onnx_model_is_a_usage_error():
    run = subprocess.run([sys.executable, "-m", "runtime.predict", "--text", "good", "--deterministic",
                          "--backend", "onnx"], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.startswith("Error: ") and "deterministic" in run.stderr and "Traceback" not in run.stderr


def test_kernels_says_which_path_litert_took():
    assert open_backend(INT8, "tflite", deterministic=True).kernels == "builtin"
    default = open_backend(INT8, "tflite").kernels
    assert default in ("xnnpack", "builtin")
    if platform.machine() in ("x86_64", "AMD64"):  # every x86-64 CPU has what XNNPACK needs
        assert default == "xnnpack"
