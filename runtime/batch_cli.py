"""``python -m runtime.batch INPUT OUTPUT``: score a large file of reviews into a Parquet, CSV or
JSONL file, locally with a process pool or on Spark.

A thin adapter over ``runtime.batch.score_file`` and ``runtime.spark.score_file``: user
mistakes end as one ``Error: ...`` line on stderr and exit code 2, a dead worker or failed
model as one line and exit code 1; stdout stays empty.
"""
from __future__ import annotations

import argparse
import sys

from .backends import BackendError
from .batch import DEFAULT_BATCH_SIZE, BatchError, WorkerError
from .bundle import BundleError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

EXAMPLES = """\
examples:
  python -m runtime.batch reviews.parquet scores.parquet --id-column review_id
  python -m runtime.batch reviews_dir/ scores.csv --text-column body --keep-columns movie,date
  python -m runtime.batch reviews.txt scores.jsonl --workers 4
  python -m runtime.batch reviews.parquet scores.parquet --engine spark --master 'local[4]'

INPUT: .parquet (or a directory of Parquet files), .csv (with a header), .jsonl, .txt (one
review per line). OUTPUT: .csv, .jsonl, anything else Parquet; replaced only on success.
Columns: the --id-column (else "row": the 1-based line, CSV data row or Parquet row number),
label, probability (float32), error (why a row's text was unusable: it was scored as empty
text; empty when fine), then the --keep-columns. Local output is in input order.
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m runtime.batch", epilog=EXAMPLES,
                                description="Score a large file of movie reviews as positive or negative.",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", metavar="INPUT", help="Parquet file or directory, CSV, JSONL or text file")
    p.add_argument("output", metavar="OUTPUT", help="output file: .parquet (default), .csv or .jsonl")
    p.add_argument("--text-column", default="text", metavar="NAME", help="review column/field (default: text)")
    p.add_argument("--id-column", metavar="NAME", help="column copied to the output as the row key "
                                                       "(default: a 'row' number)")
    p.add_argument("--keep-columns", default="", metavar="A,B", help="more columns copied to the output")
    p.add_argument("--engine", choices=("local", "spark"), default="local",
                   help="local: a process pool (default); spark: PySpark (the [spark] extra)")
    p.add_argument("--workers", type=int, metavar="N", help="local engine: worker processes (default: one per core)")
    p.add_argument("--master", metavar="URL", help="spark engine: Spark master (default: local[2])")
    p.add_argument("--model", metavar="PATH", help="bundle directory or a model file in one (default: bundled model)")
    p.add_argument("--backend", choices=("auto", "onnx", "tflite"), default="auto",
                   help="inference runtime (default: auto, from the model file)")
    p.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, metavar="N",
                   help=f"rows per unit of work (default: {DEFAULT_BATCH_SIZE})")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress line on stderr (default: when stderr is a terminal)")
    return p


def check_options(args: argparse.Namespace) -> None:
    if args.workers is not None and args.engine != "local":
        raise BatchError("--workers is for --engine local; give Spark cores with --master 'local[N]'")
    if args.master is not None and args.engine != "spark":
        raise BatchError("--master needs --engine spark")
    if args.workers is not None and args.workers < 1:
        raise BatchError(f"--workers must be at least 1, got {args.workers}")
    if args.batch_size < 1:
        raise BatchError(f"--batch-size must be at least 1, got {args.batch_size}")


def keep_list(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",")] if text.strip() else []
    if any(not n for n in names):
        raise BatchError(f"--keep-columns {text!r} has an empty name")
    return names


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # --help, or argparse's own usage error (exit 2)
        return e.code if isinstance(e.code, int) else EXIT_USAGE
    try:
        check_options(args)
        summary = run(args)
    except WorkerError as e:  # before BatchError: its subclass, and not the user's mistake
        return _fail(e, EXIT_FAILED)
    except (BatchError, BundleError) as e:
        return _fail(e, EXIT_USAGE)
    except BackendError as e:  # the model failed while scoring
        return _fail(e, EXIT_FAILED)
    except OSError as e:  # e.g. the output directory is not writable
        name = f"{e.filename}: " if e.filename else ""
        return _fail(f"{name}{e.strerror or e}", EXIT_USAGE)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(summary, file=sys.stderr)
    return EXIT_OK


def _fail(error, code: int) -> int:
    print(f"Error: {error}", file=sys.stderr)
    return code


def run(args: argparse.Namespace):
    options = dict(text_column=args.text_column, id_column=args.id_column,
                   keep_columns=keep_list(args.keep_columns), model=args.model, backend=args.backend,
                   batch_size=args.batch_size,
                   progress=sys.stderr.isatty() if args.progress is None else args.progress)
    if args.engine == "spark":
        from . import spark
        return spark.score_file(args.input, args.output, master=args.master or spark.DEFAULT_MASTER, **options)
    from . import batch
    return batch.score_file(args.input, args.output, workers=args.workers, **options)


if __name__ == "__main__":
    from .errors import run_cli  # SIGTERM: cleanup as for Ctrl-C, "terminated", exit 143
    sys.exit(run_cli(main))
