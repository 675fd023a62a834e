"""``python -m runtime.batch INPUT OUTPUT``: score a large file of reviews into a file, locally with a
pool of worker processes (``engine``) or on Spark (``spark``).
"""
from __future__ import annotations

import argparse
import sys
from typing import IO, Sequence

from . import engine
from .errors import ArgumentParser, run_cli
from .model import set_verbose
from .output import Progress, Summary, output_format_of
from .records import InputError

DEFAULT_BATCH_SIZE = 4096  # rows per unit of work: ~5 MB of IMDB-sized reviews

EXAMPLES = """\
examples:
  python -m runtime.batch reviews.parquet scores.parquet --id-column review_id
  python -m runtime.batch reviews_dir/ scores.csv --text-column body --keep-columns movie,date
  python -m runtime.batch reviews.txt scores.jsonl --workers 4
  python -m runtime.batch reviews.parquet scores.parquet --engine spark --master 'local[4]'
  python -m runtime.batch hdfs:///data/reviews hdfs:///data/scores.parquet --engine spark --master yarn

INPUT: .parquet (or a directory of Parquet files), .csv/.tsv (with a header), .jsonl, .txt (one
review per line). OUTPUT: .csv, .tsv, .jsonl, anything else Parquet; replaced only on success.
Columns: the --id-column (else "row": the 1-based line, CSV data row or Parquet row number),
label, probability (two classes: of the second label; else of the label given), with --all-scores
one column per class named by its label, error (why a row's text was unusable; empty when fine),
then the --keep-columns. The local engine writes one file in input order; Spark writes a directory.
"""


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m runtime.batch", epilog=EXAMPLES,
                       description="Score a large file of texts with a bundle (local processes or Spark).",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", metavar="INPUT", help="Parquet file or directory, CSV, TSV, JSONL or text file "
                                                  "(spark: any path or URI Spark reads)")
    p.add_argument("output", metavar="OUTPUT", help="output file: .parquet (default), .csv, .tsv or .jsonl "
                                                    "(spark: a directory or URI)")
    p.add_argument("--engine", choices=("local", "spark"), default="local",
                   help="local: a process pool (default); spark: PySpark (the [spark] extra)")
    p.add_argument("--master", metavar="URL", help="spark engine: Spark master (default: local[2])")
    p.add_argument("--spark-conf", action="append", default=[], metavar="KEY=VALUE",
                   help="spark engine: a Spark setting for the session started here (repeatable)")
    p.add_argument("--debug", action="store_true", help="spark engine: keep the Spark log and tracebacks")
    p.add_argument("--overwrite", action="store_true",
                   help="spark engine: replace an OUTPUT directory that is not an earlier Spark output "
                        "(one without _SUCCESS), and everything in it")
    engine.add_options(p, batch_size=DEFAULT_BATCH_SIZE)
    return p


def score_file(input: str, output: str, *, keep_columns: Sequence[str] = (), output_format: str | None = None,
               batch_size: int = DEFAULT_BATCH_SIZE, progress: bool = False, stream: IO[str] | None = None,
               **options) -> Summary:
    """The local engine on one input file into one output file (in input order). ``options``: the other
    fields of ``engine.Job`` (text_column, id_column, model, backend, workers, threshold, all_scores, ...)."""
    job = engine.Job(inputs=(str(input),), output=str(output), keep=tuple(keep_columns), batch_size=batch_size,
                     output_format=output_format or output_format_of(str(output)), threads=1, **options)
    return engine.run(job, Progress(stream, enabled=progress))


def main(argv: list[str] | None = None) -> int:
    return run_cli(_main, argv)


def _main(argv) -> int:
    args = build_parser().parse_args(argv)
    _check_engine(args)
    set_verbose(args.verbose)  # also for the worker processes
    progress = Progress(sys.stderr, enabled=sys.stderr.isatty() if args.progress is None else args.progress)
    if args.engine == "local":
        job = engine.Job.from_args(args, inputs=(args.input,), threads=1,
                                   output_format=args.format or output_format_of(args.output))
        summary = engine.run(job, progress)
    else:
        from . import spark
        summary = spark.score_file(args.input, args.output, text_column=args.text_column, id_column=args.id_column,
                                   keep_columns=engine.keep_list(args.keep_columns), model=args.model,
                                   backend=args.backend, batch_size=args.batch_size, input_format=args.input_format,
                                   output_format=args.format, threshold=args.threshold, all_scores=args.all_scores,
                                   max_record_bytes=args.max_record_bytes, master=args.master or spark.DEFAULT_MASTER,
                                   progress=progress.enabled, debug=args.debug, overwrite=args.overwrite,
                                   conf=dict(c.split("=", 1) for c in args.spark_conf))
    print(summary, file=sys.stderr)
    return 0


def _check_engine(args: argparse.Namespace) -> None:
    """Each option is for the engine it names."""
    for option, given in (("--master", args.master is not None), ("--spark-conf", args.spark_conf),
                          ("--overwrite", args.overwrite)):
        if given and args.engine != "spark":
            raise InputError(f"{option} needs --engine spark")
    if any("=" not in c for c in args.spark_conf):
        raise InputError("--spark-conf takes KEY=VALUE")
    if args.deterministic and args.engine != "local":
        raise InputError("--deterministic is for --engine local")
    if args.workers is not None and args.engine != "local":
        raise InputError("--workers is for --engine local; give Spark cores with --master 'local[N]'")


if __name__ == "__main__":
    sys.exit(main())
