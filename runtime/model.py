"""``Classifier``: raw text in, class probabilities out, on onnxruntime (``.onnx``) or LiteRT (``.tflite``).

Never imports tensorflow or keras. Native libraries write to fd 2 from C, which ``sys.stderr``
cannot filter: loading runs inside ``native_output()``; fd 2 is process-wide, so never scoring.
"""
from __future__ import annotations

import importlib
import itertools
import os
import re
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Iterable, Iterator

import numpy as np

from .bundle import DEFAULT_MODELS, MANIFEST, MODEL_SUFFIXES, Bundle, BundleError, labels_file_lines
from .errors import Failure, UserError, one_line
from .files import redirected

BACKENDS = ("onnx", "tflite")
_SUFFIX_BACKEND = {".onnx": "onnx", ".tflite": "tflite"}
_TFLITE_IDENTIFIER = b"TFL3"  # FlatBuffer file identifier of every .tflite file, at bytes 4..8
DEFAULT_BATCH_SIZE = 256  # texts per id matrix: [256, maxlen] int32
# Rows per model call: the embedding activations are [rows, seq_len, 16] float32, so 512 rows
# of 256 ids take 8 MiB (25k rows in one call would take 400 MiB, too much for a Pi).
MAX_BATCH = 512
VERBOSE_ENV = "REVIEWKIT_VERBOSE"  # set by --verbose, inherited by worker processes
_LOCK = threading.RLock()  # fd 2 is one per process: captures take turns (and may nest)


class BackendError(Failure):
    """A model file cannot be opened or run; the message names the file and the problem."""


class ClassifierError(UserError):
    """A call that does not fit the bundle's labels (``predict`` or a threshold on N >= 3 of them)."""


def set_verbose(verbose: bool) -> None:
    """Show (True) or hide (False) native libraries' stderr output, here and in child processes."""
    if verbose:
        os.environ[VERBOSE_ENV] = "1"
    else:
        os.environ.pop(VERBOSE_ENV, None)


@contextmanager
def native_output() -> Iterator[None]:
    """Drop what native code writes to fd 2 inside the block, unless verbose."""
    if os.environ.get(VERBOSE_ENV, "") not in ("", "0"):
        yield
        return
    with _LOCK, tempfile.TemporaryFile() as sink, redirected(sink.fileno()):
        yield


class Classifier:
    """``Classifier.load().predict(["a great film"])`` -> ``array([0.93], dtype=float32)`` (docs/cli.md)."""

    def __init__(self, bundle: Bundle, model: str, backend: "OnnxBackend | TfliteBackend", batch_size: int):
        _check_fits(bundle, backend)
        self.bundle = bundle
        self.model = model
        self.backend_name = backend.name
        self.predict_ids = backend.run  # [n, maxlen] int32 ids -> the model's float32 output: [n] or [n, N]
        self.deterministic = backend.deterministic
        self.tokenizer = bundle.tokenizer()
        self.batch_size = batch_size
        self.labels = bundle.labels
        self.num_classes = len(bundle.labels)
        self.threshold = bundle.threshold  # from this P(labels[1]) on, labels[1]; None for N >= 3 (the arg-max)

    @classmethod
    def load(cls, path: str | os.PathLike | None = None, backend: str = "auto", model: str | None = None,
             threads: int | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
             deterministic: bool = False) -> "Classifier":
        """``deterministic``: TFLite's built-in kernels (``auto`` then means tflite), the same int8 scores anywhere."""
        if path is not None and os.path.isfile(path) and model is None:
            if not os.fspath(path).endswith(MODEL_SUFFIXES):
                raise BundleError(f"{path}: not a model file: give a bundle directory, or a "
                                  f"{' or '.join(MODEL_SUFFIXES)} file in one")
            model = os.path.basename(path)
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        bundle = Bundle.load(path)
        try:
            name = resolve_backend("tflite" if deterministic and backend == "auto" and model is None
                                   else backend, model)
            model = model or DEFAULT_MODELS[name]
            if model not in bundle.models:
                raise BundleError(f"{bundle.root}: no model {model!r} in this bundle "
                                  f"(it has: {', '.join(bundle.models) or 'none'})")
            runner = open_backend(bundle.path(model), name, threads, deterministic)
        except BackendError as e:
            raise BundleError(str(e)) from None
        return cls(bundle, model, runner, batch_size)

    def ref(self, threads: int | None = None) -> "ModelRef":
        """This model, on ``threads`` threads, for worker processes."""
        return ModelRef(self.bundle.root, self.backend_name, self.model, threads, self.batch_size, self.deterministic)

    def threshold_of(self, threshold: float | None) -> float | None:
        """The threshold to decide by: ``threshold`` (None: the manifest's); N-class bundles have none."""
        if threshold is not None and self.num_classes > 2:
            raise ClassifierError(f"a threshold (--threshold) is for two-class bundles; this bundle has "
                                  f"{self.num_classes} labels and predicts the arg-max")
        return self.threshold if threshold is None else threshold

    def predict(self, texts: Iterable[str]) -> np.ndarray:
        """Two-class bundles: the probability of ``labels[1]`` for each text, ``[n]`` float32, in input order."""
        if self.num_classes != 2:
            raise ClassifierError(f"predict() gives one probability per text for two-class bundles; this bundle "
                                  f"has {self.num_classes} labels: use predict_proba()")
        return self._scores(texts)

    def predict_proba(self, texts: Iterable[str]) -> np.ndarray:
        """``[n, N]`` float32, column i = P(labels[i]), in input order (two classes: ``[1 - p, p]``)."""
        scores = self._scores(texts)
        return np.stack([1 - scores, scores], axis=1) if scores.ndim == 1 else scores

    def _scores(self, texts: Iterable[str]) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("predict() takes an iterable of texts; use predict_one() for a single text")
        items = iter(texts)
        batches = iter(lambda: list(itertools.islice(items, self.batch_size)), [])  # lazily: memory stays flat
        parts = [self.predict_ids(self.tokenizer.encode_batch(batch)) for batch in batches]
        empty = (0,) if self.num_classes == 2 else (0, self.num_classes)
        return np.concatenate(parts) if parts else np.zeros(empty, dtype=np.float32)

    def predict_one(self, text: str) -> float:
        return float(self.predict([text])[0])

    def classify(self, texts: Iterable[str], threshold: float | None = None) -> list[tuple[str, float]]:
        """``[(label, probability of that label), ...]``: by the threshold (None: the manifest's) or the arg-max."""
        scores = self.predict_proba(texts)
        index = predicted(scores, self.threshold_of(threshold))
        chosen = scores[np.arange(len(scores)), index].tolist()
        return [(self.labels[i], p) for i, p in zip(index.tolist(), chosen)]


def _check_fits(bundle: Bundle, runner: "OnnxBackend | TfliteBackend") -> None:
    """The model takes the manifest's ``maxlen`` ids and gives one score per line of labels.txt."""
    maxlen, path = bundle.spec.maxlen, runner.path
    if list(runner.input_shape)[1:] != [maxlen]:
        raise BundleError(f"{path}: model input shape {list(runner.input_shape)} does not take {maxlen} ids per review")
    dims, width = runner.output_shape, len(labels_file_lines(bundle.labels))  # one score per line of labels.txt
    declared = 1 if len(dims) == 1 else dims[1] if len(dims) == 2 else None
    if isinstance(declared, (int, np.integer)) and declared > 0 and declared != width:  # else scoring checks it
        raise BundleError(f"{path}: model output shape {_shape_text(dims)} does not fit the {len(bundle.labels)} "
                          f"labels of {MANIFEST} (expected [?, {width}])")


def predicted(scores: np.ndarray, threshold: float | None) -> np.ndarray:
    """The class index of each row of ``[n, N]`` scores: two classes 1 from ``threshold`` on (compared
    in float64, as the probability is written), N >= 3 the arg-max (ties: the lowest index)."""
    if scores.shape[1] == 2:
        return (scores[:, 1].astype(np.float64) >= threshold).astype(np.int64)
    return np.argmax(scores, axis=1)


@dataclass(frozen=True)
class ModelRef:
    """A resolved, verified model as the picklable arguments of ``Classifier.load``: what a worker loads again."""
    path: str | None = None  # None: the bundled model
    backend: str = "auto"
    model: str | None = None
    threads: int | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    deterministic: bool = False

    def load(self) -> Classifier:
        return Classifier.load(**asdict(self))


# Per backend: the modules that can run its models, the first importable one used (tflite_runtime
# on devices that only have that), and what to install when there is none.
_RUNTIMES = {"onnx": (("onnxruntime",), "onnxruntime is not installed (pip install onnxruntime)"),
             "tflite": (("ai_edge_litert.interpreter", "tflite_runtime.interpreter"),
                        "no TFLite runtime is installed (pip install ai-edge-litert)")}


def _runtime(backend: str):  # the module, or None
    for module in _RUNTIMES[backend][0]:
        try:
            with native_output():  # onnxruntime's CPU-detection warnings print at import
                return importlib.import_module(module)
        except ImportError:
            pass
    return None


def resolve_backend(backend: str, model_file: str | os.PathLike | None = None) -> str:
    """``auto``/``onnx``/``tflite`` as a backend name for ``model_file``: its suffix decides (an explicit
    name must match it); else ``auto`` is tflite for a TFL3 file, onnx if installed, else tflite."""
    if backend != "auto" and backend not in BACKENDS:
        raise BackendError(f"unknown backend {backend!r}: choose one of auto, {', '.join(BACKENDS)}")
    suffix = "" if model_file is None else os.path.splitext(os.fspath(model_file))[1].lower()
    needed = _SUFFIX_BACKEND.get(suffix)
    if needed is not None and backend not in ("auto", needed):
        raise BackendError(f"{os.fspath(model_file)}: a {suffix} model needs the {needed} backend, not {backend}")
    if needed is not None or backend != "auto":
        return needed or backend
    if model_file is not None and _is_tflite(model_file):
        return "tflite"
    for name in BACKENDS:  # onnx first
        if _runtime(name) is not None:
            return name
    raise BackendError("no inference runtime installed: pip install onnxruntime or ai-edge-litert")


def _is_tflite(model_file: str | os.PathLike) -> bool:
    try:
        with open(model_file, "rb") as f:
            return f.read(8)[4:8] == _TFLITE_IDENTIFIER
    except OSError:
        return False  # the backend then reports the missing or unreadable file


def open_backend(path: str | os.PathLike, backend: str = "auto", threads: int | None = None,
                 deterministic: bool = False) -> "OnnxBackend | TfliteBackend":
    """Open ``path`` on ``backend`` (see ``resolve_backend``); ``threads=None`` leaves the count to the
    runtime (onnxruntime: one per core, LiteRT: one); ``deterministic``: see ``TfliteBackend``."""
    name = resolve_backend(backend, path)
    if name == "onnx":
        if deterministic:
            raise BackendError(f"{os.fspath(path)}: deterministic kernels are a tflite backend option")
        return OnnxBackend(path, threads)
    return TfliteBackend(path, threads, deterministic)


def _opened(path: str | os.PathLike, threads, backend: str) -> tuple:
    """(path, threads, the module that runs ``backend``, the model file's bytes), checked in this order."""
    path = os.fspath(path)
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1):
        raise BackendError(f"{path}: threads must be a positive integer or None, got {threads!r}")
    runtime = _runtime(backend)
    if runtime is None:
        raise BackendError(f"{path}: {_RUNTIMES[backend][1]}")
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
    return path, None if threads is None else int(threads), runtime, data


def _one_each(path: str, inputs: list, outputs: list) -> tuple:  # (the input, the output)
    if len(inputs) != 1 or len(outputs) != 1:
        raise BackendError(f"{path}: expected 1 input and 1 output, got {len(inputs)} and {len(outputs)}")
    return inputs[0], outputs[0]


def _detail(error: Exception) -> str:
    """A runtime's error as one short line (onnxruntime prefixes '[ONNXRuntimeError] : 7 : X : ')."""
    return one_line(re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ", "", str(error).strip()) or error, 200)


def _shape_text(dims) -> str:
    """``['unk__22', 256]`` / ``[-1, 256]`` -> ``[?, 256]``."""
    return "[" + ", ".join(str(d) if isinstance(d, (int, np.integer)) and d >= 0 else "?" for d in dims) + "]"


class _Backend:
    """Input checks and batching shared by both runtimes; subclasses define ``_run_chunk(ids)``."""

    deterministic = False  # True: the same scores on every CPU (TfliteBackend's built-in kernels)

    def __init__(self, path: str, seq_len: int, output_shape: list):
        self.path = path
        self._seq_len = seq_len
        self.input_shape = (None, seq_len)  # any number of rows of seq_len int32 ids
        self.output_shape = output_shape  # as the model declares it: [batch] or [batch, N]

    def run(self, ids: np.ndarray) -> np.ndarray:
        """int32 ids ``[n, seq_len]`` -> float32 ``[n]`` (one output) or ``[n, N]``; thread-safe."""
        ids = self._check_ids(ids)
        chunks = (ids[start:start + MAX_BATCH] for start in range(0, len(ids), MAX_BATCH))
        parts = [self._probs(self._run_chunk(chunk), len(chunk)) for chunk in chunks]
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.float32)  # n == 0: the model is never called

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
        """The model's ``[n, 1]`` (or ``[n]``) output as ``[n]`` float32; ``[n, N]`` (N >= 2) as is."""
        if out.ndim == 2 and out.shape[0] == n and out.shape[1] >= 2:
            return out.astype(np.float32, copy=False)
        if out.size != n or (out.ndim == 2 and out.shape[1] != 1) or out.ndim not in (1, 2):
            raise BackendError(f"{self.path}: model returned shape {_shape_text(out.shape)} "
                               f"for {n} rows, expected [{n}, 1]")
        return out.reshape(n).astype(np.float32, copy=False)


class OnnxBackend(_Backend):
    """An ``.onnx`` model on onnxruntime's CPU provider."""

    name = "onnx"

    def __init__(self, path: str | os.PathLike, threads: int | None = None):
        path, threads, ort, data = _opened(path, threads, self.name)
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
                self._session = ort.InferenceSession(data, sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime's errors (InvalidProtobuf, Fail, ...) derive from Exception
            raise BackendError(f"{path}: not a valid ONNX model: {_detail(e)}") from e
        inp, out = _one_each(path, self._session.get_inputs(), self._session.get_outputs())
        dims = list(inp.shape)
        if (inp.type != "tensor(int32)" or len(dims) != 2 or isinstance(dims[0], int)
                or not isinstance(dims[1], int) or dims[1] < 1):
            raise BackendError(f"{path}: input {inp.name!r} must be int32 [batch, seq_len] with a dynamic "
                               f"batch, got {inp.type[7:-1]} {_shape_text(dims)}")
        if out.type != "tensor(float)":
            raise BackendError(f"{path}: output {out.name!r} must be float32, got {out.type[7:-1]}")
        self._input, self._output = inp.name, out.name
        super().__init__(path, dims[1], list(out.shape))

    def _run_chunk(self, ids: np.ndarray) -> np.ndarray:
        # A single row would take onnxruntime's matrix-vector kernel, whose sum order differs
        # from the matrix-matrix one (~2e-6 apart); doubling it keeps every row's probability
        # independent of the batch it came in.
        feed = np.repeat(ids, 2, axis=0) if len(ids) == 1 else ids
        try:
            return self._session.run([self._output], {self._input: feed})[0][:len(ids)]
        except Exception as e:  # e.g. an id past the embedding table
            raise BackendError(f"{self.path}: inference failed: {_detail(e)}") from e


class TfliteBackend(_Backend):
    """A ``.tflite`` model on LiteRT (int8/uint8 outputs dequantized). ``deterministic``: the built-in kernels
    only, not the XNNPACK delegate some CPUs get: the same int8 scores on x86, ARM and TFLite Micro."""

    name = "tflite"

    def __init__(self, path: str | os.PathLike, threads: int | None = None, deterministic: bool = False):
        path, threads, litert, data = _opened(path, threads, self.name)
        if data[4:8] != _TFLITE_IDENTIFIER:  # LiteRT's own message for junk says less
            raise BackendError(f"{path}: not a TFLite model (no TFL3 file identifier)")
        kernels = {}
        if deterministic:
            kernels["experimental_op_resolver_type"] = litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        try:
            with native_output():  # LiteRT announces its XNNPACK delegate on stderr
                self._interp = litert.Interpreter(model_content=data, num_threads=threads, **kernels)
                self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise BackendError(f"{path}: not a valid TFLite model: {_detail(e)}") from e
        inp, out = _one_each(path, self._interp.get_input_details(), self._interp.get_output_details())
        dims = list(inp.get("shape_signature", inp["shape"]))
        if inp["dtype"] != np.int32 or len(dims) != 2 or dims[1] < 1:
            raise BackendError(f"{path}: input {inp['name']!r} must be int32 [batch, seq_len], "
                               f"got {np.dtype(inp['dtype']).name} {_shape_text(dims)}")
        super().__init__(path, int(dims[1]), list(out.get("shape_signature", out["shape"])))
        self.deterministic = deterministic
        self._in_index, self._out_index = inp["index"], out["index"]
        self._batch = int(inp["shape"][0])  # rows the tensors are allocated for
        self._lock = threading.Lock()  # one interpreter: a call from another thread waits
        self._scale, self._zero_point = _dequantization(path, out)

    @property
    def kernels(self) -> str:
        """``xnnpack`` when LiteRT handed the graph to its XNNPACK delegate on this CPU, else ``builtin``."""
        ops = getattr(self._interp, "_get_ops_details", list)()  # a delegated subgraph is one DELEGATE op
        return "xnnpack" if any(op.get("op_name") == "DELEGATE" for op in ops) else "builtin"

    def _run_chunk(self, ids: np.ndarray) -> np.ndarray:
        try:
            with self._lock:  # resize, set, invoke and read as one step
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
        return (out.astype(np.float32) - self._zero_point) * self._scale  # float32 outputs: exactly as they are


def _dequantization(path: str, out: dict) -> tuple[np.float32, np.float32]:
    """(scale, zero_point) of an int8/uint8 output; (1, 0) for float32 (any other type is refused)."""
    if out["dtype"] == np.float32:
        return np.float32(1), np.float32(0)
    if out["dtype"] not in (np.int8, np.uint8):
        raise BackendError(f"{path}: output {out['name']!r} must be float32, int8 or uint8, "
                           f"got {np.dtype(out['dtype']).name}")
    scale, zero_point = out["quantization"]
    if not scale > 0:
        raise BackendError(f"{path}: {np.dtype(out['dtype']).name} output has no quantization scale")
    return np.float32(scale), np.float32(zero_point)
