"""``runtime.spark``: ``score_dataframe`` and ``--engine spark`` on a local[2] session.

One session for the module (started and stopped here, bound to 127.0.0.1, its JVM log in a
temp file). Every result is checked against ``Classifier.predict`` and the local engine's
output for the same input: same rows, same order, |dp| <= 1e-6.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from runtime import batch, spark as rs
from runtime.batch import BatchError, WorkerError
from runtime.batch_cli import main
from tests.runtime.test_batch import (REPO, check_scores, make_ids, make_texts, read_output, write_csv,
                                      write_jsonl, write_parquet)

N = 2000


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    log = str(tmp_path_factory.mktemp("spark") / "jvm.log")
    spark = rs.local_session("local[2]", app_name="reviewkit-tests", log=log)
    yield spark
    spark.stop()


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


def test_parquet_directory_exactly_once_in_input_order_as_the_local_engine(session, bundle, clf, texts, ids,
                                                                          tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    # a small file first: Spark reads the big one first (it orders splits by size), the output
    # must still follow the files' name order
    write_parquet(folder / "part-0.parquet", {"id": ids[:300], "text": texts[:300]})
    write_parquet(folder / "part-1.parquet", {"id": ids[300:], "text": texts[300:]}, row_group_size=400)
    (folder / "_SUCCESS").write_text("")
    out = str(tmp_path / "spark.parquet")
    summary = rs.score_file(str(folder), out, id_column="id", model=bundle, spark=session, batch_size=256)
    assert summary.rows == N and summary.output == out
    table = pq.read_table(out)
    assert table.schema.names == ["id", "label", "probability", "error"]
    assert table.schema.field("probability").type == pa.float32()
    cols = read_output(out)
    assert cols["id"] == ids  # each row once, in input order
    assert cols["error"] == [None] * N
    check_scores(cols, texts, clf)
    local = str(tmp_path / "local.parquet")
    batch.score_file(str(folder), local, id_column="id", model=bundle, workers=2)
    expected = read_output(local)
    assert (cols["id"], cols["label"]) == (expected["id"], expected["label"])
    assert np.max(np.abs(cols["probability"] - expected["probability"])) <= 1e-6
    assert sorted(os.listdir(tmp_path)) == ["in", "local.parquet", "spark.parquet"]  # no temp dir left


@pytest.mark.parametrize("fmt, out_ext", [("csv", "jsonl"), ("jsonl", "csv"), ("txt", "parquet")])
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
        texts = [t or "" for t in values]
    else:
        texts[4] = ""
        inp.write_bytes(("\ufeff" + "\r\n".join(texts) + "\n").encode("utf-8"))
    out_spark, out_local = str(tmp_path / f"spark.{out_ext}"), str(tmp_path / f"local.{out_ext}")
    got_summary = rs.score_file(str(inp), out_spark, model=bundle, spark=session, **opts)
    expected_summary = batch.score_file(str(inp), out_local, model=bundle, workers=2, **opts)
    assert (got_summary.rows, got_summary.bad_rows) == (expected_summary.rows, expected_summary.bad_rows)
    got, expected = read_output(out_spark), read_output(out_local)
    assert list(got) == list(expected)
    for name in got:
        if name != "probability":
            assert got[name] == expected[name], name
    check_scores(got, texts, clf)
    if fmt == "jsonl":
        assert [int(r) for r in got["row"]] == list(range(1, 9)) + list(range(10, N + 2))  # line 9: blank
        assert got["error"].count("text is null") == len([i for i in range(N) if i % 97 == 5])


def test_score_dataframe_in_a_users_job(session, bundle, clf, texts, ids):
    rows = [(i, None if k % 50 == 0 else t, k % 5) for k, (i, t) in enumerate(zip(ids, texts))]
    df = session.createDataFrame(rows, "id long, review string, stars int").repartition(3)
    scored = rs.score_dataframe(df, text_col="review", id_col="id", model=bundle, keep_columns=["stars"])
    assert scored.columns == ["id", "label", "probability", "error", "stars"]
    assert [f.dataType.simpleString() for f in scored.schema.fields] == ["bigint", "string", "float", "string", "int"]
    got = {r.id: r for r in scored.collect()}
    assert sorted(got) == sorted(ids)  # exactly once
    expected = clf.predict([t or "" for _, t, _ in rows])
    probs = np.array([got[i].probability for i, _, _ in rows], dtype=np.float32)
    assert np.max(np.abs(probs - expected)) <= 1e-6
    assert [got[i].error for i, _, _ in rows] == ["text is null" if k % 50 == 0 else None for k in range(N)]
    assert [got[i].stars for i, _, _ in rows] == [s for _, _, s in rows]
    assert [got[i].label for i, _, _ in rows] == [clf.label_of(p) for p in probs]


def test_score_dataframe_refuses_bad_columns(session, bundle):
    df = session.createDataFrame([(1, "a")], "n long, text string")
    with pytest.raises(BatchError) as e:
        rs.score_dataframe(df, text_col="body", model=bundle)
    assert str(e.value) == "no column 'body' (text_col); columns: n, text"
    with pytest.raises(BatchError) as e:
        rs.score_dataframe(df, text_col="n", model=bundle)
    assert str(e.value) == "column 'n' is bigint, not text"
    with pytest.raises(BatchError) as e:
        rs.score_dataframe(df.withColumnRenamed("n", "label"), keep_columns=["label"], model=bundle)
    assert str(e.value) == "column 'label' clashes with the output column of that name"


def test_a_crashed_python_worker_fails_the_job_and_leaves_no_output(session, bundle, texts, tmp_path,
                                                                    monkeypatch):
    inp = write_parquet(tmp_path / "in.parquet", {"text": texts})
    out = tmp_path / "out.csv"
    out.write_text("earlier result")
    monkeypatch.setenv(batch.CRASH_ENV, "0")  # each partition's first batch: os._exit
    with pytest.raises(WorkerError) as e:
        rs.score_file(inp, str(out), model=bundle, spark=session)
    assert str(e.value) == (f"a Spark Python worker died while scoring {inp} (killed, or out of memory?); "
                            f"{out} was not written")
    assert out.read_text() == "earlier result"
    assert sorted(os.listdir(tmp_path)) == ["in.parquet", "out.csv"]


def test_bad_inputs_fail_with_the_local_engines_messages(session, bundle, texts, tmp_path):
    good = write_parquet(tmp_path / "good.parquet", {"text": texts})
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(open(good, "rb").read()[:4000])
    with pytest.raises(BatchError) as e:
        rs.score_file(str(bad), str(tmp_path / "out.parquet"), model=bundle, spark=session)
    assert str(e.value).startswith(f"{bad}: not a readable Parquet file: ")
    lines = [json.dumps({"text": t}) for t in texts]
    lines[1499] = "[1, 2]"
    inp = tmp_path / "in.jsonl"
    inp.write_text("\n".join(lines) + "\n")
    with pytest.raises(BatchError) as e:  # raised in an executor, reported as one line
        rs.score_file(str(inp), str(tmp_path / "out.parquet"), model=bundle, spark=session)
    assert str(e.value) == f"{inp}:1500: expected a JSON object, got an array"
    with pytest.raises(BatchError) as e:
        rs.score_file(good, good, model=bundle, spark=session)
    assert str(e.value) == f"{good}: output is the input; it would be overwritten"
    assert sorted(os.listdir(tmp_path)) == ["bad.parquet", "good.parquet", "in.jsonl"]


def test_rerunning_overwrites(session, bundle, clf, texts, ids, tmp_path):
    inp = write_parquet(tmp_path / "in.parquet", {"id": ids, "text": texts})
    small = write_parquet(tmp_path / "small.parquet", {"id": ids[:50], "text": texts[:50]})
    out = str(tmp_path / "out.jsonl")
    rs.score_file(inp, out, id_column="id", model=bundle, spark=session)
    assert read_output(out)["id"] == ids
    rs.score_file(small, out, id_column="id", model=bundle, spark=session)
    cols = read_output(out)
    assert cols["id"] == ids[:50]
    check_scores(cols, texts[:50], clf)


def test_cli_engine_spark_uses_the_active_session(session, bundle, clf, tmp_path, capsys):
    texts = make_texts(300, seed=12)
    inp = tmp_path / "in.txt"
    inp.write_text("\n".join(texts) + "\n")
    out = tmp_path / "out.csv"
    code = main([str(inp), str(out), "--engine", "spark", "--model", bundle, "--no-progress"])
    stdout, stderr = capsys.readouterr()
    assert (code, stdout) == (0, "")
    assert stderr.startswith("scored 300 rows in ") and stderr.endswith(f"Spark {session.version} session "
                                                                        f"(start 0.0 s) -> {out}\n")
    cols = read_output(str(out))
    assert cols["row"] == [str(i) for i in range(1, 301)]
    check_scores(cols, texts, clf)


def test_python_dash_m_runtime_batch_engine_spark(bundle, clf, tmp_path):
    """The real command: its own JVM on local[1], whose log stays off the terminal."""
    texts = make_texts(200, seed=13)
    inp = write_parquet(tmp_path / "in.parquet", {"text": texts})
    out = tmp_path / "out.parquet"
    proc = subprocess.run([sys.executable, "-m", "runtime.batch", inp, str(out), "--engine", "spark",
                           "--master", "local[1]", "--model", bundle],
                          cwd=REPO, capture_output=True, text=True, timeout=180)
    assert (proc.returncode, proc.stdout) == (0, "")
    assert proc.stderr.startswith("scored 200 rows in ") and proc.stderr.count("\n") == 1, proc.stderr
    assert " local[1] (start " in proc.stderr
    check_scores(read_output(str(out)), texts, clf)
