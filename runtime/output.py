"""Outputs of every scoring front end: the columns of a row (``Layout``, listed in docs/cli.md), the writers,
``check_output`` (the one rule for where a result may go) and ``Summary``/``Progress`` on stderr.
``Layout.encode`` makes a ``Chunk`` wherever rows are scored; the parent only writes chunks in order.
"""
from __future__ import annotations

import csv
import io
import json
import os
import sys
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import IO, Iterator, Sequence

import numpy as np

from .files import temp_output
from .model import predicted
from .records import (CSV, ERROR, FILE, JSONL, LABEL, OUTPUT_FORMATS, PARQUET, PROBABILITY, ROW, STDIN, TSV,
                      InputError, Rows, check_score_columns, format_of, pyarrow)

ROW_GROUP_ROWS = 65536  # rows per Parquet row group written
SPARK_DONE = "_SUCCESS"  # the file Spark writes last into a complete output directory


def output_format_of(path: str | None) -> str:
    """The output format told by ``path``'s extension: csv, tsv, jsonl; anything else Parquet."""
    return format_of(path, PARQUET, OUTPUT_FORMATS) if path else PARQUET


@dataclass(frozen=True)
class Chunk:
    """Encoded output rows: text (csv/tsv/jsonl) or a pyarrow Table (parquet), and counts."""
    data: object
    rows: int
    positive: int
    bad: int


@dataclass(frozen=True)
class Layout:
    """Which columns each output row has and how it is written (picklable, for the workers)."""
    format: str
    labels: tuple[str, ...]
    threshold: float | None  # two classes; None: the arg-max
    id_column: str | None = None
    keep: tuple[str, ...] = ()
    with_file: bool = False
    types: object = None  # pyarrow schema of the id and kept columns (Parquet input), else strings
    all_scores: bool = False  # one column per class, named by its label

    def __post_init__(self) -> None:
        if self.all_scores:
            check_score_columns(self.labels, self.id_column, self.keep)

    @property
    def scores(self) -> list[str]:
        """The class columns (``all_scores``)."""
        return list(self.labels) if self.all_scores else []

    @property
    def columns(self) -> list[str]:
        key = self.id_column if self.id_column is not None else ROW
        return [FILE] * self.with_file + [key, LABEL, PROBABILITY, *self.scores, ERROR, *self.keep]

    def header(self) -> str:
        return _csv_text([self.columns], self.format) if self.format in (CSV, TSV) else ""

    def encode(self, rows: Rows, scores) -> Chunk:
        """``rows`` and their ``[n, N]`` float32 class probabilities as output rows. A row with an
        error is not a prediction: its label and probabilities are null (empty in csv/tsv), and it
        is never counted as positive (two classes: ``labels[1]``)."""
        index = predicted(scores, self.threshold)
        two = len(self.labels) == 2
        chosen = scores[:, 1] if two else scores[np.arange(len(index)), index]
        floats = [chosen, *(scores.T if self.all_scores else ())]
        labels = [self.labels[i] for i in index.tolist()]
        bad = sum(e is not None for e in rows.errors)
        if bad or self.format != PARQUET:  # Parquet takes the float32 arrays as they are
            floats = [_masked(c.tolist(), rows.errors) for c in floats]
            labels = _masked(labels, rows.errors)
        positive = sum(label == self.labels[1] for label in labels) if two else 0
        key = rows.kept[self.id_column] if self.id_column is not None else rows.numbers
        lead = [[rows.source] * len(rows)] if self.with_file else []
        columns = [*lead, key, labels, *floats, rows.errors, *(rows.kept[c] for c in self.keep)]
        if self.format == PARQUET:
            data = self._table(columns)
        else:
            data = self._text(columns, range(len(lead) + 2, len(lead) + 2 + len(floats)))
        return Chunk(data, len(rows), positive, bad)

    def _text(self, columns: list, probabilities: range) -> str:
        """csv/tsv/jsonl lines of ``columns``; those at ``probabilities`` with 6 decimals, or missing."""
        jsonl = self.format == JSONL
        cell, missing = (_json, "null") if jsonl else (_cell, "")
        cells = [[f"{p:.6f}" if p is not None else missing for p in c] if i in probabilities
                 else [cell(v) for v in _values(c)] for i, c in enumerate(columns)]
        if not jsonl:
            return _csv_text(zip(*cells), self.format)
        # By hand, so that the probability keeps exactly 6 decimals (json.dumps would print 1e-06).
        names = [_json(c) + ": " for c in self.columns]
        return "".join("{" + ", ".join(n + v for n, v in zip(names, row)) + "}\n" for row in zip(*cells))

    def schema(self):
        pa = pyarrow()
        typed = {f.name: f.type for f in self.types} if self.types is not None else {}
        key = pa.int64() if self.id_column is None else typed.get(self.id_column, pa.string())
        floats = [pa.float32()] * (1 + len(self.scores))
        types = [pa.string()] * self.with_file + [key, pa.string(), *floats, pa.string()]
        return pa.schema(list(zip(self.columns, types + [typed.get(c, pa.string()) for c in self.keep])))

    def _table(self, columns: list):
        pa = pyarrow()
        schema = self.schema()
        return pa.Table.from_arrays([_arrow(pa, c, f.type) for c, f in zip(columns, schema)], schema=schema)


def _arrow(pa, values, type_):
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return values.cast(type_)
    if pa.types.is_string(type_):  # JSON values of an id or kept field: text, as in csv
        values = [v if v is None or isinstance(v, str) else _json(v) for v in values]
    return pa.array(values, type_)


def _masked(values: list, errors: list) -> list:
    """``values`` with None on the rows that have an error."""
    return [None if e is not None else v for v, e in zip(values, errors)]


def _values(column) -> list:
    return column.to_pylist() if hasattr(column, "to_pylist") else column


def _cell(value: object) -> str:
    """A csv/tsv cell: strings as they are, null empty, other values as JSON."""
    if value is None:
        return ""
    if type(value) is int:  # row numbers: the common case, without json.dumps
        return str(value)
    return value if isinstance(value, str) else _json(value)


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _csv_text(rows, fmt: str) -> str:
    """Rows as csv/tsv lines ending in LF. A field holding a CR is quoted as well as one holding
    an LF (Python's writer quotes only the characters of its line terminator), so that every
    reader gets back the rows written."""
    rows = list(rows)
    delimiter = "\t" if fmt == TSV else ","
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\n").writerows(rows)
    text = out.getvalue()
    if "\r" not in text:  # the usual case: one scan of the text
        return text
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")  # CR and LF are special
    lines = []
    for row in rows:
        out.seek(0)
        out.truncate()
        writer.writerow(row)
        lines.append(out.getvalue()[:-2] + "\n")
    return "".join(lines)


# -- writing chunks in order ------------------------------------------------------------------
class TextWriter:
    """csv/tsv/jsonl chunks onto a stream; the header (csv/tsv) comes with the first rows, so
    an input refused at its first line leaves stdout empty, or at ``finish``."""

    def __init__(self, stream: IO[str], layout: Layout):
        self.stream, self._header = stream, layout.header()

    def write(self, chunk: Chunk) -> None:
        if self._header is not None:
            self.stream.write(self._header)
            self._header = None
        self.stream.write(chunk.data)

    def finish(self) -> None:
        if self._header is not None:
            self.write(Chunk("", 0, 0, 0))


class ParquetWriter:
    """Buffers to ``ROW_GROUP_ROWS`` rows per row group (a chunk each would make tiny groups)."""

    def __init__(self, path: str, layout: Layout):
        self.pa = pyarrow()
        self._writer = self.pa.parquet.ParquetWriter(path, layout.schema())
        self._held, self._rows = [], 0

    def write(self, chunk: Chunk) -> None:
        self._held.append(chunk.data)
        self._rows += chunk.rows
        if self._rows >= ROW_GROUP_ROWS:
            self.finish()

    def finish(self) -> None:
        if self._held:
            self._writer.write_table(self.pa.concat_tables(self._held), row_group_size=ROW_GROUP_ROWS)
        self._held, self._rows = [], 0

    def close(self) -> None:
        self._writer.close()


@contextmanager
def open_sink(path: str | None, layout: Layout) -> Iterator:
    """A writer of chunks. ``None``/``-``: stdout. A file: written under a temp name beside it
    and renamed into place on success, removed on any failure (no partial file is left). A
    symlink (``/dev/stdout``), device or pipe is written in place."""
    if layout.format != PARQUET:
        with _text_stream(path) as stream:
            writer = TextWriter(stream, layout)
            yield writer
            writer.finish()
        return
    if path in (None, STDIN):
        raise InputError("Parquet output needs a file name (--output)")
    with temp_output(path) as tmp:
        writer = ParquetWriter(tmp, layout)
        try:
            yield writer
            writer.finish()
        finally:
            writer.close()


def _open_text(path: str | int, closefd: bool = True) -> IO[str]:
    return open(path, "w", encoding="utf-8", errors="replace", newline="", closefd=closefd)


@contextmanager
def _text_stream(path: str | None) -> Iterator[IO[str]]:
    if path in (None, STDIN):
        with _stdout() as out:
            yield out
        return
    in_place = os.path.islink(path) or (os.path.exists(path) and not os.path.isfile(path))
    with nullcontext(path) if in_place else temp_output(path) as name, _open_text(name) as f:
        yield f


@contextmanager
def _stdout() -> Iterator[IO[str]]:
    """stdout as UTF-8 text, whatever the locale. Under PYTHONUNBUFFERED it sits on a raw FileIO,
    which drops the rest of a short write (a reader that went away) without an error: then
    write through a buffered stream of our own on the same fd, which retries and raises EPIPE."""
    sys.stdout.flush()
    if isinstance(getattr(sys.stdout, "buffer", None), io.FileIO):
        with _open_text(sys.stdout.fileno(), closefd=False) as out:
            yield out
        return
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(encoding="utf-8", errors="replace")
    yield sys.stdout
    sys.stdout.flush()


def check_output(output: str | None, inputs: Sequence[str], directory: bool = False,
                 overwrite: bool = False) -> None:
    """The one output check: a name in an existing directory that is none of the inputs and not
    inside one. A file (``directory``: a Spark output directory, replaced only if it is an earlier
    Spark output, or with ``overwrite``; then it may not hold an input either)."""
    if output in (None, STDIN):
        return
    if os.path.isdir(output) and not directory:
        raise InputError(f"{output}: output is a directory; give a file name")
    parent = os.path.dirname(output) or "."
    if not os.path.isdir(parent):
        raise InputError(f"{output}: output directory {parent} does not exist")
    for path in inputs:
        if path != STDIN:
            _check_apart(output, path, directory)
    if directory and os.path.exists(output) and not os.path.isdir(output):
        raise InputError(f"{output}: exists and is not a directory (Spark writes a directory of part files)")
    if directory and os.path.isdir(output) and os.listdir(output) and not overwrite and \
            not os.path.exists(os.path.join(output, SPARK_DONE)):  # an empty one loses nothing
        raise InputError(f"{output}: is a directory that is not a Spark output (no {SPARK_DONE}): "
                         f"pass --overwrite to replace it and everything in it")


def _check_apart(output: str, path: str, directory: bool) -> None:
    """``output`` is not the input ``path``, not inside it, and (``directory``) does not hold it."""
    real_in, real_out = os.path.realpath(path), os.path.realpath(output)
    same = real_in == real_out or (os.path.exists(output) and os.path.exists(path) and os.path.samefile(path, output))
    inside = real_out.startswith(real_in.rstrip(os.sep) + os.sep)
    if directory and (same or inside or real_in.startswith(real_out.rstrip(os.sep) + os.sep)):
        raise InputError(f"{output}: output and input {path} overlap; it would be overwritten")
    if same:
        raise InputError(f"{output}: output is also an input ({path}); it would be overwritten")
    if inside and os.path.isdir(path):
        raise InputError(f"{output}: output is inside the input directory {path}")


# -- summary and progress ---------------------------------------------------------------------
@dataclass
class Summary:
    rows: int = 0
    positive: int = 0
    bad: int = 0
    seconds: float = 0.0
    output: str | None = None
    notes: list[str] = field(default_factory=list)
    two_class: bool = True  # N >= 3 classes: no positive count

    def add(self, chunk: Chunk) -> None:
        self.rows += chunk.rows
        self.positive += chunk.positive
        self.bad += chunk.bad

    def __str__(self) -> str:
        counts = [f"{self.positive} positive"] * self.two_class + [f"{self.bad} with errors"] * bool(self.bad)
        counted = f" ({', '.join(counts)})" if counts else ""
        rate = self.rows / self.seconds if self.seconds > 0 else 0.0
        notes = "".join(f", {n}" for n in self.notes)
        out = f" -> {self.output}" if self.output not in (None, STDIN) else ""
        return (f"scored {self.rows} row{'s' if self.rows != 1 else ''}{counted} in "
                f"{self.seconds:.2f} s, {rate:.0f} rows/s{notes}{out}")


class Progress:
    """Rows so far and the rate on stderr: a ``\\r`` status line on a terminal, at most every
    ``interval`` s; elsewhere (a log file) a plain line every ``plain_interval`` s."""

    def __init__(self, stream: IO[str] | None = None, enabled: bool = True, interval: float = 0.2,
                 plain_interval: float = 10.0):
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.terminal = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.interval = interval if self.terminal else plain_interval
        self.start, self._last, self._shown = time.perf_counter(), float("-inf"), False

    def update(self, count: int, text: str | None = None) -> None:
        now = time.perf_counter()
        if not self.enabled or now - self._last < self.interval:
            return
        self._last = now
        line = text or f"{count} rows, {count / max(now - self.start, 1e-9):.0f} rows/s"
        self.stream.write(f"\r{line} \033[K" if self.terminal else line + "\n")
        self._shown = self._shown or self.terminal
        self.stream.flush()

    def clear(self) -> None:
        if self._shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self._shown = False
