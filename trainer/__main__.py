"""``python -m trainer``: train a text classifier (the tutorial model by default) on raw IMDB reviews or
your own labelled text."""
from __future__ import annotations

import argparse
import sys

from runtime.errors import ArgumentParser, run_cli

from .cli import add_train_arguments, add_verbose_argument, config_from_args, log_to_stderr
from .noise import TRAIN_MODULES, check_extra, quiet_native
from .train import TrainConfig

EPILOG = """examples:
  python -m trainer --data ../shared/data/aclImdb_v1_labeled.tar.gz --out artifacts
  IMDB_DATA=~/aclImdb python -m trainer --epochs 10 --early-stopping 3
  python -m trainer --data my.csv --text-column body --label-column topic --out mymodel

exit codes: 0 done, 1 training failed, 2 bad input, options or a missing extra
"""


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
    log_to_stderr()
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
