"""The demo page of a 3-class site (``three_class_bundle``'s, labels alpha, beta, gamma) in
headless Chromium: the top label and a bar per class for every typed text, and the CSV of a
dropped file equal to ``python -m runtime.predict``'s (arg-max label, its probability) for the
same rows: rows, labels and errors exactly, probabilities within 1e-5 (onnxruntime-web's).
"""
from __future__ import annotations

import subprocess
import sys

import numpy as np

from benchmarks.web_browser import run_driver
from runtime.bundle import Bundle
from runtime.model import open_backend
from tests.conftest import ROOT, three_class_corpus

MAX_ABS_DIFF = 1e-5
TEXTS = [*three_class_corpus(12, seed=1)[0], "", "apple river stone", "pond, pear and sand"]


def predict_csv(site: str, lines: list[str], tmp_path) -> str:
    """``python -m runtime.predict``'s CSV of ``lines`` as a .txt file."""
    path = tmp_path / "texts.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return subprocess.run([sys.executable, "-m", "runtime.predict", str(path), "--model", site, "--backend", "onnx",
                           "--no-progress"], cwd=ROOT, capture_output=True, text=True, check=True).stdout


def test_demo_shows_a_bar_per_class_and_writes_runtime_predicts_csv(three_class_site, tmp_path):
    result = run_driver("classes", three_class_site, TEXTS, str(tmp_path / "classes.json"), str(tmp_path / "shot.png"))
    assert result["errors"] == [] and result["foreign_requests"] == [] and result["meter_hidden"]
    bundle = Bundle.load(three_class_site)
    typed = [t for t in TEXTS if t.strip()]
    reference = open_backend(bundle.path("model.onnx"), "onnx").run(bundle.tokenizer().encode_batch(typed))
    assert [t["text"] for t in result["typed"]] == typed
    for shown, probs in zip(result["typed"], reference):
        best = int(np.argmax(probs))
        assert shown["label"] == bundle.labels[best]
        assert [b["label"] for b in shown["bars"]] == ["alpha", "beta", "gamma"]
        assert [b["top"] for b in shown["bars"]] == [i == best for i in range(3)]
        assert all(b["visible"] for b in shown["bars"])
        for bar, p in zip(shown["bars"], probs):
            assert abs(float(bar["shown"]) - p) <= 5e-5 + MAX_ABS_DIFF  # 4 decimals shown
            assert abs(float(bar["width"].rstrip("%")) - 100 * p) <= 0.05 + 1e-3
    got, want = result["file"]["csv"].splitlines(), predict_csv(three_class_site, TEXTS, tmp_path).splitlines()
    assert got[0] == want[0] == "row,label,probability,error" and len(got) == len(want) == len(TEXTS) + 1
    assert "13,,,empty text" in got  # the empty line
    cut = [[r.split(",", 3) for r in rows[1:]] for rows in (got, want)]  # row, label, probability, error
    assert [(r[0], r[1], r[3]) for r in cut[0]] == [(r[0], r[1], r[3]) for r in cut[1]]
    assert max(abs(float(a[2] or 0) - float(b[2] or 0)) for a, b in zip(*cut)) <= MAX_ABS_DIFF + 1e-6
    counts = ", ".join(f"{sum(r[1] == label for r in cut[1])} {label}" for label in bundle.labels)
    assert result["file"]["status"].endswith(f": {counts}, 1 with an error (no label).")
