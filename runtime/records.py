"""Inputs of every scoring front end: formats, the one bad-row rule, and readers of ``Rows``.

A source is cut into pieces in input order; ``piece.read(spec)`` gives its ``Rows`` and runs
wherever the piece is scored (this process, a worker, a Spark executor), so that the parent of a
worker pool only cuts files into byte spans or Parquet row groups. Every input record gives
exactly one row, numbered per input:

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
the whole input, naming the line (``decode_lines``). pyarrow is needed for Parquet only.
"""
from __future__ import annotations

import csv
import json
import os
import stat
import sys
from contextlib import nullcontext
from dataclasses import dataclass, field
from itertools import islice
from typing import IO, Iterator, Sequence

from .errors import UserError, one_line, require
from .files import check_unchanged, file_state, open_unchanged, read_span, reading

TEXT, JSONL, CSV, TSV, PARQUET = "text", "jsonl", "csv", "tsv", "parquet"
INPUT_FORMATS = (TEXT, JSONL, CSV, TSV, PARQUET)
OUTPUT_FORMATS = (CSV, TSV, JSONL, PARQUET)
ALIASES = {"lines": TEXT, "txt": TEXT, "ndjson": JSONL, "pq": PARQUET}
EXTENSIONS = {".txt": TEXT, ".text": TEXT, ".jsonl": JSONL, ".ndjson": JSONL, ".csv": CSV, ".tsv": TSV,
              ".parquet": PARQUET, ".pq": PARQUET}
# The columns of every output (output.py lays them out): no input column, nor a label of --all-scores, may
# take these names.
FILE, ROW, LABEL, PROBABILITY, ERROR = "file", "row", "label", "probability", "error"
RESERVED = (FILE, ROW, LABEL, PROBABILITY, ERROR)
CLI_OPTIONS = ("--text-column", "--id-column", "--keep-columns")  # how check_names names each column
DATAFRAME_OPTIONS = ("text_col", "id_col / keep_columns", "id_col / keep_columns")  # spark.score_dataframe's
STDIN, TEXT_SOURCE = "-", "--text"  # the source name of stdin and of --text reviews
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


def format_of(path: str, default: str | None = None, choices: Sequence[str] = INPUT_FORMATS) -> str:
    """The format of ``path`` told by its extension, one of ``choices``. Without a ``default``
    (an input): a directory is Parquet and an unknown extension an error; with one (an output),
    an extension that tells none of ``choices`` gives the default."""
    if default is None and os.path.isdir(path):
        return PARQUET
    ext = os.path.splitext(path.rstrip("/"))[1].lower()
    if EXTENSIONS.get(ext) in choices:
        return EXTENSIONS[ext]
    if default is not None:
        return default
    raise InputError(f"{path}: unknown input format {ext or '(no extension)'!r}: use .parquet (or a "
                     f"directory of them), .csv, .tsv, .jsonl or .txt, or give --input-format")


def display(source: str) -> str:
    return "<stdin>" if source == STDIN else source


# -- the rules of a row -------------------------------------------------------------------------
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


def decode_lines(data: bytes, name: str, first: int, cap: int) -> list[str]:
    """Whole lines of the input ``name`` as text, ``first`` lines of it before them: each loses
    its LF and a CR before it, the input's first line its UTF-8 BOM, invalid UTF-8 is replaced
    with U+FFFD (``judge`` marks it). A NUL byte or a line over ``cap`` bytes refuses the input."""
    if len(data) > cap:
        for i, line in enumerate(data.split(b"\n")):
            if len(line) > cap:
                raise too_long(name, first + i + 1, cap)
    if b"\0" in data:
        raise InputError(nul_message(name, first + data[:data.index(b"\0")].count(b"\n") + 1))
    text = data.decode("utf-8", "replace")  # a bad sequence never spans a line break
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()
    if first == 0 and lines and lines[0].startswith("\ufeff"):
        lines[0] = lines[0][1:]
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def nul_message(name: str, line: int | None) -> str:
    where = f"{name}:{line}" if line else f"{name}: a row"  # None: a row without a number (Spark)
    return f"{where}: NUL byte: binary input (or not UTF-8 text) is not supported"


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


def check_names(where: str | None, columns: Sequence[str] | None, text_column: str, id_column: str | None,
                keep: Sequence[str], what: str = "column", options: Sequence[str] = CLI_OPTIONS) -> None:
    """The columns asked for: none named as an output column or asked for twice, and (given the
    input's ``columns``) each of them there. ``options`` name the text, id and kept columns."""
    named = ([id_column] if id_column is not None else []) + list(keep)
    for name in named:
        if name in RESERVED:
            raise InputError(f"column {name!r} clashes with the output column of that name")
    dupes = [n for n in named if named.count(n) > 1]
    if dupes:
        raise InputError(f"column {dupes[0]!r} is asked for twice ({options[1]} / {options[2]})")
    asked = [(text_column, options[0])] + [(c, options[1]) for c in [id_column] if c] + [(c, options[2]) for c in keep]
    for col, option in asked:
        if columns is not None and col not in columns:
            prefix = f"{where}: " if where else ""
            raise InputError(f"{prefix}no {what} {col!r} ({option}); {what}s: {', '.join(map(str, columns))}")


def check_score_columns(labels: Sequence[str], id_column: str | None, keep: Sequence[str]) -> None:
    """``--all-scores`` names a column by each label: none may be named as another output column."""
    for label in labels:
        if label in RESERVED or label == id_column or label in keep:
            raise InputError(f"label {label!r} clashes with the output column of that name (--all-scores)")


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
    id_column: str | None = None
    keep: tuple[str, ...] = ()
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
    skip_blank: bool = False
    types: object = None  # parquet: pyarrow schema of the kept columns, as written

    @property
    def columns(self) -> tuple[str, ...]:
        """The id and kept columns, each once."""
        return tuple(dict.fromkeys(([self.id_column] if self.id_column else []) + list(self.keep)))

    def check(self, where: str | None, columns: Sequence[str] | None, what: str = "column") -> None:
        check_names(where, columns, self.text_column, self.id_column, self.keep if what == "column" else (), what)


def rows_of_values(source: str, numbers: list[int], values: list, kept: dict, spec: Spec) -> Rows:
    judged = [judge(v, spec.text_column) for v in values]
    rows = Rows(source, numbers, [t for t, _ in judged], [e for _, e in judged], kept)
    return rows.without_blank() if spec.skip_blank else rows


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


def jsonl_rows(source: str, lines: Sequence[str], numbers: Sequence[int], spec: Spec) -> Rows:
    """The rows of JSONL lines (blank ones hold none): the text field and the kept fields."""
    name, kept_numbers, values, kept = display(source), [], [], {c: [] for c in spec.columns}
    for number, line in zip(numbers, lines):
        if line.strip():
            obj = parse_object(line, name, number)
            kept_numbers.append(number)
            values.append(obj.get(spec.text_column, MISSING))
            for c in spec.columns:
                kept[c].append(obj.get(c))
    return rows_of_values(source, kept_numbers, values, kept, spec)


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

    def read(self, spec: Spec) -> Iterator[Rows]:
        name = display(self.source)
        data = b"".join(self.lines) if self.lines else read_span(self.source, self.state, *self.span, name)
        lines = decode_lines(data, name, self.first, spec.max_record_bytes)
        numbers = range(self.first + 1, self.first + 1 + len(lines))
        if self.format == TEXT:
            yield rows_of_values(self.source, list(numbers), lines, {}, spec)
        else:
            yield jsonl_rows(self.source, lines, numbers, spec)


@dataclass(frozen=True)
class RowGroup:
    """A Parquet row group a worker reads itself: the parent only sends its address."""
    source: str
    group: int
    first: int  # rows before it (across the directory)
    batch_size: int
    state: tuple  # files.file_state of the file whose footer the parent checked

    def read(self, spec: Spec) -> Iterator[Rows]:
        """``batch_size`` rows at a time: the text of one batch in memory at once."""
        with open_unchanged(self.source, self.source) as f, reading(f, self.state, self.source):
            check_unchanged(f, self.state, self.source)
            yield from self._batches(pyarrow(), f, spec)
            check_unchanged(f, self.state, self.source)

    def _batches(self, pa, f, spec: Spec) -> Iterator[Rows]:
        columns = list(dict.fromkeys((spec.text_column,) + spec.columns))
        batches = open_parquet(pa, self.source, f).iter_batches(self.batch_size, row_groups=[self.group],
                                                                columns=columns)
        row = self.first + 1
        while True:
            try:
                batch = next(batches, None)
            except (OSError, pa.ArrowException) as e:
                raise InputError(f"{self.source}: cannot read row group {self.group}: {one_line(e, 200)}") from None
            if batch is None:
                return
            text = batch.column(spec.text_column)
            kept = {c: batch.column(c).cast(spec.types.field(c).type) for c in spec.columns}
            yield rows_of_values(self.source, list(range(row, row + len(batch))), text.to_pylist(), kept, spec)
            row += len(batch)


def text_pieces(texts: Sequence[str], batch_size: int) -> Iterator[TextPiece]:
    it, first = iter(texts), 1
    while batch := tuple(islice(it, batch_size)):
        yield TextPiece(TEXT_SOURCE, tuple(range(first, first + len(batch))), batch)
        first += len(batch)


# -- cutting an input into pieces (in the parent) ---------------------------------------------
def open_source(path: str, fmt: str, spec: Spec, batch_size: int) -> "Source":
    """The source of one input; its columns are checked here, before any work."""
    cls = ParquetSource if fmt == PARQUET else CsvSource if fmt in (CSV, TSV) else LineSource
    return cls(path, fmt, spec, batch_size)


class Source:
    """One input: its columns checked at construction, then ``pieces()`` in input order."""
    types = None  # Parquet: the pyarrow schema of the kept columns

    def __init__(self, path: str, fmt: str, spec: Spec, batch_size: int):
        self.path, self.format, self.spec, self.batch_size = path, fmt, spec, batch_size
        self.regular = path != STDIN and os.path.isfile(path)
        self.check()

    def check(self) -> None:
        pass

    def pieces(self) -> Iterator:
        raise NotImplementedError

    def open(self) -> IO[bytes]:
        if self.path == STDIN:
            return nullcontext(sys.stdin.buffer)  # left open
        try:
            return open(self.path, "rb")
        except OSError as e:
            raise InputError(f"{self.path}: cannot read: {e.strerror}") from None


class LineSource(Source):
    """Text and JSONL (its first object must have the text and id fields, as a header would).

    A regular file is cut into byte spans at line ends (the workers read them); anything else
    (stdin, a pipe) is sent ``batch_size`` lines at a time."""

    def check(self) -> None:
        if self.format == JSONL and self.regular:
            with self.open() as f:  # the first object names the fields, as a CSV header does
                lines = _NumberedLines(f, self.path, self.spec.max_record_bytes, ends=False)
                for text in lines:
                    if text.strip():  # the key fields; kept ones may be sparse
                        obj = parse_object(text, self.path, lines.number)
                        self.spec.check(f"{self.path}:{lines.number}", list(obj), "field")
                        return

    def pieces(self) -> Iterator[LinePiece]:
        cap, name = self.spec.max_record_bytes, display(self.path)
        with self.open() as f:
            first = 0
            if not self.regular:
                while lines := read_lines(f, self.batch_size, cap, name, first):
                    yield LinePiece(self.path, self.format, first, tuple(lines))
                    first += len(lines)
                return
            offset, state = 0, file_state(f)
            with reading(f, state, name, self.path):
                while block := f.read(CHUNK_BYTES):
                    if not block.endswith(b"\n"):  # up to the end of its last line
                        block += b"".join(read_lines(f, 1, cap, name, first + block.count(b"\n")))
                    yield LinePiece(self.path, self.format, first, span=(offset, len(block)), state=state)
                    first, offset = first + block.count(b"\n"), offset + len(block)
            check_unchanged(f, state, name, state[2], self.path)  # cut short, grown or replaced


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
            self._state = file_state(f) if self.regular else None
            self._lines = _NumberedLines(f, display(self.path), self.spec.max_record_bytes)
            csv.field_size_limit(max(self.spec.max_record_bytes, 1 << 17))
            self._reader = csv.reader(self._lines, delimiter="\t" if self.format == TSV else ",", strict=True)
            header = self._next()
            if not header:
                raise InputError(f"{display(self.path)}: empty file, expected a header row")
            self.spec.check(display(self.path), header)
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
        header = self.header
        at = [header.index(c) for c in (self.spec.text_column,) + self.spec.columns]
        try:
            number = 0
            while records := self._checked_records(len(header)):
                columns = list(zip(*records))  # by header position
                numbers = tuple(range(number + 1, number + 1 + len(records)))
                number += len(records)
                yield TextPiece(self.path, numbers, tuple(columns[at[0]]),
                                tuple((c, columns[i]) for c, i in zip(self.spec.columns, at[1:])))
            if self._state is not None:  # cut short, grown or rewritten while parsed
                check_unchanged(self._lines.f, self._state, display(self.path), self._state[2], self.path)
        finally:
            self._file.__exit__(None, None, None)

    def _checked_records(self, width: int) -> list[list[str]]:
        if self._state is None:
            return self._records(width)
        with reading(self._lines.f, self._state, display(self.path), self.path):
            return self._records(width)

    def _records(self, width: int) -> list[list[str]]:
        """Up to ``batch_size`` records (blank lines skipped), each of the header's width."""
        records = []
        while len(records) < self.batch_size and (row := self._next()) is not None:
            if not row:
                continue  # a blank line
            if len(row) != width:
                raise InputError(f"{display(self.path)}:{self._lines.number}: {len(row)} fields, "
                                 f"the header has {width}")
            records.append(row)
        return records


class _NumberedLines:
    """Decoded physical lines (with their line ends for the csv module, unless ``ends`` is
    false) and how many were read."""

    def __init__(self, f: IO[bytes], name: str, cap: int, ends: bool = True):
        self.f, self.name, self.cap, self.ends, self.number = f, name, cap, ends, 0

    def __iter__(self):
        return self

    def __next__(self) -> str:
        raw = b"".join(read_lines(self.f, 1, self.cap, self.name, self.number))
        if not raw:
            raise StopIteration
        self.number += 1
        end = "" if not self.ends else "\r\n" if raw.endswith(b"\r\n") else "\n" if raw.endswith(b"\n") else ""
        return decode_lines(raw, self.name, self.number - 1, self.cap)[0] + end


# -- Parquet (pyarrow: the [batch] extra) --------------------------------------------------
def pyarrow():
    """pyarrow with the submodules used here, or ``MissingExtra`` naming [batch]."""
    pa = require("pyarrow", "batch")
    for sub in ("csv", "ipc", "parquet"):
        require(f"pyarrow.{sub}", "batch")
    return pa


def parquet_files(path: str) -> list[str]:
    """A file, or a directory's data files in name order (hidden and ``_`` names, such as
    Spark's ``_SUCCESS`` and ``.crc`` files, are skipped)."""
    if not os.path.isdir(path):
        return [path]
    found = []
    for root, dirs, files in os.walk(path):
        dirs[:] = [d for d in dirs if not d.startswith((".", "_"))]
        found += [os.path.join(root, f) for f in files if not f.startswith((".", "_"))]
    found.sort(key=lambda p: os.path.relpath(p, path).split(os.sep))  # a/x before b, b/x before c
    if not found:
        raise InputError(f"{path}: no Parquet files in this directory")
    return found


def open_parquet(pa, path: str, f: IO[bytes] | None = None):
    """The Parquet file ``path``, read through ``f`` when given (the file whose state was taken)."""
    try:
        return pa.parquet.ParquetFile(f if f is not None else path)
    except (OSError, pa.ArrowException) as e:
        raise InputError(f"{path}: not a readable Parquet file: {one_line(e, 200)}") from None


def plain(pa, t):
    """A dictionary type as its value type (a dictionary of strings is text)."""
    return t.value_type if pa.types.is_dictionary(t) else t


def is_text(pa, t) -> bool:
    t = plain(pa, t)
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_null(t) or \
        (hasattr(pa.types, "is_string_view") and pa.types.is_string_view(t))


class ParquetSource(Source):
    """Every file's footer checked up front: each must have the first file's types for the
    columns used (as Spark requires too); the workers read the row groups themselves."""

    def check(self) -> None:
        pa = self.pa = pyarrow()
        self.files = parquet_files(self.path)
        columns = (self.spec.text_column,) + tuple(c for c in self.spec.columns if c != self.spec.text_column)
        first, self.states, self.metadata = None, {}, {}
        for path in self.files:
            with open(path, "rb") as f:
                self.states[path] = file_state(f)
                parquet = open_parquet(pa, path, f)
                schema, self.metadata[path] = parquet.schema_arrow, parquet.metadata
            self.spec.check(path, schema.names)
            types = pa.schema([pa.field(c, plain(pa, schema.field(c).type)) for c in columns])
            if first is None:
                first = types
                if not is_text(pa, types.field(0).type):
                    raise InputError(f"{path}: column {self.spec.text_column!r} is {types.field(0).type}, "
                                     f"not text (--text-column)")
            elif not types.equals(first):
                bad = next(f for f, g in zip(types, first) if not f.equals(g))
                raise InputError(f"{path}: column {bad.name!r} is {bad.type} but {first.field(bad.name).type} "
                                 f"in {self.files[0]}: the files disagree")
        self.types = pa.schema([first.field(c) for c in self.spec.columns])

    def pieces(self) -> Iterator[RowGroup]:
        row = 0
        for path in self.files:
            meta = self.metadata[path]  # read with the state: the pieces are of that file
            for group in range(meta.num_row_groups):
                n = meta.row_group(group).num_rows
                if n:
                    yield RowGroup(path, group, row, self.batch_size, self.states[path])
                    row += n
