"""Parallel scoring for ``runtime.predict --workers``: workers parse, score and format chunks.

The parent only reads raw lines and writes back the text the workers return, in input order.
Everything done per record -- decoding, JSON parsing, tokenizing, the model, formatting -- runs
in the workers with the same functions as the single-process path (``records``), so the output
is byte-identical and two processes go nearly twice as fast. csv input is parsed in the parent
(a quoted field may span lines) and only its texts are scored in workers.
"""
from __future__ import annotations

import io
import time
from dataclasses import dataclass
from itertools import islice
from typing import IO, Iterator, Sequence

from . import records
from .records import Record, RecordWriter, Summary

CHUNK_LINES = 1024  # lines per task: large enough that inter-process traffic is a small cost


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
    lines: list[bytes]


@dataclass(frozen=True)
class Scored:
    text: str  # formatted output rows
    records: int
    positive: int
    invalid: int  # lines with invalid UTF-8


def score_chunk(clf, chunk: Chunk) -> Scored:
    """Runs in a worker: the single-process reader and writer applied to one chunk of lines."""
    s = chunk.settings
    lines = records.DecodedLines(iter(chunk.lines), records.display_name(chunk.source), number=chunk.first)
    reader = records.READERS[s.input_format]
    batch = [r for r in reader(lines, chunk.source, s.text_field, s.id_field)
             if not (s.skip_blank and not r.text.strip())]
    out, summary = io.StringIO(), Summary()
    writer = RecordWriter(out, s.output_format, s.with_file, s.id_field, header=False)
    records.write_batch(clf, batch, clf.predict([r.text for r in batch]), writer, s.threshold, summary)
    return Scored(out.getvalue(), summary.records, summary.positive, lines.invalid)


def raw_chunks(settings: Settings, index: int, path: str, stdin: IO[bytes] | None) -> Iterator[tuple[int, Chunk]]:
    """``(index, chunk)`` for each ``CHUNK_LINES`` raw lines of ``path`` (the ``index``-th input)."""
    with records.open_binary(path, stdin) as f:
        first = 0
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
    writer.start()  # no records: still a header
    summary.seconds = time.perf_counter() - start
    if progress is not None:
        progress.clear()
    for path, n in zip(paths, invalid):
        if n:
            (warn or records.warn_stderr)(records.invalid_utf8_message(path, n))
    return summary
