import csv
import io
import os
import signal
import time

import numpy as np
import pytest

from runtime import Classifier, records as sources
from runtime.engine import AUTO_WORKERS_MIN_BYTES, WorkerError, WorkerPool, default_workers
from runtime.model import ModelRef
from tests.runtime.faults import predict
from runtime.predict import main


def _workers() -> list[int]:
    """Our spawned worker processes (not multiprocessing's resource tracker)."""
    pids = []
    for task in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{task}/children") as f:
            pids += [int(p) for p in f.read().split()]
    return [p for p in pids if b"spawn_main" in open(f"/proc/{p}/cmdline", "rb").read()]


def test_results_come_back_in_order_and_match(tiny_bundle):
    texts = [f"{'great superb' if i % 3 else 'awful dull'} film number {i}" for i in range(500)]
    batches = [texts[i:i + 7] for i in range(0, len(texts), 7)]
    with WorkerPool(2, ModelRef(tiny_bundle, batch_size=7)) as pool:
        scored = list(pool.map(predict, iter(batches)))
    assert [len(p) for p in scored] == [len(b) for b in batches]  # order, exactly once
    probs = np.concatenate(scored)
    assert np.array_equal(probs, Classifier.load(tiny_bundle).predict(texts))


def test_a_killed_worker_is_an_error(tiny_bundle):
    with WorkerPool(2, ModelRef(tiny_bundle)) as pool:
        results = pool.map(predict, (["a film"] * 8 for _ in range(10_000)))
        next(results)  # the workers are up
        for pid in _workers():
            os.kill(pid, signal.SIGKILL)
        with pytest.raises(WorkerError, match="a worker process died"):
            list(results)


def test_a_model_that_does_not_load_in_workers_is_an_error(tmp_path):
    with WorkerPool(1, ModelRef(str(tmp_path))) as pool:
        with pytest.raises(WorkerError):
            list(pool.map(predict, [["a film"]]))


def test_default_workers():
    assert default_workers(None) == 1 and default_workers(100) == 1
    assert default_workers(AUTO_WORKERS_MIN_BYTES) == (os.cpu_count() or 1)


def test_cli_workers_keep_order_and_output(tiny_bundle, tmp_path, capsys):
    path = tmp_path / "reviews.txt"
    path.write_text("".join(f"{'great' if i % 2 else 'awful'} film {i}\n" for i in range(1000)))
    outputs = []
    for workers in ("1", "2"):
        assert main([str(path), "--model", tiny_bundle, "--workers", workers, "--batch-size", "7"]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1]
    rows = list(csv.DictReader(io.StringIO(outputs[1])))
    assert [int(r["row"]) for r in rows] == list(range(1, 1001))


def test_cli_rejects_zero_workers(capsys):
    assert main(["--text", "x", "--workers", "0"]) == 2
    assert capsys.readouterr().err == "Error: --workers must be at least 1, got 0\n"


def _big_inputs(tmp_path):
    """Files spanning several chunks, with a BOM, CRLF, blank lines and invalid UTF-8."""
    lines = [f"{'great superb' if i % 3 else 'awful'} film {i}".encode() for i in range(2500)]
    lines[10], lines[1500] = b"", b"bad \xff byte"
    a = tmp_path / "a.txt"
    a.write_bytes(b"\xef\xbb\xbf" + b"\r\n".join(lines) + b"\r\n")
    b = tmp_path / "b.jsonl"
    b.write_text("".join(f'{{"id": {i}, "text": "film {i} was great"}}\n' for i in range(2100)))
    return str(a), str(b)


@pytest.mark.parametrize("args", [
    ["{a}"],
    ["{a}", "--skip-blank", "--format", "jsonl"],
    ["{a}", "{a}", "--text", "a great film", "--format", "tsv", "--threshold", "0.3"],
    ["{b}", "--input-format", "jsonl", "--id-field", "id"],
])
def test_workers_give_byte_identical_output(tiny_bundle, tmp_path, capsys, monkeypatch, args):
    monkeypatch.setattr(sources, "CHUNK_BYTES", 4096)  # many pieces per file
    a, b = _big_inputs(tmp_path)
    argv = [x.format(a=a, b=b) for x in args] + ["--model", tiny_bundle]
    outputs = []
    for workers in ("1", "2"):
        assert main(argv + ["--workers", workers]) == 0
        outputs.append(capsys.readouterr())
    assert outputs[0].out == outputs[1].out
    warnings = [line for line in outputs[1].err.splitlines() if line.startswith("warning")]
    assert warnings == [line for line in outputs[0].err.splitlines() if line.startswith("warning")]


def test_workers_read_stdin_in_chunks(tiny_bundle, tmp_path, capsys, monkeypatch):
    import io

    a, _ = _big_inputs(tmp_path)
    assert main([a, "--model", tiny_bundle, "--workers", "1"]) == 0
    expected = capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(open(a, "rb").read())))
    assert main(["-", "--model", tiny_bundle, "--workers", "2", "--batch-size", "300"]) == 0  # pieces of 300 lines
    assert capsys.readouterr().out == expected


def test_workers_report_a_late_nul_byte_and_leave_no_output(tiny_bundle, tmp_path, capsys):
    path = tmp_path / "reviews.txt"
    path.write_bytes(b"a good film\n" * 5000 + b"bin\0ary\n")  # past the 8 KiB checked up front
    out = tmp_path / "out.csv"
    assert main([str(path), "--model", tiny_bundle, "--workers", "2", "-o", str(out)]) == 2
    assert capsys.readouterr().err == (f"Error: {path}:5001: NUL byte: binary input (or not UTF-8 text) "
                                       "is not supported\n")
    assert not out.exists() and os.listdir(tmp_path) == ["reviews.txt"]


def big_result(clf, n: int) -> bytes:
    """A result far larger than a pipe holds: a worker is still sending it when the pool aborts."""
    return b"x" * n


def test_aborting_while_workers_send_large_results_does_not_hang(tiny_bundle):
    # A worker ended mid-message once left the executor's thread waiting for the rest of it
    # forever (this process held a write end of the result pipe): Ctrl-C/SIGTERM never returned.
    import threading

    done = threading.Event()

    def abort_with_results_in_flight():
        with pytest.raises(KeyboardInterrupt):
            with WorkerPool(2, ModelRef(tiny_bundle)) as pool:
                results = pool.map(big_result, (64 << 20 for _ in range(8)))
                next(results)  # the others are being sent now, with nobody reading
                raise KeyboardInterrupt
        done.set()

    thread = threading.Thread(target=abort_with_results_in_flight, daemon=True)
    thread.start()
    assert done.wait(timeout=60), "the pool did not shut down after an abort"


def slow_item(clf, seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def test_an_aborted_pool_ends_without_a_thread_traceback(tiny_bundle, monkeypatch):
    """Futures still queued when the pool aborts are failed by the broken pool, never cancelled
    first: CPython 3.11's executor thread raised InvalidStateError for a cancelled one, a
    traceback on stderr after the one-line error (seen once under stress in test_changed_input)."""
    import threading

    seen = []
    monkeypatch.setattr(threading, "excepthook", lambda args: seen.append(repr(args.exc_value)))
    for _ in range(3):
        with pytest.raises(KeyboardInterrupt):
            with WorkerPool(2, ModelRef(tiny_bundle)) as pool:
                results = pool.map(slow_item, (0.05 for _ in range(40)))
                next(results)  # three more queued or running now
                raise KeyboardInterrupt
    assert seen == []
