"""``python -m trainer``: train the tutorial model on raw IMDB reviews."""
from __future__ import annotations

import argparse
import sys
from dataclasses import fields

from runtime.errors import ArgumentParser, run_cli

from .data import add_data_argument
from .noise import TRAIN_MODULES, check_extra, quiet_native
from .train import ARCHS, TrainConfig

EPILOG = """examples:
  python -m trainer --data ../shared/data/aclImdb_v1_labeled.tar.gz --out artifacts
  IMDB_DATA=~/aclImdb python -m trainer --epochs 10 --early-stopping 3

exit codes: 0 done, 1 training failed, 2 bad input, options or a missing extra
"""


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """The training options shared by ``python -m trainer`` and ``python -m export all|train``."""
    d = TrainConfig()
    add_data_argument(parser)
    parser.add_argument("--epochs", type=int, default=d.epochs, help=f"training epochs (default {d.epochs})")
    parser.add_argument("--batch-size", type=int, default=d.batch_size, help=f"batch size (default {d.batch_size})")
    parser.add_argument("--num-words", type=int, default=d.num_words,
                        help=f"vocabulary size including the 4 special tokens (default {d.num_words})")
    parser.add_argument("--maxlen", type=int, default=d.maxlen, help=f"ids per review (default {d.maxlen})")
    parser.add_argument("--validation-size", type=int, default=d.validation_size,
                        help=f"shuffled training reviews held out for validation (default {d.validation_size})")
    parser.add_argument("--early-stopping", type=int, default=d.early_stopping, metavar="PATIENCE",
                        help="stop after PATIENCE epochs without a better validation loss and restore "
                             "the best weights (default 0: off, run every epoch as the tutorial does)")
    parser.add_argument("--seed", type=int, default=d.seed, help=f"random seed (default {d.seed})")
    parser.add_argument("--arch", choices=ARCHS, default=d.arch,
                        help="tutorial: the TensorFlow tutorial model (default); bigram: + in-graph hashed "
                             "bigrams, masked mean, dense head; linear: NB-weighted logistic regression over "
                             "the same uni+bigram ids (one deterministic fit, no epochs or seed)")
    parser.add_argument("--mask-padding", action="store_true",
                        help="tutorial arch: average over the real tokens only, not the <PAD> tail "
                             "(recipe: --mask-padding --maxlen 512 --early-stopping 3)")
    parser.add_argument("--buckets", type=int, default=d.buckets,
                        help="hashed-bigram table rows for bigram/linear (default 0: 2^18 bigram, 2^20 linear)")
    parser.add_argument("--force", action="store_true",
                        help="train even into a directory that holds a verified bundle (manifest.json); "
                             "its manifest is removed, as it would no longer match")


def add_verbose_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--verbose", action="store_true",
                        help="also show TensorFlow's, LiteRT's and the converters' own log lines")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig) if hasattr(args, f.name)})


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="python -m trainer", description=__doc__.split(":", 1)[1].strip(), epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_train_arguments(parser)
    parser.add_argument("--out", default=TrainConfig.out, help="output directory (default %(default)s)")
    add_verbose_argument(parser)
    return parser


def _main(argv: list[str] | None) -> int:
    from .train import train

    args = build_parser().parse_args(argv)
    config = config_from_args(args)
    check_extra(TRAIN_MODULES)  # before the data: a runtime-only install fails in a second
    with quiet_native(args.verbose):  # validate() may import Keras, which logs at import
        config.validate()
        train(config)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_cli(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
