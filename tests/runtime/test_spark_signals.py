"""Spark driver processes (subprocesses: no session of this process is active in them).

SIGTERM and Ctrl-C while a Spark job runs (``runtime.batch --engine spark``, local[2]): the
local engine's line and exit code within seconds, the job cancelled, the session stopped, and
nothing left behind -- no OUTPUT, no hidden OUTPUT sibling, no private temp dir or JVM log, no
process (issue 21, item 4)."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from tests.runtime.test_batch import REPO, make_ids, make_texts, write_parquet
from tests.runtime.test_kill import _alive, _cmdline, _descendants

pytest.importorskip("pyspark")
ROWS = 400_000


@pytest.fixture(scope="module")
def big_parquet(tmp_path_factory) -> str:
    texts = make_texts(2000)
    path = tmp_path_factory.mktemp("signals") / "reviews.parquet"
    return write_parquet(path, {"id": make_ids(ROWS), "text": [texts[i % 2000] for i in range(ROWS)]})


def start(tmp_path, big_parquet: str, output: str) -> subprocess.Popen:
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp), "PYTHONPATH": REPO}
    return subprocess.Popen([sys.executable, "-m", "runtime.batch", big_parquet, output, "--engine", "spark",
                             "--id-column", "id", "--batch-size", "1024"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_python_workers(proc: subprocess.Popen, seconds: float = 180) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        tree = _descendants(proc.pid)
        if any("pyspark.daemon" in _cmdline(p) or "pyspark.worker" in _cmdline(p) for p in tree):
            return tree
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    raise AssertionError("no PySpark worker started")


@pytest.mark.parametrize("sig, code, line", [(signal.SIGTERM, 143, "terminated\n"),
                                             (signal.SIGINT, 130, "interrupted\n")])
def test_a_signal_mid_job_ends_like_the_local_engine_and_leaves_nothing(sig, code, line, big_parquet, tmp_path):
    out = tmp_path / "scores.parquet"
    proc = start(tmp_path, big_parquet, str(out))
    tree = {}
    try:
        tree = wait_for_python_workers(proc)
        time.sleep(1.0)  # tasks under way
        sent = time.monotonic()
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=60)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
        for pid in _alive(tree):
            os.kill(pid, signal.SIGKILL)
    assert (proc.returncode, stdout, stderr) == (code, "", line)
    assert took < 9, took  # before the SIGTERM watchdog's 10 s: the job was cancelled
    deadline = time.monotonic() + 30
    while _alive(tree) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _alive(tree) == []
    # .ses: onnxruntime writes it in TMPDIR when it is imported (any user of it), not this job
    assert sorted(os.listdir(tmp_path)) == ["tmp"] and set(os.listdir(tmp_path / "tmp")) <= {".ses"}


def test_a_bad_master_is_named_with_spark_s_reason_not_a_java_hint(tmp_path):
    inp = tmp_path / "in.txt"
    inp.write_text("a good film\n")
    env = {**os.environ, "TMPDIR": str(tmp_path), "PYTHONPATH": REPO}
    done = subprocess.run([sys.executable, "-m", "runtime.batch", str(inp), str(tmp_path / "out"), "--engine", "spark",
                           "--master", "bogus"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    log = re.fullmatch(r"Error: cannot start Spark on bogus: Master must either be yarn or start with spark, k8s, "
                       r"or local \(its log: (.+)\)\n", done.stderr)
    assert done.returncode == 1 and log and os.path.exists(log.group(1)), done.stderr  # kept: the error names it
