"""The one bad-row rule, checked with one table of cases on every front end: ``runtime.predict``,
the local engine of ``runtime.batch`` and its Spark engine.

A bad text keeps its row with an empty label and probability, and its ``error`` says why; a NUL byte,
a non-object JSON line or an over-long record refuses the whole input with one line naming it.
"""
from __future__ import annotations

import json
import os

import pytest

from runtime import batch, spark as rs
from runtime.predict import main as predict
from runtime.records import EMPTY, INVALID_UTF8, NULL, InputError

NUMBER = "text is a number, not a string"
MISSING = "no 'text' field"

# (name, input file, contents, expected: [(row, error)] or the one error line ({p}: the input))
CASES = [
    ("text", "in.txt", b"good film\n\n   \nbad \xff bytes\ncrlf line\r\n",
     [(1, None), (2, EMPTY), (3, EMPTY), (4, INVALID_UTF8), (5, None)]),
    ("jsonl", "in.jsonl", b'{"text": "good"}\n{"text": null}\n{"text": 5}\n\n{"id": 1}\n{"text": " "}\n'
                          b'{"text": "bad \xff"}\n',
     [(1, None), (2, NULL), (3, NUMBER), (5, MISSING), (6, EMPTY), (7, INVALID_UTF8)]),
    ("csv", "in.csv", b'text,n\ngood,1\n,2\n"  ",3\nbad \xff,4\n"two\nlines",5\n',
     [(1, None), (2, EMPTY), (3, EMPTY), (4, INVALID_UTF8), (5, None)]),
    ("tsv", "in.tsv", b"text\tn\ngood\t1\n\t2\n", [(1, None), (2, EMPTY)]),
    ("text NUL", "in.txt", b"good\nbad\0\n", "{p}:2: NUL byte: binary input (or not UTF-8 text) is not supported"),
    ("csv NUL", "in.csv", b"text\ngood\nbad\0\n", "{p}:3: NUL byte: binary input (or not UTF-8 text) is not supported"),
    ("jsonl NUL", "in.jsonl", b'{"text": "a"}\n{"text": "\0"}\n',
     "{p}:2: NUL byte: binary input (or not UTF-8 text) is not supported"),
    ("jsonl array", "in.jsonl", b'{"text": "a"}\n[1]\n', "{p}:2: expected a JSON object, got an array"),
]
FORMATS = {".txt": "text", ".jsonl": "jsonl", ".csv": "csv", ".tsv": "tsv"}


def run_predict(path: str, tmp_path, bundle, capsys):
    code = predict([path, "--input-format", FORMATS[os.path.splitext(path)[1]], "--format", "jsonl",
                    "--model", bundle])
    out, err = capsys.readouterr()
    if code:
        assert (code, out) == (2, "")
        return err.removeprefix("Error: ").removesuffix("\n")
    return [json.loads(line) for line in out.splitlines()]


def run_local(path: str, tmp_path, bundle, capsys):
    out = tmp_path / "out.jsonl"
    try:
        batch.score_file(path, str(out), model=bundle, workers=1)
    except InputError as e:
        assert not out.exists()
        return str(e)
    return [json.loads(line) for line in out.read_text().splitlines()]


def run_spark(path: str, tmp_path, bundle, capsys, session=None):
    out = tmp_path / "spark.jsonl"
    try:
        rs.score_file(path, str(out), model=bundle, spark=session)
    except InputError as e:
        assert not out.exists()
        return str(e)
    parts = [f for f in sorted(os.listdir(out)) if f.startswith("part-")]
    rows = [json.loads(line) for f in parts for line in (out / f).read_text().splitlines()]
    return sorted(rows, key=lambda r: r["row"])  # Spark keeps no global order


@pytest.fixture(params=["predict", "batch-local", "batch-spark"])
def front_end(request):
    if request.param == "batch-spark":
        session = request.getfixturevalue("spark_session")
        return lambda *a: run_spark(*a, session=session)
    return {"predict": run_predict, "batch-local": run_local}[request.param]


@pytest.mark.parametrize("name, filename, data, expected", CASES, ids=[c[0] for c in CASES])
def test_the_bad_row_rule(front_end, name, filename, data, expected, bundle, clf, tmp_path, capsys):
    path = tmp_path / filename
    path.write_bytes(data)
    got = front_end(str(path), tmp_path, bundle, capsys)
    if isinstance(expected, str):
        assert got == expected.format(p=path)
        return
    assert [(r["row"], r["error"]) for r in got] == expected
    assert all(set(r) == {"row", "label", "probability", "error"} for r in got)
    for r in got:  # a row with an error is not a prediction
        assert (r["label"] is None and r["probability"] is None) == (r["error"] is not None)
