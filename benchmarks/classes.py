"""``runtime.predict``'s throughput for bundles of different class counts, side by side in one run.

The tokenizer is the cost and the model's last layer grows with N, so an N-class bundle should
score nearly as fast as a two-class one. Every bundle scores the same IMDB test reviews (written
once to a text file) with the whole ``runtime.predict`` command; the repeats take the bundles in
turn, so a change of load reaches each alike. The table gives the best run's rows/s and its ratio
to the first bundle's.

    python -m benchmarks.classes --bundle artifacts --bundle stars_bundle
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

from runtime.errors import ArgumentParser, run_cli

from .batch import timed
from .common import ROOT, add_data_option, data_path, load_reviews
from .engines import BenchmarkError


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = ArgumentParser(prog="python -m benchmarks.classes", description=__doc__.split("\n\n")[0])
    p.add_argument("--bundle", action="append", required=True, metavar="DIR",
                   help="a bundle directory; give two or more, the first is the reference")
    add_data_option(p)
    p.add_argument("--limit", type=int, default=25000, help="test reviews scored per run (default %(default)s)")
    p.add_argument("--repeats", type=int, default=3, help="runs per bundle; the best counts (default %(default)s)")
    args = p.parse_args(argv)
    if len(args.bundle) < 2:
        p.error("give --bundle at least twice: the ratio is to the first")
    return args


def labels_of(bundle: str) -> list[str]:
    try:
        with open(os.path.join(bundle, "manifest.json"), encoding="utf-8") as f:
            return list(json.load(f)["labels"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise BenchmarkError(f"{bundle}: not a bundle ({e})") from None


def best_seconds(bundles: list[str], reviews: str, repeats: int) -> list[float]:
    """The fastest whole ``runtime.predict`` run of each bundle, the bundles taken in turn."""
    best = [float("inf")] * len(bundles)
    for _ in range(repeats):
        for i, bundle in enumerate(bundles):
            cmd = [sys.executable, "-m", "runtime.predict", reviews, "--model", os.path.abspath(bundle),
                   "--no-progress", "-o", os.devnull]
            run = timed(cmd, ROOT)
            if run["code"] != 0:
                raise BenchmarkError(f"{bundle}: runtime.predict failed: {run['stderr']}")
            best[i] = min(best[i], run["seconds"])
    return best


def table(bundles: list[str], seconds: list[float], n: int) -> str:
    lines = ["| bundle | classes | best run (s) | rows/s | ratio to the first |", "|---|---|---|---|---|"]
    for bundle, s in zip(bundles, seconds):
        lines.append(f"| {bundle} | {len(labels_of(bundle))} | {s:.2f} | {n / s:,.0f} | {seconds[0] / s:.0%} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for bundle in args.bundle:
        labels_of(bundle)  # refuse a wrong directory before the data is read
    texts, _ = load_reviews(data_path(args.data), args.limit)
    with tempfile.TemporaryDirectory() as work:
        reviews = os.path.join(work, "reviews.txt")
        with open(reviews, "w", encoding="utf-8") as f:
            f.writelines(t.replace("\n", " ").replace("\r", " ") + "\n" for t in texts)
        seconds = best_seconds(args.bundle, reviews, args.repeats)
    print(table(args.bundle, seconds, len(texts)))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
