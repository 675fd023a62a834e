"""``runtime.batch`` (the local engine) and ``python -m runtime.batch`` on the tiny bundle.

Inputs are a few thousand reviews made of the tiny model's sentiment words and random junk
words, written as Parquet (file and directory), CSV, JSONL and text. Every test checks rows
against ``Classifier.predict`` on the same texts: exactly once, in order, |dp| <= 1e-6.
"""
from __future__ import annotations

import csv
import io
import json
import os
import random
import string
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from runtime import engine
from runtime.batch import score_file
from runtime.engine import WorkerError
from runtime.records import InputError as BatchError
from runtime.output import output_format_of
from runtime.batch import main
from runtime.model import Classifier
from tests.conftest import NEGATIVE, NEUTRAL, POSITIVE
from tests.runtime.faults import CrashAt

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
N = 3000
SUMMARY = r"scored {n} rows \(\d+ positive{bad}\) in \d+\.\d\d s, \d+ rows/s -> {out}\n"
WORKER_DIED = "a worker process died (killed, out of memory, or the model failed to load in it)"


# -- data ---------------------------------------------------------------------------------------
def make_texts(n: int, seed: int = 0, multiline: bool = False) -> list[str]:
    """Reviews of 0-40 words: sentiment words, filler, junk, punctuation, <br />, non-ASCII."""
    rng = random.Random(seed)
    junk = ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(2, 9))) for _ in range(300)]
    words = POSITIVE + NEGATIVE + NEUTRAL * 2 + junk + ["café", "naïve", "<br />", "it's", "10/10"]
    texts = []
    for i in range(n):
        text = " ".join(rng.choices(words, k=rng.randint(0, 40)))
        if i % 7 == 0:
            text = text.capitalize() + rng.choice(["!", "...", ", \"quoted\", ok.", " 😀"])
        if multiline and i % 50 == 3:
            text += "\nsecond line, with a comma"
        texts.append(text)
    return texts


def make_ids(n: int, seed: int = 0) -> list[int]:
    return random.Random(seed).sample(range(10 ** 6, 10 ** 7), n)  # unique, not in order


def write_parquet(path, columns: dict, row_group_size: int | None = None) -> str:
    pq.write_table(pa.table(columns), str(path), row_group_size=row_group_size)
    return str(path)


def write_csv(path, columns: dict, blank_after: int | None = None) -> str:
    names = list(columns)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(names)
    for i, row in enumerate(zip(*columns.values())):
        w.writerow(row)
        if i == blank_after:
            buf.write("\n")  # a blank line holds no row
    path.write_text(buf.getvalue(), encoding="utf-8")
    return str(path)


def write_jsonl(path, columns: dict, blank_after: int | None = None) -> str:
    lines = []
    for i, row in enumerate(zip(*columns.values())):
        lines.append(json.dumps(dict(zip(columns, row)), ensure_ascii=False))
        if i == blank_after:
            lines.append("   ")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def read_output(path: str) -> dict[str, list]:
    """Columns of an output file; CSV cells as text, probability as float32 everywhere."""
    fmt = output_format_of(path)
    if fmt == "parquet":
        cols = pq.read_table(path).to_pydict()
    elif fmt == "csv":
        with open(path, encoding="utf-8", newline="") as f:
            rows = list(csv.reader(f))
        cols = {name: [r[i] for r in rows[1:]] for i, name in enumerate(rows[0])}
    else:
        with open(path, encoding="utf-8") as f:
            objs = [json.loads(line) for line in f]
        cols = {k: [o[k] for o in objs] for k in (objs[0] if objs else {})}
    if "probability" in cols:
        cols["probability"] = np.array([float(p) if p not in (None, "") else np.nan for p in cols["probability"]],
                                       dtype=np.float32)
    return cols


def check_scores(out: dict, texts: list[str], clf: Classifier) -> None:
    """Output rows line up with ``texts``: probabilities within 1e-6 and the labels they imply; a
    row with an error has neither (the bad-row rule)."""
    expected = clf.predict(texts)
    assert len(out["probability"]) == len(texts)
    probs = np.array([np.nan if p is None or p == "" else p for p in out["probability"]], dtype=np.float32)
    bad = np.array([e not in (None, "") for e in out.get("error", [None] * len(texts))], dtype=bool)
    assert np.isnan(probs[bad]).all() and not np.isnan(probs[~bad]).any()
    assert np.max(np.abs(probs[~bad] - expected[~bad]), initial=0.0) <= 1e-6
    want = [None if b else label for (label, _), b in zip(clf.classify(texts), bad)]
    assert [label or None for label in out["label"]] == want  # csv/tsv: empty, jsonl/parquet: null


def errors_of(texts: list[str], empty=None) -> list:
    """The ``error`` column the bad-row rule gives good texts: only blank ones are marked."""
    return ["empty text" if not t.strip() else empty for t in texts]


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return make_texts(N)


@pytest.fixture(scope="module")
def ids() -> list[int]:
    return make_ids(N)


# -- exactly once, in order, same scores ----------------------------------------------------------
def test_parquet_every_row_once_in_order_with_the_classifiers_scores(bundle, clf, texts, ids, tmp_path):
    inp = write_parquet(tmp_path / "in.parquet", {"id": ids, "text": texts}, row_group_size=700)
    out = str(tmp_path / "out.parquet")
    summary = score_file(inp, out, id_column="id", model=bundle, workers=2, batch_size=128)
    table = pq.read_table(out)
    assert table.schema.names == ["id", "label", "probability", "error"]
    assert table.schema.field("probability").type == pa.float32()
    assert table.schema.field("id").type == pa.int64()
    cols = read_output(out)
    assert cols["id"] == ids  # every id once, in input order, across 24 batches on 2 workers
    check_scores(cols, texts, clf)
    assert cols["error"] == errors_of(texts)
    assert (summary.rows, summary.bad, summary.output) == (N, texts.count(""), out)
    assert sorted(os.listdir(tmp_path)) == ["in.parquet", "out.parquet"]  # no temp file left


def test_a_parquet_directory_is_read_in_name_order(bundle, clf, texts, ids, tmp_path):
    folder = tmp_path / "reviews"
    (folder / "b").mkdir(parents=True)
    cuts = [0, 1000, 1100, N]
    names = ["a.parquet", "b/part-00000.parquet", "c.parquet"]  # files in name order
    for name, lo, hi in zip(names, cuts, cuts[1:]):
        write_parquet(folder / name, {"id": ids[lo:hi], "text": texts[lo:hi]}, row_group_size=333)
    (folder / "_SUCCESS").write_text("")
    (folder / ".a.parquet.crc").write_bytes(b"\0junk")
    out = str(tmp_path / "out.parquet")
    score_file(str(folder), out, model=bundle, workers=2, batch_size=250)
    cols = read_output(out)
    assert cols["row"] == list(range(1, N + 1))  # 1-based row numbers across the files
    check_scores(cols, texts, clf)


def test_csv_rows_are_numbered_as_data_rows(bundle, clf, tmp_path):
    texts = make_texts(N, seed=1, multiline=True)  # quoted fields spanning lines
    inp = write_csv(tmp_path / "in.csv", {"review": texts, "n": [str(i) for i in range(N)]}, blank_after=10)
    out = str(tmp_path / "out.csv")
    score_file(inp, out, text_column="review", model=bundle, workers=2, batch_size=300)
    cols = read_output(out)
    assert cols["row"] == [str(i) for i in range(1, N + 1)]  # data rows: not physical lines
    check_scores(cols, texts, clf)


def test_jsonl_rows_are_line_numbers(bundle, clf, texts, ids, tmp_path):
    inp = write_jsonl(tmp_path / "in.jsonl", {"id": ids, "text": texts}, blank_after=9)
    out = str(tmp_path / "out.jsonl")
    score_file(inp, out, model=bundle, workers=2, batch_size=256)
    cols = read_output(out)
    assert cols["row"] == list(range(1, 11)) + list(range(12, N + 2))  # line 11 is blank
    check_scores(cols, texts, clf)


def test_text_lines_blank_lines_crlf_and_bom(bundle, clf, tmp_path):
    texts = make_texts(N, seed=2)
    texts[5] = ""  # a blank line is a review too (empty text)
    data = "\ufeff" + "\n".join(t + ("\r" if i % 3 == 0 else "") for i, t in enumerate(texts)) + "\n"
    inp = tmp_path / "in.txt"
    inp.write_bytes(data.encode("utf-8"))
    out = str(tmp_path / "out.parquet")
    score_file(str(inp), out, model=bundle, workers=1, batch_size=500)
    cols = read_output(out)
    assert cols["row"] == list(range(1, N + 1))
    assert cols["error"] == errors_of(texts)
    check_scores(cols, texts, clf)


@pytest.mark.parametrize("ext", ["parquet", "csv", "jsonl"])
def test_each_output_format_keeps_ids_and_columns(bundle, clf, texts, ids, tmp_path, ext):
    stars = [i % 10 for i in range(N)]
    inp = write_parquet(tmp_path / "in.parquet", {"id": ids, "text": texts, "stars": stars, "movie": texts})
    out = str(tmp_path / f"out.{ext}")
    score_file(inp, out, id_column="id", keep_columns=["stars", "movie"], model=bundle, batch_size=512)
    cols = read_output(out)
    assert list(cols) == ["id", "label", "probability", "error", "stars", "movie"]
    as_text = (lambda v: [str(x) for x in v]) if ext == "csv" else (lambda v: v)
    assert cols["id"] == as_text(ids)
    assert cols["stars"] == as_text(stars)
    assert cols["movie"] == texts  # a kept text column comes back byte for byte
    assert cols["error"] == errors_of(texts, "" if ext == "csv" else None)
    check_scores(cols, texts, clf)


def test_parquet_output_keeps_column_types(bundle, tmp_path):
    when = pa.array(np.arange(5).astype("datetime64[ms]"))
    inp = write_parquet(tmp_path / "in.parquet", {"text": ["a great film"] * 5, "id": [f"r{i}" for i in range(5)],
                                                  "score": pa.array([1.5] * 5, pa.float64()), "when": when})
    out = str(tmp_path / "out.parquet")
    score_file(inp, out, id_column="id", keep_columns=["when", "score"], model=bundle, workers=1)
    schema = pq.read_schema(out)
    assert [(f.name, str(f.type)) for f in schema] == [
        ("id", "string"), ("label", "string"), ("probability", "float"), ("error", "string"),
        ("when", "timestamp[ms]"), ("score", "double")]


# -- bad rows -------------------------------------------------------------------------------------
def test_null_and_non_string_rows_score_as_empty_text_with_an_error(bundle, clf, tmp_path):
    lines = ['{"id": 1, "text": "a great film"}', '{"id": 2, "text": null}', '{"id": "x", "text": 5}',
             '{"id": 4, "text": true}', '{"id": 5, "text": ["a"]}', '{"id": 6, "text": {"a": 1}}',
             '{"id": 7}', '{"text": "dull", "id": 8.5, "meta": {"k": [1, 2]}}']
    inp = tmp_path / "in.jsonl"
    inp.write_text("\n".join(lines) + "\n")
    out = str(tmp_path / "out.jsonl")
    summary = score_file(str(inp), out, id_column="id", keep_columns=["meta"], model=bundle, workers=1)
    cols = read_output(out)
    assert cols["id"] == [1, 2, "x", 4, 5, 6, 7, 8.5]  # JSONL ids keep their JSON type in JSONL
    assert cols["error"] == [None, "text is null", "text is a number, not a string",
                             "text is a boolean, not a string", "text is an array, not a string",
                             "text is an object, not a string", "no 'text' field", None]
    assert cols["meta"] == [None] * 7 + [{"k": [1, 2]}]
    check_scores(cols, ["a great film"] + [""] * 6 + ["dull"], clf)
    assert cols["label"][1:7] == [None] * 6 and summary.bad == 6


def test_null_text_in_parquet_and_empty_csv_fields(bundle, clf, tmp_path):
    texts = ["a great film", None, "", "awful", None]
    inp = write_parquet(tmp_path / "in.parquet", {"text": pa.array(texts, pa.large_string())})
    out = str(tmp_path / "out.csv")
    score_file(inp, out, model=bundle, workers=1)
    cols = read_output(out)
    assert cols["row"] == ["1", "2", "3", "4", "5"]
    assert cols["error"] == ["", "text is null", "empty text", "", "text is null"]
    check_scores(cols, [t or "" for t in texts], clf)
    # CSV has no nulls: an empty field is empty text
    csv_in = tmp_path / "in.csv"
    csv_in.write_text('id,text\n1,\n2,""\n3,good\n')
    score_file(str(csv_in), str(tmp_path / "out.parquet"), id_column="id", model=bundle, workers=1)
    cols = read_output(str(tmp_path / "out.parquet"))
    assert (cols["id"], cols["error"]) == (["1", "2", "3"], ["empty text", "empty text", None])


def test_an_all_null_parquet_column_is_all_bad_rows(bundle, tmp_path):
    inp = write_parquet(tmp_path / "in.parquet", {"text": pa.nulls(3)})
    out = str(tmp_path / "out.parquet")
    assert score_file(inp, out, model=bundle, workers=1).bad == 3
    assert read_output(out)["error"] == ["text is null"] * 3


def test_a_non_text_parquet_column_is_refused(bundle, tmp_path):
    inp = write_parquet(tmp_path / "in.parquet", {"text": [1, 2], "id": ["a", "b"]})
    with pytest.raises(BatchError) as e:
        score_file(inp, str(tmp_path / "out.parquet"), model=bundle)
    assert str(e.value) == f"{inp}: column 'text' is int64, not text (--text-column)"


# -- failures leave no output ---------------------------------------------------------------------
def leftovers(folder) -> list[str]:
    return sorted(os.listdir(folder))


def test_a_killed_worker_fails_the_job_and_leaves_no_output(bundle, texts, ids, tmp_path, monkeypatch):
    inp = write_parquet(tmp_path / "in.parquet", {"id": ids, "text": texts}, row_group_size=200)
    out = tmp_path / "out.parquet"
    monkeypatch.setattr(engine, "score_piece", CrashAt(5))  # the worker scoring row group 5 calls os._exit
    with pytest.raises(WorkerError) as e:
        score_file(inp, str(out), model=bundle, workers=2, batch_size=200)
    assert str(e.value) == WORKER_DIED
    assert leftovers(tmp_path) == ["in.parquet"]
    # an earlier result is left as it was, not half replaced
    out.write_bytes(b"earlier result")
    with pytest.raises(WorkerError):
        score_file(inp, str(out), model=bundle, workers=2, batch_size=200)
    assert out.read_bytes() == b"earlier result"
    assert leftovers(tmp_path) == ["in.parquet", "out.parquet"]


def test_a_corrupt_parquet_file_fails_with_its_name(bundle, texts, tmp_path):
    good = write_parquet(tmp_path / "good.parquet", {"text": texts})
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(open(good, "rb").read()[:5000])  # truncated: no footer
    with pytest.raises(BatchError) as e:
        score_file(str(bad), str(tmp_path / "out.parquet"), model=bundle)
    assert str(e.value).startswith(f"{bad}: not a readable Parquet file: ")
    assert "\n" not in str(e.value)
    assert leftovers(tmp_path) == ["bad.parquet", "good.parquet"]


def test_a_corrupt_file_in_a_directory_fails_mid_job(bundle, texts, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    write_parquet(folder / "a.parquet", {"text": texts})
    (folder / "b.parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(BatchError) as e:
        score_file(str(folder), str(tmp_path / "out.parquet"), model=bundle, workers=2, batch_size=256)
    assert str(e.value).startswith(f"{folder / 'b.parquet'}: not a readable Parquet file: ")
    assert leftovers(tmp_path) == ["in"]


def test_invalid_json_mid_file_fails_with_its_line(bundle, texts, tmp_path):
    lines = [json.dumps({"text": t}) for t in texts]
    lines[1999] = '{"text": "unterminated'
    inp = tmp_path / "in.jsonl"
    inp.write_text("\n".join(lines) + "\n")
    with pytest.raises(BatchError) as e:
        score_file(str(inp), str(tmp_path / "out.csv"), model=bundle, workers=2, batch_size=256)
    assert str(e.value) == f"{inp}:2000: invalid JSON: Unterminated string starting at (column 10)"
    assert leftovers(tmp_path) == ["in.jsonl"]


def test_binary_text_input_is_refused(bundle, tmp_path):
    inp = tmp_path / "in.txt"
    inp.write_bytes(b"fine\nalso fine\nbin\0ary\n")
    with pytest.raises(BatchError) as e:
        score_file(str(inp), str(tmp_path / "out.csv"), model=bundle, workers=1)
    assert str(e.value) == f"{inp}:3: NUL byte: binary input (or not UTF-8 text) is not supported"


def test_rerunning_overwrites_never_appends(bundle, clf, texts, ids, tmp_path):
    inp = write_parquet(tmp_path / "in.parquet", {"id": ids, "text": texts})
    out = str(tmp_path / "out.jsonl")
    score_file(inp, out, id_column="id", model=bundle, workers=2)
    score_file(inp, out, id_column="id", model=bundle, workers=2)
    assert read_output(out)["id"] == ids  # N rows, not 2N
    half = write_parquet(tmp_path / "half.parquet", {"id": ids[:100], "text": texts[:100]})
    score_file(half, out, id_column="id", model=bundle, workers=1)
    cols = read_output(out)
    assert cols["id"] == ids[:100]
    check_scores(cols, texts[:100], clf)


def test_empty_inputs_give_empty_outputs_with_a_header(bundle, tmp_path):
    (tmp_path / "in.txt").write_bytes(b"")
    score_file(str(tmp_path / "in.txt"), str(tmp_path / "out.csv"), model=bundle, workers=1)
    assert (tmp_path / "out.csv").read_text() == "row,label,probability,error\n"
    score_file(str(tmp_path / "in.txt"), str(tmp_path / "out.parquet"), model=bundle, workers=1)
    assert pq.read_table(str(tmp_path / "out.parquet")).num_rows == 0


# -- refusals, checked before any work ------------------------------------------------------------
def test_output_equal_to_input_is_refused(bundle, texts, tmp_path):
    inp = write_parquet(tmp_path / "in.parquet", {"text": texts})
    before = open(inp, "rb").read()
    with pytest.raises(BatchError) as e:
        score_file(inp, inp, model=bundle)
    assert str(e.value) == f"{inp}: output is also an input ({inp}); it would be overwritten"
    os.symlink(inp, tmp_path / "link.parquet")
    with pytest.raises(BatchError, match="output is also an input"):
        score_file(str(tmp_path / "link.parquet"), inp, model=bundle)
    assert open(inp, "rb").read() == before
    folder = tmp_path / "dir"
    folder.mkdir()
    write_parquet(folder / "a.parquet", {"text": texts})
    with pytest.raises(BatchError) as e:
        score_file(str(folder), str(folder / "out.parquet"), model=bundle)
    assert str(e.value) == f"{folder / 'out.parquet'}: output is inside the input directory {folder}"


def test_error_messages(bundle, tmp_path):
    inp = write_parquet(tmp_path / "in.parquet", {"text": ["a"], "id": [1], "label": ["x"]})
    txt = tmp_path / "in.txt"
    txt.write_text("a\n")
    out = str(tmp_path / "out.parquet")
    cases = [
        (dict(input=str(tmp_path / "nope.parquet")), f"{tmp_path / 'nope.parquet'}: no such file or directory"),
        (dict(input=str(tmp_path / "in.xml")), None),
        (dict(text_column="body"), f"{inp}: no column 'body' (--text-column); columns: text, id, label"),
        (dict(id_column="key"), f"{inp}: no column 'key' (--id-column); columns: text, id, label"),
        (dict(keep_columns=["x"]), f"{inp}: no column 'x' (--keep-columns); columns: text, id, label"),
        (dict(keep_columns=["label"]), "column 'label' clashes with the output column of that name"),
        (dict(id_column="id", keep_columns=["id"]), "column 'id' is asked for twice (--id-column / --keep-columns)"),
        (dict(input=str(txt), id_column="id"), "plain text has no columns: --id-column and "
                                               "--keep-columns need Parquet, CSV, TSV or JSONL input"),
        (dict(output=str(tmp_path)), f"{tmp_path}: output is a directory; give a file name"),
        (dict(output=str(tmp_path / "no" / "out.csv")),
         f"{tmp_path / 'no' / 'out.csv'}: output directory {tmp_path / 'no'} does not exist"),
        (dict(batch_size=0), "--batch-size must be at least 1, got 0"),
        (dict(workers=0), "--workers must be at least 1, got 0"),
    ]
    (tmp_path / "in.xml").write_text("<a/>")
    for kwargs, message in cases:
        args = dict(input=inp, output=out, model=bundle) | kwargs
        with pytest.raises(BatchError) as e:
            score_file(args.pop("input"), args.pop("output"), **args)
        if message is None:
            message = (f"{tmp_path / 'in.xml'}: unknown input format '.xml': use .parquet (or a directory of them), "
                       ".csv, .tsv, .jsonl or .txt, or give --input-format")
        assert str(e.value) == message
    assert leftovers(tmp_path) == ["in.parquet", "in.txt", "in.xml"]


def test_a_csv_without_a_header_or_with_ragged_rows(bundle, tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(BatchError) as e:
        score_file(str(empty), str(tmp_path / "out.csv"), model=bundle)
    assert str(e.value) == f"{empty}: empty file, expected a header row"
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("id,text\n1,good\n2,bad,extra\n")
    with pytest.raises(BatchError) as e:
        score_file(str(ragged), str(tmp_path / "out.csv"), model=bundle, workers=1)
    assert str(e.value) == f"{ragged}:3: 3 fields, the header has 2"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_line_goes_to_the_given_stream(bundle, texts, tmp_path):
    inp = write_parquet(tmp_path / "in.parquet", {"text": texts}, row_group_size=500)  # progress per row group
    stream = Terminal()
    score_file(inp, str(tmp_path / "out.parquet"), model=bundle, workers=1, batch_size=500,
               progress=True, stream=stream)
    shown = stream.getvalue()
    assert shown.startswith("\r500 rows, ") and " rows/s" in shown
    assert shown.endswith("\r\033[K")  # cleared at the end


# -- the command line -----------------------------------------------------------------------------
def run_cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_scores_and_keeps_stdout_empty(bundle, clf, texts, ids, tmp_path, capsys):
    inp = write_csv(tmp_path / "in.csv", {"key": [str(i) for i in ids], "body": texts, "stars": ["5"] * N})
    out = tmp_path / "out.jsonl"
    code, stdout, stderr = run_cli(capsys, inp, out, "--text-column", "body", "--id-column", "key",
                                   "--keep-columns", "stars", "--model", bundle, "--workers", "2",
                                   "--batch-size", "1000", "--no-progress")
    assert (code, stdout) == (0, "")
    assert stderr.startswith(f"scored {N} rows (") and stderr.endswith(f" rows/s -> {out}\n")
    cols = read_output(str(out))
    assert (cols["key"], cols["stars"]) == ([str(i) for i in ids], ["5"] * N)
    check_scores(cols, texts, clf)


@pytest.mark.parametrize("args, message", [
    (["--engine", "spark", "--workers", "2"],
     "--workers is for --engine local; give Spark cores with --master 'local[N]'"),
    (["--master", "local[2]"], "--master needs --engine spark"),
    (["--workers", "0"], "--workers must be at least 1, got 0"),
    (["--batch-size", "0"], "--batch-size must be at least 1, got 0"),
    (["--keep-columns", "a,,b"], "--keep-columns 'a,,b' has an empty name"),
    (["--text-column", "body"], "{inp}: no column 'body' (--text-column); columns: text"),
])
def test_cli_user_mistakes_exit_2_with_one_line(bundle, tmp_path, capsys, args, message):
    inp = write_parquet(tmp_path / "in.parquet", {"text": ["a"]})
    code, stdout, stderr = run_cli(capsys, inp, tmp_path / "out.csv", "--model", bundle, *args)
    assert (code, stdout, stderr) == (2, "", f"Error: {message.format(inp=inp)}\n")


def test_cli_bad_model_and_dead_worker(bundle, texts, tmp_path, capsys, monkeypatch):
    inp = write_parquet(tmp_path / "in.parquet", {"text": texts})
    code, _, stderr = run_cli(capsys, inp, tmp_path / "o.csv", "--model", tmp_path / "nobundle")
    assert (code, stderr) == (2, f"Error: {tmp_path / 'nobundle'}: no such bundle directory\n")
    monkeypatch.setattr(engine, "score_piece", CrashAt(0))
    code, stdout, stderr = run_cli(capsys, inp, tmp_path / "o.csv", "--model", bundle, "--workers", "2")
    assert (code, stdout) == (1, "")
    assert stderr == f"Error: {WORKER_DIED}\n"


def test_python_dash_m_runtime_batch(bundle, clf, tmp_path):
    texts = make_texts(500, seed=3)
    inp = tmp_path / "in.txt"
    inp.write_text("\n".join(texts) + "\n")
    out = tmp_path / "out.csv"
    proc = subprocess.run([sys.executable, "-m", "runtime.batch", str(inp), str(out), "--model", bundle,
                           "--workers", "2", "--batch-size", "64"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert (proc.returncode, proc.stdout) == (0, "")
    assert proc.stderr.startswith("scored 500 rows (") and proc.stderr.count("\n") == 1
    check_scores(read_output(str(out)), texts, clf)
    proc = subprocess.run([sys.executable, "-m", "runtime.batch", str(inp), str(inp), "--model", bundle],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert (proc.returncode, proc.stdout, proc.stderr) == (
        2, "", f"Error: {inp}: output is also an input ({inp}); it would be overwritten\n")


BLOCK_IMPORTS = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("pyarrow", "pyspark", "pandas"):
            raise ModuleNotFoundError("blocked: " + name, name=name)
sys.meta_path.insert(0, Block())
"""


def test_the_runtime_imports_without_pyarrow_and_names_the_extra(bundle, tmp_path):
    (tmp_path / "in.txt").write_text("a great film\n")
    code = BLOCK_IMPORTS + f"""
import runtime, runtime.batch, runtime.engine, runtime.spark
from runtime import Classifier
print(Classifier.load({bundle!r}).predict(["a great film"]).shape)
from runtime.batch import main
sys.exit(main([{str(tmp_path / 'in.txt')!r}, {str(tmp_path / 'out.parquet')!r}, "--model", {bundle!r}])
         + 10 * main([{str(tmp_path / 'in.txt')!r}, {str(tmp_path / 'out.csv')!r}, "--model", {bundle!r}])
         + 100 * main([{str(tmp_path / 'in.txt')!r}, {str(tmp_path / 'out2.csv')!r}, "--engine", "spark"]))
"""
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 202  # text -> csv needs no pyarrow
    assert proc.stdout == "(1,)\n"
    lines = proc.stderr.splitlines()
    assert lines[0] == ("Error: this needs the [batch] extra (no module named 'pyarrow'): "
                        "pip install 'imdb-reviewkit[batch]'")
    assert lines[1].startswith("scored 1 row (")
    assert lines[2] == ("Error: this needs the [spark] extra (no module named 'pyarrow'): "
                        "pip install 'imdb-reviewkit[spark]'")
    assert sorted(os.listdir(tmp_path)) == ["in.txt", "out.csv"]


def test_progress_off_a_terminal_is_plain_lines(bundle, texts, tmp_path):
    from runtime.output import Progress
    stream = io.StringIO()
    progress = Progress(stream, plain_interval=0.0)
    for n in (10, 20):
        progress.update(n)
    progress.clear()
    lines = stream.getvalue().splitlines()
    assert [line.split(",")[0] for line in lines] == ["10 rows", "20 rows"]
    assert "\r" not in stream.getvalue() and "\033" not in stream.getvalue()
