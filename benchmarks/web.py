"""``python -m benchmarks.web [--bundle artifacts] [--data PATH] [--out bench] [--reviews 5000]``

The browser rows of the benchmark, measured in headless Chromium on the exported site
(``BUNDLE/web``, served from 127.0.0.1): onnxruntime-web (batch 256) next to MediaPipe Web's
TextClassifier (one review at a time, it has no batch API) -- reviews/s, single-review latency
p50/p99, time from navigation to the first prediction and bytes transferred on a cold cache --
plus the parity figures of the 2,000-review check and a screenshot of the demo. Writes
web.json, web.md and web-screenshot.png to ``--out`` and prints the table.
"""
from __future__ import annotations

import base64
import json
import os
import platform
import sys
import tempfile
from datetime import datetime, timezone

import numpy as np

from runtime.errors import ArgumentParser, UserError, run_cli

from .common import add_data_option, data_path
from .web_browser import run_driver

PARITY_REVIEWS = 2000
TARGET_SPEEDUP = 2.0  # onnxruntime-web reviews/s >= 2x MediaPipe Web's
TARGET_FIRST_MS = 1500.0  # navigation -> first prediction on localhost


def parse_args(argv):
    p = ArgumentParser(prog="python -m benchmarks.web", description=__doc__.split("\n\n")[1])
    p.add_argument("--bundle", default="artifacts", help="the bundle whose web/ site is measured (default %(default)s)")
    add_data_option(p)
    p.add_argument("--out", default="bench", help="output directory (default %(default)s)")
    p.add_argument("--reviews", type=int, default=5000, help="reviews per throughput run (default %(default)s)")
    p.add_argument("--parity-reviews", type=int, default=PARITY_REVIEWS,
                   help="reviews of the parity check and the demo's file (default %(default)s)")
    args = p.parse_args(argv)
    if args.reviews < 300 or args.parity_reviews < 200:
        p.error("--reviews must be at least 300 (the latency runs) and --parity-reviews at least 200")
    return args


def even_sample(texts, n):
    return [texts[i] for i in np.linspace(0, len(texts) - 1, min(n, len(texts))).round().astype(int)]


def parity_figures(site: str, texts: list[str], result: dict) -> dict:
    """ids / probabilities of the browser vs Python onnxruntime and LiteRT."""
    from runtime.model import open_backend
    from runtime.bundle import Bundle

    ids = Bundle.load(site).tokenizer().encode_batch(texts)
    browser_ids = np.frombuffer(base64.b64decode(result["ids"]), dtype="<i4").reshape(ids.shape)
    ours = np.array(result["probs"], dtype=np.float32)
    onnx = open_backend(os.path.join(site, "model.onnx"), "onnx").run(ids)
    figures = {"reviews": len(texts), "ids_identical": bool(np.array_equal(ids, browser_ids)),
               "onnx_max_abs_diff": float(np.abs(ours.astype(np.float64) - onnx).max()),
               "label_agreement": float(np.mean((ours >= 0.5) == (onnx >= 0.5))),
               "foreign_requests": len(result["foreign_requests"]), "requests": len(result["requests"])}
    for name, scores in result["mediapipe"].items():
        backend = open_backend(os.path.join(site, name), "tflite")
        lite = np.concatenate([backend.run(ids[i:i + 1]) for i in range(len(ids))])
        diff = np.abs(np.array(scores, np.float32).astype(np.float64) - lite)
        figures[f"mediapipe_{name}_max_abs_diff"] = float(diff.max())
    return figures


def markdown(rows: list[dict], parity: dict, meta: dict) -> str:
    lines = [f"Browser: {meta['browser']}, {meta['cpu']}; site {meta['site_mb']:.1f} MB "
             f"({meta['demo_gzip_mb']:.1f} MB gzipped for the demo).", "",
             "| runtime | metric | value |", "| --- | --- | --- |"]
    for r in rows:
        counted = r["unit"] in ("reviews/s", "bytes")
        value = f"{r['value']:,.0f} {r['unit']}" if counted else f"{r['value']:.2f} {r['unit']}"
        lines.append(f"| {r['runtime']} | {r['metric']} | {value} |")
    lines += ["", f"| parity ({parity['reviews']:,} IMDB test reviews) | value |", "| --- | --- |"]
    lines += [f"| {k} | {v} |" for k, v in parity.items()]
    lines += ["", "| target | measured | |", "| --- | --- | --- |"]
    for name, measured, ok in meta["targets"]:
        lines.append(f"| {name} | {measured} | {'PASS' if ok else 'MISS'} |")
    return "\n".join(lines) + "\n"


def targets(rows: list[dict]) -> list[tuple[str, str, bool]]:
    value = {(r["runtime"], r["metric"].split(" (")[0]): r["value"] for r in rows}
    ours, mp = value[("onnxruntime-web", "reviews/s")], value[("mediapipe-web float", "reviews/s")]
    first = value[("onnxruntime-web", "navigation to first prediction")]
    return [(f"onnxruntime-web >= {TARGET_SPEEDUP:g}x MediaPipe Web reviews/s", f"{ours / mp:.1f}x",
             ours / mp >= TARGET_SPEEDUP),
            (f"first prediction <= {TARGET_FIRST_MS:.0f} ms", f"{first:.0f} ms", first <= TARGET_FIRST_MS)]


def main(argv=None) -> int:
    args = parse_args(argv)
    from trainer.data import load_imdb

    site = os.path.join(args.bundle, "web")
    if not os.path.isfile(os.path.join(site, "index.html")):
        raise UserError(f"{site}: no exported site (run 'python -m export web --out {args.bundle}')")
    texts = load_imdb(data_path(args.data)).test_texts
    os.makedirs(args.out, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        shot = os.path.join(args.out, "web-screenshot.png")
        sample = even_sample(texts, args.parity_reviews)
        result = run_driver("parity", site, sample, os.path.join(tmp, "parity.json"), shot)
        parity = parity_figures(site, sample, result)
        rows = run_driver("bench", site, even_sample(texts, args.reviews), os.path.join(tmp, "bench.json"),
                          str(args.reviews))["rows"]
    with open(os.path.join(site, "manifest.json"), encoding="utf-8") as f:
        web = json.load(f)["web"]
    meta = {"created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "browser": f"Chromium {result['chromium']} (headless)",
            "cpu": f"{os.cpu_count()} cores {platform.machine()}", "site_mb": web["total_bytes"] / 1e6,
            "demo_gzip_mb": web["demo_gzip_bytes"] / 1e6, "npm": web["npm"],
            "command": "python -m benchmarks.web " + " ".join(argv or sys.argv[1:])}
    meta["targets"] = targets(rows)
    with open(os.path.join(args.out, "web.json"), "w", encoding="utf-8") as f:
        json.dump({"meta": meta, "rows": rows, "parity": parity, "screenshot": shot}, f, indent=2)
    table = markdown(rows, parity, meta)
    with open(os.path.join(args.out, "web.md"), "w", encoding="utf-8") as f:
        f.write(table)
    print(table)
    print(f"wrote {args.out}/web.json, web.md, web-screenshot.png", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, sys.argv[1:]))
