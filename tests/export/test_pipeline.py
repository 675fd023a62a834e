"""The export steps and CLI on the tiny archive: every file, the manifest, failing parity."""
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from export.__main__ import main
from export.pipeline import ExportConfig, ExportError, export_all, step_verify
from runtime.bundle import Bundle
from runtime.files import sha256_file
from trainer.train import TrainConfig

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FILES = ("model.keras", "model.onnx", "model.int8.onnx", "model.tflite", "model.dynamic.tflite",
         "model.int8.tflite", "vocab.txt", "labels.txt")


def _config(data, out, **kw):
    train = TrainConfig(data=data, epochs=80, batch_size=32, num_words=40, validation_size=50)
    return ExportConfig(out=str(out), train=train, mediapipe_samples=40, **kw)


@pytest.fixture(scope="module")
def exported(tiny_imdb_tar, tmp_path_factory):
    out = tmp_path_factory.mktemp("export")
    results = export_all(_config(tiny_imdb_tar, out))
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
    assert set(manifest) >= {"created", "tools", "tokenizer", "labels", "threshold", "training", "verification",
                             "files"}
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
    assert "Every format also scores the edge rows (empty, whitespace only" in report


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

    code = main(["verify", "--out", out, "--data", tiny_imdb_tar,
                 "--mediapipe-samples", "0"])
    captured = capsys.readouterr()
    assert code == 1
    assert "FAILED model.onnx: max |dp| " in captured.err and "> 1e-05" in captured.err
    row = next(line for line in captured.out.splitlines() if line.startswith("| model.onnx "))
    assert "FAIL: max |dp|" in row
    # every other format still passes, and the failure is recorded in the manifest
    assert captured.out.count("| PASS") == 4
    results = json.load(open(os.path.join(out, "manifest.json")))["verification"]["results"]
    assert results["model.onnx"]["passed"] is False


def test_verify_fails_a_format_that_cannot_score_an_edge_row(exported, tiny_imdb_tar, tmp_path, monkeypatch, capsys):
    from export import verify as V

    class RefusesAnEmptyReview:  # as the full-integer bigram model's int8 DIV did
        def __init__(self, backend):
            self.backend = backend

        def run(self, ids):
            if int((ids != 0).sum()) == 1:
                raise RuntimeError("Node number 24 (DIV) failed to invoke.")
            return self.backend.run(ids)

    real = V.edge_backends
    monkeypatch.setattr(V, "edge_backends", lambda path: [
        (kind, RefusesAnEmptyReview(b) if path.endswith("model.int8.tflite") else b) for kind, b in real(path)])
    out = str(tmp_path / "bundle")
    shutil.copytree(exported[0], out)
    code = main(["verify", "--out", out, "--data", tiny_imdb_tar, "--mediapipe-samples", "0"])
    captured = capsys.readouterr()
    assert code == 1
    assert ("FAILED model.int8.tflite: the edge row empty (default kernels) cannot be scored: RuntimeError: "
            "Node number 24 (DIV) failed to invoke.; the edge row whitespace only (default kernels)") in captured.err
    assert captured.out.count("| PASS") == 4  # the other formats scored every edge row
    results = json.load(open(os.path.join(out, "manifest.json")))["verification"]["results"]
    assert len(results["model.int8.tflite"]["failures"]) == 6  # 3 rows x 2 kernels
    assert set(results["model.onnx"]["edge_rows"]["default kernels"]) == {
        "empty", "whitespace only", "'<br />' only", "one token", "maxlen+1 = 257 tokens"}


# Missing inputs, bad options, unknown data source: the error table in tests/test_errors.py.


def test_verify_without_models_is_a_clear_error(exported, tiny_imdb_tar, tmp_path):
    out = tmp_path / "b"
    out.mkdir()
    for name in ("model.keras", "vocab.txt"):
        shutil.copy(os.path.join(exported[0], name), out / name)
    with pytest.raises(ExportError, match="no exported model to verify"):
        step_verify(_config(tiny_imdb_tar, out))


def test_all_with_model_copies_and_never_modifies_the_input(exported, tiny_imdb_tar, tmp_path):
    src = os.path.join(exported[0], "model.keras")
    before = sha256_file(src)
    cfg = _config(tiny_imdb_tar, tmp_path / "b", model=src, int8=False)
    results = export_all(cfg)
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
    assert os.path.dirname(exported[0]) not in open(dest / "manifest.json", encoding="utf-8").read()  # builder paths
    assert bundle.manifest["verification"]["dataset"]["source"] == os.path.basename(
        Bundle.load(exported[0]).manifest["verification"]["dataset"]["source"])


def test_int8_io_model_is_dequantized_and_skips_mediapipe(exported, tiny_imdb_tar, tmp_path):
    from runtime import Classifier

    cfg = _config(tiny_imdb_tar, tmp_path / "b", model=os.path.join(exported[0], "model.keras"), int8_io=True)
    results = {r.name: r for r in export_all(cfg)}
    assert "mediapipe:model.int8.tflite" not in results and "mediapipe:model.tflite" in results
    assert results["model.int8.tflite"].passed, results["model.int8.tflite"].failures
    from ai_edge_litert.interpreter import Interpreter

    out = Interpreter(model_path=str(tmp_path / "b" / "model.int8.tflite")).get_output_details()[0]
    assert out["dtype"] in (np.int8, np.uint8)  # an int8 output tensor, dequantized by the runtime
    clf = Classifier.load(tmp_path / "b", model="model.int8.tflite")
    probs = clf.predict(["great superb film", "awful dull film"])
    assert probs.dtype == np.float32 and probs[0] > 0.5 > probs[1]


OUR_LINE = re.compile(r"^(loaded \d+ training|built a \d+-word|epoch +\d+/\d+ |test accuracy |wrote model\.|"
                      r"wrote .*/(micro|web)/:? |micro/model\.tflite: |model\.int8\.tflite: |"
                      r"reading IMDB reviews from |scoring |all \d+ checks passed; wrote )")


def _run(*args, **env):
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, **env, "IMDB_DATA": ""}, timeout=600)


@pytest.fixture(scope="module")
def maxlen_64(tiny_imdb_tar, tmp_path_factory):
    """``python -m export all --maxlen 64`` in a subprocess, as a user runs it."""
    out = str(tmp_path_factory.mktemp("maxlen64") / "bundle")
    proc = _run("export", "all", "--data", tiny_imdb_tar, "--out", out, "--maxlen", "64", "--epochs", "80",
                "--batch-size", "32", "--num-words", "40", "--validation-size", "50", "--mediapipe-samples", "40")
    return out, proc


def test_non_default_maxlen_goes_through_export_and_the_runtime(maxlen_64):
    from runtime import Classifier

    out, proc = maxlen_64
    assert proc.returncode == 0, proc.stderr
    manifest = json.load(open(os.path.join(out, "manifest.json")))
    assert manifest["tokenizer"]["maxlen"] == 64
    assert json.load(open(os.path.join(out, "tokenizer.json")))["maxlen"] == 64
    clf = Classifier.load(out)
    assert clf.tokenizer.maxlen == 64
    probs = clf.predict(["great superb film " * 40, "awful dull film " * 40])  # longer than 64 ids
    assert probs[0] > 0.5 > probs[1]
    for name in ("model.int8.tflite", "model.tflite"):
        assert Classifier.load(out, backend="tflite", model=name).predict(["great superb film"]).shape == (1,)


def test_stderr_holds_only_our_lines_and_ends_naming_the_outputs(maxlen_64):
    out, proc = maxlen_64
    lines = proc.stderr.splitlines()
    assert [line for line in lines if not OUR_LINE.match(line)] == []  # no TF/absl/oneDNN/LiteRT/quantizer lines
    assert lines[-1] == (f"all 8 checks passed; wrote {os.path.join(out, 'report.md')} and "
                         f"{os.path.join(out, 'manifest.json')}")
    assert proc.stdout.startswith("| format ")  # stdout: the table only


def test_verify_reuses_the_recorded_data_source_and_records_mediapipe(maxlen_64, tiny_imdb_tar):
    out, _ = maxlen_64
    manifest = json.load(open(os.path.join(out, "manifest.json")))
    assert manifest["training"]["data"] == tiny_imdb_tar
    assert manifest["verification"]["dataset"]["source"] == tiny_imdb_tar
    assert manifest["verification"]["mediapipe"] == {"ran": ["model.tflite", "model.int8.tflite"], "skipped": {}}
    proc = _run("export", "verify", "--out", out, "--mediapipe-samples", "0")  # no --data, no $IMDB_DATA
    assert proc.returncode == 0, proc.stderr
    assert f"reading IMDB reviews from {tiny_imdb_tar}" in proc.stderr
    mp = json.load(open(os.path.join(out, "manifest.json")))["verification"]["mediapipe"]
    assert mp == {"ran": [], "skipped": {"*": "--mediapipe-samples 0"}}
    assert "MediaPipe check: skipped (--mediapipe-samples 0)" in open(os.path.join(out, "report.md")).read()


def test_onnx_export_is_byte_stable_across_processes(maxlen_64, tmp_path):
    out, _ = maxlen_64
    again = tmp_path / "again"
    again.mkdir()
    for name in ("model.keras", "vocab.txt", "tokenizer.json"):
        shutil.copy(os.path.join(out, name), again / name)
    proc = _run("export", "onnx", "--out", str(again))
    assert proc.returncode == 0, proc.stderr
    for name in ("model.onnx", "model.int8.onnx"):
        assert sha256_file(again / name) == sha256_file(os.path.join(out, name)), name


@pytest.mark.parametrize("step, offered, not_offered", [
    ("onnx", {"--out", "--no-int8", "--verbose"}, {"--data", "--maxlen", "--epochs", "--model", "--seed"}),
    ("tflite", {"--out", "--data", "--no-int8", "--int8-io", "--calibration-size"},
     {"--maxlen", "--epochs", "--num-words", "--model", "--validation-size"}),
    ("verify", {"--out", "--data", "--mediapipe-samples"}, {"--maxlen", "--epochs", "--num-words", "--model"}),
    ("all", {"--model", "--data", "--maxlen", "--epochs", "--force"}, set()),
])
def test_step_help_lists_only_what_the_step_uses(step, offered, not_offered, capsys):
    assert main([step, "--help"]) == 0
    options = set(re.findall(r"(--[a-z0-9-]+)", capsys.readouterr().out))
    assert offered <= options and not (not_offered & options)


def test_all_into_an_existing_bundle_leaves_it_verified(exported, tiny_imdb_tar, tmp_path):
    out = tmp_path / "b"
    shutil.copytree(exported[0], out)
    cfg = _config(tiny_imdb_tar, out, int8=False)
    cfg.train.epochs = 2
    export_all(cfg)
    Bundle.load(out)  # the new model.keras is the one the new manifest vouches for


def test_all_with_model_reuses_the_recorded_source_offline(exported, tiny_imdb_tar, tmp_path, monkeypatch):
    monkeypatch.delenv("IMDB_DATA", raising=False)
    cfg = _config(None, tmp_path / "other", model=os.path.join(exported[0], "model.keras"), int8=False)
    cfg.mediapipe_samples = 0
    results = export_all(cfg)
    assert all(r.passed for r in results)
    assert Bundle.load(tmp_path / "other").manifest["verification"]["dataset"]["source"] == tiny_imdb_tar


def test_adopting_a_model_into_a_verified_bundle_needs_force(exported, tmp_path, capsys):
    out = tmp_path / "b"
    shutil.copytree(exported[0], out)
    before = sha256_file(out / "model.keras")
    other = tmp_path / "m"
    other.mkdir()
    for name in ("model.keras", "vocab.txt"):
        shutil.copy(os.path.join(exported[0], name), other / name)
    assert main(["train", "--model", str(other / "model.keras"), "--out", str(out)]) == 2
    assert capsys.readouterr().err.endswith("choose another --out, or pass --force\n")
    assert sha256_file(out / "model.keras") == before
    Bundle.load(out)  # still verified


def test_verify_keeps_the_targets_it_does_not_rebuild_while_they_are_current(exported, tmp_path, capsys):
    """``export verify`` rewrites the manifest: the micro/ and web/ sections stay while those
    directories still hold what the bundle made, and go (saying so) once they do not."""
    out = str(tmp_path / "bundle")
    shutil.copytree(exported[0], out)
    before = json.load(open(os.path.join(out, "manifest.json")))
    targets = [key for key in ("micro", "web") if key in before]
    assert "micro" in targets and os.path.isdir(os.path.join(out, "micro"))
    assert main(["verify", "--out", out]) == 0
    after = json.load(open(os.path.join(out, "manifest.json")))
    assert {key: after.get(key) for key in targets} == {key: before[key] for key in targets}
    with open(os.path.join(out, "micro", "model_data.cc"), "a", encoding="utf-8") as f:
        f.write("// edited\n")
    capsys.readouterr()
    assert main(["verify", "--out", out]) == 0
    after = json.load(open(os.path.join(out, "manifest.json")))
    assert "micro" not in after and all(after.get(k) == before[k] for k in targets if k != "micro")
    assert (f"dropping the manifest's micro section: micro/model_data.cc is missing or modified "
            f"(run 'python -m export micro --out {out}')") in capsys.readouterr().err
