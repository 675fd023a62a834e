"""The local engine of ``runtime.predict`` and ``runtime.batch``: sources -> score -> sink.

Inputs are cut into pieces in input order (``sources``); each piece is read, scored and
encoded by ``score_piece`` -- in this process, or in a ``WorkerPool`` whose workers each hold
a ``Classifier`` on one thread -- and the chunks are written in input order (``sinks``) while
at most ``2 x workers`` pieces are in flight, so memory stays flat. The same function makes
every chunk either way, so the output of N workers is byte-identical to one process.
"""
from __future__ import annotations

import dataclasses
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Iterator, Sequence

from .errors import check_int
from .parquet import ParquetSource
from .pool import WorkerPool, default_workers
from .sinks import CSV, OUTPUT_FORMATS, PARQUET, RESERVED, Chunk, Layout, Progress, Summary, check_output, \
    open_sink
from .sources import (DEFAULT_MAX_RECORD_BYTES, INPUT_FORMATS, STDIN, TEXT, TSV, CsvSource,
                      InputError, LineSource, Source, Spec, canonical, check_input, format_of, text_pieces)

DEFAULT_CLASSIFIER_BATCH = 256  # texts per model call


@dataclass(frozen=True)
class Job:
    """One scoring run; ``check`` refuses bad options before anything is read or loaded."""
    inputs: tuple[str, ...]
    output: str | None = None  # None or "-": stdout
    input_format: str | None = None  # None: each input's extension
    output_format: str = CSV
    texts: tuple[str, ...] = ()  # --text reviews, scored first
    text_column: str = "text"
    id_column: str | None = None
    keep: tuple[str, ...] = ()
    threshold: float | None = None  # None: the bundle's
    batch_size: int = 256  # rows per piece read from stdin, CSV or Parquet
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
    skip_blank: bool = False
    model: str | None = None
    backend: str = "auto"
    threads: int | None = None
    workers: int | None = None  # None: default_workers(input size)
    deterministic: bool = False  # TFLite built-in kernels only (the same int8 scores on every CPU)

    def format_of(self, path: str) -> str:
        return self.input_format or format_of(path)


def open_source(path: str, fmt: str, spec: Spec, id_column: str | None, keep: Sequence[str], batch_size: int,
                stdin: IO[bytes] | None = None) -> Source:
    """The source for one input; its columns are checked here, before any work."""
    cls = ParquetSource if fmt == PARQUET else CsvSource if fmt in (CSV, TSV) else LineSource
    return cls(path, fmt, spec, id_column, keep, batch_size, stdin)


def check(job: Job) -> None:
    """Options, paths and names; the inputs' columns are checked when their sources open."""
    _check_options(job)
    for path in job.inputs:
        if path != STDIN:
            check_input(path)
            if os.path.isdir(path) and canonical(job.format_of(path)) != PARQUET:
                raise InputError(f"{path}: is a directory (only Parquet input may be one)")
    _check_names(job)
    check_output(job.output, job.inputs)


def _check_options(job: Job) -> None:
    check_int("--batch-size", job.batch_size, error=InputError)
    check_int("--max-record-bytes", job.max_record_bytes, error=InputError)
    for value, what in ((job.workers, "--workers"), (job.threads, "--threads")):
        if value is not None:
            check_int(what, value, error=InputError)
    if job.threshold is not None and not 0.0 <= job.threshold <= 1.0:  # also refuses nan
        raise InputError(f"--threshold must be between 0 and 1, got {job.threshold}")
    if job.input_format is not None:
        canonical(job.input_format, INPUT_FORMATS)
    canonical(job.output_format, OUTPUT_FORMATS)
    if list(job.inputs).count(STDIN) > 1:
        raise InputError("'-' (stdin) given more than once")


def _check_names(job: Job) -> None:
    names = ([job.id_column] if job.id_column is not None else []) + list(job.keep)
    if names and (job.input_format in (TEXT, "lines") or any(job.format_of(p) == TEXT for p in job.inputs)):
        raise InputError("plain text has no columns: --id-column and --keep-columns need "
                         "Parquet, CSV, TSV or JSONL input")
    for name in names:
        if name in RESERVED:
            raise InputError(f"column {name!r} clashes with the output column of that name")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InputError(f"column {dupes[0]!r} is asked for twice (--id-column / --keep-columns)")


@dataclass(frozen=True)
class Task:
    """One unit of work for ``score_piece`` (picklable)."""
    piece: object  # sources.TextPiece | sources.LinePiece | parquet.RowGroup
    spec: Spec
    layout: Layout


def score_piece(clf, task: Task) -> Chunk:
    """Read, score and encode one piece: the same in a worker and in this process."""
    chunks = [task.layout.encode(rows, clf.predict(rows.texts)) for rows in task.piece.read(task.spec)]
    return merge(chunks, task.layout)


def merge(chunks: list[Chunk], layout: Layout) -> Chunk:
    if len(chunks) == 1:
        return chunks[0]
    if layout.format == PARQUET:
        from .parquet import pyarrow
        pa = pyarrow()
        data = pa.concat_tables([c.data for c in chunks]) if chunks else layout.schema().empty_table()
    else:
        data = "".join(c.data for c in chunks)
    return Chunk(data, *(sum(getattr(c, f) for c in chunks) for f in ("rows", "positive", "bad")))


def load_classifier(job: Job):
    from .model import Classifier  # loads onnxruntime: not needed for --help or bad options

    return Classifier.load(job.model, backend=job.backend, threads=job.threads,
                           batch_size=min(job.batch_size, DEFAULT_CLASSIFIER_BATCH), deterministic=job.deterministic)


def run(job: Job, progress: Progress | None = None, stdin: IO[bytes] | None = None, clf=None,
        wrap=None) -> Summary:
    """Score ``job`` into its output. ``wrap(fn)`` replaces the worker function (tests inject faults)."""
    check(job)
    spec = Spec(job.text_column, tuple(dict.fromkeys(([job.id_column] if job.id_column else []) + list(job.keep))),
                job.max_record_bytes, job.skip_blank)
    sources = [open_source(p, canonical(job.format_of(p)), spec, job.id_column, job.keep, job.batch_size, stdin)
               for p in job.inputs]  # every input's columns, before the model loads
    types = next((s.types for s in sources if hasattr(s, "types")), None)
    clf = clf or load_classifier(job)
    threshold = clf.threshold if job.threshold is None else job.threshold
    layout = Layout(canonical(job.output_format, OUTPUT_FORMATS), tuple(clf.labels), threshold, job.id_column,
                    job.keep, len(job.inputs) + bool(job.texts) > 1, types)
    summary, start = Summary(output=job.output), time.perf_counter()
    tasks = _tasks(job, spec, sources, layout)
    fn = wrap(score_piece) if wrap else score_piece
    with open_sink(job.output, layout) as sink, _pool(job, clf) as pool:
        if pool is None:
            results = (fn(clf, task) for task in tasks)
        else:
            results = (chunk for _, chunk in pool.map(fn, ((None, task) for task in tasks)))
        for chunk in results:
            sink.write(chunk)
            summary.add(chunk)
            if progress is not None:
                progress.update(summary.rows)
    summary.seconds = time.perf_counter() - start
    if progress is not None:
        progress.clear()
    return summary


def _tasks(job: Job, spec: Spec, sources: list, layout: Layout) -> Iterator[Task]:
    for piece in text_pieces(job.texts, job.batch_size):
        yield Task(piece, spec, layout)
    for source in sources:
        typed = dataclasses.replace(spec, types=getattr(source, "types", None))
        for piece in source.pieces():
            yield Task(piece, typed, layout)


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


@contextmanager
def _pool(job: Job, clf) -> Iterator[WorkerPool | None]:
    """Workers load exactly the model the parent resolved (and verified); one thread each."""
    workers = job.workers or default_workers(input_bytes(job.inputs))
    if workers == 1:
        yield None
        return
    with WorkerPool(workers, clf.bundle.root, clf.backend_name, clf.model, threads=job.threads or 1,
                    batch_size=clf.batch_size, deterministic=clf.deterministic) as pool:
        yield pool
