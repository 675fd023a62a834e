"""Run an exported model without TensorFlow: onnxruntime (``.onnx``) or LiteRT (``.tflite``).

Both backends take int32 ids ``[n, seq_len]`` (``Tokenizer.encode_batch``) and return float32
probabilities ``[n]``. Every failure to load or run a model -- missing, empty, corrupt or
wrongly shaped file, bad ids, a runtime error -- surfaces as ``BackendError`` with a one-line
message naming the file. This module must never import tensorflow or keras.

    backend = open_backend("model.tflite", threads=2)
    probs = backend.run(tokenizer.encode_batch(texts))  # [n] float32

``threads=None`` leaves the thread count to the runtime: onnxruntime uses one per core,
LiteRT one. ``run`` may be called from several threads (LiteRT calls are serialised).
"""
from __future__ import annotations

import os
import re
import threading

import numpy as np

from .embedding import onnx_table_rows, tflite_table_rows
from .errors import Failure
from .quiet import native_output

BACKENDS = ("onnx", "tflite")
_SUFFIX_BACKEND = {".onnx": "onnx", ".tflite": "tflite"}
_TFLITE_IDENTIFIER = b"TFL3"  # FlatBuffer file identifier of every .tflite file, at bytes 4..8
_QUANTIZED_OUTPUTS = (np.int8, np.uint8)
# Rows per model call: the embedding activations are [rows, seq_len, 16] float32, so 512 rows
# of 256 ids take 8 MiB (25k rows in one call would take 400 MiB, too much for a Pi).
MAX_BATCH = 512


class BackendError(Failure):
    """A model file cannot be opened or run; the message names the file and the problem."""


# -- which runtimes are installed ----------------------------------------------------------
def _onnxruntime():
    """The onnxruntime module, or None when it is not installed."""
    try:
        with native_output():  # its CPU-detection warnings print at import
            import onnxruntime
    except ImportError:
        return None
    return onnxruntime


def _interpreter_class():
    """LiteRT's Interpreter, or tflite_runtime's on devices that only have that, or None."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError:
            return None
    return Interpreter


def available_backends() -> list[str]:
    """Names of the backends whose runtime imports here, onnx first."""
    found = {"onnx": _onnxruntime() is not None, "tflite": _interpreter_class() is not None}
    return [name for name in BACKENDS if found[name]]


def _has_tflite_identifier(model_file: str | os.PathLike) -> bool:
    try:
        with open(model_file, "rb") as f:
            return f.read(8)[4:8] == _TFLITE_IDENTIFIER
    except OSError:
        return False  # the backend then reports the missing or unreadable file


def resolve_backend(backend: str, model_file: str | os.PathLike | None = None) -> str:
    """Turn ``auto``/``onnx``/``tflite`` into a concrete backend name for ``model_file``.

    A ``.tflite`` file needs tflite and a ``.onnx`` file onnx: ``auto`` picks that, and an
    explicit name must match it. Otherwise ``auto`` picks tflite for a file carrying the TFL3
    identifier, else onnx when onnxruntime is installed, else tflite.
    """
    if backend != "auto" and backend not in BACKENDS:
        raise BackendError(f"unknown backend {backend!r}: choose one of auto, {', '.join(BACKENDS)}")
    suffix = "" if model_file is None else os.path.splitext(os.fspath(model_file))[1].lower()
    needed = _SUFFIX_BACKEND.get(suffix)
    if backend != "auto":
        if needed is not None and needed != backend:
            raise BackendError(f"{os.fspath(model_file)}: a {suffix} model needs the {needed} backend, "
                               f"not {backend}")
        return backend
    if needed is not None:
        return needed
    if model_file is not None and _has_tflite_identifier(model_file):
        return "tflite"
    if _onnxruntime() is not None:
        return "onnx"
    if _interpreter_class() is not None:
        return "tflite"
    raise BackendError("no inference runtime installed: pip install onnxruntime or ai-edge-litert")


# -- shared checks -------------------------------------------------------------------------
def _check_threads(threads, path: str) -> int | None:
    if threads is None:
        return None
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise BackendError(f"{path}: threads must be a positive integer or None, got {threads!r}")
    return int(threads)


def _read_model(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise BackendError(f"{path}: no such model file") from None
    except IsADirectoryError:
        raise BackendError(f"{path}: is a directory, not a model file") from None
    except OSError as e:
        raise BackendError(f"{path}: cannot read model file: {e.strerror}") from None
    if not data:
        raise BackendError(f"{path}: empty model file")
    return data


def _detail(error: Exception) -> str:
    """A runtime's error as one short line (onnxruntime prefixes '[ONNXRuntimeError] : 7 : X : ')."""
    text = re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ", "", str(error).strip())
    line = text.splitlines()[0] if text else type(error).__name__
    return line if len(line) <= 200 else line[:197] + "..."


def _shape_text(dims) -> str:
    """``['unk__22', 256]`` / ``[-1, 256]`` -> ``[?, 256]``."""
    return "[" + ", ".join(str(d) if isinstance(d, (int, np.integer)) and d >= 0 else "?" for d in dims) + "]"


class _Backend:
    """Input checks and batching shared by both runtimes; subclasses define ``_run_chunk``."""

    name = ""
    vocab_rows: int | None = None  # rows of the model's embedding table (None: not exposed)
    deterministic = False  # True: the same scores on every CPU (TfliteBackend's built-in kernels)

    def __init__(self, path: str | os.PathLike, seq_len: int):
        self.path = os.fspath(path)
        self._seq_len = seq_len

    @property
    def input_shape(self) -> tuple[None, int]:
        """``(None, seq_len)``: any number of rows of ``seq_len`` int32 ids."""
        return (None, self._seq_len)

    def run(self, ids: np.ndarray) -> np.ndarray:
        """int32 ids ``[n, seq_len]`` -> float32 probabilities ``[n]``."""
        ids = self._check_ids(ids)
        out = np.empty(len(ids), dtype=np.float32)
        for start in range(0, len(ids), MAX_BATCH):  # n == 0: the model is never called
            chunk = ids[start:start + MAX_BATCH]
            out[start:start + len(chunk)] = self._probs(self._run_chunk(chunk), len(chunk))
        return out

    def _check_ids(self, ids) -> np.ndarray:
        if not isinstance(ids, np.ndarray):
            raise BackendError(f"{self.path}: ids must be an int32 numpy array [n, {self._seq_len}], "
                               f"got {type(ids).__name__}")
        if ids.dtype != np.int32 or ids.ndim != 2 or ids.shape[1] != self._seq_len:
            raise BackendError(f"{self.path}: ids must be an int32 array [n, {self._seq_len}], "
                               f"got {ids.dtype} {_shape_text(ids.shape)}")
        if ids.size and (lowest := int(ids.min())) < 0:  # both runtimes would wrap them silently
            raise BackendError(f"{self.path}: ids must be non-negative, got {lowest}")
        return np.ascontiguousarray(ids)

    def _probs(self, out: np.ndarray, n: int) -> np.ndarray:
        """The model's ``[n, 1]`` (or ``[n]``) output as ``[n]`` float32."""
        if out.size != n or (out.ndim == 2 and out.shape[1] != 1) or out.ndim not in (1, 2):
            raise BackendError(f"{self.path}: model returned shape {_shape_text(out.shape)} "
                               f"for {n} rows, expected [{n}, 1]")
        return out.reshape(n).astype(np.float32, copy=False)

    def _run_chunk(self, ids: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path!r})"


# -- onnxruntime ---------------------------------------------------------------------------
class OnnxBackend(_Backend):
    """An ``.onnx`` model on onnxruntime's CPU provider."""

    name = "onnx"

    def __init__(self, path: str | os.PathLike, threads: int | None = None):
        path = os.fspath(path)
        threads = _check_threads(threads, path)
        ort = _onnxruntime()
        if ort is None:
            raise BackendError(f"{path}: onnxruntime is not installed (pip install onnxruntime)")
        data = _read_model(path)
        opts = ort.SessionOptions()
        opts.log_severity_level = 4  # fatal only: errors reach the caller as BackendError
        opts.inter_op_num_threads = 1  # a single chain of ops: nothing to run side by side
        if threads is not None:
            opts.intra_op_num_threads = threads  # else onnxruntime picks (one per core)
        # Idle pool threads would otherwise busy-wait and steal the core the tokenizer needs
        # (measured: 25k reviews 5-9 s instead of 1.6 s on a loaded 2-core machine).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            with native_output():
                self._session = ort.InferenceSession(data, sess_options=opts,
                                                     providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime's errors (InvalidProtobuf, Fail, ...) derive from Exception
            raise BackendError(f"{path}: not a valid ONNX model: {_detail(e)}") from e
        self._input, self._output, seq_len = self._signature(path)
        super().__init__(path, seq_len)
        self.vocab_rows = onnx_table_rows(data)

    def _signature(self, path: str) -> tuple[str, str, int]:
        """Input name, output name and sequence length; the model must be int32 [batch, L] -> float."""
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1:
            raise BackendError(f"{path}: expected 1 input and 1 output, got {len(inputs)} and {len(outputs)}")
        inp, out = inputs[0], outputs[0]
        dims = list(inp.shape)
        dynamic_batch = len(dims) == 2 and not isinstance(dims[0], int)
        if inp.type != "tensor(int32)" or not dynamic_batch or not isinstance(dims[1], int) or dims[1] < 1:
            raise BackendError(f"{path}: input {inp.name!r} must be int32 [batch, seq_len] with a dynamic "
                               f"batch, got {inp.type[7:-1]} {_shape_text(dims)}")
        if out.type != "tensor(float)":
            raise BackendError(f"{path}: output {out.name!r} must be float32, got {out.type[7:-1]}")
        return inp.name, out.name, dims[1]

    def _run_chunk(self, ids: np.ndarray) -> np.ndarray:
        # A single row would take onnxruntime's matrix-vector kernel, whose sum order differs
        # from the matrix-matrix one (~2e-6 apart); doubling it keeps every row's probability
        # independent of the batch it came in.
        feed = np.repeat(ids, 2, axis=0) if len(ids) == 1 else ids
        try:
            return self._session.run([self._output], {self._input: feed})[0][:len(ids)]
        except Exception as e:  # e.g. an id past the embedding table
            raise BackendError(f"{self.path}: inference failed: {_detail(e)}") from e


# -- LiteRT --------------------------------------------------------------------------------
def _check_tflite_header(data: bytes, path: str) -> None:
    """Refuse what is plainly not a TFLite FlatBuffer before the interpreter parses it.

    Layout: uint32 offset of the root table, the identifier "TFL3", ...; the root table starts
    with an int32 back-offset to its vtable. LiteRT verifies the rest.
    """
    if len(data) < 8 or data[4:8] != _TFLITE_IDENTIFIER:
        raise BackendError(f"{path}: not a TFLite model (no TFL3 file identifier)")
    root = int.from_bytes(data[0:4], "little")
    if root < 8 or root + 4 > len(data):
        raise BackendError(f"{path}: corrupt TFLite model (root table offset {root} "
                           f"outside the {len(data)}-byte file)")
    vtable = root - int.from_bytes(data[root:root + 4], "little", signed=True)
    if vtable < 0 or vtable + 4 > len(data):
        raise BackendError(f"{path}: corrupt TFLite model (vtable offset {vtable} "
                           f"outside the {len(data)}-byte file)")


class TfliteBackend(_Backend):
    """A ``.tflite`` model on the LiteRT interpreter (float, or int8/uint8 output dequantized).

    ``deterministic=True``: LiteRT's built-in kernels only, without the XNNPACK delegate it
    applies by default on some CPUs; int8 scores are then the same on x86, ARM and TFLite Micro.
    """

    name = "tflite"

    def __init__(self, path: str | os.PathLike, threads: int | None = None, deterministic: bool = False):
        path = os.fspath(path)
        threads = _check_threads(threads, path)
        interpreter_class = _interpreter_class()
        if interpreter_class is None:
            raise BackendError(f"{path}: no TFLite runtime is installed (pip install ai-edge-litert)")
        data = _read_model(path)
        _check_tflite_header(data, path)
        kernels = {"experimental_op_resolver_type": _builtin_kernels()} if deterministic else {}
        try:
            with native_output():  # LiteRT announces its XNNPACK delegate on stderr
                self._interp = interpreter_class(model_content=data, num_threads=threads, **kernels)
                self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise BackendError(f"{path}: not a valid TFLite model: {_detail(e)}") from e
        inp, out, seq_len = self._signature(path)
        super().__init__(path, seq_len)
        self.vocab_rows = tflite_table_rows(self._interp)
        self.deterministic = deterministic
        self._in_index, self._out_index = inp["index"], out["index"]
        self._batch = int(inp["shape"][0])  # rows the tensors are allocated for
        self._dequant = None  # (scale, zero_point) of an int8/uint8 output
        self._lock = threading.Lock()  # one interpreter: a call from another thread waits
        if out["dtype"] in _QUANTIZED_OUTPUTS:
            scale, zero_point = out["quantization"]
            if not scale > 0:
                raise BackendError(f"{path}: {np.dtype(out['dtype']).name} output has no quantization scale")
            self._dequant = (np.float32(scale), np.float32(zero_point))

    @property
    def kernels(self) -> str:
        """``xnnpack`` when LiteRT handed the graph to its XNNPACK delegate on this CPU, else ``builtin``."""
        ops = getattr(self._interp, "_get_ops_details", list)()  # a delegated subgraph is one DELEGATE op
        return "xnnpack" if any(op.get("op_name") == "DELEGATE" for op in ops) else "builtin"

    def _signature(self, path: str) -> tuple[dict, dict, int]:
        """Input and output details and sequence length; int32 [batch, L] -> float32/int8/uint8."""
        inputs, outputs = self._interp.get_input_details(), self._interp.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise BackendError(f"{path}: expected 1 input and 1 output, got {len(inputs)} and {len(outputs)}")
        inp, out = inputs[0], outputs[0]
        dims = list(inp.get("shape_signature", inp["shape"]))
        if inp["dtype"] != np.int32 or len(dims) != 2 or dims[1] < 1:
            raise BackendError(f"{path}: input {inp['name']!r} must be int32 [batch, seq_len], "
                               f"got {np.dtype(inp['dtype']).name} {_shape_text(dims)}")
        if out["dtype"] not in (np.float32, *_QUANTIZED_OUTPUTS):
            raise BackendError(f"{path}: output {out['name']!r} must be float32, int8 or uint8, "
                               f"got {np.dtype(out['dtype']).name}")
        return inp, out, int(dims[1])

    def _run_chunk(self, ids: np.ndarray) -> np.ndarray:
        with self._lock:  # resize, set, invoke and read as one step
            return self._run_locked(ids)

    def _run_locked(self, ids: np.ndarray) -> np.ndarray:
        try:
            if len(ids) != self._batch:  # re-plan the tensors only when the row count changes
                self._batch = -1  # stays invalid if the resize fails halfway
                self._interp.resize_tensor_input(self._in_index, [len(ids), self._seq_len])
                self._interp.allocate_tensors()
                self._batch = len(ids)
            self._interp.set_tensor(self._in_index, ids)
            self._interp.invoke()
            out = self._interp.get_tensor(self._out_index)  # a copy
        except (ValueError, RuntimeError) as e:  # e.g. "gather index out of bounds"
            raise BackendError(f"{self.path}: inference failed: {_detail(e)}") from e
        if self._dequant is not None:
            scale, zero_point = self._dequant
            out = (out.astype(np.float32) - zero_point) * scale
        return out


def _builtin_kernels():
    """The op resolver "built-in kernels, no default delegates" of whichever LiteRT is installed."""
    try:
        from ai_edge_litert.interpreter import OpResolverType
    except ImportError:
        from tflite_runtime.interpreter import OpResolverType
    return OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES


def open_backend(path: str | os.PathLike, backend: str = "auto", threads: int | None = None,
                 deterministic: bool = False) -> OnnxBackend | TfliteBackend:
    """Open ``path`` on ``backend`` (``auto``, ``onnx`` or ``tflite``); see ``resolve_backend``.

    ``deterministic`` (tflite only): built-in kernels, the same int8 scores on every CPU.
    """
    name = resolve_backend(backend, path)
    if name == "onnx":
        if deterministic:
            raise BackendError(f"{os.fspath(path)}: deterministic kernels are a tflite backend option")
        return OnnxBackend(path, threads)
    return TfliteBackend(path, threads, deterministic)
