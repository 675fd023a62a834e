"""Endless, huge and malformed inputs (issue 10): each refused with one line naming the place,
or scored when it is valid, in ``runtime.predict`` and ``runtime.batch`` alike."""
from __future__ import annotations

import io
import os
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from runtime.batch import main as batch_main, score_file
from runtime.predict import main as predict_main
from runtime.records import InputError


def run(main, capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
@pytest.mark.parametrize("main, extra", [(predict_main, []), (batch_main, ["out.csv", "--input-format", "text"])])
def test_a_device_is_refused(main, extra, bundle, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run(main, capsys, "/dev/zero", *extra, "--model", bundle) == (
        2, "", "Error: /dev/zero: is a device, not a file (pipe it in with '<' or '-' if you mean it)\n")
    assert os.listdir(tmp_path) == []


def test_an_endless_line_on_stdin_stops_at_the_record_cap(bundle, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"ok\n" + b"a" * 50_000)))
    assert run(predict_main, capsys, "-", "--max-record-bytes", "1000", "--model", bundle) == (
        2, "", "Error: <stdin>:2: record longer than 1000 bytes (--max-record-bytes)\n")


@pytest.mark.parametrize("workers", [1, 2])
def test_an_over_cap_record_in_a_file_names_its_line(bundle, tmp_path, capsys, workers):
    p = tmp_path / "in.txt"
    p.write_bytes(b"short\n" * 5 + b"x" * 3000 + b"\nshort\n")
    message = f"{p}:6: record longer than 2000 bytes (--max-record-bytes)"
    assert run(predict_main, capsys, p, "--max-record-bytes", "2000", "--workers", workers, "--model", bundle) == (
        2, "", f"Error: {message}\n")
    with pytest.raises(InputError) as e:
        score_file(str(p), str(tmp_path / "out.csv"), model=bundle, workers=workers, max_record_bytes=2000)
    assert str(e.value) == message
    assert sorted(os.listdir(tmp_path)) == ["in.txt"]


def test_a_csv_record_over_the_cap_and_a_10_mb_field_within_it(bundle, clf, tmp_path):
    big = "a great film " * 800_000  # 10.4 MB in one quoted field, with line breaks around it
    p = tmp_path / "in.csv"
    p.write_text(f'id,text\n1,"{big}\nend"\n2,short\n')
    out = tmp_path / "out.csv"
    summary = score_file(str(p), str(out), id_column="id", model=bundle)
    assert summary.rows == 2
    lines = out.read_text().splitlines()
    assert [line.split(",")[0] for line in lines] == ["id", "1", "2"]
    assert lines[1].split(",")[2] == f"{clf.predict([big + chr(10) + 'end'])[0]:.6f}"
    with pytest.raises(InputError) as e:
        score_file(str(p), str(out), model=bundle, max_record_bytes=1_000_000)
    assert str(e.value) == f"{p}:2: record longer than 1000000 bytes (--max-record-bytes)"


def test_an_unterminated_quote_names_the_line_it_opened_on(bundle, tmp_path, capsys):
    p = tmp_path / "in.csv"
    p.write_text('text,n\ngood,1\n"never closed,2\nmore\nand more\n')
    message = f"{p}:3: unterminated quote: the record starting on this line runs to the end of the file"
    with pytest.raises(InputError) as e:
        score_file(str(p), str(tmp_path / "out.csv"), model=bundle)
    assert str(e.value) == message
    assert run(predict_main, capsys, p, "--input-format", "csv", "--model", bundle) == (2, "", f"Error: {message}\n")


def test_a_jsonl_id_column_missing_from_the_first_object_is_refused(bundle, tmp_path):
    p = tmp_path / "in.jsonl"
    p.write_text('{"text": "a"}\n{"text": "b"}\n')
    with pytest.raises(InputError) as e:
        score_file(str(p), str(tmp_path / "out.csv"), id_column="review_id", model=bundle)
    assert str(e.value) == f"{p}:1: no field 'review_id' (--id-column); fields: text"


def test_a_dictionary_encoded_text_column_is_text(bundle, clf, tmp_path):
    texts = ["a great film", "awful", "a great film", None]
    p = tmp_path / "in.parquet"
    pq.write_table(pa.table({"text": pa.array(texts).dictionary_encode()}), str(p))
    out = tmp_path / "out.parquet"
    score_file(str(p), str(out), model=bundle)
    table = pq.read_table(str(out))
    assert table.column("error").to_pylist() == [None, None, None, "text is null"]
    probs = table.column("probability").to_pylist()
    assert probs[:3] == pytest.approx(clf.predict(texts[:3]).tolist(), abs=1e-6) and probs[3] is None


def test_a_parquet_directory_whose_files_disagree_is_refused(bundle, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    pq.write_table(pa.table({"text": ["a", "b"]}), str(folder / "1.parquet"))
    pq.write_table(pa.table({"text": [5, 6]}), str(folder / "2.parquet"))
    with pytest.raises(InputError) as e:
        score_file(str(folder), str(tmp_path / "out.parquet"), model=bundle)
    assert str(e.value) == (f"{folder / '2.parquet'}: column 'text' is int64 but string in "
                            f"{folder / '1.parquet'}: the files disagree")
    assert sorted(os.listdir(tmp_path)) == ["in"]
