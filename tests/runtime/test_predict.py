"""``python -m runtime.predict`` on the tiny bundle: formats, integrity, errors, exit codes.

Most tests call ``main([...])`` in-process; a few run the real command in a subprocess
(stdin piping, exit codes, Ctrl-C, no TensorFlow, an unreadable file).
"""
from __future__ import annotations

import csv
import io
import json
import os
import re
import signal
import shlex
import subprocess
import sys
import time

import numpy as np
import pytest

from runtime.model import Classifier
from runtime.predict import main
from runtime.records import judge
from tests.conftest import tiny_corpus

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SUMMARY = r"scored {n} rows? \({pos} positive(, \d+ with errors)?\) in \d+\.\d\d s, \d+ rows/s"


def run(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def rows(text: str, delimiter=",") -> list[list[str]]:
    return list(csv.reader(io.StringIO(text), delimiter=delimiter))


def write(path, data) -> str:
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return str(path)


def expected(clf: Classifier, texts, threshold=None) -> list[tuple[str, str, str]]:
    """(label, probability, error) as csv cells: the bad-row rule marks blank and U+FFFD texts,
    which have no label or probability."""
    cells = []
    for t, (label, _), p in zip(texts, clf.classify(texts, threshold), clf.predict(texts)):
        error = judge(t)[1]
        cells.append(("", "", error) if error else (label, f"{p:.6f}", ""))  # two classes: P(labels[1])
    return cells


# -- input formats --------------------------------------------------------------------------
def test_lines_to_csv(bundle, clf, tmp_path, capsys):
    texts = ["A great and wonderful film.", "", "Awful, boring mess.", "  "]
    p = write(tmp_path / "reviews.txt", "\n".join(texts) + "\n")
    code, out, err = run(capsys, p, "--model", bundle)
    assert code == 0
    got = rows(out)
    assert got[0] == ["row", "label", "probability", "error"]
    assert [tuple(r) for r in got[1:]] == [(str(i), *e) for i, e in enumerate(expected(clf, texts), 1)]
    positives = sum(e[0] == "positive" for e in expected(clf, texts))
    assert re.fullmatch(SUMMARY.format(n=4, pos=positives) + "\n", err)


def test_jsonl_input_with_id_passthrough(bundle, clf, tmp_path, capsys):
    recs = [{"id": 17, "text": "great film"}, {"id": "b-2", "text": "awful film", "x": 1},
            {"text": "dull", "id": None}]
    p = write(tmp_path / "r.jsonl", "\n".join(json.dumps(r) for r in recs) + "\n")
    code, out, _ = run(capsys, p, "--model", bundle, "--input-format", "jsonl", "--id-field", "id",
                       "--format", "jsonl")
    assert code == 0
    exp = expected(clf, [r["text"] for r in recs])
    assert [json.loads(line) for line in out.splitlines()] == [
        {"id": r["id"], "label": lab, "probability": float(p), "error": None} for r, (lab, p, _) in zip(recs, exp)]
    assert all(line.endswith(f'"probability": {p}, "error": null}}') for line, (_, p, _) in zip(out.splitlines(), exp))


def test_csv_input_with_text_field_and_id(bundle, clf, tmp_path, capsys):
    data = 'review_id,stars,review\r\nr1,9,"Great, great film"\r\nr2,2,"awful\r\nboring"\r\n'
    p = write(tmp_path / "r.csv", "\ufeff" + data)
    code, out, _ = run(capsys, p, "--model", bundle, "--input-format", "csv", "--text-field", "review",
                       "--id-field", "review_id", "--format", "tsv")
    assert code == 0
    exp = expected(clf, ["Great, great film", "awful\r\nboring"])
    assert rows(out, "\t") == [["review_id", "label", "probability", "error"], ["r1", *exp[0]], ["r2", *exp[1]]]


# -- output formats, several sources --------------------------------------------------------
@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl"])
def test_several_files_add_a_first_file_column(bundle, clf, tmp_path, capsys, fmt):
    a = write(tmp_path / "a, one.txt", "great\nawful\n")
    b = write(tmp_path / "b.txt", "dull film\n")
    code, out, _ = run(capsys, "--text", "superb", a, b, "--model", bundle, "--format", fmt)
    assert code == 0
    exp = expected(clf, ["superb", "great", "awful", "dull film"])
    want = [["--text", "1"], [a, "1"], [a, "2"], [b, "1"]]
    want = [w + list(e) for w, e in zip(want, exp)]
    if fmt == "jsonl":
        objs = [json.loads(line) for line in out.splitlines()]
        assert [list(o) for o in objs] == [["file", "row", "label", "probability", "error"]] * 4
        assert [[o["file"], str(o["row"]), o["label"], f"{o['probability']:.6f}", o["error"] or ""]
                for o in objs] == want
    else:
        got = rows(out, "\t" if fmt == "tsv" else ",")
        assert got == [["file", "row", "label", "probability", "error"]] + want


def test_output_file_and_stdout_stays_empty(bundle, clf, tmp_path, capsys):
    p = write(tmp_path / "r.txt", "great\n")
    out_path = tmp_path / "scores.jsonl"
    code, out, err = run(capsys, p, "--model", bundle, "--format", "jsonl", "--output", out_path)
    assert code == 0 and out == "" and err.startswith("scored 1 row ")
    assert json.loads(out_path.read_text()) == {"row": 1, "label": expected(clf, ["great"])[0][0],
                                                "probability": float(expected(clf, ["great"])[0][1]), "error": None}


# -- --text, stdin --------------------------------------------------------------------------
def test_text_without_files_does_not_read_stdin(bundle, clf, monkeypatch, capsys):
    class Exploding(io.TextIOWrapper):
        def read(self, *a):
            raise AssertionError("stdin was read")

    monkeypatch.setattr(sys, "stdin", Exploding(io.BytesIO(b"x\n")))
    code, out, _ = run(capsys, "--text", "great film", "--text", "", "--model", bundle)
    assert code == 0
    assert rows(out)[1:] == [["1", *expected(clf, ["great film"])[0]], ["2", *expected(clf, [""])[0]]]


def test_stdin_by_default_and_with_dash(bundle, clf, monkeypatch, capsys):
    for args in ([], ["-"]):
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"\xef\xbb\xbfgreat\r\nawful\r\n")))
        code, out, _ = run(capsys, *args, "--model", bundle)
        assert code == 0
        assert rows(out)[1:] == [[str(i), *e] for i, e in enumerate(expected(clf, ["great", "awful"]), 1)]


# -- data integrity -------------------------------------------------------------------------
def test_blank_lines_are_records_unless_skipped(bundle, clf, tmp_path, capsys):
    p = write(tmp_path / "r.txt", "great\n\n \nawful")
    _, out, _ = run(capsys, p, "--model", bundle)
    assert [r[0] for r in rows(out)[1:]] == ["1", "2", "3", "4"]
    assert rows(out)[2][1:] == list(expected(clf, [""])[0])
    _, out, err = run(capsys, p, "--model", bundle, "--skip-blank")
    assert rows(out)[1:] == [["1", *expected(clf, ["great"])[0]], ["4", *expected(clf, ["awful"])[0]]]
    assert err.startswith("scored 2 rows ")


def test_crlf_bom_and_invalid_utf8(bundle, clf, tmp_path, capsys):
    p = write(tmp_path / "reviews.txt", b"\xef\xbb\xbfgreat\r\nbad \xff\r\nworse \xc3\x28\r\nfine \xe2\x82\r\nok\r\n")
    code, out, err = run(capsys, p, "--model", bundle)
    assert code == 0
    texts = ["great", "bad \ufffd", "worse \ufffd(", "fine \ufffd", "ok"]
    assert rows(out)[1:] == [[str(i), *e] for i, e in enumerate(expected(clf, texts), 1)]
    assert [r[3] for r in rows(out)[1:]] == ["", *["invalid UTF-8 (replaced with U+FFFD)"] * 3, ""]
    assert err.startswith("scored 5 rows (") and ", 3 with errors)" in err


def test_thousand_records_in_small_batches_are_all_there_in_order(bundle, tmp_path, capsys):
    texts, _ = tiny_corpus(1000, seed=5)
    texts[10], texts[500] = "", "Ünïcödé — great 🎬"
    p = write(tmp_path / "r.txt", "\n".join(texts) + "\n")
    code, out, err = run(capsys, p, "--model", bundle, "--batch-size", "7")
    assert code == 0
    got = rows(out)[1:]
    assert [int(r[0]) for r in got] == list(range(1, 1001))
    same_batches = Classifier.load(bundle, batch_size=7).predict(texts)
    assert [r[2] for r in got] == [f"{p:.6f}" if t else "" for t, p in zip(texts, same_batches)]
    # and the batch size does not change a probability beyond float noise
    default = np.delete(Classifier.load(bundle).predict(texts), 10)
    assert np.abs(np.array([float(r[2]) for r in got if r[2]]) - default).max() <= 1e-6
    assert err.startswith(f"scored 1000 rows ({sum(r[1] == 'positive' for r in got)} positive, 1 with errors)")


def test_threshold_moves_the_labels(bundle, clf, tmp_path, capsys):
    texts, _ = tiny_corpus(40, seed=9)
    p = write(tmp_path / "r.txt", "\n".join(texts) + "\n")
    probs = clf.predict(texts)
    cut = float(np.median(probs))
    _, out, _ = run(capsys, p, "--model", bundle, "--threshold", cut)
    assert [r[1] for r in rows(out)[1:]] == ["positive" if q >= cut else "negative" for q in probs]
    assert 0 < sum(r[1] == "positive" for r in rows(out)[1:]) < 40
    _, out, _ = run(capsys, p, "--model", bundle, "--threshold", "0")
    assert {r[1] for r in rows(out)[1:]} == {"positive"}
    _, default_out, _ = run(capsys, p, "--model", bundle)
    assert [r[1] for r in rows(default_out)[1:]] == [e[0] for e in expected(clf, texts)]


def test_tflite_backend_with_the_tflite_file(bundle, tmp_path, capsys):
    texts, _ = tiny_corpus(30, seed=2)
    p = write(tmp_path / "r.txt", "\n".join(texts) + "\n")
    model = os.path.join(bundle, "model.tflite")
    code, out, _ = run(capsys, p, "--model", model, "--backend", "tflite", "--batch-size", "8", "--threads", "1")
    assert code == 0
    ref = Classifier.load(model, backend="tflite", batch_size=8)
    assert ref.backend_name == "tflite"
    assert [r[2] for r in rows(out)[1:]] == [f"{q:.6f}" for q in ref.predict(texts)]


# -- errors ---------------------------------------------------------------------------------
def assert_error(code, out, err, message):
    assert (code, out, err) == (2, "", f"Error: {message}\n")


def test_missing_file_directory_and_binary_are_refused_before_scoring(bundle, tmp_path, capsys):
    ok = write(tmp_path / "ok.txt", "great\n")
    binary = write(tmp_path / "model.bin", b"\x08\x01\x12\x00\x1a\x04")
    missing = str(tmp_path / "missing.txt")
    out_path = tmp_path / "out.csv"
    for bad, message in ((missing, f"{missing}: no such file or directory"),
                         (str(tmp_path), f"{tmp_path}: is a directory (only Parquet input may be one)"),
                         (binary, f"{binary}:1: NUL byte: binary input (or not UTF-8 text) is not supported")):
        assert_error(*run(capsys, ok, bad, "--model", bundle), message)
        assert_error(*run(capsys, ok, bad, "--model", bundle, "-o", out_path), message)
        assert sorted(os.listdir(tmp_path)) == ["model.bin", "ok.txt"]


def test_error_midway_leaves_no_output_file_and_keeps_the_old_one(bundle, tmp_path, capsys):
    lines = [json.dumps({"text": f"great film {i}"}) for i in range(600)]
    lines[450] = '{"text": "unterminated'
    p = write(tmp_path / "r.jsonl", "\n".join(lines) + "\n")
    out_path = tmp_path / "out.csv"
    out_path.write_text("previous results\n")
    code, out, err = run(capsys, p, "--model", bundle, "--input-format", "jsonl", "--batch-size", "7", "-o", out_path)
    assert_error(code, out, err, f"{p}:451: invalid JSON: Unterminated string starting at (column 10)")
    assert out_path.read_text() == "previous results\n"
    assert sorted(os.listdir(tmp_path)) == ["out.csv", "r.jsonl"]


@pytest.mark.parametrize("lines, message", [  # the first object names the fields, as a header does
    (['', '{"body": "b", "id": 2}'], "{p}:2: no field 'text' (--text-column); fields: body, id"),
    (['{"text": "a"}', '{"text": "a", "id": 1}'], "{p}:1: no field 'id' (--id-column); fields: text"),
    (['{"text": "a", "id": 1}', '[1]'], "{p}:2: expected a JSON object, got an array"),
])
def test_jsonl_record_errors(bundle, tmp_path, capsys, lines, message):
    p = write(tmp_path / "r.jsonl", "\n".join(lines) + "\n")
    code, out, err = run(capsys, p, "--model", bundle, "--input-format", "jsonl", "--id-field", "id")
    assert code == 2 and err == f"Error: {message.format(p=p)}\n"
    assert "Traceback" not in err


def test_csv_header_errors_print_no_data(bundle, tmp_path, capsys):
    p = write(tmp_path / "r.csv", "id,review\n1,great\n")
    assert_error(*run(capsys, p, "--model", bundle, "--input-format", "csv"),
                 f"{p}: no column 'text' (--text-column); columns: id, review")
    empty = write(tmp_path / "e.csv", "")
    assert_error(*run(capsys, empty, "--model", bundle, "--input-format", "csv"),
                 f"{empty}: empty file, expected a header row")


def test_output_that_is_an_input_is_refused(bundle, tmp_path, capsys):
    p = write(tmp_path / "r.txt", "great\n")
    assert_error(*run(capsys, p, "--model", bundle, "--output", tmp_path / "." / "r.txt"),
                 f"{tmp_path / '.' / 'r.txt'}: output is also an input ({p}); it would be overwritten")
    assert (tmp_path / "r.txt").read_text() == "great\n"


@pytest.mark.parametrize("args, message", [
    (["--batch-size", "0"], "--batch-size must be at least 1, got 0"),
    (["--threads", "0"], "--threads must be at least 1, got 0"),
    (["--threshold", "1.5"], "--threshold must be between 0 and 1, got 1.5"),
    (["--threshold", "-0.1"], "--threshold must be between 0 and 1, got -0.1"),
    (["--threshold", "nan"], "--threshold must be between 0 and 1, got nan"),
    (["--id-field", "id"], "plain text has no columns: --id-column and --keep-columns need Parquet, CSV, "
                           "TSV or JSONL input"),
    (["--input-format", "jsonl", "--id-field", "label"], "column 'label' clashes with the output column of that name"),
    (["-", "-"], "'-' (stdin) given more than once"),
])
def test_bad_options(args, message, bundle, capsys):
    assert_error(*run(capsys, "--text", "x", *args, "--model", bundle), message)


@pytest.mark.parametrize("args, fragment", [
    (["--backend", "foo"], "argument --backend: invalid choice: 'foo'"),
    (["--batch-size", "many"], "argument --batch-size: invalid int value: 'many'"),
    (["--format", "xml"], "argument --format: invalid choice: 'xml'"),
])
def test_argparse_errors_exit_2(args, fragment, capsys):
    code, out, err = run(capsys, "--text", "x", *args)
    assert code == 2 and out == "" and fragment in err and "Traceback" not in err


def test_bundle_problems_are_one_line_errors(bundle, tmp_path, capsys):
    assert_error(*run(capsys, "--text", "x", "--model", tmp_path),
                 f"{tmp_path / 'manifest.json'}: missing (not a model bundle?)")
    assert_error(*run(capsys, "--text", "x", "--model", tmp_path / "nope"),
                 f"{tmp_path / 'nope'}: no such bundle directory")
    code, _, err = run(capsys, "--text", "x", "--model", os.path.join(bundle, "model.onnx"), "--backend", "tflite")
    assert code == 2 and err.startswith("Error: ") and "needs the onnx backend" in err and err.count("\n") == 1


def test_keyboard_interrupt_exits_130_without_partial_output(bundle, tmp_path, capsys, monkeypatch):
    p = write(tmp_path / "r.txt", "great\n" * 100)
    calls = []

    def interrupted(self, texts):
        calls.append(len(texts))
        raise KeyboardInterrupt

    monkeypatch.setattr(Classifier, "predict_proba", interrupted)
    code, out, err = run(capsys, p, "--model", bundle, "--batch-size", "10", "-o", tmp_path / "out.csv")
    assert (code, out, err) == (130, "", "interrupted\n")
    assert calls == [100] and os.listdir(tmp_path) == ["r.txt"]


def test_help_has_examples(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "examples:\n  python -m runtime.predict reviews.txt" in out


# -- the real command -----------------------------------------------------------------------
def command(*args, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": REPO}
    return subprocess.run([sys.executable, "-m", "runtime.predict", *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, **kw)


def test_subprocess_stdin_pipe_and_exit_codes(bundle, clf, tmp_path):
    done = command("-", "--model", bundle, "--format", "jsonl", input="great film\nawful film\n".encode())
    assert done.returncode == 0, done.stderr
    exp = expected(clf, ["great film", "awful film"])
    assert [json.loads(line) for line in done.stdout.decode().splitlines()] == [
        {"row": i, "label": lab, "probability": float(p), "error": None} for i, (lab, p, _) in enumerate(exp, 1)]
    assert done.stderr.decode().startswith("scored 2 rows")
    missing = command(tmp_path / "missing.txt", "--model", bundle)
    assert (missing.returncode, missing.stdout, missing.stderr.decode()) == (
        2, b"", f"Error: {tmp_path / 'missing.txt'}: no such file or directory\n")


def test_subprocess_closed_pipe_stops_quietly(bundle, tmp_path):
    # `... | head -1`: the reader goes away; exit 141 (128 + SIGPIPE) without a traceback.
    p = write(tmp_path / "r.txt", "a great film\n" * 20000)
    # PYTHONUNBUFFERED (as CI sets it): sys.stdout over a raw FileIO once swallowed the short write
    proc = subprocess.Popen([sys.executable, "-m", "runtime.predict", p, "--model", bundle], cwd=REPO,
                            env={**os.environ, "PYTHONPATH": REPO, "PYTHONUNBUFFERED": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.readline() == b"row,label,probability,error\n"
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141 and err == ""


def test_subprocess_never_imports_tensorflow(bundle):
    code = ("import sys\nfrom runtime.predict import main\n"
            f"rc = main(['--text', 'great film', '--model', {bundle!r}])\n"
            "print(rc, sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')), file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": REPO})
    assert done.stdout.startswith("row,label,probability,error\n1,")
    assert done.stderr.splitlines()[-1] == "0 []"


def _has_open_file(pid: int, directory: str) -> bool:
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith(directory + os.sep):
                return True
        except OSError:  # closed meanwhile
            pass
    return False


def test_subprocess_ctrl_c_exits_130_and_removes_the_temp_file(bundle, tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    env = {**os.environ, "PYTHONPATH": REPO}
    proc = subprocess.Popen([sys.executable, "-m", "runtime.predict", "-", "--model", bundle, "--batch-size", "2",
                             "-o", str(out_dir / "scores.csv")], cwd=REPO, env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        proc.stdin.write(b"great\nawful\ngreat\n")
        proc.stdin.flush()
        deadline = time.monotonic() + 30
        while not _has_open_file(proc.pid, str(out_dir)):  # the output (unnamed: O_TMPFILE) is open
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        time.sleep(0.2)  # now blocked reading stdin, which stays open
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and err.decode() == "interrupted\n"
    assert os.listdir(out_dir) == []


# As root, mode 000 does not stop a read (CAP_DAC_OVERRIDE): drop that capability and
# CAP_DAC_READ_SEARCH from the bounding set, then exec the command, which then runs without them.
DROP_DAC_AND_EXEC = """\
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
    if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
        raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")
os.execv(sys.executable, [sys.executable, "-m", "runtime.predict", *sys.argv[1:]])
"""


def test_subprocess_unreadable_file(tmp_path):
    path = write(tmp_path / "secret.txt", "great\n")
    os.chmod(path, 0)
    try:
        argv = [sys.executable] + (["-c", DROP_DAC_AND_EXEC] if os.geteuid() == 0 else ["-m", "runtime.predict"])
        done = subprocess.run([*argv, path], cwd=REPO, capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": REPO})
        expected = (2, "", f"Error: {path}: cannot read: Permission denied\n")
        assert (done.returncode, done.stdout, done.stderr) == expected
    finally:
        os.chmod(path, 0o600)


@pytest.mark.parametrize("fmt", ["text", "jsonl", "csv"])
def test_workers_write_the_same_bytes_as_one_process(bundle, tmp_path, capsys, monkeypatch, fmt):
    texts, _ = tiny_corpus(3000, seed=4)
    texts[7], texts[100] = "", "bad \ufffd"
    if fmt == "text":
        data = "\n".join(texts) + "\n"
    elif fmt == "jsonl":
        data = "".join(json.dumps({"text": t, "id": i}) + "\n" for i, t in enumerate(texts))
    else:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows([["id", "text"]] + [[i, t] for i, t in enumerate(texts)])
        data = buf.getvalue()
    p = write(tmp_path / f"in.{fmt}", data)
    monkeypatch.setattr("runtime.records.CHUNK_BYTES", 20_000)  # several pieces per worker
    outs = []
    for workers in ("1", "2"):
        code, out, _ = run(capsys, p, "--input-format", fmt, "--workers", workers, "--batch-size", "300",
                           "--model", bundle, "--format", "jsonl")
        outs.append(out)
        assert code == 0
    assert outs[0] == outs[1] and len(outs[0].splitlines()) == 3000


@pytest.mark.parametrize("args, redirect, message", [
    (["-"], "0<&-", "Error: stdin is closed\n"),
    (["--text", "good"], "1>&-", "Error: stdout is closed\n"),
    (["--text", "good", "--output", "{out}", "-"], "0<&- 1>&-", "Error: stdin is closed\n"),
])
def test_a_closed_stdin_or_stdout_is_one_error_line(args, redirect, message, bundle, tmp_path):
    out = tmp_path / "scores.csv"
    argv = " ".join(shlex.quote(a.format(out=out)) for a in [sys.executable, "-m", "runtime.predict", *args,
                                                               "--model", bundle])
    done = subprocess.run(["bash", "-c", f"{argv} {redirect}"], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert (done.returncode, done.stderr) == (2, message) and not out.exists()


def test_with_stdout_closed_an_output_file_is_still_written(bundle, tmp_path):
    out = tmp_path / "scores.csv"
    argv = shlex.join([sys.executable, "-m", "runtime.predict", "--text", "good", "--output", str(out),
                       "--model", bundle, "--no-progress"])
    done = subprocess.run(["bash", "-c", f"{argv} 1>&-"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and out.read_text().startswith("row,label,probability,error\n1,")
