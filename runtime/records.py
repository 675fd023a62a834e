"""Streaming records in and scored records out, for ``python -m runtime.predict``.

Every input record gives exactly one output record, in input order, numbered per file:

- ``lines``: one review per physical line; the number is the line number. A blank line is a
  record (empty text) unless ``skip_blank``.
- ``jsonl``: one JSON object per line; the number is the line number. Blank lines hold no
  record and are passed over (they still count as lines).
- ``csv``: a header row, then one record per row; the number is the data row (1 = the row
  after the header; a quoted field may span lines). Blank rows hold no record.

Input is read as bytes: a UTF-8 BOM is dropped, CRLF is accepted, invalid UTF-8 is replaced
(and counted in a warning) and a NUL byte is refused as binary input. Memory stays flat: the
readers are generators and ``score_stream`` holds one batch at a time. Problems with the
input are ``InputError`` with a one-line message naming the file (and line).
"""
from __future__ import annotations

import csv
import json
import os
import stat
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, IO, Iterable, Iterator, Sequence

from .classifier import batched
from .files import temp_output
from .errors import UserError

INPUT_FORMATS = ("lines", "jsonl", "csv")
OUTPUT_FORMATS = ("csv", "jsonl", "tsv")
STDIN = "-"
TEXT_SOURCE = "--text"  # the ``file`` value of records given with --text
BOM = b"\xef\xbb\xbf"
SNIFF_BYTES = 8192  # how much of each file is checked for NUL bytes before anything is scored
OUTPUT_COLUMNS = ("file", "line", "label", "probability")

Warn = Callable[[str], None]


class InputError(UserError):
    """An input or output file cannot be used; the message names it (and the line)."""


@dataclass(frozen=True)
class Record:
    source: str  # the path as given, "-" for stdin, "--text" for --text
    number: int  # 1-based line (lines, jsonl) or data row (csv) within ``source``
    text: str
    id: object = None  # the --id-field value, as read (jsonl keeps its JSON type)


def display_name(source: str) -> str:
    return "<stdin>" if source == STDIN else source


# -- checks before anything is scored -------------------------------------------------------
def check_inputs(paths: Sequence[str], output: str | None = None) -> None:
    """Every path is a readable, non-binary file (or ``-`` once); ``output`` is none of them."""
    if list(paths).count(STDIN) > 1:
        raise InputError("'-' (stdin) given more than once")
    for path in paths:
        if path != STDIN:
            _check_input(path)
    if output not in (None, STDIN):
        _check_output(output, [p for p in paths if p != STDIN])


def _check_input(path: str) -> None:
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as e:
        raise InputError(f"{path}: {e.strerror}") from None
    if stat.S_ISDIR(mode):
        raise InputError(f"{path}: is a directory")
    if not stat.S_ISREG(mode):
        return  # a pipe such as <(zcat reviews.gz): opening it here would consume it
    try:
        with open(path, "rb") as f:
            head = f.read(SNIFF_BYTES)
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror}") from None
    if b"\0" in head:
        raise InputError(_nul_message(path, head[:head.index(b"\0")].count(b"\n") + 1))


def _check_output(output: str, inputs: Sequence[str]) -> None:
    if os.path.isdir(output):
        raise InputError(f"{output}: output is a directory")
    parent = os.path.dirname(output) or "."
    if not os.path.isdir(parent):
        raise InputError(f"{output}: output directory {parent} does not exist")
    if os.path.exists(output):
        for path in inputs:
            if os.path.samefile(path, output):
                raise InputError(f"{output}: output is also an input ({path}); it would be overwritten")


def _nul_message(name: str, line: int) -> str:
    return f"{name}:{line}: NUL byte: binary input (or not UTF-8 text) is not supported"


# -- reading --------------------------------------------------------------------------------
def read_records(paths: Sequence[str], input_format: str = "lines", text_field: str = "text",
                 id_field: str | None = None, skip_blank: bool = False, texts: Sequence[str] = (),
                 stdin: IO[bytes] | None = None, warn: Warn | None = None) -> Iterator[Record]:
    """``texts`` (as ``--text`` records), then each file in turn, opened only when reached.

    ``skip_blank`` drops records whose text is empty or whitespace; numbers are unchanged.
    ``warn`` receives one message per file with invalid UTF-8.
    """
    if input_format not in INPUT_FORMATS:
        raise InputError(f"unknown input format {input_format!r}: choose one of {', '.join(INPUT_FORMATS)}")
    warn = warn or warn_stderr
    reader = READERS[input_format]
    for n, text in enumerate(texts, 1):
        if not (skip_blank and not text.strip()):
            yield Record(TEXT_SOURCE, n, text)
    for path in paths:
        with open_binary(path, stdin) as f:
            lines = DecodedLines(f, display_name(path))
            for record in reader(lines, path, text_field, id_field):
                if not (skip_blank and not record.text.strip()):
                    yield record
            if lines.invalid:
                warn(invalid_utf8_message(path, lines.invalid))


def invalid_utf8_message(path: str, n: int) -> str:
    return f"warning: {display_name(path)}: {n} line{'s' if n != 1 else ''} had invalid UTF-8 (replaced)"


@contextmanager
def open_binary(path: str, stdin: IO[bytes] | None) -> Iterator[IO[bytes]]:
    if path == STDIN:
        yield stdin if stdin is not None else sys.stdin.buffer
        return
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory") from None
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror}") from None
    with f:
        yield f


class DecodedLines:
    """Physical lines of a byte stream as text, line terminators kept; counts bad UTF-8."""

    def __init__(self, stream: Iterable[bytes], name: str, number: int = 0):
        self.stream, self.name = stream, name
        self.number = number  # physical lines read so far (before this stream: a chunk's offset)
        self.invalid = 0  # lines with invalid UTF-8

    def __iter__(self) -> Iterator[str]:
        for raw in self.stream:
            self.number += 1
            if self.number == 1 and raw.startswith(BOM):
                raw = raw[len(BOM):]
            if b"\0" in raw:
                raise InputError(_nul_message(self.name, self.number))
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError:
                self.invalid += 1
                yield raw.decode("utf-8", "replace")


def _strip_eol(line: str) -> str:
    if line.endswith("\n"):
        line = line[:-1]
    return line[:-1] if line.endswith("\r") else line


def _line_records(lines: DecodedLines, source: str, text_field: str, id_field: str | None) -> Iterator[Record]:
    for line in lines:
        yield Record(source, lines.number, _strip_eol(line))


_JSON_TYPES = {str: "a string", int: "a number", float: "a number", bool: "a boolean",
               type(None): "null", list: "an array", dict: "an object"}


def _jsonl_records(lines: DecodedLines, source: str, text_field: str, id_field: str | None) -> Iterator[Record]:
    for line in lines:
        if not line.strip():
            continue
        where = f"{lines.name}:{lines.number}"
        try:
            obj = json.loads(_strip_eol(line))  # so that colno counts within this line
        except json.JSONDecodeError as e:
            raise InputError(f"{where}: invalid JSON: {e.msg} (column {e.colno})") from None
        if not isinstance(obj, dict):
            raise InputError(f"{where}: expected a JSON object, got {_JSON_TYPES.get(type(obj), 'a value')}")
        if text_field not in obj:
            raise InputError(f"{where}: no {text_field!r} field")
        text = obj[text_field]
        if not isinstance(text, str):
            raise InputError(f"{where}: field {text_field!r} is {_JSON_TYPES.get(type(text), 'a value')}, "
                             f"not a string")
        if id_field is not None and id_field not in obj:
            raise InputError(f"{where}: no {id_field!r} field (--id-field)")
        yield Record(source, lines.number, text, obj[id_field] if id_field is not None else None)


def _csv_records(lines: DecodedLines, source: str, text_field: str, id_field: str | None) -> Iterator[Record]:
    rows = csv.reader(lines)
    try:
        header = next(rows, None)
        if header is None:
            raise InputError(f"{lines.name}: empty file, expected a header row")
        columns = ", ".join(header)
        for field, option in ((text_field, "--text-field"), (id_field, "--id-field")):
            if field is not None and field not in header:
                raise InputError(f"{lines.name}: no column {field!r} ({option}); columns: {columns}")
        text_at = header.index(text_field)
        id_at = header.index(id_field) if id_field is not None else None
        number = 0
        for row in rows:
            if not row:
                continue  # a blank line
            if len(row) != len(header):
                raise InputError(f"{lines.name}:{rows.line_num}: {len(row)} fields, "
                                 f"the header has {len(header)}")
            number += 1
            yield Record(source, number, row[text_at], row[id_at] if id_at is not None else None)
    except csv.Error as e:
        raise InputError(f"{lines.name}:{rows.line_num}: bad CSV: {e}") from None


READERS = {"lines": _line_records, "jsonl": _jsonl_records, "csv": _csv_records}


def warn_stderr(message: str) -> None:
    print(message, file=sys.stderr)


# -- writing --------------------------------------------------------------------------------
class RecordWriter:
    """Writes one row per scored record: [file,] line, [id,] label, probability (6 decimals)."""

    def __init__(self, stream: IO[str], output_format: str = "csv", with_file: bool = False,
                 id_field: str | None = None, header: bool = True):
        if output_format not in OUTPUT_FORMATS:
            raise InputError(f"unknown output format {output_format!r}: "
                             f"choose one of {', '.join(OUTPUT_FORMATS)}")
        if id_field in OUTPUT_COLUMNS:
            raise InputError(f"--id-field {id_field!r} clashes with the output column of that name")
        self.stream, self.format = stream, output_format
        self.with_file, self.id_field = with_file, id_field
        self.columns = (["file"] if with_file else []) + ["line"] + \
            ([id_field] if id_field is not None else []) + ["label", "probability"]
        self._csv = None
        if output_format != "jsonl":
            self._csv = csv.writer(stream, delimiter="\t" if output_format == "tsv" else ",",
                                   lineterminator="\n")
        self._started = not header  # header=False: rows only (a chunk of a larger output)

    def start(self) -> None:
        """Write the header (csv, tsv) once. Deferred to the first record so that an input
        refused at its first line leaves stdout empty."""
        if not self._started and self._csv is not None:
            self._csv.writerow(self.columns)
        self._started = True

    def write(self, record: Record, label: str, probability: float) -> None:
        if not self._started:
            self.start()
        prob = f"{probability:.6f}"
        if self._csv is not None:
            row = ([record.source] if self.with_file else []) + [record.number]
            if self.id_field is not None:
                row.append(_id_text(record.id))
            self._csv.writerow(row + [label, prob])
            return
        # Built by hand so the probability keeps exactly 6 decimals (json.dumps would print 1e-06).
        parts = ([f'"file": {json.dumps(record.source, ensure_ascii=False)}'] if self.with_file else [])
        parts.append(f'"line": {record.number}')
        if self.id_field is not None:
            parts.append(f"{json.dumps(self.id_field, ensure_ascii=False)}: "
                         f"{json.dumps(record.id, ensure_ascii=False)}")
        parts += [f'"label": {json.dumps(label)}', f'"probability": {prob}']
        self.stream.write("{" + ", ".join(parts) + "}\n")


def _id_text(value: object) -> str:
    """An id for a csv/tsv cell: strings as they are, other JSON values as JSON, missing empty."""
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


@contextmanager
def open_output(path: str | None) -> Iterator[IO[str]]:
    """``None`` or ``-``: stdout. A file: written beside it under a temp name and renamed into
    place on success, removed on any failure (error or Ctrl-C), so no partial file is left.

    A symlink (``/dev/stdout``) or a device or pipe is written in place: renaming would replace
    the link itself, and replacing its target would cut off whoever holds it open.
    """
    if path in (None, STDIN):
        yield sys.stdout
        sys.stdout.flush()
        return
    if os.path.islink(path) or (os.path.exists(path) and not os.path.isfile(path)):
        with open(path, "w", encoding="utf-8", errors="replace", newline="") as f:
            yield f
        return
    with temp_output(path) as tmp, open(tmp, "w", encoding="utf-8", errors="replace", newline="") as f:
        yield f


# -- scoring --------------------------------------------------------------------------------
@dataclass
class Summary:
    records: int = 0
    positive: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0

    def __str__(self) -> str:
        return (f"scored {self.records} record{'s' if self.records != 1 else ''} ({self.positive} positive) "
                f"in {self.seconds:.2f} s, {self.rate:.0f} reviews/s")


class Progress:
    """A ``\r`` status line on a terminal: items so far and the rate, at most every ``interval`` s."""

    def __init__(self, stream: IO[str] | None = None, enabled: bool = True, interval: float = 0.1,
                 unit: str = "records", rate_unit: str = "reviews/s"):
        self.stream = stream or sys.stderr
        self.enabled, self.interval = enabled, interval
        self.unit, self.rate_unit = unit, rate_unit
        self.start = time.perf_counter()
        self._last, self._shown = 0.0, False

    def update(self, count: int, text: str | None = None) -> None:
        """Show ``count`` and the rate so far, or ``text`` instead."""
        now = time.perf_counter()
        if not self.enabled or now - self._last < self.interval:
            return
        self._last = now
        rate = count / max(now - self.start, 1e-9)
        self.stream.write(f"\r{text or f'{count} {self.unit}, {rate:.0f} {self.rate_unit}'} \033[K")
        self.stream.flush()
        self._shown = True

    def clear(self) -> None:
        if self._shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self._shown = False

    def message(self, text: str) -> None:
        """Print a line on the stream without garbling the status line."""
        self.clear()
        print(text, file=self.stream)


def score_stream(clf, records: Iterable[Record], writer: RecordWriter, threshold: float | None = None,
                 batch_size: int = 256, progress: Progress | None = None, pool=None) -> Summary:
    """Score ``records`` in batches of ``batch_size`` and write each, in order, as it is scored.

    ``clf``: a ``Classifier``; ``threshold``: the label cut-off (default: the bundle's);
    ``pool``: a ``runtime.pool.WorkerPool`` to score in worker processes (same order, same output).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    threshold = clf.threshold if threshold is None else threshold
    summary, start = Summary(), time.perf_counter()
    batches = ((batch, [r.text for r in batch]) for batch in batched(records, batch_size))
    if pool is None:
        scored = ((batch, clf.predict(texts)) for batch, texts in batches)
    else:
        scored = pool.score(batches)
    for batch, probs in scored:
        write_batch(clf, batch, probs, writer, threshold, summary)
        if progress is not None:
            progress.update(summary.records)
    return finish(writer, summary, start, progress)


def finish(writer: RecordWriter, summary: Summary, start: float, progress: Progress | None) -> Summary:
    """End of a run: the header even when there were no records, the time taken, no status line."""
    writer.start()
    summary.seconds = time.perf_counter() - start
    if progress is not None:
        progress.clear()
    return summary


def write_batch(clf, batch: list[Record], probs, writer: RecordWriter, threshold: float, summary: Summary) -> None:
    positive = clf.labels[1]
    for record, p in zip(batch, probs.tolist()):
        label = clf.label_of(p, threshold)
        summary.positive += label == positive
        writer.write(record, label, p)
    summary.records += len(batch)
