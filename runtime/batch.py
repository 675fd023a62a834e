"""Batch scoring of large files: ``python -m runtime.batch INPUT OUTPUT`` (see ``batch_cli``).

INPUT is Parquet (a file, or a directory of them), CSV, JSONL or plain text (one review per
line), told by its extension. OUTPUT is Parquet (the default), CSV or JSONL, by extension, with
one row per input row, in input order:

    <id column> or row, label, probability (float32), error, <--keep-columns ...>

``row`` is 1-based, as ``runtime.predict`` numbers records: the line number for text and
JSONL (blank JSONL lines hold no row but count as lines), the data row for CSV (1 = the row
after the header), the row for Parquet (counted across a directory's files in name order).

A bad row -- null text, a non-string JSON value, a JSONL object without the text field -- is
scored as empty text and its ``error`` says why (``error`` is null for good rows): a row is
never dropped, so the output always lines up with the input. A whole Parquet column that is
not text is refused up front instead: that is the wrong ``--text-column``, not a bad row.

The local engine (``score_file``) reads the input in record batches (Parquet one row group at
a time), scores them in a pool of worker processes, each with its own ``Classifier`` on one
onnxruntime thread, and writes results in input order while at most ``2 x workers`` batches
are in flight, so memory stays flat whatever the input size. Output goes to a temp file beside
OUTPUT that replaces it only on success: a failure leaves no partial output, a re-run
overwrites. Errors are ``BatchError`` with one line; ``WorkerError`` (a subclass) when a
worker process died.

pyarrow is imported lazily (``pip install 'reviewkit[batch]'``): ``runtime`` itself never
needs it.
"""
from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from itertools import islice
from typing import IO, Iterator, Sequence

import numpy as np

from . import records
from .files import temp_output
from .pool import WorkerError as PoolWorkerError
from .pool import WorkerPool, cpu_count
from .errors import Failure, UserError

INPUT_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".jsonl": "jsonl",
                 ".ndjson": "jsonl", ".txt": "text", ".text": "text"}
OUTPUT_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".jsonl": "jsonl",
                  ".ndjson": "jsonl"}  # any other extension: parquet
ROW, LABEL, PROBABILITY, ERROR = "row", "label", "probability", "error"
RESERVED = (ROW, LABEL, PROBABILITY, ERROR)
DEFAULT_BATCH_SIZE = 4096  # rows per unit of work: ~5 MB of IMDB-sized reviews
ROW_GROUP_ROWS = 65536  # rows per Parquet row group written
CRASH_ENV = "REVIEWKIT_BATCH_CRASH_AT"  # test hook: a worker os._exit()s on this unit of work (0-based;
# a row group for Parquet input, a batch of --batch-size rows otherwise)
BATCH_EXTRA = "pip install 'reviewkit[batch]'"
MISSING = object()  # a JSONL object without the text field


class BatchError(UserError):
    """An input, output or option cannot be used; one line naming the file (and line)."""


class WorkerError(Failure, BatchError):
    """A worker process died (killed, out of memory, crashed) while scoring."""


def pyarrow():
    """The pyarrow module, or a ``BatchError`` naming the extra to install."""
    try:
        import pyarrow
        import pyarrow.csv  # noqa: F401  (submodules used below)
        import pyarrow.ipc  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise BatchError(f"batch scoring needs pyarrow: {BATCH_EXTRA}") from None
    return pyarrow


# -- the job ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Job:
    """What to score; checked by ``plan`` before anything is loaded or written."""
    input: str
    output: str
    input_format: str  # parquet | csv | jsonl | text
    output_format: str  # parquet | csv | jsonl
    text_column: str = "text"
    id_column: str | None = None
    keep_columns: tuple[str, ...] = ()
    model: str | None = None
    backend: str = "auto"
    batch_size: int = DEFAULT_BATCH_SIZE

    @property
    def key(self) -> str:
        """The first output column: the id column, or ``row``."""
        return self.id_column if self.id_column is not None else ROW

    @property
    def passthrough(self) -> list[str]:
        """Input columns copied to the output: the id column, then the kept ones."""
        return ([self.id_column] if self.id_column is not None else []) + list(self.keep_columns)


def input_format(path: str) -> str:
    if os.path.isdir(path):
        return "parquet"
    ext = os.path.splitext(path)[1].lower()
    if ext not in INPUT_FORMATS:
        raise BatchError(f"{path}: unknown input format {ext or '(no extension)'!r}: use .parquet "
                         f"(or a directory of them), .csv, .jsonl or .txt")
    return INPUT_FORMATS[ext]


def output_format(path: str) -> str:
    return OUTPUT_FORMATS.get(os.path.splitext(path)[1].lower(), "parquet")


def plan(input: str, output: str, text_column: str = "text", id_column: str | None = None,
         keep_columns: Sequence[str] = (), model: str | None = None, backend: str = "auto",
         batch_size: int = DEFAULT_BATCH_SIZE) -> Job:
    """Check paths and options (not file contents) and return the ``Job``."""
    input, output = os.fspath(input), os.fspath(output)
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise BatchError(f"batch size must be a positive integer, got {batch_size!r}")
    if not os.path.exists(input):
        raise BatchError(f"{input}: no such file or directory")
    fmt = input_format(input)
    _check_output(input, output)
    keep = tuple(keep_columns)
    if fmt == "text" and (id_column is not None or keep):
        raise BatchError(f"{input}: plain text has no columns: --id-column and --keep-columns "
                         f"need Parquet, CSV or JSONL input")
    for name in ([id_column] if id_column is not None else []) + list(keep):
        if name in RESERVED:
            raise BatchError(f"column {name!r} clashes with the output column of that name")
    dupes = sorted({n for n in keep if keep.count(n) > 1 or n == id_column})
    if dupes:
        raise BatchError(f"column {dupes[0]!r} is asked for twice (--id-column / --keep-columns)")
    return Job(input, output, fmt, output_format(output), text_column, id_column, keep, model,
               backend, batch_size)


def _check_output(input: str, output: str) -> None:
    if os.path.isdir(output):
        raise BatchError(f"{output}: output is a directory; give a file name")
    parent = os.path.dirname(output) or "."
    if not os.path.isdir(parent):
        raise BatchError(f"{output}: output directory {parent} does not exist")
    real_in, real_out = os.path.realpath(input), os.path.realpath(output)
    if real_in == real_out:
        raise BatchError(f"{output}: output is the input; it would be overwritten")
    if os.path.isdir(input) and real_out.startswith(real_in.rstrip(os.sep) + os.sep):
        raise BatchError(f"{output}: output is inside the input directory {input}")


# -- scoring a list of values (both engines) -------------------------------------------------
_JSON_KINDS = {bool: "a boolean", int: "a number", float: "a number", list: "an array", dict: "an object"}


def value_error(value: object, text_column: str) -> str | None:
    """Why ``value`` is not review text (``None``: it is)."""
    if isinstance(value, str):
        return None
    if value is None:
        return "text is null"
    if value is MISSING:
        return f"no {text_column!r} field"
    return f"text is {_JSON_KINDS.get(type(value), 'a ' + type(value).__name__)}, not a string"


def score_values(clf, values: Sequence[object], text_column: str = "text") -> tuple[np.ndarray, list]:
    """``[n]`` float32 probabilities and ``n`` errors (``None`` when fine); bad values score as ''."""
    errors = [value_error(v, text_column) for v in values]
    texts = [v if e is None else "" for v, e in zip(values, errors)]
    return clf.predict(texts), errors


def labels_of(probs: np.ndarray, labels: Sequence[str], threshold: float) -> np.ndarray:
    """``[n]`` label strings: ``labels[1]`` at or above ``threshold``, as ``Classifier.label_of``."""
    return np.where(probs >= threshold, labels[1], labels[0]).astype(object)


def decode_lines(raw: Sequence[bytes], first_line: int, name: str) -> list[str]:
    """Raw lines as text without their line break; invalid UTF-8 is replaced, NUL refused."""
    out = []
    for i, line in enumerate(raw):
        if b"\0" in line:
            raise BatchError(f"{name}:{first_line + i}: NUL byte: binary input is not supported")
        text = line.decode("utf-8", "replace")
        text = text[:-1] if text.endswith("\n") else text
        out.append(text[:-1] if text.endswith("\r") else text)
    return out


def parse_jsonl(lines: Sequence[str], line_numbers: Sequence[int], name: str, text_column: str,
                columns: Sequence[str]) -> tuple[list[int], list, dict[str, list]]:
    """Non-blank lines -> (their line numbers, text values, {column: values as JSON text}).

    Text values are as read (``MISSING`` when absent), for ``score_values`` to judge. Other
    columns are strings as they are, any other JSON value as JSON text, null when missing.
    """
    rows, values, extra = [], [], {c: [] for c in columns}
    for number, line in zip(line_numbers, lines):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise BatchError(f"{name}:{number}: invalid JSON: {e.msg} (column {e.colno})") from None
        if not isinstance(obj, dict):
            kind = "null" if obj is None else _JSON_KINDS.get(type(obj), "a string")
            raise BatchError(f"{name}:{number}: expected a JSON object, got {kind}")
        rows.append(number)
        values.append(obj.get(text_column, MISSING))
        for c in columns:
            extra[c].append(_json_text(obj.get(c)))
    return rows, values, extra


def _json_text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


# -- worker processes -------------------------------------------------------------------------
@dataclass(frozen=True)
class WorkerConfig:
    """What a worker needs to load its ``Classifier`` and read its pieces (picklable)."""
    bundle: str  # bundle directory
    model: str  # model file name in it
    backend: str  # onnx | tflite
    name: str  # the input, for messages
    text_column: str = "text"
    columns: tuple[str, ...] = ()  # JSONL: id and kept fields to return
    crash_at: int | None = None  # test hook, from CRASH_ENV


def _score_piece(clf, task: tuple):
    """In a worker: one unit of work -> (row numbers or None, probabilities, errors, JSONL columns or None)."""
    cfg, index, kind, payload, first_row = task
    if cfg.crash_at == index:
        os._exit(70)
    rows, extra = None, None
    if kind == "parquet":  # a whole row group, read here: the parent only sends its address
        return _score_row_group(clf, cfg, payload)
    if kind == "arrow":  # the text column as one Arrow IPC stream
        pa = pyarrow()
        values = pa.ipc.open_stream(payload).read_all().column(0).to_pylist()
    else:
        lines = decode_lines(payload, first_row, cfg.name)
        if kind == "jsonl":
            numbers = range(first_row, first_row + len(lines))
            rows, values, extra = parse_jsonl(lines, numbers, cfg.name, cfg.text_column, cfg.columns)
        else:
            values = lines
    probs, errors = score_values(clf, values, cfg.text_column)
    return rows, probs, errors, extra


@dataclass(frozen=True)
class RowGroup:
    """Where a worker reads its Parquet rows, and how (picklable)."""
    path: str
    group: int
    columns: tuple[str, ...]  # text column first, then id and kept columns
    read_schema: object  # the first file's types for ``columns``: other files are cast to them
    passthrough: tuple[str, ...]  # id and kept columns, returned with the scores
    first_file: str  # for messages
    batch_size: int


def _score_row_group(clf, cfg: WorkerConfig, rg: RowGroup):
    """Score one row group ``batch_size`` rows at a time: the text of one batch in memory at once."""
    pa = pyarrow()
    probs, errors, kept = [], [], {c: [] for c in rg.passthrough}
    batches = _parquet_file(pa, rg.path).iter_batches(rg.batch_size, row_groups=[rg.group], columns=list(rg.columns))
    for batch in _guarded(pa, batches, f"{rg.path}: cannot read row group {rg.group}"):
        table = _conform(pa, pa.Table.from_batches([batch]), rg.read_schema, rg.path, rg.first_file)
        p, e = score_values(clf, table.column(0).to_pylist(), cfg.text_column)
        probs.append(p)
        errors += e
        for c in kept:
            kept[c].append(table.column(c))
    extra = {c: pa.chunked_array([chunk for column in parts for chunk in column.chunks],
                                 rg.read_schema.field(c).type) for c, parts in kept.items()}
    return None, np.concatenate(probs) if probs else np.zeros(0, np.float32), errors, extra


def _parquet_file(pa, path: str):
    try:
        return pa.parquet.ParquetFile(path)
    except (OSError, pa.ArrowException) as e:
        raise BatchError(f"{path}: not a readable Parquet file: {_arrow_error(e)}") from None


def _conform(pa, table, read_schema, path: str, first_file: str):
    """Another file's columns cast to the first file's types."""
    if table.schema.equals(read_schema):
        return table
    try:
        return table.cast(read_schema)
    except (pa.ArrowException, ValueError) as e:
        raise BatchError(f"{path}: columns do not match {first_file}: {_arrow_error(e)}") from None


# -- reading ----------------------------------------------------------------------------------
@dataclass
class Piece:
    """A unit of work read from the input; ``first_row`` numbers its first row (or line)."""
    index: int
    kind: str  # arrow | text | jsonl
    payload: object  # arrow: IPC bytes of the text column; text/jsonl: the raw lines
    first_row: int
    count: int  # rows (arrow) or lines (text, jsonl)
    passthrough: object = None  # arrow: a pyarrow Table of the id and kept columns


def parquet_files(path: str) -> list[str]:
    """``path``, or every data file under the directory ``path`` in name order (hidden and
    ``_``-prefixed names, such as Spark's ``_SUCCESS`` and ``.crc`` files, are skipped)."""
    if not os.path.isdir(path):
        return [path]
    found = []
    for root, dirs, files in os.walk(path):
        dirs[:] = [d for d in dirs if not d.startswith((".", "_"))]
        found += [os.path.join(root, f) for f in files if not f.startswith((".", "_"))]
    found.sort(key=lambda p: os.path.relpath(p, path).split(os.sep))  # a/x before b, b/x before c
    if not found:
        raise BatchError(f"{path}: no Parquet files in this directory")
    return found


class Source:
    """Input schema checks up front, then ``pieces()`` in input order."""

    def __init__(self, job: Job):
        self.job = job
        self.schema = None  # pyarrow schema of the passthrough columns (JSONL: all strings)

    def pieces(self) -> Iterator[Piece]:
        raise NotImplementedError


def _check_columns(name: str, names: Sequence[str], job: Job) -> None:
    columns = ", ".join(names)
    for col, option in [(job.text_column, "--text-column")] + \
                       [(c, "--id-column") for c in [job.id_column] if c is not None] + \
                       [(c, "--keep-columns") for c in job.keep_columns]:
        if col not in names:
            raise BatchError(f"{name}: no column {col!r} ({option}); columns: {columns}")


def _text_type_ok(pa, t) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_null(t) or \
        (hasattr(pa.types, "is_string_view") and pa.types.is_string_view(t))


def _ipc_bytes(pa, array) -> bytes:
    """One column as an Arrow IPC stream: pickling a sliced array would send its whole buffer."""
    batch = pa.record_batch([array], names=["t"])
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as w:
        w.write_batch(batch)
    return sink.getvalue().to_pybytes()


def _arrow_error(e: Exception) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text if len(text) <= 200 else text[:197] + "..."


class ParquetSource(Source):
    """Checks every file's columns; the workers read the row groups themselves."""

    def __init__(self, job: Job):
        super().__init__(job)
        self.pa = pa = pyarrow()
        self.files = parquet_files(job.input)
        schema = _parquet_file(pa, self.files[0]).schema_arrow
        _check_columns(self.files[0], schema.names, job)
        text_type = schema.field(job.text_column).type
        if not _text_type_ok(pa, text_type):
            raise BatchError(f"{self.files[0]}: column {job.text_column!r} is {text_type}, not text "
                             f"(--text-column)")
        self.columns = tuple(dict.fromkeys([job.text_column] + job.passthrough))
        self.read_schema = pa.schema([schema.field(c) for c in self.columns])
        self.schema = pa.schema([schema.field(c) for c in job.passthrough])

    def pieces(self) -> Iterator[Piece]:
        index, row = 0, 1
        for path in self.files:
            f = _parquet_file(self.pa, path)
            _check_columns(path, f.schema_arrow.names, self.job)
            for group in range(f.num_row_groups):
                n = f.metadata.row_group(group).num_rows
                if n:
                    address = RowGroup(path, group, self.columns, self.read_schema, tuple(self.job.passthrough),
                                       self.files[0], self.job.batch_size)
                    yield Piece(index, "parquet", address, row, n)
                    index, row = index + 1, row + n


class CsvSource(Source):
    """RFC 4180 CSV with a header row; every column read as text (no type guessing: an id
    ``007`` stays ``007``); quoted fields may span lines; blank lines hold no row."""

    def __init__(self, job: Job):
        super().__init__(job)
        self.pa = pa = pyarrow()
        self.header = self._header()
        _check_columns(job.input, self.header, job)
        self.columns = list(dict.fromkeys([job.text_column] + job.passthrough))
        self.schema = pa.schema([(c, pa.string()) for c in job.passthrough])

    def _header(self) -> list[str]:
        import csv
        try:
            with open(self.job.input, encoding="utf-8-sig", errors="replace", newline="") as f:
                header = next(csv.reader(f), None)
        except OSError as e:
            raise BatchError(f"{self.job.input}: cannot read: {e.strerror}") from None
        except csv.Error as e:
            raise BatchError(f"{self.job.input}: bad CSV header: {e}") from None
        if not header:
            raise BatchError(f"{self.job.input}: empty file, expected a header row")
        return header

    def pieces(self) -> Iterator[Piece]:
        pa, job = self.pa, self.job
        convert = pa.csv.ConvertOptions(column_types={c: pa.string() for c in self.header},
                                        include_columns=self.columns, strings_can_be_null=False)
        try:
            reader = pa.csv.open_csv(job.input, parse_options=pa.csv.ParseOptions(newlines_in_values=True),
                                     convert_options=convert,
                                     read_options=pa.csv.ReadOptions(block_size=4 << 20))
            index, row = 0, 1
            for table in _rebatch(pa, reader, job.batch_size):
                yield Piece(index, "arrow", _ipc_bytes(pa, table.column(job.text_column).combine_chunks()),
                            row, table.num_rows, table.select(job.passthrough))
                index, row = index + 1, row + table.num_rows
        except (OSError, pa.ArrowException) as e:
            raise BatchError(f"{job.input}: bad CSV: {_arrow_error(e)}") from None


def _guarded(pa, items, what: str):
    """``items``, with pyarrow's read errors raised as ``BatchError("what: detail")``."""
    it = iter(items)
    while True:
        try:
            item = next(it)
        except StopIteration:
            return
        except (OSError, pa.ArrowException) as e:
            raise BatchError(f"{what}: {_arrow_error(e)}") from None
        yield item


def _rebatch(pa, batches, size: int):
    """Record batches of any size -> tables of exactly ``size`` rows (the last may be short)."""
    held, rows = [], 0
    for batch in batches:
        held.append(batch)
        rows += batch.num_rows
        while rows >= size:
            table = pa.Table.from_batches(held)
            yield table.slice(0, size)
            rest = table.slice(size)
            held, rows = rest.to_batches(), rest.num_rows
    if rows:
        yield pa.Table.from_batches(held)


class LinesSource(Source):
    """Text and JSONL: raw lines, read ``batch_size`` at a time and decoded by the workers."""

    def __init__(self, job: Job):
        super().__init__(job)
        pa = pyarrow()
        self.schema = pa.schema([(c, pa.string()) for c in job.passthrough])
        try:
            with open(job.input, "rb") as f:
                f.read(1)
        except OSError as e:
            raise BatchError(f"{job.input}: cannot read: {e.strerror}") from None

    def pieces(self) -> Iterator[Piece]:
        with open(self.job.input, "rb") as f:
            index, line = 0, 1
            while True:
                raw = list(islice(f, self.job.batch_size))
                if not raw:
                    return
                if index == 0 and raw[0].startswith(b"\xef\xbb\xbf"):
                    raw[0] = raw[0][3:]  # a UTF-8 BOM
                yield Piece(index, self.job.input_format, raw, line, len(raw))
                index, line = index + 1, line + len(raw)


def open_source(job: Job) -> Source:
    return {"parquet": ParquetSource, "csv": CsvSource}.get(job.input_format, LinesSource)(job)


def output_schema(job: Job, source: Source):
    """key (id column or ``row`` int64), label, probability float32, error, kept columns."""
    pa = pyarrow()
    key = source.schema.field(job.id_column) if job.id_column is not None else pa.field(ROW, pa.int64())
    return pa.schema([key, pa.field(LABEL, pa.string()), pa.field(PROBABILITY, pa.float32()),
                      pa.field(ERROR, pa.string())] + [source.schema.field(c) for c in job.keep_columns])


# -- writing ----------------------------------------------------------------------------------
class Writer:
    def __init__(self, path: str, schema):
        self.path, self.schema, self.pa = path, schema, pyarrow()

    def write(self, table) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class ParquetWriter(Writer):
    """Buffers to ``ROW_GROUP_ROWS`` rows per row group (a batch each would make tiny groups)."""

    def __init__(self, path: str, schema):
        super().__init__(path, schema)
        self._writer = self.pa.parquet.ParquetWriter(path, schema)
        self._held, self._rows = [], 0

    def write(self, table) -> None:
        self._held.append(table)
        self._rows += table.num_rows
        if self._rows >= ROW_GROUP_ROWS:
            self._flush()

    def _flush(self) -> None:
        if self._held:
            self._writer.write_table(self.pa.concat_tables(self._held), row_group_size=ROW_GROUP_ROWS)
        self._held, self._rows = [], 0

    def close(self) -> None:
        self._flush()
        self._writer.close()


class CsvWriter(Writer):
    """A header row, then RFC 4180 rows; null -> empty field, empty string -> ``""``."""

    def __init__(self, path: str, schema):
        super().__init__(path, schema)
        self._writer = self.pa.csv.CSVWriter(path, schema)

    def write(self, table) -> None:
        try:
            self._writer.write_table(table)
        except self.pa.ArrowException as e:
            raise BatchError(f"{self.path}: cannot write CSV: {_arrow_error(e)}") from None

    def close(self) -> None:
        self._writer.close()


class JsonlWriter(Writer):
    """One object per line; probability as the shortest text that reads back as the float32."""

    def __init__(self, path: str, schema):
        super().__init__(path, schema)
        self._file = open(path, "w", encoding="utf-8", newline="\n")
        self._keys = [json.dumps(n, ensure_ascii=False) + ": " for n in schema.names]

    def write(self, table) -> None:
        cells = []
        for name in table.column_names:
            col = table.column(name)
            if name == PROBABILITY:
                cells.append(col.to_numpy().astype(str).tolist())  # float32 shortest repr
            else:
                cells.append([json.dumps(v, ensure_ascii=False, default=str) for v in col.to_pylist()])
        keys = self._keys
        self._file.write("".join("{" + ", ".join(k + v for k, v in zip(keys, row)) + "}\n"
                                 for row in zip(*cells)))

    def close(self) -> None:
        self._file.close()


def open_writer(fmt: str, path: str, schema) -> Writer:
    return {"parquet": ParquetWriter, "csv": CsvWriter, "jsonl": JsonlWriter}[fmt](path, schema)


# -- progress and summary ---------------------------------------------------------------------
@dataclass
class Summary:
    rows: int = 0
    bad_rows: int = 0
    seconds: float = 0.0
    output: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def __str__(self) -> str:
        bad = f", {self.bad_rows} with errors" if self.bad_rows else ""
        extra = "".join(f", {n}" for n in self.notes)
        return (f"scored {self.rows} row{'s' if self.rows != 1 else ''}{bad} in {self.seconds:.2f} s, "
                f"{self.rate:.0f} rows/s{extra} -> {self.output}")


def row_progress(stream: IO[str] | None = None, enabled: bool = False) -> records.Progress:
    """The status line of ``runtime.predict``, counting rows, at most twice a second."""
    return records.Progress(stream, enabled, interval=0.5, unit="rows", rate_unit="rows/s")


# -- the local engine -------------------------------------------------------------------------
def load_classifier(job: Job):
    """The job's ``Classifier``, loaded in this process to check the bundle before any work."""
    from .classifier import Classifier
    return Classifier.load(job.model, backend=job.backend, threads=1)


def score_file(input: str, output: str, *, text_column: str = "text", id_column: str | None = None,
               keep_columns: Sequence[str] = (), model: str | None = None, backend: str = "auto",
               workers: int | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
               progress: bool = False, stream: IO[str] | None = None) -> Summary:
    """Score ``input`` into ``output`` with a pool of ``workers`` processes (default: one per core).

    Raises ``BatchError`` (bad option or input), ``WorkerError`` (a worker died),
    ``BundleError`` (bad model) or ``BackendError`` (the model failed); OUTPUT is then untouched.
    """
    if workers is not None and (not isinstance(workers, int) or isinstance(workers, bool) or workers < 1):
        raise BatchError(f"workers must be a positive integer, got {workers!r}")
    job = plan(input, output, text_column, id_column, keep_columns, model, backend, batch_size)
    source = open_source(job)
    schema = output_schema(job, source)
    clf = load_classifier(job)
    cfg = WorkerConfig(clf.bundle.root, clf.model, clf.backend_name, job.input, job.text_column,
                       tuple(job.passthrough) if job.input_format == "jsonl" else (), _crash_at())
    meter = row_progress(stream, progress)
    start = time.perf_counter()
    try:
        with temp_output(job.output) as tmp:
            writer = open_writer(job.output_format, tmp, schema)
            try:
                rows, bad = _run_pool(job, source, cfg, writer, clf, workers or cpu_count(), meter)
            finally:
                writer.close()
    finally:
        meter.clear()
    return Summary(rows, bad, time.perf_counter() - start, job.output)


def _crash_at() -> int | None:
    value = os.environ.get(CRASH_ENV)
    return int(value) if value not in (None, "") else None


def _run_pool(job: Job, source: Source, cfg: WorkerConfig, writer: Writer, clf, workers: int,
              meter: records.Progress) -> tuple[int, int]:
    """Pieces go to the workers in input order and come back in the same order (WorkerPool)."""
    pa = pyarrow()
    rows = bad = 0

    def tasks():
        for piece in source.pieces():
            payload, piece.payload = piece.payload, None  # only the worker needs it
            yield piece, (cfg, piece.index, piece.kind, payload, piece.first_row)

    # threads=1: the pool gives each worker one core
    with WorkerPool(workers, clf.bundle.root, clf.backend_name, clf.model, threads=1) as pool:
        try:
            for piece, result in pool.map(_score_piece, tasks()):
                table = _result_table(pa, job, writer.schema, piece, result, clf)
                writer.write(table)
                rows += table.num_rows
                bad += table.num_rows - table.column(ERROR).null_count
                meter.update(rows)
        except PoolWorkerError:
            raise WorkerError(f"a worker process died while scoring {job.input} (killed, or out of "
                              f"memory?); {job.output} was not written") from None
    return rows, bad


def _result_table(pa, job: Job, schema, piece: Piece, result, clf):
    rows, probs, errors, extra = result
    n = len(probs)
    if job.id_column is not None:
        key = extra[job.id_column] if extra is not None else piece.passthrough.column(job.id_column)
    elif rows is not None:
        key = pa.array(rows, pa.int64())
    else:
        key = pa.array(np.arange(piece.first_row, piece.first_row + n, dtype=np.int64))
    columns = [key, labels_of(probs, clf.labels, clf.threshold), probs, pa.array(errors, pa.string())]
    for name in job.keep_columns:
        columns.append(extra[name] if extra is not None else piece.passthrough.column(name))
    return pa.Table.from_arrays([_as_array(pa, c, f.type) for c, f in zip(columns, schema)], schema=schema)


def _as_array(pa, values, type_):
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks()
    return pa.array(values, type_)


if __name__ == "__main__":  # python -m runtime.batch
    from runtime.batch_cli import main
    from runtime.errors import run_cli  # SIGTERM: cleanup as for Ctrl-C, "terminated", exit 143
    sys.exit(run_cli(main))
