"""Native libraries' stderr chatter stays out of our output unless asked for (``--verbose``)."""
from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest

from runtime import model as quiet

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
XNNPACK_LINE = "INFO: Created TensorFlow Lite XNNPACK delegate"


@pytest.fixture(autouse=True)
def not_verbose(monkeypatch):
    monkeypatch.setenv(quiet.VERBOSE_ENV, "0")  # restored after each test, whatever it sets


def test_native_writes_to_fd2_are_dropped_and_fd2_restored(capfd):
    with quiet.native_output():
        os.write(2, b"Error in cpuinfo: noise\n")  # what C code does: straight to the descriptor
        with quiet.native_output():  # nested: restores the outer capture, not the real stderr
            os.write(2, b"inner noise\n")
        os.write(2, b"more noise\n")
    os.write(2, b"ours\n")
    assert capfd.readouterr().err == "ours\n"


def test_python_stderr_before_the_block_is_kept(capfd):
    sys.stderr.write("buffered before\n")  # must be flushed out before fd 2 is swapped
    with quiet.native_output():
        pass
    assert capfd.readouterr().err == "buffered before\n"


def test_verbose_lets_everything_through_and_reaches_child_processes(capfd, monkeypatch):
    quiet.set_verbose(True)
    assert os.environ[quiet.VERBOSE_ENV] == "1"
    with quiet.native_output():
        os.write(2, b"Error in cpuinfo: shown\n")
    assert capfd.readouterr().err == "Error in cpuinfo: shown\n"
    quiet.set_verbose(False)
    assert quiet.VERBOSE_ENV not in os.environ


def test_stderr_restored_after_an_exception_and_across_threads(capfd):
    with pytest.raises(ValueError):
        with quiet.native_output():
            raise ValueError("model failed")

    def noisy():
        for _ in range(50):
            with quiet.native_output():
                os.write(2, b"x")

    threads = [threading.Thread(target=noisy) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    os.write(2, b"still ours\n")
    assert capfd.readouterr().err == "still ours\n"


def _predict_stderr(*args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != quiet.VERBOSE_ENV}
    run = subprocess.run([sys.executable, "-m", "runtime.predict", "--text", "a fine film", "--no-progress",
                          "--backend", "tflite", *args], capture_output=True, text=True, cwd=ROOT, env=env)
    assert run.returncode == 0 and run.stdout.startswith("row,label,probability,error\n")
    return run.stderr


def test_cli_hides_litert_delegate_line_unless_verbose():
    # x86 CPUs all take LiteRT's XNNPACK path, which announces itself on stderr
    quiet_run = _predict_stderr().splitlines()
    assert len(quiet_run) == 1 and quiet_run[0].startswith("scored 1 row ")  # our summary only
    assert XNNPACK_LINE in _predict_stderr("--verbose")
