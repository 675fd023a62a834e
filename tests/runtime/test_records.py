"""runtime.records: reading input records, writing scored records, streaming in batches.

No model here: ``score_stream`` runs on a stand-in classifier that records the batches it is
given (the CLI tests score with the real tiny bundle).
"""
from __future__ import annotations

import csv
import io
import json
import os
import stat

import numpy as np
import pytest

from runtime.records import (InputError, Progress, Record, RecordWriter, Summary, check_inputs, open_output,
                             read_records, score_stream)


def write(path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def read(path, fmt="lines", **kw) -> list[Record]:
    return list(read_records([str(path)], fmt, **kw))


# -- lines ----------------------------------------------------------------------------------
def test_lines_are_records_numbered_by_physical_line(tmp_path):
    p = write(tmp_path / "r.txt", b"first\r\n\nthird has\ra bare CR\n   \nlast, no newline")
    assert [(r.source, r.number, r.text) for r in read(p)] == [
        (p, 1, "first"), (p, 2, ""), (p, 3, "third has\ra bare CR"), (p, 4, "   "), (p, 5, "last, no newline")]


def test_skip_blank_keeps_the_physical_line_numbers(tmp_path):
    p = write(tmp_path / "r.txt", b"a\n\n  \t\nb\n")
    assert [(r.number, r.text) for r in read(p, skip_blank=True)] == [(1, "a"), (4, "b")]


def test_only_newline_separates_lines(tmp_path):
    # str.splitlines() would also split at U+2028, U+0085 and form feed: one review here.
    text = "one\u2028review\x85with\x0cseparators"
    assert [r.text for r in read(write(tmp_path / "r.txt", text.encode() + b"\n"))] == [text]


def test_bom_is_dropped_from_the_first_line_only(tmp_path):
    p = write(tmp_path / "r.txt", b"\xef\xbb\xbfgreat\n\xef\xbb\xbfkept\n")
    assert [r.text for r in read(p)] == ["great", "\ufeffkept"]


def test_invalid_utf8_is_replaced_and_counted_per_file(tmp_path):
    a = write(tmp_path / "a.txt", b"ok\nbad \xff\nbad \xc3\nbad \xe2\x82 twice \xff\nok\n")
    b = write(tmp_path / "b.txt", b"\xfe\n")
    c = write(tmp_path / "c.txt", b"fine\n")
    warnings = []
    got = list(read_records([a, b, c], warn=warnings.append))
    assert [r.text for r in got] == ["ok", "bad \ufffd", "bad \ufffd", "bad \ufffd twice \ufffd", "ok", "\ufffd", "fine"]
    assert warnings == [f"warning: {a}: 3 lines had invalid UTF-8 (replaced)",
                        f"warning: {b}: 1 line had invalid UTF-8 (replaced)"]


def test_nul_byte_is_refused_with_file_and_line(tmp_path):
    p = write(tmp_path / "r.txt", b"one\ntwo\nthr\x00ee\n")
    with pytest.raises(InputError) as e:
        read(p)
    assert str(e.value) == f"{p}:3: NUL byte: binary input (or not UTF-8 text) is not supported"


def test_texts_come_first_then_files_in_order(tmp_path):
    a = write(tmp_path / "a.txt", b"a1\na2\n")
    b = write(tmp_path / "b.txt", b"b1\n")
    got = [(r.source, r.number, r.text) for r in read_records([a, b], texts=["t1", "", "t3"], skip_blank=True)]
    assert got == [("--text", 1, "t1"), ("--text", 3, "t3"), (a, 1, "a1"), (a, 2, "a2"), (b, 1, "b1")]


def test_stdin_is_read_as_bytes():
    stdin = io.BytesIO(b"\xef\xbb\xbfgreat\r\nbad \xff\n")
    warnings = []
    got = list(read_records(["-"], stdin=stdin, warn=warnings.append))
    assert [(r.source, r.number, r.text) for r in got] == [("-", 1, "great"), ("-", 2, "bad \ufffd")]
    assert warnings == ["warning: <stdin>: 1 line had invalid UTF-8 (replaced)"]


def test_files_are_opened_lazily(tmp_path):
    # The second file's problem shows only once the first file has been read: nothing is slurped.
    a = write(tmp_path / "a.txt", b"a\n")
    stream = read_records([a, str(tmp_path / "gone.txt")])
    assert next(stream).text == "a"
    with pytest.raises(InputError, match="gone.txt: no such file"):
        next(stream)


# -- jsonl ----------------------------------------------------------------------------------
def test_jsonl_records_keep_id_types_and_line_numbers(tmp_path):
    lines = ['{"text": "great", "id": 7}', "", '  ', '{"id": "x-1", "text": "awful\\nfilm", "other": [1]}',
             '{"text": "", "id": null}']
    p = write(tmp_path / "r.jsonl", ("\r\n".join(lines) + "\r\n").encode())
    got = [(r.number, r.text, r.id) for r in read(p, "jsonl", id_field="id")]
    assert got == [(1, "great", 7), (4, "awful\nfilm", "x-1"), (5, "", None)]


def test_jsonl_custom_text_field(tmp_path):
    p = write(tmp_path / "r.jsonl", b'{"review": "great", "text": 1}\n')
    assert [r.text for r in read(p, "jsonl", text_field="review")] == ["great"]


@pytest.mark.parametrize("line, message", [
    ('{"text": "a"', "invalid JSON: Expecting ',' delimiter (column 13)"),
    ("not json", "invalid JSON: Expecting value (column 1)"),
    ('["text"]', "expected a JSON object, got an array"),
    ('"text"', "expected a JSON object, got a string"),
    ('{"body": "a"}', "no 'text' field"),
    ('{"text": 5}', "field 'text' is a number, not a string"),
    ('{"text": null}', "field 'text' is null, not a string"),
    ('{"text": ["a"]}', "field 'text' is an array, not a string"),
    ('{"text": "a"}', "no 'id' field (--id-field)"),
])
def test_jsonl_errors_name_file_and_line(tmp_path, line, message):
    p = write(tmp_path / "r.jsonl", ('{"text": "fine", "id": 1}\n\n' + line + "\n").encode())
    with pytest.raises(InputError) as e:
        read(p, "jsonl", id_field="id")
    assert str(e.value) == f"{p}:3: {message}"


# -- csv ------------------------------------------------------------------------------------
def test_csv_records_are_numbered_by_data_row(tmp_path):
    data = ('\ufeffid,text,stars\r\n1,"great, ""really""",9\r\n2,"two\r\nlines",3\r\n\r\n3,,5\r\n').encode()
    p = write(tmp_path / "r.csv", data)
    got = [(r.number, r.text, r.id) for r in read(p, "csv", id_field="id")]
    assert got == [(1, 'great, "really"', "1"), (2, "two\r\nlines", "2"), (3, "", "3")]


def test_csv_skip_blank_skips_empty_text(tmp_path):
    p = write(tmp_path / "r.csv", b"text\nfirst\n\"\"\nthird\n")
    assert [(r.number, r.text) for r in read(p, "csv")] == [(1, "first"), (2, ""), (3, "third")]
    assert [(r.number, r.text) for r in read(p, "csv", skip_blank=True)] == [(1, "first"), (3, "third")]


@pytest.mark.parametrize("data, kw, message", [
    (b"", {}, "{p}: empty file, expected a header row"),
    (b"id,review\n1,great\n", {}, "{p}: no column 'text' (--text-field); columns: id, review"),
    (b"text,stars\ngreat,9\n", {"id_field": "id"}, "{p}: no column 'id' (--id-field); columns: text, stars"),
    (b"id,text\n1,great\n2,too,many\n", {}, "{p}:3: 3 fields, the header has 2"),
    (b"id,text\n1,great\n2\n", {}, "{p}:3: 1 fields, the header has 2"),
])
def test_csv_errors(tmp_path, data, kw, message):
    p = write(tmp_path / "r.csv", data)
    with pytest.raises(InputError) as e:
        read(p, "csv", **kw)
    assert str(e.value) == message.format(p=p)


# -- checks before scoring ------------------------------------------------------------------
def test_check_inputs_refuses_missing_directory_and_binary(tmp_path):
    ok = write(tmp_path / "ok.txt", b"fine\n")
    binary = write(tmp_path / "x.gz", b"\x1f\x8b\x08\x00\x00\x00\x00\x00\nmore")
    cases = {str(tmp_path / "missing.txt"): f"{tmp_path / 'missing.txt'}: no such file",
             str(tmp_path): f"{tmp_path}: is a directory",
             binary: f"{binary}:1: NUL byte: binary input (or not UTF-8 text) is not supported"}
    for bad, message in cases.items():
        with pytest.raises(InputError) as e:
            check_inputs([ok, bad])
        assert str(e.value) == message
    with pytest.raises(InputError, match="given more than once"):
        check_inputs(["-", ok, "-"])
    check_inputs([ok, "-"])


def test_check_inputs_accepts_a_pipe_without_reading_it(tmp_path):
    fifo = str(tmp_path / "fifo")
    os.mkfifo(fifo)
    check_inputs([fifo])  # opening a FIFO with no writer would block: it must not be opened here


def test_output_that_is_an_input_is_refused(tmp_path):
    a = write(tmp_path / "a.txt", b"x\n")
    os.symlink(a, tmp_path / "link.txt")
    for output in (a, os.path.join(str(tmp_path), ".", "a.txt"), str(tmp_path / "link.txt")):
        with pytest.raises(InputError) as e:
            check_inputs([a], output)
        assert str(e.value) == f"{output}: output is also an input ({a}); it would be overwritten"
    check_inputs([a], str(tmp_path / "new.csv"))
    check_inputs([a], "-")


def test_output_directory_must_exist(tmp_path):
    with pytest.raises(InputError, match=r"output directory .*nowhere does not exist"):
        check_inputs([], str(tmp_path / "nowhere" / "out.csv"))
    with pytest.raises(InputError, match="output is a directory"):
        check_inputs([], str(tmp_path))


# -- writing --------------------------------------------------------------------------------
def written(fmt, rows, **kw) -> str:
    out = io.StringIO()
    writer = RecordWriter(out, fmt, **kw)
    for record, label, p in rows:
        writer.write(record, label, p)
    writer.start()
    return out.getvalue()


ROWS = [(Record('dir/a "b", c.txt', 1, "t", "id,1"), "positive", 0.9999996),
        (Record("b.txt", 12, "t", 42), "negative", 1e-7)]


def test_csv_output_quotes_and_rounds():
    text = written("csv", ROWS, with_file=True, id_field="id")
    assert text == ('file,line,id,label,probability\n"dir/a ""b"", c.txt",1,"id,1",positive,1.000000\n'
                    "b.txt,12,42,negative,0.000000\n")
    assert list(csv.reader(io.StringIO(text)))[1] == ['dir/a "b", c.txt', "1", "id,1", "positive", "1.000000"]


def test_tsv_output():
    text = written("tsv", ROWS[1:])
    assert text == "line\tlabel\tprobability\n12\tnegative\t0.000000\n"


def test_jsonl_output_keeps_six_decimals_and_id_type():
    lines = written("jsonl", ROWS, with_file=True, id_field="id").splitlines()
    assert lines[1] == '{"file": "b.txt", "line": 12, "id": 42, "label": "negative", "probability": 0.000000}'
    assert json.loads(lines[0]) == {"file": 'dir/a "b", c.txt', "line": 1, "id": "id,1", "label": "positive",
                                    "probability": 1.0}


def test_header_is_written_once_even_without_records():
    assert written("csv", []) == "line,label,probability\n"
    assert written("jsonl", []) == ""


def test_id_field_may_not_clash_with_an_output_column():
    with pytest.raises(InputError, match="--id-field 'label' clashes"):
        RecordWriter(io.StringIO(), "csv", id_field="label")


def test_open_output_renames_into_place_on_success(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("old\n")
    with open_output(str(target)) as f:
        f.write("new\n")
        assert target.read_text() == "old\n"  # nothing visible until it is complete
    assert target.read_text() == "new\n"
    assert os.listdir(tmp_path) == ["out.csv"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o666 & ~umask


def test_open_output_writes_through_a_symlink(tmp_path):
    # e.g. /dev/stdout -> /proc/self/fd/1: the link must survive and its target get the data.
    (tmp_path / "real.csv").write_text("old\n")
    os.symlink("real.csv", tmp_path / "link.csv")
    with open_output(str(tmp_path / "link.csv")) as f:
        f.write("new\n")
    assert os.readlink(tmp_path / "link.csv") == "real.csv"
    assert (tmp_path / "real.csv").read_text() == "new\n"
    assert sorted(os.listdir(tmp_path)) == ["link.csv", "real.csv"]


@pytest.mark.parametrize("error", [InputError("bad line"), KeyboardInterrupt()])
def test_open_output_leaves_nothing_on_failure(tmp_path, error):
    target = tmp_path / "out.csv"
    with pytest.raises(type(error)):
        with open_output(str(target)) as f:
            f.write("partial\n")
            raise error
    assert os.listdir(tmp_path) == []
    target.write_text("old\n")
    with pytest.raises(type(error)):
        with open_output(str(target)) as f:
            raise error
    assert os.listdir(tmp_path) == ["out.csv"] and target.read_text() == "old\n"


# -- scoring --------------------------------------------------------------------------------
class FakeClassifier:
    """Probability = a number read from the text; remembers each batch it was given."""

    labels = ["negative", "positive"]
    threshold = 0.5

    def __init__(self):
        self.batches: list[list[str]] = []

    def predict(self, texts):
        self.batches.append(list(texts))
        return np.array([float(t.split()[1]) if t else 0.0 for t in texts], dtype=np.float32)

    def label_of(self, p, threshold=None):
        return self.labels[p >= (self.threshold if threshold is None else threshold)]


def test_score_stream_writes_every_record_once_in_order():
    rng = np.random.default_rng(0)
    probs = rng.random(1000).round(6)
    records = [Record("f", i + 1, f"r{i} {p}") for i, p in enumerate(probs)]
    out, clf = io.StringIO(), FakeClassifier()
    summary = score_stream(clf, iter(records), RecordWriter(out), batch_size=7)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [int(r["line"]) for r in rows] == list(range(1, 1001))
    assert [r["probability"] for r in rows] == [f"{np.float32(p):.6f}" for p in probs]
    assert [r["label"] for r in rows] == ["positive" if np.float32(p) >= 0.5 else "negative" for p in probs]
    assert [len(b) for b in clf.batches] == [7] * 142 + [6]
    assert (summary.records, summary.positive) == (1000, sum(np.float32(probs) >= 0.5))


def test_score_stream_streams_batch_by_batch():
    # The reader is pulled one batch ahead of the writer at most: memory stays flat.
    out, clf, pulled = io.StringIO(), FakeClassifier(), []

    def records():
        for i in range(50):
            written_lines = out.getvalue().count("\n")
            pulled.append((i, written_lines))
            yield Record("f", i + 1, f"r {i / 50}")

    score_stream(clf, records(), RecordWriter(out), batch_size=10)
    assert all(written_lines >= i - 10 for i, written_lines in pulled)
    assert out.getvalue().count("\n") == 51


def test_score_stream_threshold_overrides_the_model():
    out = io.StringIO()
    records = [Record("f", 1, "a 0.3"), Record("f", 2, "b 0.2")]
    summary = score_stream(FakeClassifier(), records, RecordWriter(out), threshold=0.25)
    assert [r["label"] for r in csv.DictReader(io.StringIO(out.getvalue()))] == ["positive", "negative"]
    assert summary.positive == 1


def test_summary_text():
    assert str(Summary(25000, 12001, 2.5)) == "scored 25000 records (12001 positive) in 2.50 s, 10000 reviews/s"
    assert str(Summary(1, 0, 0.0)) == "scored 1 record (0 positive) in 0.00 s, 0 reviews/s"


def test_progress_line_only_when_enabled():
    on, off = io.StringIO(), io.StringIO()
    for stream, enabled in ((on, True), (off, False)):
        progress = Progress(stream, enabled=enabled, interval=0.0)
        progress.update(512)
        progress.message("warning: x")
        progress.clear()
    assert on.getvalue().startswith("\r512 records, ") and "reviews/s" in on.getvalue()
    assert on.getvalue().endswith("\r\033[Kwarning: x\n")
    assert off.getvalue() == "warning: x\n"
