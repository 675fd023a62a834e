"""The export steps and CLI on the tiny archive: every file, the manifest, failing parity."""
import json
import os
import shutil

import numpy as np
import pytest

from export.__main__ import main
from export.pipeline import ExportConfig, ExportError, export_all, step_verify
from runtime.bundle import Bundle
from runtime.files import sha256_file
from trainer.train import TrainConfig

FILES = ("model.keras", "model.onnx", "model.int8.onnx", "model.tflite", "model.dynamic.tflite",
         "model.int8.tflite", "vocab.txt", "labels.txt")


def _config(data, out, **kw):
    train = TrainConfig(data=data, epochs=80, batch_size=32, num_words=40, validation_size=50)
    return ExportConfig(out=str(out), train=train, mediapipe_samples=40, **kw)


@pytest.fixture(scope="module")
def exported(tiny_imdb_tar, tmp_path_factory):
    out = tmp_path_factory.mktemp("export")
    results = export_all(_config(tiny_imdb_tar, out), log=lambda m: None)
    return str(out), results


def test_all_writes_every_file_and_passes(exported):
    out, results = exported
    for name in FILES + ("manifest.json", "report.md", "loss.png", "accuracy.png"):
        assert os.path.getsize(os.path.join(out, name)) > 0, name
    assert [r.name for r in results] == ["model.onnx", "model.int8.onnx", "model.tflite", "model.dynamic.tflite",
                                         "model.int8.tflite", "mediapipe:model.tflite", "mediapipe:model.int8.tflite",
                                         "micro/model.tflite"]
    assert all(r.passed for r in results), [(r.name, r.failures) for r in results]
    assert open(os.path.join(out, "labels.txt")).read() == "positive\n"


def test_manifest_schema_and_hashes(exported):
    out, _ = exported
    manifest = json.load(open(os.path.join(out, "manifest.json")))
    assert manifest["format_version"] == 1
    assert set(manifest) >= {"created", "tools", "tokenizer", "labels", "threshold", "training", "verification", "files"}
    assert {"tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime", "ai-edge-litert"} <= set(manifest["tools"])
    tok = manifest["tokenizer"]
    assert tok["delim_pattern"] == r"(?:<br />|[^a-z0-9'])+" and tok["lowercase"] is True
    assert tok["maxlen"] == 256 and tok["special_tokens"] == {"<PAD>": 0, "<START>": 1, "<UNKNOWN>": 2, "<UNUSED>": 3}
    assert (tok["truncation"], tok["padding"]) == ("end", "end")
    assert manifest["labels"] == ["negative", "positive"] and manifest["threshold"] == 0.5
    assert set(manifest["files"]) == set(FILES)
    for name, entry in manifest["files"].items():
        path = os.path.join(out, name)
        assert entry == {"size": os.path.getsize(path), "sha256": sha256_file(path)}
    results = manifest["verification"]["results"]
    assert results["model.onnx"]["n"] == 200 and results["mediapipe:model.tflite"]["n"] == 40
    assert {"accuracy", "agreement", "max_abs_diff", "mean_abs_diff", "passed"} <= set(results["model.onnx"])
    assert manifest["training"]["config"]["num_words"] == 40
    Bundle.load(out)  # the runtime accepts it


def test_report_embeds_table_and_plots(exported):
    out, _ = exported
    report = open(os.path.join(out, "report.md")).read()
    assert "| model.int8.tflite " in report and "![loss](loss.png)" in report and "![accuracy](accuracy.png)" in report


def test_tampered_weight_fails_verify_with_exit_1(exported, tiny_imdb_tar, tmp_path, capsys):
    import onnx
    from onnx import numpy_helper

    out = str(tmp_path / "bundle")
    shutil.copytree(exported[0], out)
    proto = onnx.load(os.path.join(out, "model.onnx"))
    biggest = max(proto.graph.initializer, key=lambda t: np.prod(t.dims))  # the embedding table
    table = numpy_helper.to_array(biggest).copy()
    table += 0.5
    biggest.CopyFrom(numpy_helper.from_array(table, biggest.name))
    onnx.save(proto, os.path.join(out, "model.onnx"))

    code = main(["verify", "--out", out, "--data", tiny_imdb_tar, "--num-words", "40", "--validation-size", "50",
                 "--mediapipe-samples", "0"])
    captured = capsys.readouterr()
    assert code == 1
    assert "FAILED model.onnx: max |dp| " in captured.err and "> 1e-05" in captured.err
    row = next(line for line in captured.out.splitlines() if line.startswith("| model.onnx "))
    assert "FAIL: max |dp|" in row
    # every other format still passes, and the failure is recorded in the manifest
    assert captured.out.count("| PASS") == 4
    assert json.load(open(os.path.join(out, "manifest.json")))["verification"]["results"]["model.onnx"]["passed"] is False


def test_missing_model_is_a_clear_error(tmp_path, capsys):
    assert main(["onnx", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (f"Error: {tmp_path}: missing model.keras "
                                       "(run 'python -m export train' first or pass --model)\n")


def test_verify_without_models_is_a_clear_error(exported, tiny_imdb_tar, tmp_path):
    out = tmp_path / "b"
    out.mkdir()
    for name in ("model.keras", "vocab.txt"):
        shutil.copy(os.path.join(exported[0], name), out / name)
    with pytest.raises(ExportError, match="no exported model to verify"):
        step_verify(_config(tiny_imdb_tar, out), log=lambda m: None)


def test_all_with_model_copies_and_never_modifies_the_input(exported, tiny_imdb_tar, tmp_path):
    src = os.path.join(exported[0], "model.keras")
    before = sha256_file(src)
    cfg = _config(tiny_imdb_tar, tmp_path / "b", model=src, int8=False)
    results = export_all(cfg, log=lambda m: None)
    assert sha256_file(src) == before
    assert sha256_file(tmp_path / "b" / "model.keras") == before
    assert sorted(r.name for r in results) == ["mediapipe:model.tflite", "model.onnx", "model.tflite"]
    assert not (tmp_path / "b" / "model.int8.tflite").exists()


def test_package_copies_a_verified_subset(exported, tmp_path, capsys):
    dest = tmp_path / "default"
    assert main(["package", "--out", exported[0], "--dest", str(dest)]) == 0
    assert sorted(os.listdir(dest)) == ["labels.txt", "manifest.json", "model.int8.tflite", "model.onnx", "vocab.txt"]
    bundle = Bundle.load(dest)
    assert set(bundle.manifest["verification"]["results"]) == {"model.onnx", "model.int8.tflite",
                                                                "mediapipe:model.int8.tflite"}


def test_int8_io_model_is_dequantized_and_skips_mediapipe(exported, tiny_imdb_tar, tmp_path):
    from runtime import Classifier

    cfg = _config(tiny_imdb_tar, tmp_path / "b", model=os.path.join(exported[0], "model.keras"), int8_io=True)
    results = {r.name: r for r in export_all(cfg, log=lambda m: None)}
    assert "mediapipe:model.int8.tflite" not in results and "mediapipe:model.tflite" in results
    assert results["model.int8.tflite"].passed, results["model.int8.tflite"].failures
    clf = Classifier.load(tmp_path / "b", model="model.int8.tflite")
    assert clf._backend._dequant is not None  # an int8 output tensor, dequantized by the runtime
    probs = clf.predict(["great superb film", "awful dull film"])
    assert probs.dtype == np.float32 and probs[0] > 0.5 > probs[1]
