"""``python -m runtime.predict``: score raw reviews from files, stdin or the command line.

A thin adapter: parse and check the options, then ``records.read_records`` ->
``records.score_stream`` -> ``records.RecordWriter``. User mistakes end as one
``Error: ...`` line on stderr and exit code 2; stdout carries data only.
"""
from __future__ import annotations

import argparse
import os
import sys
from contextlib import contextmanager

from . import chunks, quiet, records
from .backends import BackendError
from .bundle import BundleError
from .pool import WorkerError, WorkerPool, default_workers
from .records import InputError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_BROKEN_PIPE = 0, 1, 2, 130, 141

EXAMPLES = """\
examples:
  python -m runtime.predict reviews.txt                  one review per line -> csv on stdout
  python -m runtime.predict --text "a great film" --text "dull"
  cat reviews.txt | python -m runtime.predict -          read stdin
  python -m runtime.predict a.txt b.txt --format jsonl --output scores.jsonl
  python -m runtime.predict reviews.jsonl --input-format jsonl --id-field id
  python -m runtime.predict reviews.csv --input-format csv --text-field review --threshold 0.7
  python -m runtime.predict reviews.txt --model bundle/model.int8.tflite --backend tflite

output: one record per input record, in input order, with its 1-based line number
(csv input: data row number), label and probability (6 decimals); a first "file"
column when several sources are given. A summary goes to stderr.
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m runtime.predict", description="Score movie reviews as positive or negative.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="*", metavar="FILE",
                   help="input files, '-' for stdin (default: stdin unless --text is given)")
    p.add_argument("--text", action="append", default=[], metavar="TEXT",
                   help="a review to score (repeatable); scored before the files")
    p.add_argument("--input-format", choices=records.INPUT_FORMATS, default="lines",
                   help="lines: one review per line (default); jsonl: one object per line; csv: with a header")
    p.add_argument("--text-field", default="text", help="review field/column for jsonl/csv (default: text)")
    p.add_argument("--id-field", help="field/column copied to the output (jsonl/csv input)")
    p.add_argument("--skip-blank", action="store_true",
                   help="skip blank reviews instead of scoring them as empty text (numbers still count them)")
    p.add_argument("--format", choices=records.OUTPUT_FORMATS, default="csv", help="output format (default: csv)")
    p.add_argument("--output", "-o", metavar="FILE", help="write here instead of stdout (replaced only on success)")
    p.add_argument("--model", metavar="PATH", help="bundle directory or a model file in one (default: bundled model)")
    p.add_argument("--backend", choices=("auto", "onnx", "tflite"), default="auto",
                   help="inference runtime (default: auto, from the model file)")
    p.add_argument("--batch-size", type=int, default=256, help="reviews per batch (default: 256)")
    p.add_argument("--threads", type=int, help="inference threads per process (default: the runtime's "
                                               "choice; 1 with --workers)")
    p.add_argument("--workers", type=int, help="scoring processes (default: all cores for inputs over 4 MiB, "
                                               "else 1); output order is kept")
    p.add_argument("--threshold", type=float, help="probability at or above which a review is positive "
                                                   "(default: the model's)")
    p.add_argument("--deterministic", action="store_true",
                   help="TFLite on its built-in kernels only: int8 scores identical on every CPU "
                        "(x86, ARM, TFLite Micro); implies --backend tflite unless given")
    p.add_argument("--verbose", action="store_true",
                   help="let the inference libraries' own messages through to stderr")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress line on stderr (default: when reading files and stderr is a terminal)")
    return p


def check_options(args: argparse.Namespace) -> None:
    if args.batch_size < 1:
        raise InputError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.workers is not None and args.workers < 1:
        raise InputError(f"--workers must be at least 1, got {args.workers}")
    if args.threads is not None and args.threads < 1:
        raise InputError(f"--threads must be at least 1, got {args.threads}")
    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:  # also refuses nan
        raise InputError(f"--threshold must be between 0 and 1, got {args.threshold}")
    if args.id_field is not None and args.input_format == "lines":
        raise InputError("--id-field needs --input-format jsonl or csv")
    if args.id_field in records.OUTPUT_COLUMNS:
        raise InputError(f"--id-field {args.id_field!r} clashes with the output column of that name")


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # --help, or argparse's own usage error (exit 2)
        return e.code if isinstance(e.code, int) else EXIT_USAGE
    progress = None
    if args.verbose:
        quiet.set_verbose(True)  # also for the worker processes
    try:
        check_options(args)
        files = args.files or ([] if args.text else [records.STDIN])
        records.check_inputs(files, args.output)  # before the model loads or anything is written
        show = args.progress if args.progress is not None else bool(files) and sys.stderr.isatty()
        progress = records.Progress(sys.stderr, enabled=show)
        if records.STDIN in files and sys.stdin.isatty():
            print("reading reviews from the terminal, one per line; end with Ctrl-D", file=sys.stderr)
        summary = run(args, files, progress)
    except (InputError, BundleError) as e:
        _clear(progress)
        print(f"Error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except (BackendError, WorkerError) as e:  # the model failed while scoring: not the user's mistake
        _clear(progress)
        print(f"Error: {e}", file=sys.stderr)
        return EXIT_FAILED
    except BrokenPipeError:  # e.g. `... | head`: stop quietly, as other filters do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit flush
        return EXIT_BROKEN_PIPE
    except OSError as e:  # e.g. the output directory is not writable
        _clear(progress)
        name = f"{e.filename}: " if e.filename else ""
        print(f"Error: {name}{e.strerror or e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        _clear(progress)
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(summary, file=sys.stderr)
    return EXIT_OK


def run(args: argparse.Namespace, files: list[str], progress: records.Progress) -> records.Summary:
    from .classifier import Classifier  # loads onnxruntime: not needed for --help or bad options

    clf = Classifier.load(args.model, backend=args.backend, threads=args.threads, batch_size=args.batch_size,
                          deterministic=args.deterministic)
    stream = records.read_records(files, args.input_format, args.text_field, args.id_field,
                                  args.skip_blank, args.text, warn=progress.message)
    with_file = len(files) + bool(args.text) > 1
    if args.output in (None, records.STDIN) and hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(encoding="utf-8", errors="replace")  # data out is UTF-8, whatever the locale
    workers = args.workers or default_workers(_input_bytes(files))
    with records.open_output(args.output) as out, _pool(workers, clf, args) as pool:
        if pool is not None and args.input_format != "csv":  # workers parse, score and format
            threshold = clf.threshold if args.threshold is None else args.threshold
            settings = chunks.Settings(args.input_format, args.text_field, args.id_field, args.skip_blank,
                                       args.format, with_file, threshold)
            return chunks.score_files(pool, clf, settings, files, args.text, out, progress, warn=progress.message)
        writer = records.RecordWriter(out, args.format, with_file, args.id_field)
        return records.score_stream(clf, stream, writer, args.threshold, args.batch_size, progress, pool)


def _input_bytes(files: list[str]) -> int | None:
    """Total size of the input files; None when reading stdin (size unknown)."""
    return None if records.STDIN in files else sum(os.path.getsize(f) for f in files)


@contextmanager
def _pool(workers: int, clf, args: argparse.Namespace):
    """Workers load exactly the model the parent resolved (and verified)."""
    if workers == 1:
        yield None
        return
    with WorkerPool(workers, clf.bundle.root, clf.backend_name, clf.model, threads=args.threads or 1,
                    batch_size=args.batch_size, deterministic=clf.deterministic) as pool:
        yield pool


def _clear(progress: records.Progress | None) -> None:
    if progress is not None:
        progress.clear()


if __name__ == "__main__":
    from .errors import run_cli  # SIGTERM: cleanup as for Ctrl-C, "terminated", exit 143
    sys.exit(run_cli(main))
