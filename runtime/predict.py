"""``python -m runtime.predict``: score raw reviews from files, stdin or the command line (options ->
``engine.Job`` -> ``engine.run``), streaming csv to stdout by default.
"""
from __future__ import annotations

import argparse
import sys

from . import engine
from .errors import ArgumentParser, run_cli
from .model import set_verbose
from .output import Progress
from .records import STDIN

EXAMPLES = """\
examples:
  python -m runtime.predict reviews.txt                  one review per line -> csv on stdout
  python -m runtime.predict --text "a great film" --text "dull"
  cat reviews.txt | python -m runtime.predict -          read stdin
  python -m runtime.predict a.txt b.txt --format jsonl --output scores.jsonl
  python -m runtime.predict reviews.jsonl --input-format jsonl --id-column id
  python -m runtime.predict reviews.csv --input-format csv --text-column review --threshold 0.7
  python -m runtime.predict reviews.txt --model bundle/model.int8.tflite --backend tflite

output: one row per input record, in input order: row (the 1-based line number; csv: the
data row) or the --id-column, label, probability (6 decimals; two classes: of the second
label, else of the label given), with --all-scores one column per class named by its label,
error (why the text was unusable, e.g. "empty text"; empty when fine), then the
--keep-columns; a first "file" column when several sources are given. A summary goes to stderr.
"""


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="python -m runtime.predict", description="Score texts with a bundle: a label and its probability each "
                    "(the bundled model: movie reviews, negative or positive).",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="*", metavar="FILE",
                   help="input files, '-' for stdin (default: stdin unless --text is given)")
    p.add_argument("--text", action="append", default=[], metavar="TEXT",
                   help="a review to score (repeatable); scored before the files")
    p.add_argument("--skip-blank", action="store_true",
                   help="skip blank reviews instead of scoring them as 'empty text' (numbers still count them)")
    p.add_argument("--output", "-o", metavar="FILE", help="write here instead of stdout (replaced only on success)")
    p.add_argument("--threads", type=int, help="inference threads per process (default: the runtime's "
                                               "choice; 1 with --workers)")
    engine.add_options(p, batch_size=256)
    return p


def main(argv: list[str] | None = None) -> int:
    progress = Progress(sys.stderr, enabled=False)
    return run_cli(lambda a: _main(a, progress), argv, cleanup=progress.clear)


def _main(argv, progress: Progress) -> int:
    args = build_parser().parse_args(argv)
    files = args.files or ([] if args.text else [STDIN])
    set_verbose(args.verbose)  # also for the worker processes
    job = engine.Job.from_args(args, inputs=tuple(files), texts=tuple(args.text),
                               input_format=args.input_format or "text", output_format=args.format or "csv")
    progress.enabled = args.progress if args.progress is not None else bool(files) and sys.stderr.isatty()
    if STDIN in files and sys.stdin.isatty():
        print("reading reviews from the terminal, one per line; end with Ctrl-D", file=sys.stderr)
    print(engine.run(job, progress), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
