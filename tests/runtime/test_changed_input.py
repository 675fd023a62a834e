"""An input replaced, truncated or written to while a job reads it stops the job with
``FILE: changed while being read`` and nothing written: its rows would otherwise be a mix of
two files, or invented (issue 21, item 1).

The change is made at a fixed point of the run (after the first chunk of output is counted), so
every case is deterministic: pieces cut before it were read from the old file, pieces after it
meet the new one, in this process and in the worker processes alike (the pool keeps a bounded
window of pieces in flight).
"""
from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from runtime import files, output as sinks, records as sources
from runtime.batch import score_file
from runtime.files import ChangedWhileRead

LINES = 4000


def write_input(path, fmt: str) -> None:
    texts = [f"review {i} a {'great' if i % 2 else 'dull'} film" for i in range(LINES)]
    if fmt == "parquet":
        pq.write_table(pa.table({"text": texts}), path, row_group_size=100)
    elif fmt == "csv":
        path.write_text("text\n" + "".join(f"{t}\n" for t in texts))
    elif fmt == "jsonl":
        path.write_text("".join(f'{{"text": "{t}"}}\n' for t in texts))
    else:
        path.write_text("".join(f"{t}\n" for t in texts))


def replace(path):
    other = path.with_name("other" + path.suffix)
    os.rename(path, other)
    write_input(path, "parquet" if path.suffix == ".parquet" else path.suffix[1:])
    other.unlink()


def truncate(path):
    os.truncate(path, 0)


def append(path):
    with open(path, "ab") as f:
        f.write(b'{"text": "one more"}\n' if path.suffix == ".jsonl" else b"one more\n")


def overwrite_in_place(path):
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.seek(size // 2)
        f.write(b"x" * 8)  # same size: only the modification time tells
    os.utime(path, ns=(os.stat(path).st_atime_ns, os.stat(path).st_mtime_ns + 1_000_000))


@pytest.fixture
def changed_after_first_chunk(monkeypatch):
    """Sets up a change of ``path`` right after the first chunk of output is counted."""
    def arm(path, change):
        real, done = sinks.Summary.add, []

        def add(self, chunk):
            real(self, chunk)
            if not done:
                done.append(change(path))
        monkeypatch.setattr(sinks.Summary, "add", add)
        return done
    return arm


# CSV is parsed in the parent whatever the workers: one process covers it.
CASES = [(fmt, workers) for fmt in ("txt", "jsonl", "csv", "parquet") for workers in (1, 2)
         if not (fmt == "csv" and workers == 2)]


@pytest.mark.parametrize("fmt, workers", CASES)
@pytest.mark.parametrize("change", [replace, truncate, append, overwrite_in_place], ids=lambda f: f.__name__)
def test_a_changed_input_stops_the_job_and_writes_nothing(fmt, workers, change, bundle, tmp_path, monkeypatch,
                                                           changed_after_first_chunk):
    monkeypatch.setattr(sources, "CHUNK_BYTES", 4096)  # many pieces of a small file (the parent cuts them)
    path = tmp_path / f"in.{fmt}"
    write_input(path, fmt)
    out = tmp_path / "out.csv"
    done = changed_after_first_chunk(path, change)
    with pytest.raises(ChangedWhileRead) as e:
        score_file(str(path), str(out), model=bundle, workers=workers, batch_size=100)
    assert done and str(e.value) == f"{path}: changed while being read"
    assert os.listdir(tmp_path) == [path.name]  # no output, no temp file


@pytest.mark.parametrize("fmt", ["txt", "jsonl", "csv", "parquet"])
def test_an_unchanged_input_gives_every_row(fmt, bundle, tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "CHUNK_BYTES", 4096)
    path = tmp_path / f"in.{fmt}"
    write_input(path, fmt)
    summary = score_file(str(path), str(tmp_path / "out.csv"), model=bundle, workers=2, batch_size=100)
    assert summary.rows == LINES


def test_read_span_sees_a_file_cut_or_swapped_under_it(tmp_path):
    path = tmp_path / "in.txt"
    path.write_bytes(b"abcdef\n" * 10)
    with open(path, "rb") as f:
        state = files.file_state(f)
    assert files.read_span(str(path), state, 7, 7, "in.txt") == b"abcdef\n"
    os.truncate(path, 20)
    with pytest.raises(ChangedWhileRead, match="^in.txt: changed while being read$"):
        files.read_span(str(path), state, 7, 7, "in.txt")
    path.unlink()
    with pytest.raises(ChangedWhileRead):
        files.read_span(str(path), state, 0, 7, "in.txt")
