"""Labelled data for training and verification: the IMDB forms (``trainer.data``), the user's own
tables and label folders, and the seeded, stratified splits of them.

``--data`` is one of:

- IMDB: an aclImdb folder, a tar archive or a URL (``trainer.data``), with its own train/test split
  and the labels negative, positive;
- a table: CSV or TSV with a header, JSONL, Parquet (a file or a directory), read by the runtime's
  readers (``runtime.records``: the same decoding, the same column checks) -- the text from
  ``--text-column``, the label from ``--label-column``; the row of a message is the runtime's
  (the data row of a CSV, the line of a JSONL file, the row across a Parquet directory);
- a label folder: one subfolder per label of ``.txt`` files, one text each (aclImdb's
  ``train/pos`` layout, generalized), each read as an IMDB review is.

A table or label folder has no test split: ``--test-data`` names one, else a seeded stratified
``--test-size`` is held out. Labels are text (``5`` and ``"5"`` are one label), sorted unless
``--labels`` gives their order. Every row is checked before any training: its text is usable (the
runtime's bad-row rule, refused here) and its label is not empty.
"""
from __future__ import annotations

import dataclasses
import os
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from runtime import records as R
from runtime.bundle import MAX_LABELS

from .data import DataError, is_imdb_folder, is_url, load_imdb, read_text_file

IMDB_LABELS = ["negative", "positive"]  # the IMDB forms' classes 0 and 1 (neg, pos)
IMDB, FOLDERS = "imdb", "folders"  # source kinds besides the table formats
TABLE_FORMATS = (R.CSV, R.TSV, R.JSONL, R.PARQUET)
READ_BATCH = 4096  # rows per piece read from a table


@dataclass(frozen=True)
class Request:
    """What to read: the training source and how to find texts, labels and the test split."""
    data: str
    test_data: str | None = None
    text_column: str = "text"
    label_column: str = "label"
    labels: tuple[str, ...] | None = None  # the class order; None: sorted
    test_size: float | int = 0.2  # a fraction, or a count of rows, held out without test_data
    seed: int = 42


@dataclass(frozen=True, eq=False)  # eq=False: comparing ndarrays inside a tuple is ambiguous
class Dataset:
    train_texts: list[str]  # validation is split from these
    train_labels: np.ndarray  # [n_train] int32, an index into ``labels``
    test_texts: list[str]
    test_labels: np.ndarray  # [n_test] int32
    labels: list[str]  # the class names in output order
    imdb: bool  # the IMDB forms: validation is split exactly as it always was


@dataclass
class _Rows:
    """Labelled rows of one source: where each is (``FILE:ROW``, or ``FILE``), its text and label."""
    where: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)

    def add(self, where: str, text: str, error: str | None, label: str) -> None:
        if error is not None:  # the runtime scores such a row with an error; training refuses it
            raise DataError(f"{where}: {error}; every labelled row needs a text")
        self.where.append(where)
        self.texts.append(text)
        self.labels.append(label)


@dataclass(frozen=True)
class _LabelledSpec(R.Spec):
    """The runtime's read spec with the label column as the one column kept beside the text."""
    label_column: str = "label"

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.label_column,)

    def check(self, where: str | None, columns, what: str = "column") -> None:
        for column, option in ((self.text_column, "--text-column"), (self.label_column, "--label-column")):
            R.check_names(where, columns, column, None, (), what, options=(option, "", ""))


def load_dataset(req: Request) -> Dataset:
    """The training and test rows of ``req``, every row and class checked (``DataError``)."""
    kind = source_kind(req.data)
    if kind == IMDB:
        return _imdb(req)
    rows = read_rows(req.data, kind, req)
    if req.test_data is None:
        labels = class_order(rows, req, needed=3)  # one each for training, validation and test
        y = _indices(rows, labels)
        _check_test_size(req.test_size, len(y))
        kept, held = stratified_split(y, req.test_size, req.seed)
        return Dataset([rows.texts[i] for i in kept], y[kept], [rows.texts[i] for i in held], y[held], labels,
                       False)
    test = _test_rows(req)
    labels = class_order(rows, req, needed=2)  # one each for training and validation
    return Dataset(rows.texts, _indices(rows, labels), test.texts, _indices(test, labels, req.data), labels,
                   False)


def _imdb(req: Request) -> Dataset:
    if req.test_data is not None:
        raise DataError(f"--test-data: the IMDB data {req.data} has a test split of its own")
    if req.labels is not None and list(req.labels) != IMDB_LABELS:
        raise DataError(f"--labels: the IMDB data's labels are {', '.join(IMDB_LABELS)}")
    imdb = load_imdb(req.data)
    return Dataset(imdb.train_texts, imdb.train_labels, imdb.test_texts, imdb.test_labels, list(IMDB_LABELS),
                   True)


def _test_rows(req: Request) -> _Rows:
    path, data = os.path.expanduser(req.test_data), os.path.expanduser(req.data)
    if os.path.exists(path) and os.path.exists(data) and os.path.samefile(path, data):
        raise DataError(f"{req.test_data}: the same data as --data; give a separate test set, "
                        "or leave --test-data out to hold out --test-size rows")
    kind = source_kind(req.test_data)
    if kind == IMDB:
        raise DataError(f"{req.test_data}: --test-data takes a table (.csv, .tsv, .jsonl, .parquet) "
                        "or a folder of label folders")
    return read_rows(req.test_data, kind, req)


def source_kind(source: str) -> str:
    """IMDB, FOLDERS or a table format: a directory is IMDB's layout, label folders or Parquet; a
    file is a table by its extension, anything else IMDB's (an archive, a URL)."""
    if is_url(source):
        return IMDB
    path = os.path.expanduser(source)
    if os.path.isdir(path):
        if is_imdb_folder(path):
            return IMDB
        return FOLDERS if _label_dirs(path) else R.PARQUET
    fmt = R.EXTENSIONS.get(os.path.splitext(path)[1].lower())
    return fmt if fmt in TABLE_FORMATS else IMDB


def _label_dirs(path: str) -> list[str]:
    """The subfolders of ``path`` that hold ``.txt`` files, in name order (hidden ones skipped)."""
    try:
        names = sorted(e.name for e in os.scandir(path) if e.is_dir() and not e.name.startswith((".", "_")))
        return [n for n in names if any(f.endswith(".txt") for f in os.listdir(os.path.join(path, n)))]
    except OSError as e:
        raise DataError(f"cannot read {e.filename or path}: {e.strerror}") from e


def read_rows(source: str, kind: str, req: Request) -> _Rows:
    path = os.path.expanduser(source)
    return _folder_rows(path) if kind == FOLDERS else _table_rows(path, kind, req)


def _folder_rows(path: str) -> _Rows:
    rows = _Rows()
    for label in _label_dirs(path):
        folder = os.path.join(path, label)
        for name in sorted(n for n in os.listdir(folder) if n.endswith(".txt")):
            file = os.path.join(folder, name)
            if os.path.isfile(file):
                rows.add(file, *R.judge(read_text_file(file)), label)
    return rows


def _table_rows(path: str, fmt: str, req: Request) -> _Rows:
    R.check_input(path)
    spec = _LabelledSpec(text_column=req.text_column, label_column=req.label_column)
    source = R.open_source(path, fmt, spec, READ_BATCH)  # the columns are checked here
    typed = dataclasses.replace(spec, types=source.types)  # Parquet: the label column's type
    rows = _Rows()
    for piece in source.pieces():
        for part in piece.read(typed):
            values = part.kept[req.label_column]
            values = values.to_pylist() if hasattr(values, "to_pylist") else values
            for number, text, error, value in zip(part.numbers, part.texts, part.errors, values):
                where = f"{R.display(part.source)}:{number}"
                rows.add(where, text, error, label_text(value, where, req.label_column))
    return rows


def label_text(value: object, where: str, column: str) -> str:
    """A label as text: a string as it is, a whole number in decimal (``5``, ``5.0`` and ``"5"``
    are one label); null, empty, any other value or a line break (labels.txt) refused."""
    if value is None or value != value or (isinstance(value, str) and not value.strip()):  # != : NaN
        raise DataError(f"{where}: empty or null label (--label-column {column!r})")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise DataError(f"{where}: label {value!r} is neither text nor a whole number (--label-column {column!r})")
    label = str(value)
    if "\n" in label or "\r" in label:
        raise DataError(f"{where}: label {label!r} holds a line break (labels.txt has one label per line)")
    return label


def class_order(rows: _Rows, req: Request, needed: int) -> list[str]:
    """The classes in output order (``req.labels``, else sorted), each with ``needed`` rows."""
    counts = Counter(rows.labels)
    if not counts:
        raise DataError(f"{req.data}: no labelled rows")
    order = sorted(counts) if req.labels is None else list(req.labels)
    if req.labels is not None:
        given = set(order)
        unknown = next((i for i, label in enumerate(rows.labels) if label not in given), None)
        if unknown is not None:
            raise DataError(f"{rows.where[unknown]}: label {rows.labels[unknown]!r} is not one of --labels")
        if missing := [label for label in order if label not in counts]:
            raise DataError(f"{req.data}: --labels names {missing[0]!r}, which no row has")
    if len(order) > MAX_LABELS:
        raise DataError(f"{req.data}: {len(order)} classes, over the limit of {MAX_LABELS}")
    if len(order) < 2:
        raise DataError(f"{req.data}: only one class ({order[0]!r}); training needs at least 2")
    if few := next((label for label in order if counts[label] < needed), None):
        parts = "training, validation and test" if needed == 3 else "training and validation"
        raise DataError(f"{req.data}: class {few!r} has {counts[few]} example{'s' * (counts[few] != 1)}; "
                        f"each class needs at least {needed} (one each for {parts})")
    return order


def _indices(rows: _Rows, labels: list[str], training: str | None = None) -> np.ndarray:
    """[n] int32 class indices; ``training`` (the training source) for test rows, whose labels
    must all have been seen in training."""
    index = {label: i for i, label in enumerate(labels)}
    for where, label in zip(rows.where, rows.labels):
        if label not in index:
            raise DataError(f"{where}: label {label!r} never occurs in the training data {training}")
    return np.array([index[label] for label in rows.labels], dtype=np.int32)


def _check_test_size(size: float | int, n: int) -> None:
    if isinstance(size, int) and size >= n:
        raise DataError(f"--test-size {size} leaves no training rows (have {n})")


def stratified_split(labels: np.ndarray, size: float | int, seed: int, keep: int = 1):
    """(kept, held) row indices, each in a seeded shuffled order: ``size`` (a fraction, or a count
    of the rows) held out in every class's proportion, at least one row of each class held and
    ``keep`` kept."""
    rng = np.random.default_rng(seed)
    fraction = size if isinstance(size, float) else size / len(labels)
    held = []
    for k in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == k))
        held.append(rows[:min(max(1, int(len(rows) * fraction + 0.5)), len(rows) - keep)])
    held = np.concatenate(held)
    kept = np.setdiff1d(np.arange(len(labels)), held)
    return rng.permutation(kept), rng.permutation(held)


def calibration_rows(texts: list[str], labels: np.ndarray, n: int, imdb: bool, seed: int) -> list[str]:
    """``n`` training texts to calibrate int8 on: IMDB's first ``n`` of the shuffled training reviews
    (as always); other data a stratified sample, so that every class is in it."""
    if imdb or n >= len(texts):
        return texts[:n]
    _, held = stratified_split(labels, n, seed, keep=0)
    return [texts[i] for i in held]
