"""A killed job leaves no process and no file behind (Linux: /proc, O_TMPFILE).

The real commands run in subprocesses with ``--workers 2`` on the bundled model and an input
that takes several seconds; the parent gets SIGTERM, SIGINT or SIGKILL while its workers
score. Afterwards no process it started (workers, multiprocessing's resource tracker) is
alive, the output directory holds exactly the old OUTPUT, byte for byte, and a SIGTERM or
Ctrl-C ends with one line and its exit code.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from runtime import files
from runtime.engine import WorkerPool
from tests.runtime.faults import predict

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROWS = 1_000_000  # ~10 s of scoring with two workers: still running when the signal comes
OLD = b"an old output that must survive\n"
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc (Linux)")


@pytest.fixture(scope="module")
def big_input(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("input") / "reviews.txt"
    lines = [f"a {'great' if i % 2 else 'dull'} film number {i}\n" for i in range(1000)]
    path.write_text("".join(lines) * (ROWS // len(lines)))
    return str(path)


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, parent pid, start time) of ``pid``, None when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return fields[0], int(fields[1]), int(fields[19])


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _descendants(root: int) -> dict[int, int]:
    """{pid: start time} of every process below ``root``."""
    parents = {pid: st[1] for pid in _pids() if (st := _stat(pid)) is not None}
    found, frontier = {}, {root}
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier and pid not in found}
        found.update({pid: _stat(pid)[2] for pid in frontier if _stat(pid) is not None})
    return found


def _alive(processes: dict[int, int]) -> list[int]:
    """The ones still running (the same start time: not a reused pid; zombies are dead)."""
    return [pid for pid, start in processes.items()
            if (st := _stat(pid)) is not None and st[2] == start and st[0] != "Z"]


def _strays(marker: str) -> dict[int, int]:
    """Processes whose command line names ``marker`` (our temp directory), but not this one."""
    return {pid: _stat(pid)[2] for pid in _pids()
            if pid != os.getpid() and marker in _cmdline(pid) and _stat(pid) is not None}


def _writing(pid: int, directory: str) -> bool:
    """``pid`` has a file in ``directory`` open (an O_TMPFILE shows as ``DIR/#123 (deleted)``)."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith(directory + os.sep):
                return True
        except OSError:
            pass
    return False


def _start(command: str, big_input: str, out_dir: str) -> tuple[subprocess.Popen, str]:
    output = os.path.join(out_dir, "scores.csv" if command == "predict" else "scores.parquet")
    with open(output, "wb") as f:
        f.write(OLD)
    args = {"predict": ["runtime.predict", big_input, "-o", output],
            "batch": ["runtime.batch", big_input, output]}[command]
    proc = subprocess.Popen([sys.executable, "-m", *args, "--workers", "2"], cwd=REPO,
                            env={**os.environ, "PYTHONPATH": REPO}, stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(os.path.dirname(out_dir), "stderr.txt"), "wb"))
    return proc, output


def _wait_until_scoring(proc: subprocess.Popen, out_dir: str) -> dict[int, int]:
    """Both workers up and the output open: then the children, by pid."""
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, "the job ended before it could be killed"
        assert time.monotonic() < deadline, "the workers never started"
        children = _descendants(proc.pid)
        workers = [p for p in children if "spawn_main" in _cmdline(p)]
        if len(workers) >= 2 and _writing(proc.pid, out_dir):
            time.sleep(0.5)  # well into the scoring
            return _descendants(proc.pid)
        time.sleep(0.05)


@pytest.mark.parametrize("command", ["predict", "batch"])
@pytest.mark.parametrize("sig, code, line", [(signal.SIGTERM, 143, "terminated"),
                                             (signal.SIGINT, 130, "interrupted"),
                                             (signal.SIGKILL, -signal.SIGKILL, None)])
def test_a_killed_job_leaves_no_process_and_no_file(command, sig, code, line, big_input, tmp_path):
    out_dir = str(tmp_path / "out")
    os.mkdir(out_dir)
    proc, output = _start(command, big_input, out_dir)
    children: dict[int, int] = {}
    try:
        children.update(_wait_until_scoring(proc, out_dir))
        assert any("resource_tracker" in _cmdline(p) for p in children)  # the test sees it all
        assert proc.poll() is None
        proc.send_signal(sig)  # to the parent only, as `kill PID` does
        proc.wait(timeout=30)
        children.update(_strays(str(tmp_path)))
        deadline = time.monotonic() + 10
        while _alive(children) and time.monotonic() < deadline:
            time.sleep(0.1)
        survivors = {p: _cmdline(p) for p in _alive(children)}
    finally:
        if proc.poll() is None:
            proc.kill()
        for pid in _alive({**children, **_descendants(proc.pid)}):  # a failed test leaks nothing
            os.kill(pid, signal.SIGKILL)
    assert survivors == {}
    assert not _strays(str(tmp_path))
    assert proc.returncode == code
    assert os.listdir(out_dir) == [os.path.basename(output)]  # no temp name, even after SIGKILL
    with open(output, "rb") as f:
        assert f.read() == OLD
    with open(tmp_path / "stderr.txt") as f:
        err = f.read()
    if line is not None:
        assert err == line + "\n"


def test_workers_end_at_once_when_the_with_block_fails(tmp_path):
    """An error (or Ctrl-C) in the parent does not wait for the batches in flight."""
    with pytest.raises(ZeroDivisionError):
        with WorkerPool(2) as pool:
            results = pool.map(predict, (["a long dull film " * 50] * 256 for _ in range(10_000)))
            next(results)
            workers = _descendants(os.getpid())
            assert len([p for p in workers if "spawn_main" in _cmdline(p)]) == 2
            raise ZeroDivisionError
    assert [p for p in _alive(workers) if "spawn_main" in _cmdline(p)] == []


def test_a_worker_whose_parent_is_gone_exits(tmp_path):
    """The worker's own checks, without the kernel's help: a lifeline whose write end is closed."""
    code = ("import multiprocessing as mp, os, sys, time\n"
            "from runtime import engine as pool\nfrom runtime.model import ModelRef\n"
            "r, w = mp.Pipe(duplex=False)\n"
            "w.close()\n"
            "pool._load(ModelRef(threads=1, batch_size=8), os.getppid(), r)\n"
            "time.sleep(30)\n"
            "sys.exit(0)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env={**os.environ, "PYTHONPATH": REPO},
                          timeout=60)
    assert done.returncode == 70  # EXIT_ORPHANED: the lifeline thread ended it, not the sleep
    code = code.replace("w.close()\n", "").replace("os.getppid()", "os.getppid() + 10**7")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env={**os.environ, "PYTHONPATH": REPO},
                          timeout=60)
    assert done.returncode == 70  # the parent is not who it should be: the race check


# -- outputs: nothing under a name until complete --------------------------------------------
def test_the_output_has_no_directory_entry_while_written(tmp_path):
    out = tmp_path / "scores.csv"
    out.write_bytes(OLD)
    with files.temp_output(out) as tmp, open(tmp, "w") as f:
        f.write("new\n")
        f.flush()
        assert os.listdir(tmp_path) == ["scores.csv"]  # O_TMPFILE: unnamed until committed
        assert out.read_bytes() == OLD
    assert os.listdir(tmp_path) == ["scores.csv"] and out.read_text() == "new\n"
    assert os.stat(out).st_mode & 0o777 == 0o666 & ~_umask()


def test_without_o_tmpfile_a_dead_runs_temp_name_is_removed_by_the_next(tmp_path, monkeypatch):
    """Elsewhere (or on a filesystem without O_TMPFILE): ``.NAME.PID.XXXX.tmp``, cleared later."""
    monkeypatch.setattr(files, "_open_unnamed", lambda parent: None)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    stale = tmp_path / f".scores.csv.{dead}.k2x9q0ab.tmp"
    live = tmp_path / f".scores.csv.{os.getppid()}.k2x9q0ab.tmp"  # another run, still going
    other = tmp_path / f".notes.csv.{dead}.k2x9q0ab.tmp"  # another output's
    for path in (stale, live, other):
        path.write_text("half a file")
    with files.temp_output(tmp_path / "scores.csv") as tmp, open(tmp, "w") as f:
        assert os.path.basename(tmp).startswith(f".scores.csv.{os.getpid()}.")
        f.write("new\n")
    assert sorted(os.listdir(tmp_path)) == sorted([live.name, other.name, "scores.csv"])
    with pytest.raises(ZeroDivisionError):
        with files.temp_output(tmp_path / "scores.csv") as tmp:
            raise ZeroDivisionError
    assert not os.path.exists(tmp) and (tmp_path / "scores.csv").read_text() == "new\n"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
