"""Parquet in and out with pyarrow (the [batch] extra): a source of row groups, the output schema.

A directory is read as its data files in name order (hidden and ``_`` names, such as Spark's
``_SUCCESS`` and ``.crc`` files, are skipped); every file must have the first file's types
for the columns used (dictionary-encoded strings are strings), as Spark requires too.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import IO, Iterator

from .errors import require
from .files import ChangedWhileRead, check_unchanged, file_state
from .sources import InputError, Rows, Source, Spec, check_columns, rows_of_values


def pyarrow():
    """pyarrow with the submodules used here, or ``MissingExtra`` naming [batch]."""
    pa = require("pyarrow", "batch")
    for sub in ("csv", "ipc", "parquet"):
        require(f"pyarrow.{sub}", "batch")
    return pa


def arrow_error(e: Exception) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def parquet_files(path: str) -> list[str]:
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


def open_file(pa, path: str, f: IO[bytes] | None = None):
    """The Parquet file ``path``, read through ``f`` when given (the file whose state was taken)."""
    try:
        return pa.parquet.ParquetFile(f if f is not None else path)
    except (OSError, pa.ArrowException) as e:
        raise InputError(f"{path}: not a readable Parquet file: {arrow_error(e)}") from None


def plain(pa, t):
    """A dictionary type as its value type (a dictionary of strings is text)."""
    return t.value_type if pa.types.is_dictionary(t) else t


def is_text(pa, t) -> bool:
    t = plain(pa, t)
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_null(t) or \
        (hasattr(pa.types, "is_string_view") and pa.types.is_string_view(t))


class ParquetSource(Source):
    """Every file's footer checked up front; the workers read the row groups themselves."""

    def check(self) -> None:
        pa = self.pa = pyarrow()
        self.files = parquet_files(self.path)
        columns = (self.spec.text_column,) + tuple(c for c in self.spec.columns if c != self.spec.text_column)
        first = None
        self.states = {}
        for path in self.files:
            with open(path, "rb") as f:
                self.states[path] = file_state(f)
                schema = open_file(pa, path, f).schema_arrow
            check_columns(path, schema.names, self.spec.text_column, self.id_column, self.keep)
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

    def pieces(self) -> Iterator["RowGroup"]:
        row = 0
        for path in self.files:
            meta = open_file(self.pa, path).metadata
            for group in range(meta.num_row_groups):
                n = meta.row_group(group).num_rows
                if n:
                    yield RowGroup(path, group, row, self.batch_size, self.states[path])
                    row += n


@dataclass(frozen=True)
class RowGroup:
    """A row group a worker reads itself: the parent only sends its address."""
    source: str
    group: int
    first: int  # rows before it (across the directory)
    batch_size: int
    state: tuple  # files.file_state of the file whose footer the parent checked

    def read(self, spec: Spec) -> Iterator[Rows]:
        """``batch_size`` rows at a time: the text of one batch in memory at once."""
        try:
            f = open(self.source, "rb")
        except FileNotFoundError:
            raise ChangedWhileRead(self.source) from None
        with f:
            check_unchanged(f, self.state, self.source)
            yield from self._batches(pyarrow(), f, spec)
            check_unchanged(f, self.state, self.source)

    def _batches(self, pa, f, spec: Spec) -> Iterator[Rows]:
        columns = list(dict.fromkeys((spec.text_column,) + spec.columns))
        batches = open_file(pa, self.source, f).iter_batches(self.batch_size, row_groups=[self.group], columns=columns)
        row = self.first + 1
        while True:
            try:
                batch = next(batches, None)
            except (OSError, pa.ArrowException) as e:
                raise InputError(f"{self.source}: cannot read row group {self.group}: {arrow_error(e)}") from None
            if batch is None:
                return
            text = batch.column(spec.text_column)
            kept = {c: batch.column(c).cast(spec.types.field(c).type) for c in spec.columns}
            yield rows_of_values(self.source, list(range(row, row + len(batch))), text.to_pylist(), kept, spec)
            row += len(batch)
