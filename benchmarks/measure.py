"""Timing of one engine: tokenizer, model, end to end, single-review latency and cold start.

Every timed pass runs over the same reviews; a pass is repeated ``repeats`` times and reported
as the fastest (``min_s``) and the median (``median_s``) wall time, with throughputs from each.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from typing import Callable

import numpy as np

from .common import ROOT
from .engines import BenchmarkError, Engine, batches

COLD_START_TIMEOUT = 300  # seconds for one child process


def timed(fn: Callable[[], object], repeats: int) -> dict:
    """``{"min_s", "median_s", "runs_s"}`` of ``repeats`` calls of ``fn``."""
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return {"min_s": min(runs), "median_s": statistics.median(runs), "runs_s": runs}


def throughput(timing: dict, n: int, nbytes: int | None = None) -> dict:
    """Add reviews/s (and MB/s of UTF-8 text when ``nbytes`` is given) for the min and median."""
    out = dict(timing, reviews_per_s=n / timing["min_s"], median_reviews_per_s=n / timing["median_s"])
    if nbytes is not None:
        out.update(mb_per_s=nbytes / 1e6 / timing["min_s"], median_mb_per_s=nbytes / 1e6 / timing["median_s"])
    return out


def latency(predict_one: Callable[[str], float], texts: list[str]) -> dict:
    """Percentiles of one-review requests, in milliseconds."""
    seconds = []
    for text in texts:
        start = time.perf_counter()
        predict_one(text)
        seconds.append(time.perf_counter() - start)
    p50, p99 = np.percentile(np.array(seconds) * 1e3, [50, 99])
    return {"n": len(texts), "p50_ms": float(p50), "p99_ms": float(p99)}


def cold_start(kind: str, bundle: str, model: str, text: str, repeats: int) -> dict:
    """Wall time of a fresh ``python`` that loads the engine and scores ``text``, and its peak RSS."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
    cmd = [sys.executable, "-m", "benchmarks.child", kind, os.path.abspath(bundle), model]
    runs, rss_kb = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        try:
            proc = subprocess.run(cmd, input=text, capture_output=True, text=True, cwd=ROOT, env=env,
                                  timeout=COLD_START_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise BenchmarkError(f"cold start of {kind} {model} took over {COLD_START_TIMEOUT} s") from None
        runs.append(time.perf_counter() - start)
        if proc.returncode != 0:
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise BenchmarkError(f"cold start of {kind} {model} failed: {tail}")
        rss_kb.append(json.loads(proc.stdout.strip().splitlines()[-1])["max_rss_kb"])
    return {"min_s": min(runs), "median_s": statistics.median(runs), "runs_s": runs,
            "peak_rss_mb": max(rss_kb) / 1024}


def measure(engine: Engine, texts: list[str], labels: np.ndarray, *, bundle: str, threshold: float,
            repeats: int, latency_reviews: int) -> tuple[dict, np.ndarray]:
    """One table row of ``engine`` on ``texts``, and its probabilities ``[n]``."""
    n, nbytes = len(texts), sum(len(t.encode("utf-8")) for t in texts)
    chunks = batches(texts)
    engine.predict(chunks[0])  # warm-up: first-call graph building, allocations
    row: dict = {"name": engine.name, "model": engine.model,
                 "size_bytes": os.path.getsize(os.path.join(bundle, engine.model))}
    if engine.tokenize is not None:
        row["tokenizer"] = throughput(timed(lambda: [engine.tokenize(c) for c in chunks], repeats), n, nbytes)
    if engine.predict_ids is not None:
        ids = np.concatenate([engine.tokenize(c) for c in chunks])  # [n, maxlen] int32
        row["model_only"] = throughput(timed(lambda: engine.predict_ids(ids), repeats), n)
    probs = []
    row["end_to_end"] = throughput(timed(lambda: probs.append(engine.predict(texts)), repeats), n)
    row["latency"] = latency(engine.predict_one, texts[:latency_reviews])
    row["cold_start"] = cold_start(engine.kind, bundle, engine.model, texts[0], repeats)
    row["accuracy"] = float(np.mean((probs[-1] >= threshold) == labels))
    return row, probs[-1]
