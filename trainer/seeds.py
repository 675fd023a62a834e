"""``python -m trainer.seeds``: train one configuration with several seeds; report mean and spread.

Each seed trains into ``OUT/seed-N`` (the usual trainer outputs); ``OUT/seeds.json`` holds every
seed's test accuracy and the mean, min and max. The summary line goes to stdout.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from runtime.errors import ArgumentParser, UserError, run_cli
from runtime.files import atomic_write_text

from .cli import add_train_arguments, config_from_args, log_to_stderr
from .train import TrainConfig, train

EPILOG = """example (the recipe that beats the tutorial's 87.3% on every seed):
  python -m trainer.seeds --seeds 42,43,44 --mask-padding --maxlen 512 --early-stopping 3 \\
      --data ../shared/data/aclImdb_v1_labeled.tar.gz --out runs/masked512
"""


def parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise UserError(f"--seeds must be comma-separated integers, got {text!r}") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise UserError(f"--seeds must list distinct seeds, got {text!r}")
    return seeds


def summarize_seeds(accuracies: dict[int, float]) -> dict:
    values = list(accuracies.values())
    return {"seeds": {str(k): v for k, v in accuracies.items()}, "n": len(values),
            "mean": sum(values) / len(values), "min": min(values), "max": max(values)}


def run_seeds(config: TrainConfig, seeds: list[int]) -> dict:
    accuracies = {}
    for seed in seeds:
        cfg = replace(config, seed=seed, out=os.path.join(config.out, f"seed-{seed}"))
        metrics = train(cfg)
        accuracies[seed] = metrics["test_accuracy"]
    summary = {**summarize_seeds(accuracies), "config": {k: v for k, v in vars(config).items() if k != "seed"}}
    os.makedirs(config.out, exist_ok=True)
    atomic_write_text(os.path.join(config.out, "seeds.json"), json.dumps(summary, indent=2) + "\n")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m trainer.seeds", description=__doc__.split(":", 1)[1].strip(),
                            epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_train_arguments(parser)
    parser.add_argument("--seeds", default="42,43,44", help="comma-separated seeds (default %(default)s)")
    parser.add_argument("--out", default="runs", help="one seed-N directory per seed inside (default %(default)s)")
    args = parser.parse_args(argv)
    log_to_stderr()
    seeds = parse_seeds(args.seeds)
    s = run_seeds(config_from_args(args), seeds)
    print(f"test accuracy over {s['n']} seeds: mean {s['mean']:.4f} (min {s['min']:.4f}, max {s['max']:.4f}) "
          f"-> {os.path.join(args.out, 'seeds.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, sys.argv[1:]))
