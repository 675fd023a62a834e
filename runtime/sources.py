"""Inputs of every scoring front end: formats, the one bad-row rule, and readers of ``Rows``.

A source is cut into ``Piece``\\ s in input order; ``Piece.read(spec)`` gives its ``Rows`` and
runs wherever the piece is scored (this process or a worker), so that the parent of a worker
pool only cuts files into byte spans or Parquet row groups. Every input record gives exactly
one row, numbered per input:

- ``text``: one review per line; the number is the line number. A blank line is a row.
- ``jsonl``: one JSON object per line; the number is the line number. Blank lines hold no
  row (they still count as lines). The first object names the fields, as a header would.
- ``csv``/``tsv``: a header, then one row per record; the number is the data row (1 = the
  record after the header; a quoted field may span lines). Blank lines hold no row.
- ``parquet``: a file or a directory of them (name order); the row counted across files.

The bad-row rule (the same in ``predict``, the local engine and Spark): a row whose text is
unusable -- null, not a string, missing, empty or whitespace only, or containing U+FFFD
(invalid UTF-8 is decoded with the replacement character) -- is still scored, and its
``error`` says why (``judge``). A NUL byte or a record over ``--max-record-bytes`` refuses
the whole input, naming the line. pyarrow is needed for Parquet only.
"""
from __future__ import annotations

import csv
import json
import os
import stat
import sys
from dataclasses import dataclass, field
from itertools import islice
from typing import IO, Iterator, Sequence

from .errors import UserError
from .files import check_unchanged, file_state, read_span

TEXT, JSONL, CSV, TSV, PARQUET = "text", "jsonl", "csv", "tsv", "parquet"
INPUT_FORMATS = (TEXT, JSONL, CSV, TSV, PARQUET)
ALIASES = {"lines": TEXT, "txt": TEXT, "ndjson": JSONL, "pq": PARQUET}
EXTENSIONS = {".txt": TEXT, ".text": TEXT, ".jsonl": JSONL, ".ndjson": JSONL, ".csv": CSV, ".tsv": TSV,
              ".parquet": PARQUET, ".pq": PARQUET}
STDIN, TEXT_SOURCE = "-", "--text"  # the source name of stdin and of --text reviews
BOM = b"\xef\xbb\xbf"
DEFAULT_MAX_RECORD_BYTES = 16 << 20  # one record; IMDB reviews are 14 KB at most
CHUNK_BYTES = 1 << 20  # a piece of a regular file (~800 IMDB reviews): small enough to stay in cache
SNIFF_BYTES = 8192  # checked for NUL bytes before anything is scored
EMPTY, INVALID_UTF8, NULL = "empty text", "invalid UTF-8 (replaced with U+FFFD)", "text is null"
_JSON_KINDS = {bool: "a boolean", int: "a number", float: "a number", list: "an array", dict: "an object"}
MISSING = object()  # a JSONL object without the text field


class InputError(UserError):
    """An input or output cannot be used; the message names it (and the line)."""


def canonical(fmt: str, choices: Sequence[str] = INPUT_FORMATS) -> str:
    """A format name or alias (``lines`` = ``text``) as its one name."""
    name = ALIASES.get(fmt, fmt)
    if name not in choices:
        raise InputError(f"unknown format {fmt!r}: choose one of {', '.join(choices)}")
    return name


def format_of(path: str) -> str:
    """The input format told by a file's extension (a directory is Parquet)."""
    if os.path.isdir(path):
        return PARQUET
    ext = os.path.splitext(path)[1].lower()
    if ext not in EXTENSIONS:
        raise InputError(f"{path}: unknown input format {ext or '(no extension)'!r}: use .parquet (or a "
                         f"directory of them), .csv, .tsv, .jsonl or .txt, or give --input-format")
    return EXTENSIONS[ext]


def display(source: str) -> str:
    return "<stdin>" if source == STDIN else source


# -- the bad-row rule ---------------------------------------------------------------------------
def judge(value: object, text_column: str = "text") -> tuple[str, str | None]:
    """``(text to score, error or None)``: a bad value scores as ''; a bad text as it is."""
    if isinstance(value, str):
        if "\ufffd" in value:
            return value, INVALID_UTF8
        return value, (EMPTY if not value or value.isspace() else None)  # isspace: no copy of the text
    if value is None:
        return "", NULL
    if value is MISSING:
        return "", f"no {text_column!r} field"
    return "", f"text is {_JSON_KINDS.get(type(value), 'a ' + type(value).__name__)}, not a string"


def decode(raw: bytes, name: str, number: int) -> str:
    """One line without its line break; invalid UTF-8 replaced (``judge`` marks it), NUL refused."""
    if b"\0" in raw:
        raise InputError(nul_message(name, number))
    if number == 1 and raw.startswith(BOM):
        raw = raw[len(BOM):]
    text = raw.decode("utf-8", "replace")
    text = text[:-1] if text.endswith("\n") else text
    return text[:-1] if text.endswith("\r") else text


def nul_message(name: str, line: int) -> str:
    return f"{name}:{line}: NUL byte: binary input (or not UTF-8 text) is not supported"


def too_long(name: str, line: int, cap: int) -> InputError:
    return InputError(f"{name}:{line}: record longer than {cap} bytes (--max-record-bytes)")


def read_lines(f: IO[bytes], n: int, cap: int, name: str, first: int) -> list[bytes]:
    """Up to ``n`` lines, none longer than ``cap`` bytes: an endless line costs ``cap``, not all memory."""
    lines = []
    while len(lines) < n:
        raw = f.readline(cap + 1)
        if not raw:
            break
        if len(raw) > cap and not raw.endswith(b"\n"):
            raise too_long(name, first + len(lines) + 1, cap)
        lines.append(raw)
    return lines


# -- what a piece turns into --------------------------------------------------------------------
@dataclass
class Rows:
    """Rows of one input, ready to score: ``n`` numbers, texts, errors; kept columns by name
    (lists of values, or pyarrow arrays for Parquet)."""
    source: str
    numbers: list[int]
    texts: list[str]
    errors: list[str | None]
    kept: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.texts)

    def without_blank(self) -> "Rows":
        keep = [i for i, t in enumerate(self.texts) if t.strip()]
        if len(keep) == len(self.texts):
            return self
        pick = lambda values: [values[i] for i in keep]  # noqa: E731
        return Rows(self.source, pick(self.numbers), pick(self.texts), pick(self.errors),
                    {c: v.take(keep) if hasattr(v, "take") else pick(v) for c, v in self.kept.items()})


@dataclass(frozen=True)
class Spec:
    """What to read from each record (picklable: it goes to the workers with every piece)."""
    text_column: str = "text"
    columns: tuple[str, ...] = ()  # id and kept columns
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
    skip_blank: bool = False
    types: object = None  # parquet: pyarrow schema of the kept columns, as written


def rows_of_values(source: str, numbers: list[int], values: list, kept: dict, spec: Spec) -> Rows:
    judged = [judge(v, spec.text_column) for v in values]
    rows = Rows(source, numbers, [t for t, _ in judged], [e for _, e in judged], kept)
    return rows.without_blank() if spec.skip_blank else rows


@dataclass(frozen=True)
class TextPiece:
    """Rows already read in the parent (``--text`` reviews, CSV records)."""
    source: str
    numbers: tuple
    values: tuple
    kept: tuple = ()  # ((column, values), ...)

    def read(self, spec: Spec) -> Iterator[Rows]:
        yield rows_of_values(self.source, list(self.numbers), list(self.values),
                             {c: list(v) for c, v in self.kept}, spec)


@dataclass(frozen=True)
class LinePiece:
    """Text or JSONL lines: sent (stdin, a pipe) or a byte span of a regular file the worker reads."""
    source: str
    format: str
    first: int  # lines of ``source`` before this piece
    lines: tuple = ()
    span: tuple[int, int] = (0, 0)  # (offset, length) when ``lines`` is empty
    state: tuple = ()  # files.file_state of the file the parent cut, when ``lines`` is empty

    def data(self) -> bytes:
        if self.lines:
            return b"".join(self.lines)
        return read_span(self.source, self.state, *self.span, display(self.source))

    def texts(self, cap: int) -> list[str]:
        """The piece's lines as text, decoded as ``decode`` does line by line, in one pass."""
        data, name = self.data(), display(self.source)
        if len(data) > cap:
            for i, line in enumerate(data.split(b"\n")):
                if len(line) > cap:
                    raise too_long(name, self.first + i + 1, cap)
        if b"\0" in data:
            raise InputError(nul_message(name, self.first + data[:data.index(b"\0")].count(b"\n") + 1))
        text = data.decode("utf-8", "replace")  # a bad sequence never spans a line break
        lines = text.split("\n")
        if text.endswith("\n"):
            lines.pop()
        if self.first == 0 and lines and lines[0].startswith("\ufeff"):
            lines[0] = lines[0][1:]
        return [line[:-1] if line.endswith("\r") else line for line in lines]

    def read(self, spec: Spec) -> Iterator[Rows]:
        yield self._rows(spec)

    def _rows(self, spec: Spec) -> Rows:
        name = display(self.source)
        lines = self.texts(spec.max_record_bytes)
        first = self.first + 1
        if self.format == TEXT:
            return rows_of_values(self.source, list(range(first, first + len(lines))), lines, {}, spec)
        numbers, values, kept = [], [], {c: [] for c in spec.columns}
        for number, line in enumerate(lines, first):
            if line.strip():
                obj = parse_object(line, name, number)
                numbers.append(number)
                values.append(obj.get(spec.text_column, MISSING))
                for c in spec.columns:
                    kept[c].append(obj.get(c))
        return rows_of_values(self.source, numbers, values, kept, spec)


def parse_object(line: str, name: str, number: int) -> dict:
    where = f"{name}:{number}"
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as e:
        raise InputError(f"{where}: invalid JSON: {e.msg} (column {e.colno})") from None
    if not isinstance(obj, dict):
        kind = "null" if obj is None else _JSON_KINDS.get(type(obj), "a string")
        raise InputError(f"{where}: expected a JSON object, got {kind}")
    return obj


# -- checks before any work -------------------------------------------------------------------
def check_input(path: str) -> None:
    """A readable file, directory (Parquet) or pipe; devices refused (``/dev/zero`` never ends)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise InputError(f"{path}: no such file or directory") from None
    except OSError as e:
        raise InputError(f"{path}: {e.strerror}") from None
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        raise InputError(f"{path}: is a device, not a file (pipe it in with '<' or '-' if you mean it)")
    if stat.S_ISREG(mode):
        try:
            with open(path, "rb") as f:
                head = f.read(SNIFF_BYTES)
        except OSError as e:
            raise InputError(f"{path}: cannot read: {e.strerror}") from None
        if b"\0" in head and not head.startswith(b"PAR1"):
            raise InputError(nul_message(path, head[:head.index(b"\0")].count(b"\n") + 1))


def check_columns(name: str, names: Sequence[str], text_column: str, id_column: str | None,
                  keep: Sequence[str], what: str = "column") -> None:
    for col, option in [(text_column, "--text-column")] + [(c, "--id-column") for c in [id_column] if c] + \
                       [(c, "--keep-columns") for c in keep]:
        if col not in names:
            raise InputError(f"{name}: no {what} {col!r} ({option}); {what}s: {', '.join(map(str, names))}")


# -- cutting an input into pieces (in the parent) ---------------------------------------------
class Source:
    """One input: its columns checked at construction, then ``pieces()`` in input order."""

    def __init__(self, path: str, fmt: str, spec: Spec, id_column: str | None, keep: Sequence[str],
                 batch_size: int, stdin: IO[bytes] | None = None):
        self.path, self.format, self.spec = path, fmt, spec
        self.id_column, self.keep, self.batch_size = id_column, tuple(keep), batch_size
        self.stdin = stdin
        self.check()

    def check(self) -> None:
        pass

    def pieces(self) -> Iterator:
        raise NotImplementedError

    def open(self) -> IO[bytes]:
        if self.path == STDIN:
            return _Unclosed(self.stdin if self.stdin is not None else sys.stdin.buffer)
        try:
            return open(self.path, "rb")
        except OSError as e:
            raise InputError(f"{self.path}: cannot read: {e.strerror}") from None


class _Unclosed:
    """stdin as a context manager that leaves it open."""

    def __init__(self, f):
        self.f = f

    def __enter__(self):
        return self.f

    def __exit__(self, *exc):
        return False


class LineSource(Source):
    """Text and JSONL (its first object must have the text and id fields, as a header would).

    A regular file is cut into byte spans at line ends (the workers read them); anything else
    (stdin, a pipe) is sent ``batch_size`` lines at a time."""

    def check(self) -> None:
        if self.format == JSONL and self.path != STDIN and os.path.isfile(self.path):
            with self.open() as f:  # the first object names the fields, as a CSV header does
                for number, line in enumerate(iter(lambda: f.readline(self.spec.max_record_bytes + 1), b""), 1):
                    text = decode(line, self.path, number)
                    if text.strip():
                        obj = parse_object(text, self.path, number)  # the key fields; kept ones may be sparse
                        check_columns(f"{self.path}:{number}", list(obj), self.spec.text_column, self.id_column,
                                      (), "field")
                        return

    def pieces(self) -> Iterator[LinePiece]:
        cap, name = self.spec.max_record_bytes, display(self.path)
        with self.open() as f:
            first = 0
            if self.path != STDIN and os.path.isfile(self.path):
                offset, state = 0, file_state(f)
                while block := f.read(CHUNK_BYTES):
                    if not block.endswith(b"\n"):
                        rest = f.readline(cap + 1)
                        if len(rest) > cap and not rest.endswith(b"\n"):
                            raise too_long(name, first + block.count(b"\n") + 1, cap)
                        block += rest
                    yield LinePiece(self.path, self.format, first, span=(offset, len(block)), state=state)
                    first, offset = first + block.count(b"\n"), offset + len(block)
                check_unchanged(f, state, name, state[2], self.path)  # cut short, grown or replaced
                return
            while lines := read_lines(f, self.batch_size, cap, name, first):
                yield LinePiece(self.path, self.format, first, tuple(lines))
                first += len(lines)


class CsvSource(Source):
    """CSV or TSV (RFC 4180 quoting), parsed here -- a quoted field may span lines -- into
    ``TextPiece``\\ s of ``batch_size`` records. Every cell is text, as read."""

    def check(self) -> None:
        self._reader = None
        if self.path != STDIN:
            self.header  # noqa: B018  (read and checked now, before any work)

    @property
    def header(self) -> list[str]:
        if self._reader is None:
            self._file = self.open()
            f = self._file.__enter__()
            self._state = file_state(f) if self.path != STDIN and os.path.isfile(self.path) else None
            self._lines = _NumberedLines(f, display(self.path), self.spec.max_record_bytes)
            csv.field_size_limit(max(self.spec.max_record_bytes, 1 << 17))
            self._reader = csv.reader(self._lines, delimiter="\t" if self.format == TSV else ",", strict=True)
            header = self._next()
            if not header:
                raise InputError(f"{display(self.path)}: empty file, expected a header row")
            check_columns(display(self.path), header, self.spec.text_column, self.id_column, self.keep)
            self._header = header
        return self._header

    def _next(self) -> list[str] | None:
        start = self._lines.number + 1
        try:
            return next(self._reader, None)
        except csv.Error as e:
            name = display(self.path)
            if "field larger than field limit" in str(e):
                raise too_long(name, start, self.spec.max_record_bytes) from None
            if "unexpected end of data" in str(e):
                raise InputError(f"{name}:{start}: unterminated quote: the record starting on this line "
                                 f"runs to the end of the file") from None
            raise InputError(f"{name}:{self._lines.number}: bad CSV: {e}") from None

    def pieces(self) -> Iterator[TextPiece]:
        header, name = self.header, display(self.path)
        at = [header.index(c) for c in (self.spec.text_column,) + self.spec.columns]
        try:
            number = 0
            while True:
                numbers, records = [], []
                while len(records) < self.batch_size and (row := self._next()) is not None:
                    if not row:
                        continue  # a blank line
                    if len(row) != len(header):
                        raise InputError(f"{name}:{self._lines.number}: {len(row)} fields, "
                                         f"the header has {len(header)}")
                    number += 1
                    numbers.append(number)
                    records.append([row[i] for i in at])
                if not records:
                    if self._state is not None:  # cut short, grown or rewritten while parsed
                        check_unchanged(self._lines.f, self._state, name, self._state[2], self.path)
                    return
                columns = list(zip(*records))
                yield TextPiece(self.path, tuple(numbers), columns[0], tuple(zip(self.spec.columns, columns[1:])))
        finally:
            self._file.__exit__(None, None, None)


class _NumberedLines:
    """Decoded physical lines (line ends kept, for the csv module) and how many were read."""

    def __init__(self, f: IO[bytes], name: str, cap: int):
        self.f, self.name, self.cap, self.number = f, name, cap, 0

    def __iter__(self):
        return self

    def __next__(self) -> str:
        raw = self.f.readline(self.cap + 1)
        if not raw:
            raise StopIteration
        self.number += 1
        if len(raw) > self.cap and not raw.endswith(b"\n"):
            raise too_long(self.name, self.number, self.cap)
        end = "\r\n" if raw.endswith(b"\r\n") else "\n" if raw.endswith(b"\n") else ""
        return decode(raw, self.name, self.number) + end


def text_pieces(texts: Sequence[str], batch_size: int) -> Iterator[TextPiece]:
    it, first = iter(texts), 1
    while batch := tuple(islice(it, batch_size)):
        yield TextPiece(TEXT_SOURCE, tuple(range(first, first + len(batch))), batch)
        first += len(batch)
