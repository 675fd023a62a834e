"""The local engine of ``runtime.predict`` and ``runtime.batch``: a checked ``Job`` -> records -> score -> output.

``score_piece`` reads, scores and encodes each piece, here or in a ``WorkerPool``; chunks are written in
input order with at most ``2 x workers`` pieces in flight, so memory stays flat and N workers write the
bytes one process writes.
"""
from __future__ import annotations

import argparse
import ctypes
import dataclasses
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Sequence

from .errors import Failure, check_int
from .model import ModelRef
from .output import Chunk, Layout, Progress, Summary, check_output, open_sink
from .records import (ALIASES, CSV, DEFAULT_MAX_RECORD_BYTES, INPUT_FORMATS, OUTPUT_FORMATS, PARQUET, STDIN, TEXT,
                      InputError, Spec, canonical, check_input, check_names, format_of, open_source, pyarrow,
                      text_pieces)

AUTO_WORKERS_MIN_BYTES = 4 << 20  # ~4,000 reviews: below that, starting workers costs more than it saves


# -- the options of a run -------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class Job:
    """One scoring run, checked when made, before anything is read, loaded or written (the inputs'
    columns are checked when their sources open)."""
    inputs: tuple[str, ...]
    output: str | None = None  # None or "-": stdout
    input_format: str | None = None  # None: each input's extension
    output_format: str = CSV
    texts: tuple[str, ...] = ()  # --text reviews, scored first
    text_column: str = "text"
    id_column: str | None = None
    keep: tuple[str, ...] = ()
    threshold: float | None = None  # None: the bundle's
    all_scores: bool = False  # a column per class
    batch_size: int = 256  # rows per piece read from stdin, CSV or Parquet
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
    skip_blank: bool = False
    model: str | None = None
    backend: str = "auto"
    threads: int | None = None
    workers: int | None = None  # None: default_workers(input size)
    deterministic: bool = False  # TFLite built-in kernels only (the same int8 scores on every CPU)

    @classmethod
    def from_args(cls, args: argparse.Namespace, **fields) -> "Job":
        """A job of the parsed options named as its fields (``add_options``), ``--keep-columns`` and ``fields``."""
        options = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)}
        return cls(**{**options, "keep": keep_list(args.keep_columns), **fields})

    def __post_init__(self) -> None:
        self._check_options()
        for path in self.inputs:
            if path != STDIN:
                check_input(path)
                if os.path.isdir(path) and canonical(self.format_of(path)) != PARQUET:
                    raise InputError(f"{path}: is a directory (only Parquet input may be one)")
        if self.id_column is not None or self.keep:
            formats = {canonical(self.input_format)} if self.input_format else set(map(format_of, self.inputs))
            if TEXT in formats:
                raise InputError("plain text has no columns: --id-column and --keep-columns need "
                                 "Parquet, CSV, TSV or JSONL input")
        check_names(None, None, self.text_column, self.id_column, self.keep)
        check_output(self.output, self.inputs)

    def _check_options(self) -> None:
        check_int("--batch-size", self.batch_size, error=InputError)
        check_int("--max-record-bytes", self.max_record_bytes, error=InputError)
        for value, what in ((self.workers, "--workers"), (self.threads, "--threads")):
            if value is not None:
                check_int(what, value, error=InputError)
        if self.threshold is not None and not 0.0 <= self.threshold <= 1.0:  # also refuses nan
            raise InputError(f"--threshold must be between 0 and 1, got {self.threshold}")
        if self.input_format is not None:
            canonical(self.input_format, INPUT_FORMATS)
        canonical(self.output_format, OUTPUT_FORMATS)
        if list(self.inputs).count(STDIN) > 1:
            raise InputError("'-' (stdin) given more than once")

    def format_of(self, path: str) -> str:
        return canonical(self.input_format) if self.input_format else format_of(path)

    @property
    def spec(self) -> Spec:
        return Spec(self.text_column, self.id_column, self.keep, self.max_record_bytes, self.skip_blank)


def add_options(p: argparse.ArgumentParser, batch_size: int) -> None:
    """The options ``runtime.predict`` and ``runtime.batch`` share: same names, same meaning."""
    p.add_argument("--input-format", choices=INPUT_FORMATS + tuple(ALIASES), metavar="FORMAT",
                   help=f"one of {', '.join(INPUT_FORMATS)} ('lines' = text)")
    p.add_argument("--format", choices=OUTPUT_FORMATS, help=f"output format: {', '.join(OUTPUT_FORMATS)}")
    p.add_argument("--text-column", "--text-field", dest="text_column", default="text", metavar="NAME",
                   help="review column/field (default: text)")
    p.add_argument("--id-column", "--id-field", dest="id_column", metavar="NAME",
                   help="column/field written as the row key instead of the 'row' number")
    p.add_argument("--keep-columns", default="", metavar="A,B", help="more columns copied to the output")
    p.add_argument("--model", metavar="PATH", help="bundle directory or a model file in one (default: bundled model)")
    p.add_argument("--backend", choices=("auto", "onnx", "tflite"), default="auto",
                   help="inference runtime (default: auto, from the model file)")
    p.add_argument("--threshold", type=float, help="two classes: the probability at or above which a text "
                                                   "gets the second label (default: the model's)")
    p.add_argument("--all-scores", action="store_true",
                   help="add one probability column per class, named by its label, after probability")
    p.add_argument("--batch-size", type=int, default=batch_size, metavar="N",
                   help=f"rows per unit of work (default: {batch_size})")
    p.add_argument("--max-record-bytes", type=int, default=DEFAULT_MAX_RECORD_BYTES, metavar="N",
                   help=f"longest record (line, CSV record) accepted (default: {DEFAULT_MAX_RECORD_BYTES})")
    p.add_argument("--workers", type=int, metavar="N",
                   help="scoring processes (default: all cores for inputs over 4 MiB, else 1); output order is kept")
    p.add_argument("--deterministic", action="store_true",
                   help="TFLite on its built-in kernels only: int8 scores identical on every CPU "
                        "(x86, ARM, TFLite Micro); implies --backend tflite unless given")
    p.add_argument("--verbose", action="store_true", help="let the inference libraries' own messages through to stderr")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress on stderr: a status line on a terminal, plain lines elsewhere "
                        "(default: when stderr is a terminal)")


def keep_list(text: str) -> tuple[str, ...]:
    names = [n.strip() for n in text.split(",")] if text.strip() else []
    if any(not n for n in names):
        raise InputError(f"--keep-columns {text!r} has an empty name")
    return tuple(names)


# -- a run ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Task:
    """One unit of work for ``score_piece`` (picklable)."""
    piece: object  # records.TextPiece | records.LinePiece | records.RowGroup
    spec: Spec
    layout: Layout


def score_piece(clf, task: Task) -> Chunk:
    """Read, score and encode one piece: the same in a worker and in this process."""
    chunks = [task.layout.encode(rows, clf.predict_proba(rows.texts)) for rows in task.piece.read(task.spec)]
    if len(chunks) == 1:
        return chunks[0]
    if task.layout.format == PARQUET:
        data = pyarrow().concat_tables([c.data for c in chunks]) if chunks else task.layout.schema().empty_table()
    else:
        data = "".join(c.data for c in chunks)
    return Chunk(data, *(sum(getattr(c, f) for c in chunks) for f in ("rows", "positive", "bad")))


def run(job: Job, progress: Progress) -> Summary:
    """Score ``job`` into its output."""
    from .model import Classifier  # loads onnxruntime: not needed for --help or bad options

    spec = job.spec
    sources = [open_source(p, job.format_of(p), spec, job.batch_size) for p in job.inputs]  # columns: now
    types = next((s.types for s in sources if s.types is not None), None)
    clf = Classifier.load(job.model, backend=job.backend, threads=job.threads, deterministic=job.deterministic)
    layout = Layout(canonical(job.output_format, OUTPUT_FORMATS), tuple(clf.labels), clf.threshold_of(job.threshold),
                    job.id_column, job.keep, len(job.inputs) + bool(job.texts) > 1, types, job.all_scores)
    summary, start = Summary(output=job.output, two_class=clf.num_classes == 2), time.perf_counter()
    tasks = _tasks(job, spec, sources, layout)
    workers = job.workers or default_workers(input_bytes(job.inputs))
    with open_sink(job.output, layout) as sink, _scored(workers, clf.ref(job.threads or 1), clf, tasks) as chunks:
        for chunk in chunks:
            sink.write(chunk)
            summary.add(chunk)
            progress.update(summary.rows)
    summary.seconds = time.perf_counter() - start
    progress.clear()
    return summary


def _tasks(job: Job, spec: Spec, sources: list, layout: Layout) -> Iterator[Task]:
    for piece in text_pieces(job.texts, job.batch_size):
        yield Task(piece, spec, layout)
    for source in sources:
        typed = dataclasses.replace(spec, types=source.types)
        for piece in source.pieces():
            yield Task(piece, typed, layout)


@contextmanager
def _scored(workers: int, ref: ModelRef, clf, tasks: Iterator[Task]) -> Iterator[Iterator[Chunk]]:
    """The chunks of ``tasks`` in order: here, or by workers loading the model the parent resolved and
    verified. ``score_piece`` is looked up now: tests replace it (tests/runtime/faults.py)."""
    if workers == 1:
        yield (score_piece(clf, task) for task in tasks)
        return
    with WorkerPool(workers, ref) as pool:
        yield pool.map(score_piece, tasks)


def input_bytes(paths: Sequence[str]) -> int | None:
    """Total size of the inputs (a directory's files summed); None for stdin or a pipe."""
    total = 0
    for path in paths:
        if path == STDIN or not (os.path.isfile(path) or os.path.isdir(path)):
            return None
        if os.path.isdir(path):
            total += sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs)
        else:
            total += os.path.getsize(path)
    return total


def default_workers(input_bytes: int | None) -> int:
    """The cores this process may run on for large inputs, one process otherwise (``None``: size unknown)."""
    if input_bytes is None or input_bytes < AUTO_WORKERS_MIN_BYTES:
        return 1
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


# -- the worker pool ------------------------------------------------------------------------
class WorkerError(Failure, RuntimeError):
    """A worker process died (killed, out of memory) or could not load the model."""


_worker_clf = None  # the Classifier of this worker process
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
EXIT_ORPHANED = 70  # a worker's exit code when its parent is gone


def _load(ref: ModelRef, parent_pid: int, lifeline) -> None:
    global _worker_clf

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    if sys.platform.startswith("linux"):
        with suppress(OSError, AttributeError):  # no usable libc: the lifeline still ends us
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before the prctl
        os._exit(EXIT_ORPHANED)
    threading.Thread(target=_exit_on_eof, args=(lifeline,), name="lifeline", daemon=True).start()
    _worker_clf = ref.load()


def _exit_on_eof(lifeline) -> None:
    with suppress(EOFError, OSError):
        lifeline.recv_bytes()  # blocks until the parent's end is closed
    os._exit(EXIT_ORPHANED)


def _call(fn, arg):
    return fn(_worker_clf, arg)


class WorkerPool:
    """``with WorkerPool(2, ModelRef(bundle)) as pool: for result in pool.map(fn, items): ...``

    Workers never outlive the parent: each exits when the lifeline, a pipe whose only write end is the
    parent's, reaches end-of-file (the parent died, or left the ``with`` block on an error); on Linux the
    kernel also kills it when the parent *thread* that started it ends (``PR_SET_PDEATHSIG``: close a pool
    in the thread that made it). multiprocessing's resource tracker then exits as well.
    """

    def __init__(self, workers: int, ref: ModelRef | None = None):
        # spawn: a fresh interpreter per worker, no onnxruntime thread state copied by fork; spawned children
        # inherit no fds but those passed to them, so the lifeline's write end stays here.
        context = multiprocessing.get_context("spawn")
        lifeline, self._lifeline = context.Pipe(duplex=False)
        self._executor = ProcessPoolExecutor(workers, mp_context=context, initializer=_load,
                                             initargs=(ref or ModelRef(), os.getpid(), lifeline))
        self.window = 2 * workers  # items in flight: every worker busy, one more queued each

    def map(self, fn: Callable, items: Iterable) -> Iterator:
        """``fn(classifier, item)`` in the workers for each item (``fn`` picklable); the results in order."""
        pending: deque = deque()
        try:
            for item in items:
                pending.append(self._executor.submit(_call, fn, item))
                if len(pending) >= self.window:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        except BrokenProcessPool:
            raise WorkerError("a worker process died (killed, out of memory, or the model failed "
                              "to load in it)") from None

    def close(self, abort: bool = False) -> None:
        """Wait for the workers to finish and exit; ``abort``: end them now, not waiting for their batches."""
        if abort:
            self._lifeline.close()
            # A worker that dies while sending a result leaves half a message in the result pipe, and the
            # executor's thread waits for the rest while a write end is open, as ours is: closing it turns
            # the wait into end-of-file (CPython keeps the queue in _result_queue).
            writer = getattr(getattr(self._executor, "_result_queue", None), "_writer", None)
            if writer is not None:
                writer.close()
        # Not cancelled when aborting: the ended workers break the pool and CPython 3.11's executor thread then
        # sets an exception on every pending future, raising InvalidStateError (a traceback on stderr) for one
        # already cancelled (seen under stress in test_changed_input).
        self._executor.shutdown(wait=True, cancel_futures=not abort)
        self._lifeline.close()

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(abort=exc_type is not None)
