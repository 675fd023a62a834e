"""Keep stderr to our own lines while TensorFlow, tf2onnx, onnxruntime's quantizer and LiteRT run.

Measured on ``python -m export all`` (TF 2.21, LiteRT 1.x): absl's "All log messages before
absl::InitializeLog()", oneDNN's ``I0000 ... port.cc`` notice, ``E0000 ... NodeDef mentions
attribute use_unbounded_threadpool``, the TFLite converter's ``fully_quantize: 0, ...``, LiteRT's
``INFO: Created TensorFlow Lite XNNPACK delegate for CPU.`` (all written by C++ straight to file
descriptor 2) and onnxruntime's Python ``WARNING:root:Please consider to run pre-processing``.
``TF_CPP_MIN_LOG_LEVEL`` alone does not catch the C++ ones printed before TF reads it, so the
quiet mode points descriptor 2 at /dev/null and gives Python's ``sys.stderr`` the real one.
"""
from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import sys
import warnings

from runtime.errors import MissingExtra

# What `pip install '<dist>[train]'` provides and the trainer/export steps import.
TRAIN_MODULES = ("tensorflow", "keras", "matplotlib")
EXPORT_MODULES = TRAIN_MODULES + ("tf2onnx", "onnx", "flatbuffers", "ai_edge_litert")


def check_extra(modules, extra: str = "train") -> None:
    """Raise ``MissingExtra`` naming ``extra`` when one of ``modules`` is not installed.

    ``find_spec`` looks the package up without importing it (importing TensorFlow takes seconds),
    so a runtime-only install fails before any data is read.
    """
    for module in modules:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ValueError, ImportError):  # a half-imported or broken package
            found = False
        if not found:
            raise MissingExtra(extra, module)


def quiet_env(verbose: bool) -> None:
    """Before TensorFlow is imported: its C++ log threshold (a user's own setting wins)."""
    if not verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        os.environ.setdefault("GRPC_VERBOSITY", "ERROR")


@contextlib.contextmanager
def quiet_native(verbose: bool):
    """Within the block, native code writing to fd 2 goes to /dev/null; our lines do not.

    Python's ``sys.stderr`` is re-pointed at a duplicate of the real stderr (when it is fd 2:
    under pytest's capsys it is not, and is left alone). Python warnings and log records below
    ERROR from other libraries are dropped too. ``verbose`` turns all of this off.
    """
    if verbose:
        yield
        return
    quiet_env(verbose)
    try:
        stream_is_fd2 = sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):
        stream_is_fd2 = False
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    old_stream = sys.stderr
    if stream_is_fd2:
        sys.stderr = os.fdopen(os.dup(saved), "w", buffering=1, encoding=old_stream.encoding,
                               errors=old_stream.errors)
    with _library_records_below_error_dropped():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                yield
        finally:
            if stream_is_fd2:
                sys.stderr.close()
                sys.stderr = old_stream
            os.dup2(saved, 2)
            os.close(saved)


@contextlib.contextmanager
def _library_records_below_error_dropped():
    """Log records under ERROR from other libraries' loggers are dropped; ours (``trainer``,
    ``export``: their own level and handler, see trainer.cli.log_to_stderr) still print. The
    root logger's level is what a library logger without its own inherits; the NullHandler
    stops a module-level ``logging.warning()`` (onnxruntime's quantizer) from configuring one."""
    root, null = logging.getLogger(), logging.NullHandler()
    level = root.level
    root.addHandler(null)
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)
        root.removeHandler(null)
