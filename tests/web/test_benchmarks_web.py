"""Smoke test of ``python -m benchmarks.web`` on the exported real bundle: what it writes, never the speeds."""
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT, SHARED_ARCHIVE

pytestmark = pytest.mark.e2e
RUNTIMES = {"onnxruntime-web", "mediapipe-web float", "mediapipe-web int8"}


def test_benchmark_writes_rows_parity_and_screenshot(real_export, tmp_path):
    bundle, proc = real_export
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "bench"
    run = subprocess.run([sys.executable, "-m", "benchmarks.web", "--bundle", bundle, "--data", SHARED_ARCHIVE,
                          "--out", str(out), "--reviews", "300", "--parity-reviews", "200"],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads((out / "web.json").read_text())
    assert {r["runtime"] for r in result["rows"]} == RUNTIMES
    metrics = {(r["runtime"], r["metric"].split(" (")[0]) for r in result["rows"]}
    for runtime in RUNTIMES:
        assert {(runtime, "reviews/s"), (runtime, "single-review latency p50"),
                (runtime, "single-review latency p99")} <= metrics
    assert ("onnxruntime-web", "navigation to first prediction") in metrics
    assert all(r["value"] > 0 for r in result["rows"])
    assert result["parity"]["ids_identical"] is True and result["parity"]["foreign_requests"] == 0
    assert (out / "web-screenshot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| onnxruntime-web | reviews/s (batch 256, best of 3) |" in run.stdout
    assert (out / "web.md").read_text() in run.stdout
    assert not os.path.exists(os.path.join(bundle, "web", "_test"))  # the driver serves a copy
