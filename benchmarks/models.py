"""``python -m benchmarks.models NAME=BUNDLE[,SEEDS_JSON] ... [--data PATH] [--reviews 1000]``

The "Choosing a model" table: for each verified bundle (one per architecture), its Keras test
accuracy (from the manifest, or mean and range over seeds from ``trainer.seeds``' seeds.json),
the shipped quantized accuracy, parameters, file sizes, and the model-only LiteRT time per
review on this machine (no tokenizer: the ids are prepared first), one interpreter thread:
a single review per call (p50) and batches of 64 and 256. Prints Markdown; writes ``--out/models.json``.
"""
from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

from runtime.errors import ArgumentParser, UserError, run_cli
from runtime.files import atomic_write_text

BATCHES = (64, 256)


def parse_bundle(spec: str) -> tuple[str, str, str | None]:
    name, sep, rest = spec.partition("=")
    if not sep or not name or not rest:
        raise UserError(f"expected NAME=BUNDLE[,SEEDS_JSON], got {spec!r}")
    bundle, _, seeds = rest.partition(",")
    return name, bundle, seeds or None


def model_only_us(path: str, ids: np.ndarray) -> dict:
    """µs per review: one review per call (p50 over the rows), and batches of each BATCHES size
    (best of 3 passes over the full batches: a ragged last batch would resize the tensors)."""
    from runtime.model import open_backend

    backend = open_backend(path, "tflite", threads=1)
    backend.run(ids[:1])
    single = []
    for row in ids:
        t0 = time.perf_counter()
        backend.run(row[None, :])
        single.append(time.perf_counter() - t0)
    figures = {"single_p50_us": float(np.median(single) * 1e6)}
    for size in BATCHES:
        full = ids[: max(len(ids) // size, 1) * size]
        backend.run(full[:size])
        passes = []
        for _ in range(3):
            t0 = time.perf_counter()
            for i in range(0, len(full), size):
                backend.run(full[i:i + size])
            passes.append((time.perf_counter() - t0) / len(full))
        figures[f"batch{size}_us"] = float(min(passes) * 1e6)
    return figures


def accuracy_text(manifest: dict, seeds_json: str | None) -> str:
    if manifest.get("arch", {}).get("name") == "linear":
        return f"{manifest['verification']['reference']['accuracy'] * 100:.2f}, deterministic"
    if seeds_json:
        s = json.load(open(seeds_json, encoding="utf-8"))
        return f"{s['mean'] * 100:.2f} mean ({s['min'] * 100:.2f}–{s['max'] * 100:.2f}), {s['n']} seeds"
    return f"{manifest['verification']['reference']['accuracy'] * 100:.2f}, 1 seed"


def measure_bundle(name: str, bundle_dir: str, seeds_json: str | None, texts: list[str]) -> dict:
    from runtime.bundle import Bundle

    bundle = Bundle.load(bundle_dir)
    m = bundle.manifest
    ids = bundle.tokenizer().encode_batch(texts)
    results, files = m["verification"]["results"], m["files"]
    arch = m.get("arch", {"name": "tutorial", "shipped_int8": {"mode": "int8"}, "parameters": None})
    return {
        "name": name, "bundle": bundle_dir, "arch": arch, "maxlen": m["tokenizer"]["maxlen"],
        "accuracy": accuracy_text(m, seeds_json),
        "int8_tflite_accuracy": results["model.int8.tflite"]["accuracy"],
        "int8_tflite_drop_pt": (m["verification"]["reference"]["accuracy"]
                                - results["model.int8.tflite"]["accuracy"]) * 100,
        "mediapipe_int8_max_abs_diff": results.get("mediapipe:model.int8.tflite", {}).get("max_abs_diff"),
        "sizes_mb": {f: files[f]["size"] / 1e6 for f in ("model.onnx", "model.int8.onnx", "model.int8.tflite")},
        "litert_int8": model_only_us(bundle.path("model.int8.tflite"), ids),
    }


def table(rows: list[dict]) -> str:
    lines = ["| model | maxlen | test accuracy % (Keras) | model.int8.tflite: accuracy %, mode | parameters "
             "| model.int8.tflite / model.int8.onnx / model.onnx MB "
             "| LiteRT model-only µs/review (1 review / batch 64 / batch 256) |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        s = r["sizes_mb"]
        lines.append(
            f"| {r['name']} | {r['maxlen']} | {r['accuracy']} | {r['int8_tflite_accuracy'] * 100:.2f} "
            f"({r['arch']['shipped_int8']['mode']}) | {r['arch'].get('parameters') or ''} | "
            f"{s['model.int8.tflite']:.2f} / {s['model.int8.onnx']:.2f} / {s['model.onnx']:.2f} | "
            f"{r['litert_int8']['single_p50_us']:.0f} / {r['litert_int8']['batch64_us']:.1f} / "
            f"{r['litert_int8']['batch256_us']:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from .common import add_data_option, data_path, load_reviews

    p = ArgumentParser(prog="python -m benchmarks.models", description=__doc__.split("\n\n")[1])
    p.add_argument("bundles", nargs="+", metavar="NAME=BUNDLE[,SEEDS_JSON]")
    add_data_option(p)
    p.add_argument("--reviews", type=int, default=1000, help="test reviews timed (default %(default)s)")
    p.add_argument("--out", default="bench", help="output directory for models.json (default: bench)")
    args = p.parse_args(argv)
    specs = [parse_bundle(s) for s in args.bundles]
    texts, _ = load_reviews(data_path(args.data), args.reviews)
    rows = [measure_bundle(name, bundle, seeds, texts) for name, bundle, seeds in specs]
    os.makedirs(args.out, exist_ok=True)
    atomic_write_text(os.path.join(args.out, "models.json"), json.dumps(rows, indent=2) + "\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, sys.argv[1:]))
