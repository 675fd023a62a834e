"""runtime.model on real tiny model files (built in conftest.py with TensorFlow)."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import types

import numpy as np
import pytest

import runtime.model as backends
from runtime.model import BackendError, OnnxBackend, TfliteBackend, open_backend, resolve_backend

MAXLEN = 256  # the tiny models' sequence length (conftest.py)
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FLOAT_MODELS = ("onnx", "tflite")
ALL_MODELS = ("onnx", "onnx_int8", "tflite", "tflite_dynamic", "tflite_int8", "tflite_int8_float_out")


def _message(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    return message


def _run_subprocess(code: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=REPO)
    return subprocess.run([sys.executable, "-c", code, *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


# -- agreement and batching ----------------------------------------------------------------
@pytest.mark.parametrize("threads", [None, 1, 2])
@pytest.mark.parametrize("kind", FLOAT_MODELS)
def test_float_models_agree_with_keras(tiny_models, kind, threads):
    backend = open_backend(getattr(tiny_models, kind), threads=threads)
    probs = backend.run(tiny_models.ids)
    assert probs.dtype == np.float32 and probs.shape == (len(tiny_models.ids),)
    np.testing.assert_allclose(probs, tiny_models.keras_probs, rtol=0, atol=1e-5)
    assert np.ptp(probs) > 0.3  # the model really separates rows: agreement is not trivial


def test_quantized_models_stay_close_to_keras(tiny_models):
    # Loose: quantization error belongs to the export; this catches a wrong dequantization.
    for kind in ("onnx_int8", "tflite_dynamic", "tflite_int8", "tflite_int8_float_out"):
        probs = open_backend(getattr(tiny_models, kind)).run(tiny_models.ids)
        assert np.abs(probs - tiny_models.keras_probs).max() < 0.1, kind


@pytest.mark.parametrize("kind", ALL_MODELS)
def test_rows_do_not_depend_on_the_batch(tiny_models, make_ids, kind):
    ids = make_ids(300, seed=5)
    backend = open_backend(getattr(tiny_models, kind))
    whole = backend.run(ids)
    assert whole.dtype == np.float32 and whole.shape == (300,)
    for batch in (1, 7, 300):
        parts = np.concatenate([backend.run(ids[i:i + batch]) for i in range(0, 300, batch)])
        np.testing.assert_array_equal(parts, whole, err_msg=f"batch {batch}")
    # More rows than MAX_BATCH go through in chunks, with the same result per row.
    many = np.concatenate([ids] * 4)
    assert len(many) > backends.MAX_BATCH
    np.testing.assert_array_equal(backend.run(many), np.tile(whole, 4))


@pytest.mark.parametrize("kind", FLOAT_MODELS)
def test_empty_batch_returns_empty_without_calling_the_model(tiny_models, kind, monkeypatch):
    backend = open_backend(getattr(tiny_models, kind))
    monkeypatch.setattr(backend, "_run_chunk", lambda ids: pytest.fail("model called"))
    out = backend.run(np.zeros((0, MAXLEN), np.int32))
    assert out.dtype == np.float32 and out.shape == (0,)


def test_tflite_reallocates_only_when_the_row_count_changes(tiny_models):
    backend = TfliteBackend(tiny_models.tflite)
    interp = backend._interp
    calls = []
    real_allocate = interp.allocate_tensors
    interp.allocate_tensors = lambda: (calls.append(1), real_allocate())[1]
    ids = tiny_models.ids
    first = backend.run(ids[:7])
    backend.run(ids[:7])
    backend.run(ids[7:14])
    assert len(calls) == 1
    backend.run(ids[:3])
    assert len(calls) == 2
    np.testing.assert_array_equal(backend.run(ids[:7]), first)
    assert len(calls) == 3


def test_int8_output_is_dequantized(tiny_models):
    from ai_edge_litert.interpreter import Interpreter

    ids = tiny_models.ids
    raw_interp = Interpreter(model_path=tiny_models.tflite_int8)
    raw_interp.resize_tensor_input(0, list(ids.shape))
    raw_interp.allocate_tensors()
    raw_interp.set_tensor(raw_interp.get_input_details()[0]["index"], ids)
    raw_interp.invoke()
    out = raw_interp.get_output_details()[0]
    assert out["dtype"] == np.int8
    scale, zero_point = out["quantization"]
    raw = raw_interp.get_tensor(out["index"]).reshape(-1)
    probs = TfliteBackend(tiny_models.tflite_int8).run(ids)
    assert probs.dtype == np.float32
    np.testing.assert_allclose(probs, (raw.astype(np.float32) - zero_point) * scale, rtol=0, atol=1e-7)
    # The float-output twin dequantizes inside the graph; it must land within one step.
    twin = TfliteBackend(tiny_models.tflite_int8_float_out).run(ids)
    assert np.abs(probs - twin).max() <= scale + 1e-7
    assert len(np.unique(raw)) > 10  # many distinct codes: not a constant output


@pytest.mark.parametrize("kind", FLOAT_MODELS)
def test_input_shape_and_name(tiny_models, kind):
    backend = open_backend(getattr(tiny_models, kind))
    assert backend.input_shape == (None, MAXLEN)
    assert backend.name == kind
    assert isinstance(backend, OnnxBackend if kind == "onnx" else TfliteBackend)


# -- backend names -------------------------------------------------------------------------
def test_auto_resolution(tiny_models, tmp_path):
    assert resolve_backend("auto") == "onnx"
    assert resolve_backend("auto", "model.onnx") == "onnx"
    assert resolve_backend("auto", "model.tflite") == "tflite"
    assert resolve_backend("auto", "MODEL.TFLITE") == "tflite"
    assert resolve_backend("tflite", "model.tflite") == "tflite"
    assert resolve_backend("onnx", None) == "onnx"
    # No known suffix: a TFL3 FlatBuffer is tflite, anything else onnx.
    shutil.copy(tiny_models.tflite, tmp_path / "tflite.bin")
    shutil.copy(tiny_models.onnx, tmp_path / "onnx.bin")
    assert isinstance(open_backend(tmp_path / "tflite.bin"), TfliteBackend)
    assert isinstance(open_backend(tmp_path / "onnx.bin"), OnnxBackend)
    assert isinstance(open_backend(tiny_models.tflite, "auto"), TfliteBackend)


def test_auto_without_onnxruntime_falls_back_to_tflite(tiny_models, monkeypatch):
    real = backends._runtime
    monkeypatch.setattr(backends, "_runtime", lambda backend: None if backend == "onnx" else real(backend))
    assert resolve_backend("auto") == "tflite"
    assert resolve_backend("auto", "model.bin") == "tflite"
    with pytest.raises(BackendError) as e:
        open_backend(tiny_models.onnx)
    assert _message(e) == f"{tiny_models.onnx}: onnxruntime is not installed (pip install onnxruntime)"
    monkeypatch.setattr(backends, "_runtime", lambda backend: None)
    with pytest.raises(BackendError) as e:
        resolve_backend("auto")
    assert _message(e) == "no inference runtime installed: pip install onnxruntime or ai-edge-litert"
    with pytest.raises(BackendError) as e:
        open_backend(tiny_models.tflite)
    assert _message(e) == f"{tiny_models.tflite}: no TFLite runtime is installed (pip install ai-edge-litert)"


def test_falls_back_to_tflite_runtime(tiny_models, monkeypatch):
    from ai_edge_litert.interpreter import Interpreter

    fake = types.ModuleType("tflite_runtime.interpreter")
    fake.Interpreter = type("Interpreter", (Interpreter,), {})
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)  # import now fails
    monkeypatch.setitem(sys.modules, "tflite_runtime", types.ModuleType("tflite_runtime"))
    monkeypatch.setitem(sys.modules, "tflite_runtime.interpreter", fake)
    backend = open_backend(tiny_models.tflite)
    assert type(backend._interp) is fake.Interpreter
    np.testing.assert_allclose(backend.run(tiny_models.ids), tiny_models.keras_probs, rtol=0, atol=1e-5)


def test_bad_backend_name():
    with pytest.raises(BackendError) as e:
        resolve_backend("tensorflow", "model.onnx")
    assert _message(e) == "unknown backend 'tensorflow': choose one of auto, onnx, tflite"
    with pytest.raises(BackendError) as e:
        open_backend("model.onnx", backend="ONNX")
    assert _message(e) == "unknown backend 'ONNX': choose one of auto, onnx, tflite"


def test_backend_must_fit_the_suffix():
    with pytest.raises(BackendError) as e:
        open_backend("m/model.tflite", backend="onnx")
    assert _message(e) == "m/model.tflite: a .tflite model needs the tflite backend, not onnx"
    with pytest.raises(BackendError) as e:
        resolve_backend("tflite", "model.onnx")
    assert _message(e) == "model.onnx: a .onnx model needs the onnx backend, not tflite"


# -- threads and ids -----------------------------------------------------------------------
@pytest.mark.parametrize("threads", [0, -1, 1.5, True, "2"])
@pytest.mark.parametrize("kind", FLOAT_MODELS)
def test_threads_must_be_a_positive_int(tiny_models, kind, threads):
    path = getattr(tiny_models, kind)
    with pytest.raises(BackendError) as e:
        open_backend(path, threads=threads)
    assert _message(e) == f"{path}: threads must be a positive integer or None, got {threads!r}"


def test_threads_accepts_numpy_ints(tiny_models):
    assert open_backend(tiny_models.tflite, threads=np.int64(2)).run(tiny_models.ids[:2]).shape == (2,)


@pytest.mark.parametrize("kind", FLOAT_MODELS)
def test_ids_are_checked(tiny_models, kind):
    path = getattr(tiny_models, kind)
    backend = open_backend(path)
    cases = {
        "int64 [2, 256]": np.zeros((2, MAXLEN), np.int64),
        "float32 [2, 256]": np.zeros((2, MAXLEN), np.float32),
        "int32 [256]": np.zeros(MAXLEN, np.int32),
        "int32 [2, 128]": np.zeros((2, 128), np.int32),
        "int32 [1, 2, 256]": np.zeros((1, 2, MAXLEN), np.int32),
    }
    for got, ids in cases.items():
        with pytest.raises(BackendError) as e:
            backend.run(ids)
        assert _message(e) == f"{path}: ids must be an int32 array [n, 256], got {got}"
    with pytest.raises(BackendError) as e:
        backend.run([[0] * MAXLEN])
    assert _message(e) == f"{path}: ids must be an int32 numpy array [n, 256], got list"
    negative = tiny_models.ids[:2].copy()
    negative[1, 5] = -3
    with pytest.raises(BackendError) as e:
        backend.run(negative)
    assert _message(e) == f"{path}: ids must be non-negative, got -3"


@pytest.mark.parametrize("kind", FLOAT_MODELS)
def test_id_past_the_vocabulary_fails_cleanly(tiny_models, kind):
    path = getattr(tiny_models, kind)
    backend = open_backend(path)
    bad = tiny_models.ids[:3].copy()
    bad[2, 1] = 1_000_000
    with pytest.raises(BackendError) as e:
        backend.run(bad)
    assert _message(e).startswith(f"{path}: inference failed: ")
    # The backend is still usable afterwards, with the same batch size and another one.
    np.testing.assert_allclose(backend.run(tiny_models.ids[:3]), tiny_models.keras_probs[:3], atol=1e-5)
    np.testing.assert_allclose(backend.run(tiny_models.ids), tiny_models.keras_probs, atol=1e-5)


def test_non_contiguous_ids(tiny_models):
    ids = np.asfortranarray(tiny_models.ids)
    for kind in FLOAT_MODELS:
        probs = open_backend(getattr(tiny_models, kind)).run(ids[::2])
        np.testing.assert_allclose(probs, tiny_models.keras_probs[::2], rtol=0, atol=1e-5)


# -- bad files -----------------------------------------------------------------------------
@pytest.fixture
def junk(tmp_path):
    """Write ``data`` to ``tmp_path/name`` and return the path as a string."""
    def write(name: str, data: bytes) -> str:
        path = tmp_path / name
        path.write_bytes(data)
        return str(path)
    return write


RANDOM_BYTES = np.random.default_rng(0).bytes(4096)
TEXT = b"This film was great.\nNot a model at all.\n"


@pytest.mark.parametrize("suffix", [".onnx", ".tflite"])
def test_missing_empty_and_directory(tmp_path, junk, suffix):
    missing = str(tmp_path / f"missing{suffix}")
    with pytest.raises(BackendError) as e:
        open_backend(missing)
    assert _message(e) == f"{missing}: no such model file"
    empty = junk(f"empty{suffix}", b"")
    with pytest.raises(BackendError) as e:
        open_backend(empty)
    assert _message(e) == f"{empty}: empty model file"
    folder = tmp_path / f"folder{suffix}"
    folder.mkdir()
    with pytest.raises(BackendError) as e:
        open_backend(folder)
    assert _message(e) == f"{folder}: is a directory, not a model file"


@pytest.mark.parametrize("data", [RANDOM_BYTES, TEXT, b"TFL", b"\x00" * 64], ids=["random", "text", "short", "zeros"])
def test_non_tflite_file(junk, data):
    path = junk("model.tflite", data)
    with pytest.raises(BackendError) as e:
        open_backend(path)
    assert _message(e) == f"{path}: not a TFLite model (no TFL3 file identifier)"


def test_tflite_header_offsets_outside_the_file(junk):
    """LiteRT's own verifier refuses offsets outside the file (one line, no crash)."""
    path = junk("root.tflite", (1_000_000).to_bytes(4, "little") + b"TFL3" + bytes(8))
    with pytest.raises(BackendError) as e:
        open_backend(path)
    assert _message(e).startswith(f"{path}: not a valid TFLite model: ")
    path = junk("vtable.tflite", (8).to_bytes(4, "little") + b"TFL3" + (-5000).to_bytes(4, "little", signed=True))
    with pytest.raises(BackendError) as e:
        open_backend(path)
    assert _message(e).startswith(f"{path}: not a valid TFLite model: ")


@pytest.mark.parametrize("data", [RANDOM_BYTES, TEXT], ids=["random", "text"])
def test_non_onnx_file(junk, data):
    path = junk("model.onnx", data)
    with pytest.raises(BackendError) as e:
        open_backend(path)
    # The detail after the colon is onnxruntime's own words.
    assert _message(e).startswith(f"{path}: not a valid ONNX model: ")


def test_truncated_models_raise_in_a_clean_process(tiny_models, tmp_path):
    """Truncated files at many cut points fail as BackendError; the process survives."""
    paths = []
    for kind in ("onnx", "tflite", "tflite_int8"):
        data = open(getattr(tiny_models, kind), "rb").read()
        suffix = os.path.splitext(getattr(tiny_models, kind))[1]
        for cut in sorted({4, 8, 12, 64, len(data) // 4, len(data) // 2, len(data) - 16, len(data) - 1}):
            path = tmp_path / f"{kind}_{cut}{suffix}"
            path.write_bytes(data[:cut])
            paths.append(str(path))
    code = (
        "import json, sys\n"
        "import numpy as np\n"
        "from runtime.model import BackendError, open_backend\n"
        "out = {}\n"
        "for path in sys.argv[1:]:\n"
        "    try:\n"
        "        out[path] = open_backend(path).run(np.ones((2, 256), np.int32)).tolist()\n"
        "    except BackendError as e:\n"
        "        out[path] = str(e)\n"
        "print(json.dumps(out))\n")
    proc = _run_subprocess(code, *paths)
    assert proc.returncode == 0, proc.stderr[-2000:]
    messages = json.loads(proc.stdout.splitlines()[-1])
    assert sorted(messages) == sorted(paths)
    intact = open_backend(tiny_models.onnx).run(np.ones((2, 256), np.int32)).tolist()
    for path, message in messages.items():
        if path.endswith(".onnx"):
            # Protobuf has no length or checksum: a cut on a field boundary after the graph
            # (here the trailing 'ai.onnx.ml' opset import) is a valid, equivalent model.
            assert message == intact or message.startswith(f"{path}: not a valid ONNX model: "), message
        elif path.endswith("_4.tflite"):
            assert message == f"{path}: not a TFLite model (no TFL3 file identifier)"
        else:
            assert message.startswith(f"{path}: not a valid TFLite model: "), message


def _onnx_model(path: str, in_type: int, in_dims: list, out_type: int | None = None,
                outputs: int = 1) -> str:
    """x -> Cast(float) -> ReduceMean over axis 1 -> Cast(out_type) -> y (, y1 ...)."""
    import onnx
    from onnx import TensorProto, helper

    out_type = TensorProto.FLOAT if out_type is None else out_type
    nodes = [helper.make_node("Cast", ["x"], ["xf"], to=TensorProto.FLOAT),
             helper.make_node("ReduceMean", ["xf"], ["m"], axes=[1], keepdims=1)]
    names = [f"y{i}" if i else "y" for i in range(outputs)]
    nodes += [helper.make_node("Cast", ["m"], [name], to=out_type) for name in names]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("x", in_type, in_dims)],
        [helper.make_tensor_value_info(name, out_type, [in_dims[0], 1]) for name in names])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    with open(path, "wb") as f:
        f.write(model.SerializeToString())
    return path


def test_onnx_with_the_wrong_signature(tmp_path):
    from onnx import TensorProto

    def error(name, *args, **kwargs) -> str:
        path = _onnx_model(str(tmp_path / name), *args, **kwargs)
        with pytest.raises(BackendError) as e:
            open_backend(path)
        return _message(e).removeprefix(f"{path}: ")

    expect = "input 'x' must be int32 [batch, seq_len] with a dynamic batch, got "
    assert error("float.onnx", TensorProto.FLOAT, ["batch", 256]) == expect + "float [?, 256]"
    assert error("int64.onnx", TensorProto.INT64, ["batch", 256]) == expect + "int64 [?, 256]"
    assert error("rank3.onnx", TensorProto.INT32, ["batch", 256, 1]) == expect + "int32 [?, 256, 1]"
    assert error("fixed.onnx", TensorProto.INT32, [1, 256]) == expect + "int32 [1, 256]"
    assert error("dynseq.onnx", TensorProto.INT32, ["batch", "seq"]) == expect + "int32 [?, ?]"
    assert error("out.onnx", TensorProto.INT32, ["batch", 256],
                 TensorProto.INT64) == "output 'y' must be float32, got int64"
    assert error("two.onnx", TensorProto.INT32, ["batch", 256],
                 outputs=2) == "expected 1 input and 1 output, got 1 and 2"


def test_onnx_with_another_sequence_length_runs(tmp_path):
    from onnx import TensorProto

    path = _onnx_model(str(tmp_path / "len8.onnx"), TensorProto.INT32, ["batch", 8])
    backend = open_backend(path)
    assert backend.input_shape == (None, 8)
    ids = np.arange(24, dtype=np.int32).reshape(3, 8)
    np.testing.assert_allclose(backend.run(ids), ids.mean(axis=1), rtol=1e-6)
    with pytest.raises(BackendError) as e:
        backend.run(np.zeros((3, 256), np.int32))
    assert _message(e) == f"{path}: ids must be an int32 array [n, 8], got int32 [3, 256]"


def test_tflite_with_the_wrong_signature(tmp_path):
    import tensorflow as tf

    def convert(name, spec, fn):
        concrete = tf.function(fn, input_signature=[spec]).get_concrete_function()
        path = tmp_path / name
        path.write_bytes(tf.lite.TFLiteConverter.from_concrete_functions([concrete]).convert())
        with pytest.raises(BackendError) as e:
            open_backend(path)
        return _message(e).removeprefix(f"{path}: ")

    float_in = convert("float_in.tflite", tf.TensorSpec([None, 256], tf.float32, name="x"),
                       lambda x: tf.reduce_mean(x, axis=1, keepdims=True))
    assert re.fullmatch(r"input '[^']+' must be int32 \[batch, seq_len\], got float32 \[\?, 256\]", float_in)
    int_out = convert("int_out.tflite", tf.TensorSpec([None, 256], tf.int32, name="x"),
                      lambda x: tf.reduce_sum(x, axis=1, keepdims=True))
    assert re.fullmatch(r"output '[^']+' must be float32, int8 or uint8, got int32", int_out)


# -- no TensorFlow at run time -------------------------------------------------------------
def test_runtime_never_imports_tensorflow(tiny_models):
    code = (
        "import json, sys\n"
        "import numpy as np\n"
        "import runtime.model as b\n"
        "ids = np.array(json.loads(sys.argv[1]), dtype=np.int32)\n"
        "probs = [b.open_backend(p).run(ids).tolist() for p in sys.argv[2:]]\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tf_keras'))\n"
        "print(json.dumps({'probs': probs, 'heavy': heavy}))\n")
    ids = tiny_models.ids[:5]
    proc = _run_subprocess(code, json.dumps(ids.tolist()), tiny_models.onnx, tiny_models.tflite,
                           tiny_models.tflite_int8)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.splitlines()[-1])
    assert result["heavy"] == []
    for probs in result["probs"][:2]:
        np.testing.assert_allclose(probs, tiny_models.keras_probs[:5], rtol=0, atol=1e-5)
    np.testing.assert_array_equal(np.float32(result["probs"][2]),
                                  open_backend(tiny_models.tflite_int8).run(ids))


def test_every_model_of_an_exported_bundle_opens(tiny_bundle, tiny_trained):
    """The export pipeline's files (TFLite with metadata, ONNX float/int8) load and agree."""
    model, tok, texts, _ = tiny_trained
    ids = tok.encode_batch(texts[:50])
    keras_probs = np.asarray(model(ids, training=False)).reshape(-1)
    names = sorted(n for n in os.listdir(tiny_bundle) if n.endswith((".onnx", ".tflite")))
    assert len(names) == 5, names
    for name in names:
        probs = open_backend(os.path.join(tiny_bundle, name)).run(ids)
        tolerance = 0.1 if "int8" in name else 1e-5  # dynamic TFLite: weights under 1024 stay float
        assert np.abs(probs - keras_probs).max() <= tolerance, name
