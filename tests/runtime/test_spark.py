"""``runtime.spark``: ``score_dataframe`` and ``--engine spark`` on a local[2] session.

One session for the module (started and stopped here, bound to 127.0.0.1, its JVM log in a
temp file). Spark writes a directory of part files in no global order: every result is put
back in input order by its key and checked against ``Classifier.predict`` and the local
engine's output for the same input (csv/jsonl: the very same lines).
"""
from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from runtime import batch, spark as rs
from runtime.batch import main
from runtime.engine import WorkerError
from runtime.records import InputError
from tests.runtime.faults import crash_batches
from tests.runtime.test_batch import (REPO, check_scores, errors_of, make_ids, make_texts, write_csv,
                                      write_jsonl, write_parquet)

N = 2000


@pytest.fixture(scope="module")
def session(spark_session):
    return spark_session


@pytest.fixture(scope="module")
def texts() -> list[str]:
    return make_texts(N, seed=10)


@pytest.fixture(scope="module")
def ids() -> list[int]:
    return make_ids(N, seed=10)


def test_the_session_is_local_and_quiet(session):
    conf = session.sparkContext.getConf()
    assert session.sparkContext.master == "local[2]"
    assert conf.get("spark.driver.bindAddress") == conf.get("spark.driver.host") == "127.0.0.1"
    assert (conf.get("spark.ui.enabled"), conf.get("spark.ui.showConsoleProgress")) == ("false", "false")
    assert os.environ["SPARK_LOCAL_IP"] == "127.0.0.1"
    assert os.environ["PYSPARK_PYTHON"] == sys.executable


def spark_lines(folder: str) -> tuple[list[str], list[str]]:
    """(headers, data lines) of a csv/tsv/jsonl output directory's part files."""
    parts = sorted(f for f in os.listdir(folder) if f.startswith("part-"))
    assert "_SUCCESS" in os.listdir(folder) and parts
    headers, lines = [], []
    for part in parts:
        text = open(os.path.join(folder, part), encoding="utf-8").read()
        if not text:
            continue
        first, _, rest = text.partition("\n")
        if folder.endswith(".jsonl"):
            lines += text.splitlines()
        else:
            headers.append(first)
            lines += rest.splitlines()
    return headers, lines


def assert_same_probabilities(got, want) -> None:
    """Equal within 1e-6, and null (a row with an error) in the same rows."""
    got, want = (np.array(p, dtype=float) for p in (got, want))  # null: nan
    assert np.array_equal(np.isnan(got), np.isnan(want))
    assert np.nanmax(np.abs(got - want), initial=0.0) <= 1e-6


def in_order(cols: dict, key: str, order: list) -> dict:
    """Columns with rows put in ``order`` of their ``key`` value."""
    at = {k: i for i, k in enumerate(cols[key])}
    assert len(at) == len(cols[key]) == len(order)  # each key once
    pick = [at[k] for k in order]
    return {n: (np.asarray(v)[pick] if n == "probability" else [v[i] for i in pick]) for n, v in cols.items()}


def test_parquet_directory_exactly_once_as_the_local_engine(session, bundle, clf, texts, ids, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    write_parquet(folder / "part-0.parquet", {"id": ids[:300], "text": texts[:300]})
    write_parquet(folder / "part-1.parquet", {"id": ids[300:], "text": texts[300:]}, row_group_size=400)
    (folder / "_SUCCESS").write_text("")
    out = str(tmp_path / "spark.parquet")
    summary = rs.score_file(str(folder), out, model=bundle, spark=session, batch_size=256)
    assert (summary.rows, summary.bad, summary.output) == (N, texts.count(""), out)  # from accumulators
    table = pq.read_table(out)
    assert table.schema.names == ["row", "label", "probability", "error"]
    assert table.schema.field("probability").type == pa.float32()
    cols = in_order(table.to_pydict(), "row", list(range(1, N + 1)))  # row numbers across the files
    assert cols["error"] == errors_of(texts)
    check_scores(cols, texts, clf)
    assert sorted(os.listdir(tmp_path)) == ["in", "spark.parquet"]  # no temp dir left


@pytest.mark.parametrize("fmt, out_ext", [("csv", "jsonl"), ("jsonl", "csv"), ("txt", "tsv"), ("txt", "parquet")])
def test_csv_jsonl_text_inputs_give_the_local_engines_rows(session, bundle, clf, tmp_path, fmt, out_ext):
    texts = make_texts(N, seed=11, multiline=fmt == "csv")
    keys = [f"k{i}" for i in make_ids(N, seed=11)]
    stars = [str(i % 5) for i in range(N)]
    inp, opts = tmp_path / f"in.{fmt}", {}
    if fmt == "csv":
        write_csv(inp, {"key": keys, "text": texts, "stars": stars}, blank_after=7)
        opts = dict(id_column="key", keep_columns=["stars"])
    elif fmt == "jsonl":
        values = [None if i % 97 == 5 else t for i, t in enumerate(texts)]  # some null texts
        write_jsonl(inp, {"text": values, "stars": [int(s) for s in stars]}, blank_after=7)
        opts = dict(keep_columns=["stars"])
    else:
        texts[4] = "bad \xff bytes"
        raw = [t.encode("utf-8", "surrogateescape") if "\xff" not in t
               else t.replace("\xff", "").encode() + b"\xff" for t in texts]
        inp.write_bytes(b"\xef\xbb\xbf" + b"\r\n".join(raw) + b"\n")
    out_spark, out_local = str(tmp_path / f"spark.{out_ext}"), str(tmp_path / f"local.{out_ext}")
    got = rs.score_file(str(inp), out_spark, model=bundle, spark=session, **opts)
    want = batch.score_file(str(inp), out_local, model=bundle, workers=2, **opts)
    assert (got.rows, got.positive, got.bad) == (want.rows, want.positive, want.bad)
    if out_ext == "parquet":
        local = pq.read_table(out_local).to_pydict()
        spark = in_order(pq.read_table(out_spark).to_pydict(), "row", local["row"])
        assert {n: v for n, v in spark.items() if n != "probability"} == \
            {n: v for n, v in local.items() if n != "probability"}
        assert_same_probabilities(spark["probability"], local["probability"])
        return
    headers, lines = spark_lines(out_spark)
    local_lines = open(out_local, encoding="utf-8").read().splitlines()
    if out_ext != "jsonl":
        assert set(headers) == {local_lines.pop(0)}  # each part starts with the header
    assert sorted(lines) == sorted(local_lines)  # the very same bytes for every row


def test_score_dataframe_on_a_dataframe_read_by_spark(session, bundle, clf, texts, ids, tmp_path):
    values = [None if k % 50 == 0 else t for k, t in enumerate(texts)]
    stars = [k % 5 for k in range(N)]
    write_parquet(tmp_path / "reviews.parquet", {"id": ids, "review": values, "stars": pa.array(stars, pa.int32())})
    df = session.read.parquet(str(tmp_path / "reviews.parquet")).repartition(3)
    scored = rs.score_dataframe(df, text_col="review", id_col="id", model=bundle, keep_columns=["stars"])
    assert scored.columns == ["id", "label", "probability", "error", "stars"]
    assert [f.dataType.simpleString() for f in scored.schema.fields] == ["bigint", "string", "float", "string", "int"]
    got = {r.id: r for r in scored.collect()}
    assert sorted(got) == sorted(ids)  # exactly once
    assert [got[i].error for i in ids] == ["text is null" if v is None else errors_of([v])[0] for v in values]
    check_scores({c: [getattr(got[i], c) for i in ids] for c in ("probability", "label", "error")},
                 [t or "" for t in values], clf)
    assert [got[i].stars for i in ids] == stars
    no_id = rs.score_dataframe(df, text_col="review", model=bundle)
    assert no_id.columns == ["label", "probability", "error"] and no_id.count() == N


def test_score_dataframe_refuses_bad_columns(session, bundle):
    df = session.createDataFrame([(1, "a")], "n long, text string")
    with pytest.raises(InputError) as e:
        rs.score_dataframe(df, text_col="body", model=bundle)
    assert str(e.value) == "no column 'body' (text_col); columns: n, text"
    with pytest.raises(InputError) as e:
        rs.score_dataframe(df, text_col="n", model=bundle)
    assert str(e.value) == "column 'n' is bigint, not text"
    with pytest.raises(InputError) as e:
        rs.score_dataframe(df.withColumnRenamed("n", "label"), keep_columns=["label"], model=bundle)
    assert str(e.value) == "column 'label' clashes with the output column of that name"


def test_a_file_uri_input_into_a_native_output_directory(session, bundle, clf, texts, tmp_path):
    inp = write_jsonl(tmp_path / "in.jsonl", {"text": texts[:500]})
    out = tmp_path / "scores.csv"
    summary = rs.score_file("file://" + inp, "file://" + str(out), model=bundle, spark=session)
    assert summary.rows == 500
    headers, lines = spark_lines(str(out))
    assert set(headers) == {"row,label,probability,error"}
    rows = sorted((line.split(",") for line in lines), key=lambda r: int(r[0]))
    assert [int(r[0]) for r in rows] == list(range(1, 501))
    check_scores({"probability": [r[2] for r in rows], "label": [r[1] for r in rows], "error": [r[3] for r in rows]},
                 texts[:500], clf)


def test_a_crashed_python_worker_fails_the_job_and_leaves_the_old_output(session, bundle, texts, tmp_path,
                                                                        monkeypatch):
    inp = write_parquet(tmp_path / "in.parquet", {"text": texts})
    out = tmp_path / "out.csv"
    out.mkdir()
    (out / "part-0").write_text("earlier result")
    (out / "_SUCCESS").write_text("")  # an earlier Spark output: the kind a run may replace
    monkeypatch.setattr(rs, "score_batches", crash_batches)  # each Python worker dies at its first batch
    with pytest.raises(WorkerError) as e:
        rs.score_file(inp, str(out), model=bundle, spark=session)
    assert str(e.value) == (f"a Spark Python worker died while scoring {inp} (killed, or out of memory?); "
                            f"{out} was not written")
    assert (out / "part-0").read_text() == "earlier result"
    assert sorted(os.listdir(tmp_path)) == ["in.parquet", "out.csv"]


def test_bad_inputs_fail_with_the_local_engines_messages(session, bundle, texts, tmp_path):
    good = write_parquet(tmp_path / "good.parquet", {"text": texts})
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(open(good, "rb").read()[:4000])
    with pytest.raises(InputError) as e:
        rs.score_file(str(bad), str(tmp_path / "out.parquet"), model=bundle, spark=session)
    assert str(e.value).startswith(f"{bad}: not a readable Parquet file: ")
    lines = [json.dumps({"text": t}) for t in texts]
    lines[1499] = "[1, 2]"
    inp = tmp_path / "in.jsonl"
    inp.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as e:  # raised in an executor, reported as one line
        rs.score_file(str(inp), str(tmp_path / "out.parquet"), model=bundle, spark=session)
    assert str(e.value) == f"{inp}:1500: expected a JSON object, got an array"
    with pytest.raises(InputError) as e:
        rs.score_file(good, good, model=bundle, spark=session)
    assert str(e.value) == f"{good}: output and input {good} overlap; it would be overwritten"
    assert sorted(os.listdir(tmp_path)) == ["bad.parquet", "good.parquet", "in.jsonl"]


def test_a_local_csv_is_checked_with_line_numbers_before_spark_reads_it(session, bundle, tmp_path):
    ragged, unterminated = tmp_path / "ragged.csv", tmp_path / "quote.csv"
    ragged.write_text("id,text\n1,good\n2,bad,extra\n")
    unterminated.write_text('text,n\ngood,1\n"never closed,2\nmore\n')
    for path, message in ((ragged, f"{ragged}:3: 3 fields, the header has 2"),
                          (unterminated, f"{unterminated}:3: unterminated quote: the record starting on this "
                                         f"line runs to the end of the file")):
        with pytest.raises(InputError) as e:
            rs.score_file(str(path), str(tmp_path / "out.csv"), model=bundle, spark=session)
        assert str(e.value) == message
    assert not os.path.exists(tmp_path / "out.csv")


def test_rerunning_overwrites(session, bundle, clf, texts, ids, tmp_path):
    inp = write_parquet(tmp_path / "in.parquet", {"id": ids, "text": texts})
    small = write_parquet(tmp_path / "small.parquet", {"id": ids[:50], "text": texts[:50]})
    out = str(tmp_path / "out.jsonl")
    rs.score_file(inp, out, id_column="id", model=bundle, spark=session)
    assert len(spark_lines(out)[1]) == N
    rs.score_file(small, out, id_column="id", model=bundle, spark=session)
    got = sorted(json.loads(line)["id"] for line in spark_lines(out)[1])
    assert got == sorted(ids[:50])


def test_cli_engine_spark_uses_the_active_session(session, bundle, clf, tmp_path, capsys):
    texts = make_texts(300, seed=12)
    inp = tmp_path / "in.txt"
    inp.write_text("\n".join(texts) + "\n")
    out = tmp_path / "out.csv"
    code = main([str(inp), str(out), "--engine", "spark", "--model", bundle, "--no-progress"])
    stdout, stderr = capsys.readouterr()
    assert (code, stdout) == (0, "")
    assert stderr.startswith("scored 300 rows (") and stderr.endswith(f"Spark {session.version} session "
                                                                      f"(start 0.0 s) -> {out}\n")
    assert sorted(int(line.split(",")[0]) for line in spark_lines(str(out))[1]) == list(range(1, 301))


def test_python_dash_m_runtime_batch_engine_spark(bundle, clf, tmp_path):
    """The real command: its own JVM on local[1], whose log stays off the terminal; a missing
    column is refused before Spark starts."""
    texts = make_texts(200, seed=13)
    inp = write_parquet(tmp_path / "in.parquet", {"text": texts})
    out = tmp_path / "out.parquet"
    proc = subprocess.run([sys.executable, "-m", "runtime.batch", inp, str(out), "--engine", "spark",
                           "--master", "local[1]", "--model", bundle],
                          cwd=REPO, capture_output=True, text=True, timeout=180)
    assert (proc.returncode, proc.stdout) == (0, "")
    assert proc.stderr.startswith("scored 200 rows (") and proc.stderr.count("\n") == 1, proc.stderr
    assert " local[1] (start " in proc.stderr
    cols = in_order(pq.read_table(str(out)).to_pydict(), "row", list(range(1, 201)))
    check_scores(cols, texts, clf)
    before = {f: (out / f).read_bytes() for f in os.listdir(out)}
    jsonl = write_jsonl(tmp_path / "in.jsonl", {"text": texts})
    code = ("import sys, runtime.batch\n"
            f"rc = runtime.batch.main([{jsonl!r}, {str(out)!r}, '--id-column', 'nope', '--engine', 'spark'])\n"
            "from pyspark import SparkContext\n"
            "print(rc, SparkContext._active_spark_context is None)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.stderr == f"Error: {jsonl}:1: no field 'nope' (--id-column); fields: text\n"
    assert proc.stdout == "2 True\n"  # refused with no Spark context ever started
    assert {f: (out / f).read_bytes() for f in os.listdir(out)} == before  # the earlier output is untouched


def test_progress_reports_the_spark_tasks(session, bundle, texts, tmp_path):
    inp = write_parquet(tmp_path / "in.parquet", {"text": texts * 50}, row_group_size=5000)  # 100k rows
    stream = io.StringIO()
    rs.score_file(inp, str(tmp_path / "out.parquet"), model=bundle, spark=session, progress=True, stream=stream)
    lines = stream.getvalue().splitlines()
    assert lines and all(re.fullmatch(r"Spark: \d+/\d+ tasks done", line) for line in lines), lines


def test_an_output_directory_that_is_not_a_spark_output_is_kept(session, bundle, texts, tmp_path):
    inp = write_jsonl(tmp_path / "in.jsonl", {"text": texts[:10]})
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(InputError) as e:
        rs.score_file(inp, str(out), model=bundle, spark=session)
    assert str(e.value) == (f"{out}: is a directory that is not a Spark output (no _SUCCESS): "
                            "pass --overwrite to replace it and everything in it")
    assert os.listdir(out) == ["notes.txt"]
    assert rs.score_file(inp, str(out), model=bundle, spark=session, overwrite=True).rows == 10
    assert "_SUCCESS" in os.listdir(out) and "notes.txt" not in os.listdir(out)
    assert rs.score_file(inp, str(out), model=bundle, spark=session).rows == 10  # our own output: replaced


def test_overwrite_is_for_the_spark_engine(capsys, tmp_path):
    assert main([str(tmp_path / "in.txt"), str(tmp_path / "out.csv"), "--overwrite"]) == 2
    assert capsys.readouterr().err == "Error: --overwrite needs --engine spark\n"

