"""The exported site in a real browser: headless Chromium (Debian's) loads ``OUT/web`` from a server
on 127.0.0.1 and scores 2,000 IMDB test reviews with onnxruntime-web and MediaPipe Web.

Parity: ids identical to Python's, probabilities within 1e-5 of Python onnxruntime with the same
labels; MediaPipe Web within 1e-5 of LiteRT on model.tflite and exactly LiteRT on
model.int8.tflite (both with LiteRT's default XNNPACK delegate, which MediaPipe Web uses too);
no request leaves 127.0.0.1; the demo page labels the samples and scores a dropped file into
CSV in ``runtime.predict``'s format with the same rows and labels.
"""
from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from benchmarks.web_browser import run_driver
from runtime.model import open_backend
from runtime.bundle import Bundle
from tests.conftest import ROOT, SHARED_ARCHIVE

pytestmark = pytest.mark.e2e
N_REVIEWS = 2000
MAX_ABS_DIFF = 1e-5


def even_sample(texts, n):
    return [texts[i] for i in np.linspace(0, len(texts) - 1, n).round().astype(int)]


@pytest.fixture(scope="module")
def site(real_export):
    out, proc = real_export
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert os.path.isfile(os.path.join(out, "web", "index.html")), \
        "export all wrote no web/ site:\n" + proc.stderr[-2000:]
    return os.path.join(out, "web")


@pytest.fixture(scope="module")
def texts():
    from trainer.data import load_imdb

    return even_sample(load_imdb(SHARED_ARCHIVE).test_texts, N_REVIEWS)


@pytest.fixture(scope="module")
def browser(site, texts, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browser")
    result = run_driver("parity", site, texts, str(tmp / "parity.json"), str(tmp / "screenshot.png"))
    result["screenshot"] = str(tmp / "screenshot.png")
    return result


@pytest.fixture(scope="module")
def python_ids(site, texts):
    return Bundle.load(site).tokenizer().encode_batch(texts)


def litert_scores(path: str, ids: np.ndarray) -> np.ndarray:
    """LiteRT with its default op resolver (XNNPACK), one review at a time as MediaPipe runs it."""
    backend = open_backend(path, "tflite")
    return np.concatenate([backend.run(ids[i:i + 1]) for i in range(len(ids))])


def test_site_is_a_verified_bundle_with_plain_names(site):
    bundle = Bundle.load(site)  # sha256 of every listed file
    assert all("/" not in name for name in bundle.manifest["files"])
    web = bundle.manifest["web"]
    assert {"ort-wasm-simd-threaded.wasm", "index.html", "classifier.js"} <= set(web["files"])
    wasm = web["files"]["ort-wasm-simd-threaded.wasm"]
    assert wasm["gzip_size"] < wasm["size"] / 2
    assert os.path.isfile(os.path.join(site, "ort-wasm-simd-threaded.wasm.gz"))
    parent = Bundle.load(os.path.dirname(site))
    assert parent.manifest["web"]["dir"] == "web" and "files" not in parent.manifest["web"]


def test_ids_identical_to_python(browser, python_ids):
    ids = np.frombuffer(base64.b64decode(browser["ids"]), dtype="<i4").reshape(-1, browser["maxlen"])
    assert ids.shape == python_ids.shape == (N_REVIEWS, python_ids.shape[1])
    assert np.array_equal(ids, python_ids)


def test_probabilities_match_python_onnxruntime(browser, site, python_ids):
    ours = np.array(browser["probs"], dtype=np.float32)
    reference = open_backend(os.path.join(site, "model.onnx"), "onnx").run(python_ids)
    assert np.abs(ours.astype(np.float64) - reference).max() <= MAX_ABS_DIFF
    assert np.array_equal(ours >= 0.5, reference >= 0.5)


@pytest.mark.parametrize("model, tolerance", [("model.tflite", MAX_ABS_DIFF), ("model.int8.tflite", 0.0)])
def test_mediapipe_web_matches_litert(browser, site, python_ids, model, tolerance):
    mediapipe = np.array(browser["mediapipe"][model], dtype=np.float32)
    reference = litert_scores(os.path.join(site, model), python_ids)
    assert len(mediapipe) == N_REVIEWS
    assert np.abs(mediapipe.astype(np.float64) - reference).max() <= tolerance


def test_no_request_leaves_the_page_origin(browser):
    assert browser["requests"], "no request was recorded"
    origin = browser["requests"][0].split("/")[2]
    assert origin.startswith("127.0.0.1:")
    assert browser["foreign_requests"] == []
    assert all(url.split("/")[2] == origin for url in browser["requests"] if url.startswith("http"))
    # MediaPipe's usage logging was attempted and blocked by the page's CSP, not sent
    assert not [e for e in browser["errors"] if "pageerror" in e]


def test_demo_page_labels_samples_and_scores_a_file_like_runtime_predict(browser, site, tmp_path):
    demo = browser["demo"]
    assert [s["label"] for s in demo["samples"]] == ["positive", "negative", "positive"]
    assert all(s["shown"] == s["label"] for s in demo["samples"])
    from runtime import Classifier

    expected = Classifier.load(site, backend="onnx").predict([s["text"] for s in demo["samples"]])
    assert np.abs(np.array([s["probability"] for s in demo["samples"]]) - expected).max() <= MAX_ABS_DIFF
    assert demo["first_prediction_ms"] > 0
    assert browser["conformance_status"] == "done"
    with open(browser["screenshot"], "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    reviews = tmp_path / "reviews.txt"
    reviews.write_text("\n".join(demo["file_texts"]) + "\n", encoding="utf-8")
    expected = subprocess.run([sys.executable, "-m", "runtime.predict", str(reviews), "--model", site, "--no-progress"],
                              cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert demo["file_n"] == len(demo["file_texts"]) == 200
    # the same rows in the same format; the probabilities are onnxruntime-web's (within 1e-5)
    got, want = demo["file_csv"].splitlines(), expected.splitlines()
    assert got[0] == want[0] == "row,label,probability,error" and len(got) == len(want) == 201
    assert all(re.fullmatch(r"\d+,(positive|negative),[01]\.\d{6},[^,]*|\d+,,,[^,]+", row) for row in got[1:])
    cut = [[r.split(",", 3) for r in rows[1:]] for rows in (got, want)]  # row, label, probability, error
    assert [(r[0], r[1], r[3]) for r in cut[0]] == [(r[0], r[1], r[3]) for r in cut[1]]
    diff = max(abs(float(a[2]) - float(b[2])) for a, b in zip(*cut))
    assert diff <= MAX_ABS_DIFF + 1e-6  # + rounding to 6 decimals


def test_download_link_is_shown_only_for_the_file_just_scored(browser):
    download = browser["demo"]["download"]
    assert download == {"hidden_on_a_fresh_page": True, "visible_after_a_file": True,
                        "hidden_after_a_failed_file": True, "failed_status": download["failed_status"]}
    assert download["failed_status"].startswith("Error: bad.jsonl:1: invalid JSON")
    assert browser["demo"]["file_status"].startswith("200 reviews read in ")


def test_the_demo_opened_from_disk_says_to_serve_it(default_site, tmp_path):
    """file:// refuses module workers: the page says what to do instead of loading forever."""
    from benchmarks.web_browser import DRIVER, check_tools

    out = tmp_path / "disk.json"
    url = "file://" + os.path.join(default_site, "index.html")
    subprocess.run([check_tools(), DRIVER, "disk", url, str(out)], cwd=os.path.dirname(os.path.dirname(DRIVER)),
                   check=True, capture_output=True, timeout=120)
    status = json.loads(out.read_text())["status"]
    assert status == ("Error: this page must be served over http, not opened from disk: in its folder run "
                      "`python -m http.server --bind 127.0.0.1` and open http://127.0.0.1:8000/")
