"""Parallel scoring for ``runtime.predict --workers``: workers parse, score and format chunks.

The parent only reads raw lines and writes back the text the workers return, in input order.
Everything done per record -- decoding, JSON parsing, tokenizing, the model, formatting -- runs
in the workers with the same functions as the single-process path (``records``), so the output
is byte-identical and two processes go nearly twice as fast. csv input is parsed in the parent
(a quoted field may span lines) and only its texts are scored in workers.
"""
from __future__ import annotations

import io
import os
import time
from dataclasses import dataclass
from itertools import islice
from typing import IO, Iterator, Sequence

from . import records
from .records import Record, RecordWriter, Summary

CHUNK_LINES = 1024  # lines per task from stdin: large enough that inter-process traffic is a small cost
CHUNK_BYTES = 4 << 20  # bytes per task from a file (~3,200 IMDB reviews; 1 MiB measured 5-10% slower)


@dataclass(frozen=True)
class Settings:
    """Everything a worker needs to turn raw lines into output rows."""
    input_format: str
    text_field: str
    id_field: str | None
    skip_blank: bool
    output_format: str
    with_file: bool
    threshold: float


@dataclass(frozen=True)
class Chunk:
    settings: Settings
    source: str
    first: int  # physical lines of ``source`` before this chunk
    lines: list[bytes] | None = None  # stdin: the raw lines themselves
    span: tuple[int, int] = (0, 0)  # a regular file: (offset, length), read by the worker

    def raw_lines(self) -> list[bytes]:
        """The chunk's lines, split where file iteration splits (only at b"\n")."""
        if self.lines is not None:
            return self.lines
        with records.open_binary(self.source, None) as f:
            f.seek(self.span[0])
            data = f.read(self.span[1])
        lines = data.split(b"\n")
        if data.endswith(b"\n"):
            lines.pop()
        return lines


@dataclass(frozen=True)
class Scored:
    text: str  # formatted output rows
    records: int
    positive: int
    invalid: int  # lines with invalid UTF-8


def score_chunk(clf, chunk: Chunk) -> Scored:
    """Runs in a worker: the single-process reader and writer applied to one chunk of lines."""
    s = chunk.settings
    lines = records.DecodedLines(chunk.raw_lines(), records.display_name(chunk.source), number=chunk.first)
    reader = records.READERS[s.input_format]
    batch = [r for r in reader(lines, chunk.source, s.text_field, s.id_field)
             if not (s.skip_blank and not r.text.strip())]
    out, summary = io.StringIO(), Summary()
    writer = RecordWriter(out, s.output_format, s.with_file, s.id_field, header=False)
    records.write_batch(clf, batch, clf.predict([r.text for r in batch]), writer, s.threshold, summary)
    return Scored(out.getvalue(), summary.records, summary.positive, lines.invalid)


def raw_chunks(settings: Settings, index: int, path: str, stdin: IO[bytes] | None) -> Iterator[tuple[int, Chunk]]:
    """``(index, chunk)`` for the ``index``-th input. A regular file is cut into byte spans at
    line ends that the workers read themselves (the parent only counts lines); stdin is sent."""
    with records.open_binary(path, stdin) as f:
        first = 0
        if path != records.STDIN and os.path.isfile(path):
            offset = 0
            while block := f.read(CHUNK_BYTES):
                block += f.readline()  # up to the end of the line
                yield index, Chunk(settings, path, first, span=(offset, len(block)))
                first, offset = first + block.count(b"\n"), offset + len(block)
            return
        while lines := list(islice(f, CHUNK_LINES)):
            yield index, Chunk(settings, path, first, lines)
            first += len(lines)


def score_files(pool, clf, settings: Settings, paths: Sequence[str], texts: Sequence[str], stream: IO[str],
                progress=None, stdin: IO[bytes] | None = None, warn=None) -> Summary:
    """``--text`` records (in the parent), then every file in chunks scored by ``pool``'s workers."""
    writer = RecordWriter(stream, settings.output_format, settings.with_file, settings.id_field)
    summary, start = Summary(), time.perf_counter()
    text_records = [Record(records.TEXT_SOURCE, n, t) for n, t in enumerate(texts, 1)
                    if not (settings.skip_blank and not t.strip())]
    records.write_batch(clf, text_records, clf.predict([r.text for r in text_records]), writer,
                        settings.threshold, summary)
    invalid = [0] * len(paths)  # per input, in order (a file may be given twice)
    jobs = (job for index, path in enumerate(paths) for job in raw_chunks(settings, index, path, stdin))
    for index, scored in pool.map(score_chunk, jobs):
        writer.start()
        stream.write(scored.text)
        summary.records += scored.records
        summary.positive += scored.positive
        invalid[index] += scored.invalid
        if progress is not None:
            progress.update(summary.records)
    records.finish(writer, summary, start, progress)
    for path, n in zip(paths, invalid):
        if n:
            (warn or records.warn_stderr)(records.invalid_utf8_message(path, n))
    return summary
