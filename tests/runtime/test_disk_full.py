"""A full disk (or any write error) gives one line naming OUTPUT and leaves OUTPUT as it was.

Every writer is driven through its command: ``runtime.predict`` (csv, jsonl, tsv; one process
and ``--workers 2``) and ``runtime.batch`` (csv, jsonl, Parquet). The disk is made full by
writing the output through ``/dev/full``, where every write fails with ``ENOSPC`` from the
kernel (for Python's files and pyarrow's alike); a real filesystem limit is hit through
``RLIMIT_FSIZE`` (``EFBIG``) in a subprocess.
"""
from __future__ import annotations

import errno
import os
import resource
import subprocess
import sys

import pytest

from runtime import batch, files, predict
from runtime.errors import run_cli
from runtime.files import OutputError, temp_output

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OLD = b"an old output that must survive\n"


@pytest.fixture
def full_disk(monkeypatch):
    """Every output is written to /dev/full (ENOSPC on every write); the real temp file
    stays unnamed and is dropped as usual."""

    class FullDisk(files._TempFile):
        def __init__(self, path):
            super().__init__(path)
            self.real_name, self.name = self.name, "/dev/full"

        def close(self):
            self.name = self.real_name
            super().close()

    monkeypatch.setattr(files, "_TempFile", FullDisk)


@pytest.fixture
def reviews(tmp_path) -> str:
    path = tmp_path / "in" / "reviews.txt"
    path.parent.mkdir()
    path.write_text("".join(f"a {'great' if i % 2 else 'dull'} film {i}\n" for i in range(3000)))
    return str(path)


def _old_output(tmp_path, name: str) -> str:
    out = tmp_path / "out" / name
    out.parent.mkdir()
    out.write_bytes(OLD)
    return str(out)


def _untouched(output: str) -> None:
    assert os.listdir(os.path.dirname(output)) == [os.path.basename(output)]  # no temp file
    with open(output, "rb") as f:
        assert f.read() == OLD


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "tsv"])
@pytest.mark.parametrize("workers", ["1", "2"])
def test_predict_on_a_full_disk(fmt, workers, full_disk, reviews, tmp_path, capsys):
    output = _old_output(tmp_path, f"scores.{fmt}")
    code = run_cli(predict.main, [reviews, "-o", output, "--format", fmt, "--workers", workers])
    captured = capsys.readouterr()
    assert (code, captured.out, captured.err) == (2, "", f"Error: {output}: No space left on device\n")
    _untouched(output)


@pytest.mark.parametrize("name", ["scores.parquet", "scores.csv", "scores.jsonl"])
def test_batch_on_a_full_disk(name, full_disk, reviews, tmp_path, capsys):
    output = _old_output(tmp_path, name)
    code = run_cli(batch.main, [reviews, output, "--workers", "1"])
    captured = capsys.readouterr()
    assert (code, captured.out, captured.err) == (2, "", f"Error: {output}: No space left on device\n")
    _untouched(output)


def _limit_file_size():
    resource.setrlimit(resource.RLIMIT_FSIZE, (16 << 10, 16 << 10))  # Python ignores SIGXFSZ: EFBIG


@pytest.mark.parametrize("args, name", [(["runtime.predict", "{input}", "-o", "{output}", "--workers", "2"],
                                         "scores.csv"),
                                        (["runtime.batch", "{input}", "{output}", "--workers", "2"],
                                         "scores.parquet")])
def test_a_real_write_error_in_the_commands(args, name, reviews, tmp_path):
    """The kernel refuses the writes (file size limit): one line, OUTPUT kept, no traceback."""
    output = _old_output(tmp_path, name)
    args = [a.format(input=reviews, output=output) for a in args]
    done = subprocess.run([sys.executable, "-m", *args], cwd=REPO, env={**os.environ, "PYTHONPATH": REPO},
                          capture_output=True, text=True, preexec_fn=_limit_file_size, timeout=300)
    assert (done.returncode, done.stdout, done.stderr) == (2, "", f"Error: {output}: File too large\n")
    _untouched(output)


# -- which errors are the output's --------------------------------------------------------------
def test_a_write_error_chained_to_another_error_is_the_outputs(tmp_path):
    """pyarrow reports ENOSPC, then "closed file" when closed: the chain names the disk."""
    out = tmp_path / "scores.parquet"
    with pytest.raises(OutputError) as caught:
        with temp_output(out):
            try:
                raise OSError(errno.ENOSPC, "Error writing bytes to file")
            finally:
                raise ValueError("Operation on closed file")
    assert str(caught.value) == f"{out}: No space left on device"
    assert isinstance(caught.value, OSError) and caught.value.errno == errno.ENOSPC
    assert caught.value.exit_code == 2 and not out.exists() and os.listdir(tmp_path) == []


def test_an_error_on_another_file_is_not_the_outputs(tmp_path):
    error = OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "elsewhere.log"))
    with pytest.raises(OSError) as caught:
        with temp_output(tmp_path / "scores.csv"):
            raise error
    assert caught.value is error and os.listdir(tmp_path) == []
