"""The output rules written once in runtime/output.py: a row with an error is not a prediction,
and a csv/tsv field holding a CR or an LF is quoted so every reader gets the rows back."""
from __future__ import annotations

import csv
import io
import json

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from runtime.predict import main as predict
from runtime.output import Layout
from runtime.records import Rows

AWKWARD = ["a\rb", "c\nd", "e\r\nf", "\r", "plain", 'q"uote', "tab\tbed", ""]


def encode(fmt: str, values, errors=None, **layout):
    n = len(values)
    rows = Rows("in.jsonl", list(range(1, n + 1)), ["x"] * n, errors or [None] * n, {"k": list(values)})
    probs = np.linspace(0.1, 0.9, n).astype(np.float32)
    scores = np.stack([1 - probs, probs], axis=1)  # [n, 2], as Classifier.predict_proba gives
    return Layout(fmt, ("negative", "positive"), 0.5, keep=("k",), **layout).encode(rows, scores)


@pytest.mark.parametrize("fmt, delimiter", [("csv", ","), ("tsv", "\t")])
def test_a_field_with_a_cr_or_lf_reads_back_as_written(fmt, delimiter):
    layout = Layout(fmt, ("negative", "positive"), 0.5, keep=("k",))
    text = layout.header() + encode(fmt, AWKWARD).data
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    assert [r[-1] for r in rows] == ["k", *AWKWARD]
    table = pacsv.read_csv(pa.py_buffer(text.encode()), parse_options=pacsv.ParseOptions(
        delimiter=delimiter, newlines_in_values=True), convert_options=pacsv.ConvertOptions(
        column_types={"k": pa.string()}, strings_can_be_null=False))
    assert table.num_rows == len(AWKWARD) and table.column("k").to_pylist() == AWKWARD


def test_without_a_cr_the_fast_path_writes_the_same_bytes():
    plain = ["a", "b,c", 'd"e', "f\ng"]
    layout = Layout("csv", ("negative", "positive"), 0.5, keep=("k",))
    expected = io.StringIO()
    writer = csv.writer(expected, lineterminator="\n")
    for i, (value, p) in enumerate(zip(plain, np.linspace(0.1, 0.9, 4).astype(np.float32).tolist()), 1):
        writer.writerow([i, "positive" if p >= 0.5 else "negative", f"{p:.6f}", "", value])
    assert encode("csv", plain).data == expected.getvalue()
    assert layout.header() == "row,label,probability,error,k\n"


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "parquet"])
def test_a_row_with_an_error_has_no_label_or_probability_and_is_not_counted(fmt):
    chunk = encode(fmt, ["a", "b", "c"], errors=[None, "empty text", None])
    assert (chunk.rows, chunk.bad, chunk.positive) == (3, 1, 1)  # 0.1 negative, 0.9 positive
    if fmt == "parquet":
        cols = chunk.data.to_pydict()
        labels, probs = cols["label"], cols["probability"]
    elif fmt == "jsonl":
        objs = [json.loads(line) for line in chunk.data.splitlines()]
        labels, probs = [o["label"] for o in objs], [o["probability"] for o in objs]
    else:
        rows = list(csv.reader(io.StringIO(chunk.data), delimiter="\t" if fmt == "tsv" else ","))
        labels, probs = [r[1] or None for r in rows], [float(r[2]) if r[2] else None for r in rows]
    assert labels == ["negative", None, "positive"]
    assert probs[1] is None and probs[0] == pytest.approx(0.1) and probs[2] == pytest.approx(0.9)


def test_predict_writes_error_rows_empty_and_counts_them_apart(bundle, tmp_path, capsys):
    path = tmp_path / "in.txt"
    path.write_text("good film\n\nawful\n")
    assert predict([str(path), "--model", bundle, "--no-progress"]) == 0
    out, err = capsys.readouterr()
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[2] == ["2", "", "", "empty text"]
    positive = sum(r[1] == "positive" for r in rows[1:])
    assert err.startswith(f"scored 3 rows ({positive} positive, 1 with errors) in ")
