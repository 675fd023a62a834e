import json
import os
import shutil

import pytest

from runtime.bundle import Bundle, BundleError


@pytest.fixture
def bundle_copy(tiny_bundle, tmp_path):
    dest = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, dest)
    return dest


def _edit_manifest(root, **changes):
    path = root / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest.update(changes)
    path.write_text(json.dumps(manifest))
    return manifest


def test_loads_a_directory_or_a_file_inside_it(tiny_bundle):
    assert Bundle.load(tiny_bundle).root == tiny_bundle
    assert Bundle.load(os.path.join(tiny_bundle, "model.onnx")).root == tiny_bundle
    bundle = Bundle.load(tiny_bundle)
    assert set(bundle.models) == {"model.onnx", "model.int8.onnx", "model.tflite", "model.dynamic.tflite",
                                  "model.int8.tflite"}
    assert bundle.labels == ["negative", "positive"] and bundle.threshold == 0.5


def test_flipped_byte_in_model_is_refused(bundle_copy):
    path = bundle_copy / "model.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(BundleError) as err:
        Bundle.load(bundle_copy)
    assert str(err.value) == f"{path}: sha256 does not match manifest.json; model.onnx was modified"


def test_edited_vocab_is_refused(bundle_copy):
    path = bundle_copy / "vocab.txt"
    path.write_text(path.read_text().replace("film", "flim"))  # same size, other words
    with pytest.raises(BundleError, match="vocab.txt: sha256 does not match manifest.json; vocab.txt was modified"):
        Bundle.load(bundle_copy)


def test_truncated_file_is_refused(bundle_copy):
    path = bundle_copy / "model.int8.tflite"
    data = path.read_bytes()
    path.write_bytes(data[:-10])
    with pytest.raises(BundleError) as err:
        Bundle.load(bundle_copy)
    assert str(err.value) == (f"{path}: size {len(data) - 10} does not match manifest.json ({len(data)}); "
                              "the file was changed or truncated")


def test_missing_file_is_refused(bundle_copy):
    os.unlink(bundle_copy / "labels.txt")
    with pytest.raises(BundleError, match=r"labels.txt: missing \(listed in manifest.json\)"):
        Bundle.load(bundle_copy)


def test_unknown_format_version_is_refused(bundle_copy):
    _edit_manifest(bundle_copy, format_version=99)
    with pytest.raises(BundleError) as err:
        Bundle.load(bundle_copy)
    assert str(err.value) == f"{bundle_copy}/manifest.json: unknown format_version 99 (this runtime reads 1)"


def test_not_a_bundle(tmp_path):
    with pytest.raises(BundleError) as err:
        Bundle.load(tmp_path)
    assert str(err.value) == f"{tmp_path}/manifest.json: missing (not a model bundle?)"
    with pytest.raises(BundleError, match="no such bundle directory"):
        Bundle.load(tmp_path / "nope")
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(BundleError, match="unreadable manifest"):
        Bundle.load(tmp_path)


def test_vocab_size_must_match_manifest(bundle_copy):
    manifest = json.loads((bundle_copy / "manifest.json").read_text())
    _edit_manifest(bundle_copy, tokenizer={**manifest["tokenizer"], "num_words": 10000})
    with pytest.raises(BundleError) as err:
        Bundle.load(bundle_copy).tokenizer()
    words = manifest["tokenizer"]["num_words"]
    assert str(err.value) == f"{bundle_copy}/vocab.txt: {words} words, manifest.json says tokenizer.num_words is 10000"
