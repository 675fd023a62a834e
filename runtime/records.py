"""Inputs of every scoring front end: formats, the bad-row rule (``judge``), the line rule
(``decode_lines``), column checks (``check_names``) and the readers of ``Rows`` (docs/cli.md).

A source is cut into pieces in the parent; ``piece.read(spec)`` runs wherever the piece is scored
(this process, a worker, a Spark executor), so a pool's parent only cuts byte spans or row groups.
"""
from __future__ import annotations

import csv
import json
import os
import stat
import sys
from contextlib import nullcontext
from dataclasses import dataclass, field
from itertools import count, islice
from typing import IO, Iterator, Sequence

from .errors import UserError, one_line, require
from .files import check_unchanged, file_state, open_unchanged, read_span, unchanged

TEXT, JSONL, CSV, TSV, PARQUET = "text", "jsonl", "csv", "tsv", "parquet"
INPUT_FORMATS = (TEXT, JSONL, CSV, TSV, PARQUET)
OUTPUT_FORMATS = (CSV, TSV, JSONL, PARQUET)
ALIASES = {"lines": TEXT, "txt": TEXT, "ndjson": JSONL, "pq": PARQUET}
EXTENSIONS = {".txt": TEXT, ".text": TEXT, ".jsonl": JSONL, ".ndjson": JSONL, ".csv": CSV, ".tsv": TSV,
              ".parquet": PARQUET, ".pq": PARQUET}
# The output's columns (output.py): no input column, nor a label of --all-scores, may take these names.
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
    name = ALIASES.get(fmt, fmt)
    if name not in choices:
        raise InputError(f"unknown format {fmt!r}: choose one of {', '.join(choices)}")
    return name


def format_of(path: str, default: str | None = None, choices: Sequence[str] = INPUT_FORMATS) -> str:
    """``path``'s format by extension; an input's (no ``default``) is Parquet for a directory, else an error."""
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


# -- the rules of a row and of a line --------------------------------------------------------
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
    """Whole lines of ``name`` (``first`` lines before them) as text, without LF, a CR before it and the
    input's UTF-8 BOM; invalid UTF-8 becomes U+FFFD. A NUL byte or a line over ``cap`` bytes refuses it."""
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


def _raw_lines(f: IO[bytes], name: str, cap: int, first: int = 0) -> Iterator[bytes]:
    """The lines of ``f``, the first numbered ``first + 1``: an endless line costs ``cap`` bytes, not all memory."""
    for number in count(first + 1):
        raw = f.readline(cap + 1)
        if not raw:
            return
        if len(raw) > cap and not raw.endswith(b"\n"):
            raise too_long(name, number, cap)
        yield raw


def _text_lines(f: IO[bytes], name: str, cap: int, ends: bool = False) -> Iterator[str]:
    """The lines of ``f`` by ``decode_lines``, one at a time; with ``ends``, their line ends (for csv)."""
    for i, raw in enumerate(_raw_lines(f, name, cap)):
        end = "" if not ends else "\r\n" if raw.endswith(b"\r\n") else "\n" if raw.endswith(b"\n") else ""
        yield decode_lines(raw, name, i, cap)[0] + end


def check_names(where: str | None, columns: Sequence[str] | None, text_column: str, id_column: str | None,
                keep: Sequence[str], what: str = "column", options: Sequence[str] = CLI_OPTIONS) -> None:
    """None of the columns asked for is an output column or asked for twice, and each is in ``columns``
    (when given). ``options`` name the text, id and kept columns in messages."""
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
    """``--all-scores`` names a column by each label: none may be another output column."""
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
        if not head.startswith(b"PAR1"):
            decode_lines(head, path, 0, SNIFF_BYTES)  # a NUL byte refuses it


# -- what a piece turns into --------------------------------------------------------------------
@dataclass
class Rows:
    """Rows of one input, ready to score; kept columns by name (lists, or pyarrow arrays for Parquet)."""
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
    def columns(self) -> tuple[str, ...]:  # the id and kept columns, each once
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
    """The rows of JSONL lines; blank ones hold none."""
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
    """A Parquet row group a worker reads itself, ``batch_size`` rows at a time: the parent sends its address."""
    source: str
    group: int
    first: int  # rows before it (across the directory)
    batch_size: int
    state: tuple  # files.file_state of the file whose footer the parent checked

    def read(self, spec: Spec) -> Iterator[Rows]:
        with open_unchanged(self.source, self.source) as f, unchanged(f, self.state, self.source):
            check_unchanged(f, self.state, self.source)
            yield from self._batches(pyarrow(), f, spec)

    def _batches(self, pa, f, spec: Spec) -> Iterator[Rows]:
        columns = list(dict.fromkeys((spec.text_column,) + spec.columns))
        batches = open_parquet(pa, self.source, f).iter_batches(self.batch_size, row_groups=[self.group],
                                                                columns=columns)
        row = self.first + 1
        try:
            for batch in batches:
                kept = {c: batch.column(c).cast(spec.types.field(c).type) for c in spec.columns}
                yield rows_of_values(self.source, list(range(row, row + len(batch))),
                                     batch.column(spec.text_column).to_pylist(), kept, spec)
                row += len(batch)
        except (OSError, pa.ArrowException) as e:
            raise InputError(f"{self.source}: cannot read row group {self.group}: {one_line(e, 200)}") from None


def text_pieces(texts: Sequence[str], batch_size: int) -> Iterator[TextPiece]:
    it, first = iter(texts), 1
    while batch := tuple(islice(it, batch_size)):
        yield TextPiece(TEXT_SOURCE, tuple(range(first, first + len(batch))), batch)
        first += len(batch)


# -- cutting an input into pieces (in the parent) ---------------------------------------------
def open_source(path: str, fmt: str, spec: Spec, batch_size: int) -> "Source":
    cls = ParquetSource if fmt == PARQUET else CsvSource if fmt in (CSV, TSV) else LineSource
    return cls(path, fmt, spec, batch_size)


class Source:
    """One input: its columns checked at construction (before any work), then ``pieces()`` in input order."""
    types = None  # Parquet: the pyarrow schema of the kept columns

    def __init__(self, path: str, fmt: str, spec: Spec, batch_size: int):
        self.path, self.format, self.spec, self.batch_size = path, fmt, spec, batch_size
        self.name, self.regular = display(path), path != STDIN and os.path.isfile(path)
        self.check()

    def open(self) -> IO[bytes]:
        if self.path == STDIN:
            return nullcontext(sys.stdin.buffer)  # left open
        try:
            return open(self.path, "rb")
        except OSError as e:
            raise InputError(f"{self.path}: cannot read: {e.strerror}") from None


class LineSource(Source):
    """Text and JSONL: a regular file cut into byte spans at line ends, stdin or a pipe sent in lines."""

    def check(self) -> None:
        if self.format == JSONL and self.regular:
            with self.open() as f:  # the first object names the key fields, as a CSV header does
                for number, line in enumerate(_text_lines(f, self.path, self.spec.max_record_bytes), 1):
                    if line.strip():  # kept fields may be sparse
                        self.spec.check(f"{self.path}:{number}", list(parse_object(line, self.path, number)), "field")
                        return

    def pieces(self) -> Iterator[LinePiece]:
        cap, first = self.spec.max_record_bytes, 0
        with self.open() as f:
            if not self.regular:
                lines = _raw_lines(f, self.name, cap)
                while batch := tuple(islice(lines, self.batch_size)):
                    yield LinePiece(self.path, self.format, first, batch)
                    first += len(batch)
                return
            offset, state = 0, file_state(f)
            with unchanged(f, state, self.name, self.path, end=state[2]):  # cut short, grown or replaced
                while block := f.read(CHUNK_BYTES):
                    if not block.endswith(b"\n"):  # up to the end of its last line
                        block += next(_raw_lines(f, self.name, cap, first + block.count(b"\n")), b"")
                    yield LinePiece(self.path, self.format, first, span=(offset, len(block)), state=state)
                    first, offset = first + block.count(b"\n"), offset + len(block)


class CsvSource(Source):
    """CSV or TSV (RFC 4180 quoting: a field may span lines) parsed here into ``TextPiece``\\ s of
    ``batch_size`` records, every cell text as read. A file's header is checked at once, stdin's when read."""

    def check(self) -> None:
        if self.path != STDIN:
            self._start()

    def _start(self) -> None:
        self._file = self.open()
        self._f = self._file.__enter__()
        self._state = file_state(self._f) if self.regular else None
        csv.field_size_limit(max(self.spec.max_record_bytes, 1 << 17))
        lines = _text_lines(self._f, self.name, self.spec.max_record_bytes, ends=True)
        self._reader = csv.reader(lines, delimiter="\t" if self.format == TSV else ",", strict=True)
        self._header = self._next()
        if not self._header:
            raise InputError(f"{self.name}: empty file, expected a header row")
        self.spec.check(self.name, self._header)

    def _next(self) -> list[str] | None:
        start = self._reader.line_num + 1
        try:
            return next(self._reader, None)
        except csv.Error as e:
            if "field larger than field limit" in str(e):
                raise too_long(self.name, start, self.spec.max_record_bytes) from None
            if "unexpected end of data" in str(e):
                raise InputError(f"{self.name}:{start}: unterminated quote: the record starting on this line "
                                 f"runs to the end of the file") from None
            raise InputError(f"{self.name}:{self._reader.line_num}: bad CSV: {e}") from None

    def pieces(self) -> Iterator[TextPiece]:
        if self.path == STDIN:
            self._start()
        at = [self._header.index(c) for c in (self.spec.text_column,) + self.spec.columns]
        state, number = self._state, 0
        try:  # a file cut short, grown or rewritten while parsed is refused
            with nullcontext() if state is None else unchanged(self._f, state, self.name, self.path, end=state[2]):
                while records := self._records(len(self._header)):
                    columns = list(zip(*records))  # by header position
                    yield TextPiece(self.path, tuple(range(number + 1, number + 1 + len(records))), columns[at[0]],
                                    tuple((c, columns[i]) for c, i in zip(self.spec.columns, at[1:])))
                    number += len(records)
        finally:
            self._file.__exit__(None, None, None)

    def _records(self, width: int) -> list[list[str]]:
        """Up to ``batch_size`` records (blank lines skipped), each of the header's width."""
        records = []
        while len(records) < self.batch_size and (row := self._next()) is not None:
            if not row:
                continue  # a blank line
            if len(row) != width:
                raise InputError(f"{self.name}:{self._reader.line_num}: {len(row)} fields, the header has {width}")
            records.append(row)
        return records


# -- Parquet (pyarrow: the [batch] extra) --------------------------------------------------
def pyarrow():
    """pyarrow with the submodules used here, or ``MissingExtra`` naming [batch]."""
    pa = require("pyarrow", "batch")
    for sub in ("csv", "ipc", "parquet"):
        require(f"pyarrow.{sub}", "batch")
    return pa


def parquet_files(path: str) -> list[str]:
    """A file, or a directory's data files in name order (not hidden and ``_`` names: Spark's ``.crc``, ...)."""
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


def open_parquet(pa, path: str, f: IO[bytes]):
    try:
        return pa.parquet.ParquetFile(f)  # the file whose state was taken
    except (OSError, pa.ArrowException) as e:
        raise InputError(f"{path}: not a readable Parquet file: {one_line(e, 200)}") from None


def plain(pa, t):
    """A dictionary type as its value type (a dictionary of strings is text)."""
    return t.value_type if pa.types.is_dictionary(t) else t


def is_text(pa, t) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_null(t) or \
        (hasattr(pa.types, "is_string_view") and pa.types.is_string_view(t))


class ParquetSource(Source):
    """Every file's footer checked up front: each has the first file's types for the columns used, as Spark wants."""

    def check(self) -> None:
        pa = self.pa = pyarrow()
        self.files = parquet_files(self.path)
        columns = list(dict.fromkeys((self.spec.text_column,) + self.spec.columns))
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
