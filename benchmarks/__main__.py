"""``python -m benchmarks [--bundle artifacts] [--data PATH] [--out bench] [--limit N] [--repeats 3]``

Scores the same IMDB test reviews with every engine -- Keras/TensorFlow fed by the plain
reference tokenizer (the baseline of every ratio), ``runtime.Classifier`` on each ONNX and
TFLite file, and MediaPipe's TextClassifier when it is installed -- and writes bench.json,
bench.md and bench.png to ``--out``, printing the table.
"""
from __future__ import annotations

import argparse
import gc
import importlib.metadata
import os
import platform
import shlex
import sys
import time
from datetime import datetime, timezone

import numpy as np

from runtime.errors import ArgumentParser, run_cli

from . import engines as eng
from .common import add_data_option, data_path, load_reviews
from .measure import latency, measure
from .report import markdown_table, write_outputs

PACKAGES = ["numpy", "onnxruntime", "ai-edge-litert", "tensorflow-cpu", "tensorflow", "keras", "mediapipe"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[1])
    add_data_option(p)
    p.add_argument("--bundle", default="artifacts", help="export bundle directory (default: artifacts)")
    p.add_argument("--out", default="bench", help="output directory (default: bench)")
    p.add_argument("--limit", type=int, default=None, metavar="N",
                   help="use N test reviews, evenly spread over both labels (smoke runs)")
    p.add_argument("--repeats", type=int, default=3, help="timed passes per measurement (default: 3)")
    p.add_argument("--latency-reviews", type=int, default=1000, metavar="N",
                   help="single-review requests timed per engine (default: 1000)")
    p.add_argument("--verbose", action="store_true",
                   help="also show TensorFlow's, LiteRT's and MediaPipe's own log lines")
    args = p.parse_args(argv)
    if args.repeats < 1 or args.latency_reviews < 1 or (args.limit is not None and args.limit < 1):
        p.error("--repeats, --latency-reviews and --limit must be at least 1")
    return args


def engine_factories(bundle: str, files: set[str]) -> list:
    """``(row name, model file, make)`` in table order: Keras, runtime rows, MediaPipe rows."""
    rows = [(*eng.KERAS, lambda: eng.keras_engine(bundle))]
    rows += [(name, model, lambda n=name, m=model: eng.runtime_engine(bundle, n, m))
             for name, model in eng.RUNTIME_MODELS]
    if eng.mediapipe_available():
        rows += [(name, model, lambda n=name, m=model: eng.mediapipe_engine(bundle, n, m))
                 for name, model in eng.MEDIAPIPE_MODELS]
    return [row for row in rows if row[1] in files]


def run(args: argparse.Namespace, command: str) -> dict:
    from runtime.bundle import Bundle, BundleError

    started = time.perf_counter()
    data = data_path(args.data)
    try:
        bundle = Bundle.load(args.bundle)
    except BundleError as e:
        raise eng.BenchmarkError(str(e)) from None
    texts, labels = load_reviews(data, args.limit)
    factories = engine_factories(args.bundle, set(bundle.manifest["files"]))
    # Measure the runtime rows first, before TensorFlow is in this process (Keras imports it,
    # and so does MediaPipe's Python package when TensorFlow is installed).
    rows, probs = measure_all(factories, texts, labels, bundle, args)
    compare_with_keras(rows, probs)
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine(),
        "python": platform.python_version(),
        "packages": package_versions(),
        "command": command,
        "bundle": args.bundle,
        "data": {"source": data, "n_reviews": len(texts), "n_bytes": sum(len(t.encode("utf-8")) for t in texts)},
        "settings": {"batch": eng.BATCH, "repeats": args.repeats,
                     "latency_reviews": min(args.latency_reviews, len(texts))},
        "rows": rows,
        "notes": {"keras_latency": keras_latency_note(rows)},
        "wall_s": time.perf_counter() - started,
    }


def measure_all(factories, texts, labels, bundle, args) -> tuple[list[dict], list[np.ndarray]]:
    """Every engine's row and probabilities, in the order of ``factories``."""
    from runtime.bundle import BundleError

    # Measure the runtime rows first, before TensorFlow is in this process (Keras imports it,
    # and so does MediaPipe's Python package when TensorFlow is installed).
    order = sorted(range(len(factories)), key=lambda i: factories[i][0] not in dict(eng.RUNTIME_MODELS))
    rows, probs = [None] * len(factories), [None] * len(factories)
    for i in order:
        name, _, make = factories[i]
        print(f"benchmarks: {name} ...", file=sys.stderr, flush=True)
        try:
            engine = make()
        except (ImportError, BundleError) as e:
            raise eng.BenchmarkError(f"{name}: {e}") from None
        try:
            rows[i], probs[i] = measure(engine, texts, labels, bundle=args.bundle, threshold=bundle.threshold,
                                        repeats=args.repeats, latency_reviews=args.latency_reviews)
            rows[i]["latency_variants"] = {variant: latency(fn, texts[:args.latency_reviews])
                                           for variant, fn in engine.latency_variants.items()}
        finally:
            engine.close()
        del engine
        gc.collect()
    return rows, probs


def compare_with_keras(rows: list[dict], probs: list[np.ndarray]) -> None:
    """Add ``vs_keras`` speed-ups and ``max_abs_diff_vs_keras`` to every row (Keras row included)."""
    base = next((i for i, r in enumerate(rows) if r["model"] == eng.KERAS[1]), None)
    if base is None:
        return
    keras = rows[base]
    for row, p in zip(rows, probs):
        row["max_abs_diff_vs_keras"] = float(np.max(np.abs(p - probs[base]), initial=0.0))
        row["vs_keras"] = {
            "end_to_end": row["end_to_end"]["reviews_per_s"] / keras["end_to_end"]["reviews_per_s"],
            "latency_p50": keras["latency"]["p50_ms"] / row["latency"]["p50_ms"],
            "cold_start": keras["cold_start"]["min_s"] / row["cold_start"]["min_s"],
        }


def keras_latency_note(rows: list[dict]) -> str:
    keras = next((r for r in rows if r["model"] == eng.KERAS[1]), None)
    if keras is None or not keras["latency_variants"]:
        return ""
    variants = "; ".join(f"with `{name}` instead its p50 is {v['p50_ms']:.3f} ms and p99 {v['p99_ms']:.3f} ms"
                         for name, v in keras["latency_variants"].items())
    return (f"The Keras row calls `model.predict` on one row, as the tutorial does; most of its time is "
            f"predict()'s per-call setup: {variants}.")


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.lower().startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "platform": f"{platform.system()} {platform.machine()}"}


def package_versions() -> dict:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return versions


def _main(argv: list[str] | None) -> int:
    args = parse_args(argv)
    command = "python -m benchmarks " + shlex.join(sys.argv[1:] if argv is None else argv)
    from trainer.noise import quiet_native

    with quiet_native(args.verbose):
        result = run(args, command.strip())  # BenchmarkError: one "Error:" line from run_cli
    paths = write_outputs(args.out, result)
    print(markdown_table(result))
    print(f"\nwrote {', '.join(paths)} in {result['wall_s']:.0f} s", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_cli(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
