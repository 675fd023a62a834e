"""``node --test web/test``: the JS tokenizer and loader against Python, on golden files written here.

The golden ids are Python's ``Tokenizer.encode_batch`` of all 50,000 IMDB reviews and of generated
adversarial text, with the real 10,000-word vocabulary; the node tests must reproduce every id.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import subprocess

import numpy as np
import pytest

from runtime.bundle import MAX_LABELS, Bundle
from runtime.model import open_backend
from tests.conftest import SHARED_ARCHIVE
from tests.runtime.test_wordtable import FRAGMENTS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WEB = os.path.join(ROOT, "web")
PROBE_TEXTS = ["A wonderful, moving film.", "Dull and far too long.", "", "constructor toString",
               "\u0130STANBUL \u212aelvin <BR />great", "It's not bad at all. " * 60]
THREE_CLASS_PROBES = ["apple pear plum", "the river and the lake", "stone rock sand", "", "apple river stone",
                      "this was a fig of clay"]


def adversarial_texts(seed: int = 0) -> list[str]:
    """Every code point (64 to a text, each inside a word), then random mixes of tricky fragments."""
    texts = []
    for start in range(0, 0x110000, 64):
        texts.append(" ".join(f"a{chr(c)}b{chr(c)}" for c in range(start, start + 64)))
    rng = random.Random(seed)
    for _ in range(5000):
        parts = [rng.choice(FRAGMENTS) if rng.random() < 0.8 else chr(rng.randrange(0x110000))
                 for _ in range(rng.randrange(1, 120))]
        texts.append("".join(parts))
    texts += ["<br />" * 300, "word " * 400, "\ud800" * 10 + "a", "a'" * 200, "KELVIN \u212a" * 50]
    return texts


def format_probes(seed: int = 0) -> list[list]:
    """(float32 value, Python's f"{p:.6f}") pairs: random probabilities and exact ties."""
    rng = np.random.default_rng(seed)
    values = np.concatenate([rng.random(3000, dtype=np.float32),
                             np.array([k / 128 for k in range(129)] + [0.5000005, 1e-7, 0.9999995],
                                      dtype=np.float32)])
    return [[float(v), f"{v:.6f}"] for v in values]


def write_set(golden: str, name: str, tok, texts: list[str]) -> None:
    with open(os.path.join(golden, f"{name}.texts.json"), "w", encoding="ascii") as f:
        json.dump(texts, f)  # ensure_ascii: lone surrogates travel as \udxxx escapes
    tok.encode_batch(texts).astype("<i4").tofile(os.path.join(golden, f"{name}.ids.i32"))


def write_golden(out: str, site: str, sets: dict[str, list[str]], probes: list[str] = PROBE_TEXTS) -> str:
    """meta.json and the sets; ``probs``: Python onnxruntime's output row of each probe text
    (P(labels[1]) for two classes, N probabilities for N)."""
    bundle = Bundle.load(site)
    tok = bundle.tokenizer()
    for name, texts in sets.items():
        write_set(out, name, tok, texts)
    scores = open_backend(bundle.path("model.onnx"), "onnx").run(tok.encode_batch(probes))
    meta = {"bundle": site, "maxlen": tok.maxlen, "sets": list(sets),
            "min_rows": {"imdb": 50_000, "adversarial": 17_000}, "threshold": bundle.threshold,
            "labels": bundle.labels, "max_labels": MAX_LABELS, "probs": dict(zip(probes, scores.tolist())),
            "formatted": format_probes()}
    with open(os.path.join(out, "meta.json"), "w", encoding="ascii") as f:
        json.dump(meta, f)
    return out


def run_node(golden: str, files: list[str]) -> str:
    """``node --test FILES`` in web/ with REVIEWKIT_GOLDEN=golden; its spec-reporter output."""
    node = shutil.which("node")
    assert node, "node is not installed (apt-get install nodejs npm)"
    assert os.path.isdir(os.path.join(WEB, "node_modules", "onnxruntime-web")), "run 'npm ci' in web/"
    proc = subprocess.run([node, "--test", "--test-reporter=spec", *files], cwd=WEB, capture_output=True,
                          text=True, timeout=600, env={**os.environ, "REVIEWKIT_GOLDEN": golden})
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    assert "\u2139 fail 0" in proc.stdout and "\u2139 cancelled 0" in proc.stdout, proc.stdout[-3000:]
    return proc.stdout


def test_node_tokenizer_and_loader_tests_pass(default_site, tmp_path):
    """Every node test: the tokenizer on adversarial text, the loader, tamper refusal, CSV."""
    out = run_node(write_golden(str(tmp_path), default_site, {"adversarial": adversarial_texts()}),
                   ["test/tokenizer.test.js", "test/loader.test.js"])
    assert "\u2139 pass 18" in out, out[-3000:]
    assert "ids equal Python's on the adversarial set" in out and "load refuses a model byte flipped" in out


def test_node_three_class_tests_pass(three_class_site, tmp_path):
    """The N-label manifest rules, labels.txt, the output width, predictProba and classify's arg-max."""
    out = run_node(write_golden(str(tmp_path), three_class_site, {}, THREE_CLASS_PROBES), ["test/multiclass.test.js"])
    assert "\u2139 pass 7" in out, out[-3000:]
    assert "load refuses a model whose output width is not the labels'" in out


@pytest.mark.e2e
def test_node_tokenizer_equals_python_on_all_imdb_reviews(default_site, tmp_path):
    from trainer.data import load_imdb

    assert os.path.isfile(SHARED_ARCHIVE), f"the shared IMDB archive is missing: {SHARED_ARCHIVE}"
    imdb = load_imdb(SHARED_ARCHIVE)
    texts = list(imdb.train_texts) + list(imdb.test_texts)
    out = run_node(write_golden(str(tmp_path), default_site, {"imdb": texts}), ["test/tokenizer.test.js"])
    assert "ids equal Python's on the imdb set" in out and "\u2139 pass 5" in out, out[-3000:]
