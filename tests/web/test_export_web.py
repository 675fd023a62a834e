"""``python -m export web``: the site's files, manifest and errors (fast: the shipped default model)."""
from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys

import pytest

from export.errors import ExportError
from export.web import DEMO_FILES, export_web
from runtime.bundle import Bundle, BundleError, default_bundle_path
from tests.conftest import ROOT


def test_site_holds_the_demo_the_package_and_runtime_files(default_site):
    names = set(os.listdir(default_site))
    assert set(DEMO_FILES) <= names
    assert {"conformance.html", "text_wasm_internal.wasm", "model.int8.tflite", "index.js"} <= names
    assert not [n for n in names if n.startswith(".")]


def test_site_manifest_lists_plain_names_and_every_file(default_site):
    bundle = Bundle.load(default_site)  # checks size and sha256 of model.onnx, vocab.txt, ...
    manifest = bundle.manifest
    assert set(manifest["files"]) == {"model.onnx", "vocab.txt", "labels.txt", "model.int8.tflite"}
    listed = set(manifest["files"]) | set(manifest["web"]["files"])
    on_disk = {n for n in os.listdir(default_site) if not n.endswith(".gz") and n != "manifest.json"}
    assert listed == on_disk and all("/" not in n for n in listed)
    web = manifest["web"]
    assert web["npm"]["onnxruntime-web"] and web["demo_gzip_bytes"] < web["demo_bytes"]
    assert manifest["tokenizer"] == Bundle.load(default_bundle_path()).manifest["tokenizer"]


def test_gzip_copies_hold_the_same_bytes(default_site):
    gz = [n for n in os.listdir(default_site) if n.endswith(".gz")]
    assert "ort-wasm-simd-threaded.wasm.gz" in gz and "model.onnx.gz" in gz
    for name in gz:
        with gzip.open(os.path.join(default_site, name)) as f, open(os.path.join(default_site, name[:-3]), "rb") as g:
            assert f.read() == g.read(), name


def test_bundle_manifest_gets_a_web_section(default_site):
    parent = Bundle.load(os.path.dirname(default_site)).manifest
    assert parent["web"]["dir"] == "web" and "files" not in parent["web"]
    assert all("/" not in n for n in parent["files"])


@pytest.fixture
def bundle_copy(tmp_path):
    for name in os.listdir(default_bundle_path()):
        shutil.copyfile(os.path.join(default_bundle_path(), name), tmp_path / name)
    return tmp_path


def test_missing_npm_packages_fail_with_one_clear_line(bundle_copy):
    proc = subprocess.run([sys.executable, "-m", "export", "web", "--out", str(bundle_copy),
                           "--node-modules", str(bundle_copy / "nowhere")], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("Error: the browser runtime is not installed") and "npm ci" in proc.stderr
    assert proc.stderr.count("\n") == 1 and not (bundle_copy / "web").exists()


def test_a_tampered_bundle_is_refused_and_an_old_site_kept(bundle_copy):
    export_web(str(bundle_copy))
    before = sorted(os.listdir(bundle_copy / "web"))
    with open(bundle_copy / "model.onnx", "r+b") as f:
        f.seek(200)
        byte = f.read(1)
        f.seek(200)
        f.write(bytes([byte[0] ^ 1]))
    with pytest.raises(BundleError, match="model.onnx"):
        export_web(str(bundle_copy))
    assert sorted(os.listdir(bundle_copy / "web")) == before
    assert not [n for n in os.listdir(bundle_copy) if n.startswith(".web")]


def test_no_manifest_is_an_export_error(tmp_path):
    with pytest.raises(ExportError, match="no manifest.json"):
        export_web(str(tmp_path))
