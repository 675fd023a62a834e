"""``python -m benchmarks.deterministic [--bundle artifacts] [--data PATH] [--limit N] [--repeats 3]``

What ``deterministic=True`` (LiteRT's built-in kernels, no XNNPACK) costs on an int8 TFLite
model against LiteRT's default path: model-only and end-to-end throughput on the IMDB test
reviews, single-review latency, and how many scores and labels differ. Prints a markdown table.
"""
from __future__ import annotations

import argparse
import platform
import sys

import numpy as np

from runtime import Classifier
from runtime.errors import ArgumentParser

from .engines import batches
from .common import add_data_option, data_path, load_reviews
from .measure import latency, throughput, timed


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = ArgumentParser(prog="python -m benchmarks.deterministic", description=__doc__.split("\n\n")[1])
    add_data_option(p)
    p.add_argument("--bundle", default="artifacts", help="export bundle directory (default: artifacts)")
    p.add_argument("--model", default="model.int8.tflite", help="TFLite file in the bundle (default: int8)")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="use N test reviews (smoke runs)")
    p.add_argument("--repeats", type=int, default=3, help="timed passes per measurement (default: 3)")
    p.add_argument("--latency-reviews", type=int, default=1000, metavar="N",
                   help="single-review requests timed per setting (default: 1000)")
    return p.parse_args(argv)


def measure(clf: Classifier, texts: list[str], ids: list[np.ndarray], repeats: int, n_latency: int) -> dict:
    """Throughputs (model only, end to end) and latency of one classifier; its probabilities."""
    clf.predict(texts[:256])  # warm-up: tensor allocation for the batch shape
    model = throughput(timed(lambda: [clf.predict_ids(chunk) for chunk in ids], repeats), len(texts))
    chunks = batches(texts)
    end_to_end = throughput(timed(lambda: [clf.predict(chunk) for chunk in chunks], repeats), len(texts))
    return {"model_rps": model["reviews_per_s"], "e2e_rps": end_to_end["reviews_per_s"],
            "latency": latency(clf.predict_one, texts[:n_latency]), "probs": clf.predict(texts)}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    texts, labels = load_reviews(data_path(args.data), args.limit)
    settings = {"default (XNNPACK where LiteRT applies it)": False, "deterministic (built-in kernels)": True}
    rows = {}
    for name, deterministic in settings.items():
        clf = Classifier.load(args.bundle, backend="tflite", model=args.model, threads=1,
                              deterministic=deterministic)
        ids = [clf.tokenizer.encode_batch(chunk) for chunk in batches(texts)]
        rows[name] = measure(clf, texts, ids, args.repeats, args.latency_reviews)
        rows[name]["accuracy"] = float(np.mean((rows[name]["probs"] >= clf.threshold) == (labels == 1)))
    default, fixed = (rows[name]["probs"] for name in settings)
    print(f"{args.model} on {len(texts)} IMDB test reviews, 1 thread, {platform.machine()}, "
          f"Python {sys.version.split()[0]}\n")
    print("| kernels | model reviews/s | end-to-end reviews/s | latency p50 / p99 ms | accuracy |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, row in rows.items():
        lat = row["latency"]
        print(f"| {name} | {row['model_rps']:.0f} | {row['e2e_rps']:.0f} | "
              f"{lat['p50_ms']:.3f} / {lat['p99_ms']:.3f} | {row['accuracy']:.4f} |")
    differ = default != fixed
    threshold = Classifier.load(args.bundle, backend="tflite", model=args.model).threshold
    flipped = (default >= threshold) != (fixed >= threshold)
    print(f"\nscores differing: {differ.sum()} of {len(texts)} ({differ.mean():.1%}), "
          f"max |dp| {np.max(np.abs(default - fixed)):.4f}, labels differing: {flipped.sum()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
