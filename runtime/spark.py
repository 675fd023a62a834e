"""Score reviews on Spark: the local engine's rows, bad-row rule and output bytes inside ``mapInArrow``.

Spark plumbing only (reading, row numbers, shipping the bundle, the session, signals, errors): every
row, name and output rule comes from ``records`` and ``output``. The contract is docs/cli.md, "The
Spark engine" and "Scoring inside your own Spark job".
"""
from __future__ import annotations

import atexit
import dataclasses
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
import zipfile
from contextlib import contextmanager
from functools import cache, partial
from itertools import accumulate
from typing import IO, Iterator, Sequence
from urllib.parse import unquote, urlparse

import numpy as np

from .bundle import MANIFEST
from .engine import Job, WorkerError
from .errors import Failure, ReviewkitError, Terminated, one_line, require, start_term_watchdog
from .files import redirected, sha256_file, temp_output
from .model import Classifier, ModelRef
from .output import Layout, Progress, Summary, check_output, output_format_of
from .records import (CLI_OPTIONS, CSV, DATAFRAME_OPTIONS, DEFAULT_MAX_RECORD_BYTES, OUTPUT_FORMATS, PARQUET, ROW,
                      TEXT, TSV, InputError, Rows, Spec, canonical, check_names, decode_lines, format_of,
                      jsonl_rows, nul_message, open_source, rows_of_values)

DEFAULT_MASTER = "local[2]"
_OFFSET_BITS = 33  # monotonically_increasing_id(): partition index << 33 | position in partition


def pyspark() -> None:
    """pyarrow and pyspark, or ``MissingExtra`` naming [spark]."""
    for module in ("pyarrow", "pyspark.sql"):
        require(module, "spark")


def is_uri(path: str) -> bool:
    return re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", path) is not None


def local_path(path: str) -> str | None:
    """The local file behind ``path`` (a plain path or ``file://``), else None."""
    if path.startswith("file://"):
        return unquote(urlparse(path).path)
    return None if is_uri(path) else path


# -- what the Python workers run --------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Work:
    """Everything a Python worker needs (shipped in the ``mapInArrow`` closure)."""
    model: ModelRef  # its path: the SparkFiles name of the zipped bundle
    layout: Layout
    spec: Spec
    mode: str  # column (a typed column) | csv (a CSV/TSV column) | text | jsonl (raw lines)
    name: str  # the input, for messages
    text: str  # the input column holding the text (raw bytes for text/jsonl)
    rows: str | None = None  # None, "parquet" (file + row index) or "partitions" (__mid)
    offsets: tuple = ()  # parquet: ((file, first row), ...); partitions: first row per partition
    counters: tuple = ()  # accumulators: rows, positive, bad


@cache  # one Classifier per Python worker process and model
def _classifier(model: ModelRef) -> Classifier:
    from pyspark import SparkFiles

    return dataclasses.replace(model, path=SparkFiles.get(model.path)).load()


def score_batches(batches, work: Work):
    """``mapInArrow`` body: Arrow batches of one partition in, encoded output out."""
    import pyarrow as pa

    header = work.layout.header()
    for batch in batches:
        rows = _rows(batch, work)
        if not len(rows):
            continue
        chunk = work.layout.encode(rows, _classifier(work.model).predict_proba(rows.texts))
        for counter, n in zip(work.counters, (chunk.rows, chunk.positive, chunk.bad)):
            counter.add(n)
        if work.layout.format == PARQUET:
            yield from chunk.data.to_batches()
        else:  # one value per chunk: Spark's text writer adds the last line break
            yield pa.record_batch([pa.array([header + chunk.data[:-1]])], names=["value"])
            header = ""


def _rows(batch, work: Work) -> Rows:
    """The rows of one Arrow batch, by the local engine's rules (``records``)."""
    numbers, spec = _row_numbers(batch, work), work.spec
    values = batch.column(work.text).to_pylist()
    if work.mode == CSV:  # the NUL rule of the text formats (the values are strings: coalesced)
        for value, number in zip(values, numbers):
            if "\0" in value:
                raise InputError(nul_message(work.name, number))
    if work.mode in ("column", CSV):
        return rows_of_values(work.name, numbers, values, {c: batch.column(c) for c in spec.columns}, spec)
    lines = [decode_lines(raw + b"\n", work.name, n - 1, spec.max_record_bytes)[0] for raw, n in zip(values, numbers)]
    if work.mode == TEXT:
        return rows_of_values(work.name, numbers, lines, {}, spec)
    return jsonl_rows(work.name, lines, numbers, spec)


def _row_numbers(batch, work: Work) -> list[int]:
    """1-based row numbers, as the local engine counts them."""
    if work.rows == "parquet":
        first = dict(work.offsets)
        files = batch.column("__file").dictionary_encode()  # a batch holds rows of one file or a few
        starts = np.array([first[_file_key(f)] for f in files.dictionary.to_pylist()], dtype=np.int64)
        index = batch.column("__index").to_numpy()
        return (starts[files.indices.to_numpy()] + index + 1).tolist()  # measured: 2.4 -> 0.04 us per row
    if work.rows == "partitions":
        mid = batch.column("__mid").to_numpy()
        starts = np.asarray(work.offsets, dtype=np.int64)[mid >> _OFFSET_BITS]
        return (starts + (mid & ((1 << _OFFSET_BITS) - 1)) + 1).tolist()
    return [0] * batch.num_rows  # score_dataframe without an id column: no key is output


def _file_key(uri: str) -> str:
    """A file as both Spark's ``_metadata.file_path`` and a local path name it."""
    return unquote(urlparse(uri).path) if is_uri(uri) or uri.startswith("file:") else os.path.abspath(uri)


# -- the driver side of a job -----------------------------------------------------------------
_SHIPPED: dict = {}  # (application id, manifest digest) -> archive name


def _ship_bundle(spark, clf: Classifier) -> ModelRef:
    """The bundle zipped in a fresh private temp dir, added to the SparkContext once per application."""
    bundle, sc = clf.bundle, spark.sparkContext
    digest = sha256_file(bundle.path(MANIFEST))[:16]  # the manifest pins every file's sha256
    key = (sc.applicationId, digest)
    if key not in _SHIPPED:
        folder = tempfile.mkdtemp(prefix="reviewkit-spark-")  # 0700, never a shared name
        atexit.register(shutil.rmtree, folder, True)
        name = f"reviewkit-bundle-{digest}-{os.path.basename(folder)}.zip"
        with zipfile.ZipFile(os.path.join(folder, name), "w", zipfile.ZIP_DEFLATED) as z:
            for member in [MANIFEST, *bundle.manifest["files"]]:
                z.write(bundle.path(member), member)
        sc.addArchive(os.path.join(folder, name))
        _SHIPPED[key] = name
    return dataclasses.replace(clf.ref(threads=1), path=_SHIPPED[key])  # Spark gives each task one core


def _check_columns(df, where: str | None, spec: Spec, options: Sequence[str] = CLI_OPTIONS) -> None:
    """The columns asked for, in Spark's schema (``check_names``); the text column a string one."""
    check_names(where, df.columns, spec.text_column, spec.id_column, spec.keep, options=options)
    kind = df.schema[spec.text_column].dataType
    if kind.typeName() not in ("string", "void"):  # NullType: a column of nulls
        prefix, hint = (f"{where}: ", f" ({options[0]})") if where else ("", "")
        raise InputError(f"{prefix}column {spec.text_column!r} is {kind.simpleString()}, not text{hint}")


def _scored(df, clf: Classifier, layout: Layout, spec: Spec, **how):
    """``df`` through ``score_batches`` in ``mapInArrow``: the layout's columns (Parquet) or one text ``value``."""
    import pyarrow as pa
    from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_type

    if how["mode"] == "column":  # the id and kept columns typed as in Spark (else all text)
        types = pa.schema([pa.field(c, to_arrow_type(df.schema[c].dataType)) for c in spec.columns])
        layout = dataclasses.replace(layout, types=types)
    work = Work(_ship_bundle(df.sparkSession, clf), layout, spec, **how)
    schema = from_arrow_schema(layout.schema()) if layout.format == PARQUET else "value string"
    return df.mapInArrow(partial(score_batches, work=work), schema)


def score_dataframe(df, text_col: str = "text", id_col: str | None = None, model: str | None = None,
                    backend: str = "auto", keep_columns: Sequence[str] = (), all_scores: bool = False):
    """``df`` scored, lazily: ``[id_col,] label, probability, [*labels,] error, *keep_columns``, one
    row per row of ``df``. Raises ``InputError`` or ``BundleError`` before any job runs."""
    pyspark()
    spec = Spec(text_col, id_col, tuple(keep_columns))
    _check_columns(df, None, spec, DATAFRAME_OPTIONS)
    clf = Classifier.load(model, backend=backend, threads=1)
    layout = Layout(PARQUET, tuple(clf.labels), clf.threshold, id_col, spec.keep, all_scores=all_scores)
    scored = _scored(df.select(*dict.fromkeys([text_col, *spec.columns])), clf, layout, spec,
                     mode="column", name="dataframe", text=text_col)
    return scored if id_col is not None else scored.drop(ROW)


# -- sessions ---------------------------------------------------------------------------------
def local_session(master: str = DEFAULT_MASTER, app_name: str = "reviewkit-batch", conf: dict | None = None, *,
                  log: str):
    """A SparkSession (``local[...]``: on 127.0.0.1 only), UI and console progress off, its Python
    workers on this interpreter with this ``runtime``; ``log``: where the JVM's stdout/stderr go."""
    from pyspark.sql import SparkSession

    os.environ["PYSPARK_PYTHON"] = sys.executable
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the folder holding runtime/
    paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    if here not in paths:  # the JVM hands its environment to the Python workers
        os.environ["PYTHONPATH"] = os.pathsep.join([here] + [p for p in paths if p])
    settings = {"spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false"}
    if master.startswith("local"):
        os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
        settings.update({"spark.driver.bindAddress": "127.0.0.1", "spark.driver.host": "127.0.0.1"})
    builder = SparkSession.builder.master(master).appName(app_name).config(map={**settings, **(conf or {})})
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        with redirected(fd, (1, 2)):  # the JVM inherits them (and so do its Python workers)
            return builder.getOrCreate()
    finally:
        os.close(fd)


@contextmanager
def _session(spark, master: str, conf: dict | None, debug: bool) -> Iterator[tuple]:
    """``(session, log)``: ``spark``, else the active session (log None), else one started here and
    stopped after, its JVM log kept only if the job failed (not interrupted) or with ``debug``."""
    from pyspark.sql import SparkSession

    session = spark or SparkSession.getActiveSession()
    if session is not None:
        yield session, None
        return
    fd, log = tempfile.mkstemp(prefix="reviewkit-spark-", suffix=".log")
    os.close(fd)
    try:
        session = _start(master, log, conf)
        yield session, log
    except Exception:
        debug = True  # kept: a failure names it
        raise
    finally:
        if session is not None:
            session.stop()
        if not debug and os.path.exists(log):
            os.unlink(log)


def _start(master: str, log: str, conf: dict | None):
    """``local_session`` for the CLI: a failure to start (no Java, bad master) as one line."""
    try:
        return local_session(master, conf=conf, log=log)
    except Exception as e:  # py4j or pyspark: Spark did not start; the JVM's log says why
        with open(log, encoding="utf-8", errors="replace") as f:  # its first exception, without the class name
            found = re.search(r"Exception in thread \S+ [\w.$]+: (.+)", f.read())
        reason = one_line(found.group(1), 300) if found else _first_line(str(e))
        home = os.environ.get("JAVA_HOME")
        java = shutil.which("java") or (home and os.path.exists(os.path.join(home, "bin", "java")))
        hint = "its log" if java else "Spark needs Java 17+ on the PATH or in JAVA_HOME"
        raise Failure(f"cannot start Spark on {master}: {reason} ({hint}: {log})") from None


@contextmanager
def _arrow_batches(session, batch_size: int) -> Iterator[None]:
    """Arrow batches of ``batch_size`` rows for this job; the session's own setting after it."""
    key = "spark.sql.execution.arrow.maxRecordsPerBatch"
    previous = session.conf.get(key)  # its default when unset
    session.conf.set(key, str(batch_size))
    try:
        yield
    finally:
        session.conf.set(key, previous)


@contextmanager
def _watch(sc, meter: Progress) -> Iterator[None]:
    """A driver thread that shows ``--progress`` and, on SIGINT or SIGTERM, cancels the jobs: the handler
    only takes note (raising inside a blocking py4j call breaks the connection ``stop()`` needs)."""
    caught, done = [], threading.Event()

    def note(signum, frame) -> None:
        if not caught and signum == signal.SIGTERM:
            start_term_watchdog()
        caught.append(signum)

    def loop() -> None:
        while not done.wait(0.25):
            try:
                if caught:
                    sc.cancelAllJobs()  # again each round: a job may start after the signal
                elif meter.enabled:
                    meter.update(0, _tasks(sc))
            except Exception:  # the session is going away: the main thread reports what happened
                return

    main = threading.current_thread() is threading.main_thread()
    saved = {s: signal.signal(s, note) for s in (signal.SIGINT, signal.SIGTERM)} if main else {}
    thread = threading.Thread(target=loop, name="reviewkit-spark-watch", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        meter.clear()
        for s, handler in saved.items():
            signal.signal(s, handler)
        if caught:  # whatever the cancelled job raised
            raise (Terminated() if caught[0] == signal.SIGTERM else KeyboardInterrupt()) from None


def _tasks(sc) -> str:
    tracker = sc.statusTracker()
    stages = [s for s in map(tracker.getStageInfo, tracker.getActiveStageIds()) if s is not None]
    return f"Spark: {sum(s.numCompletedTasks for s in stages)}/{sum(s.numTasks for s in stages)} tasks done"


# -- the CLI engine ---------------------------------------------------------------------------
def score_file(input: str, output: str, *, text_column: str = "text", id_column: str | None = None,
               keep_columns: Sequence[str] = (), model: str | None = None, backend: str = "auto",
               batch_size: int = 4096, input_format: str | None = None, output_format: str | None = None,
               threshold: float | None = None, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
               master: str = DEFAULT_MASTER, spark=None, progress: bool = False, stream: IO[str] | None = None,
               debug: bool = False, conf: dict | None = None, overwrite: bool = False,
               all_scores: bool = False) -> Summary:
    """``python -m runtime.batch --engine spark``: INPUT scored into the directory OUTPUT. ``spark``:
    a session to use (else the active one, else a ``local_session(master)`` started here)."""
    pyspark()
    input, output = os.fspath(input), os.fspath(output)
    fmt, local = canonical(input_format or _format_of(input)), local_path(input)
    job = Job(inputs=(local,) if local else (), input_format=fmt, output_format=canonical(
              output_format or output_format_of(output), OUTPUT_FORMATS), text_column=text_column,
              id_column=id_column, keep=tuple(keep_columns), threshold=threshold, all_scores=all_scores,
              batch_size=batch_size, max_record_bytes=max_record_bytes)  # options and names: before Spark starts
    check_output(local_path(output), job.inputs, directory=True, overwrite=overwrite)  # None: a URI, Spark's
    source = open_source(local, fmt, job.spec, batch_size) if local else None  # its columns: now
    if source is not None and fmt in (CSV, TSV):  # Spark's CSV reader names no line: ours reads it first
        for _ in source.pieces():
            pass
    clf = Classifier.load(model, backend=backend, threads=1)
    layout = Layout(job.output_format, tuple(clf.labels), clf.threshold_of(threshold), id_column, job.keep,
                    all_scores=all_scores)  # an N-class bundle refuses a threshold before Spark starts
    start = time.perf_counter()
    with _session(spark, master, conf, debug) as (session, log):
        startup = time.perf_counter() - start if log else 0.0
        with _arrow_batches(session, batch_size), _watch(session.sparkContext, Progress(stream, enabled=progress)):
            summary = _run(session, input, output, job, layout, clf, source, log)
        summary.notes.append(f"Spark {session.version} {master if log else 'session'} (start {startup:.1f} s)")
    summary.seconds = time.perf_counter() - start
    return summary


def _format_of(path: str) -> str:
    local = local_path(path)
    if local is not None:
        return format_of(local)
    return format_of(path.rstrip("/")) if os.path.splitext(path.rstrip("/"))[1] else PARQUET


def _run(spark, input: str, output: str, job: Job, layout: Layout, clf, source, log) -> Summary:
    sc = spark.sparkContext
    counters = tuple(sc.accumulator(0) for _ in range(3))
    try:
        df, how = _read(spark, input, job.input_format, source, job.spec)
        if df.rdd.getNumPartitions() < sc.defaultParallelism:  # e.g. one small file: use every core
            df = df.repartition(sc.defaultParallelism)
        _write(_scored(df, clf, layout, job.spec, name=input, counters=counters, **how), job.output_format, output)
    except Exception as e:
        raise _spark_error(e, input, output, log) from None
    return Summary(*(c.value for c in counters), output=output, two_class=clf.num_classes == 2)


def _read(spark, input: str, fmt: str, source, spec: Spec) -> tuple:
    """(DataFrame of the columns the workers need, the ``Work`` fields that read it); the columns
    are checked against Spark's schema before any scoring job."""
    from pyspark.sql import functions as F

    uri = input if is_uri(input) else os.path.abspath(input)
    if fmt not in (PARQUET, CSV, TSV):  # the raw bytes of each line: the workers decode them
        return _numbered(spark.read.text(uri, lineSep="\n").select(F.col("value").cast("binary").alias("__raw")),
                         mode=fmt, text="__raw")
    if fmt == PARQUET:
        df = spark.read.parquet(uri)
    else:
        df = spark.read.options(header=True, multiLine=True, escape='"', mode="FAILFAST", inferSchema=False,
                                encoding="UTF-8", sep="\t" if fmt == TSV else ",").csv(uri)
    _check_columns(df, input, spec)
    columns, text = list(dict.fromkeys((spec.text_column,) + spec.columns)), spec.text_column
    if fmt != PARQUET:  # CSV has no nulls: an empty field is empty text, as the local engine reads it
        df = df.select(*[F.coalesce(F.col(f"`{c}`"), F.lit("")).alias(c) for c in columns])
        return (df, dict(mode=CSV, text=text)) if spec.id_column is not None else _numbered(df, mode=CSV, text=text)
    if spec.id_column is not None:  # the id is the key: no row numbers needed
        return df.select(*columns), dict(mode="column", text=text)
    df = df.select(*columns, F.col("_metadata.file_path").alias("__file"),
                   F.col("_metadata.row_index").alias("__index"))
    return df, dict(mode="column", text=text, rows="parquet", offsets=_parquet_offsets(df, source))


def _numbered(df, **how) -> tuple:
    """Spark does not number lines: one counting pass gives each partition its first row number."""
    from pyspark.sql import functions as F

    df = df.withColumn("__mid", F.monotonically_increasing_id())
    counts = dict(df.groupBy(F.spark_partition_id().alias("p")).count().collect())
    starts = accumulate((counts.get(p, 0) for p in range(max(counts, default=-1) + 1)), initial=0)
    return df, dict(how, rows="partitions", offsets=tuple(starts)[:-1])


def _parquet_offsets(df, source) -> tuple:
    """((file, rows before it), ...) in name order: from the footers (a local INPUT) or Spark's metadata."""
    if source is not None:
        counts = [(path, source.metadata[path].num_rows) for path in source.files]
    else:
        counts = sorted(df.groupBy("__file").count().collect())  # answered from the footers
    starts = accumulate((n for _, n in counts), initial=0)
    return tuple((_file_key(path), start) for (path, _), start in zip(counts, starts))


def _write(df, fmt: str, output: str) -> None:
    """Spark's native output; a local OUTPUT is written beside it and moved into place."""
    writer = df.write.mode("overwrite").format(PARQUET if fmt == PARQUET else "text")
    local = local_path(output)
    if local is None:
        writer.save(output)
        return
    with temp_output(local, directory=True) as tmp:
        target = os.path.join(tmp, "out")
        writer.save("file://" + os.path.abspath(target))
        if os.path.isdir(local):
            shutil.rmtree(local)
        os.replace(target, local)


_OURS = re.compile(r"(?m)^\s*(?:[\w.]+\.)?(InputError|BundleError|BackendError|MissingExtra): (.+)$")


def _spark_error(e: Exception, input: str, output: str, log: str | None) -> Exception:
    """A failed Spark job as one line (the one place that reads Spark's error text); our own errors
    raised in the driver, and bugs, pass untouched."""
    spark_error = {c.__module__.split(".")[0] for c in type(e).__mro__} & {"py4j", "pyspark"}
    if isinstance(e, ReviewkitError) or not spark_error:
        return e
    text = str(e)
    found = _OURS.search(text)
    if found:
        return (Failure if found.group(1) == "BackendError" else InputError)(found.group(2).strip())
    if "Python worker exited unexpectedly" in text or "crashed" in text:
        return WorkerError(f"a Spark Python worker died while scoring {input} (killed, or out of "
                           f"memory?); {output} was not written")
    detail = _first_line(text)
    if any(k in text for k in ("FAILED_READ_FILE", "MALFORMED", "PATH_NOT_FOUND", "UNABLE_TO_INFER_SCHEMA")):
        return InputError(f"{input}: Spark cannot read it: {detail}")
    return Failure(f"Spark job failed: {detail}" + (f" (Spark log: {log})" if log else ""))


def _first_line(text: str) -> str:
    """The most telling line of a py4j/Spark error: the first ``[ERROR_CLASS] ...`` or ``...Exception: ...``."""
    found = re.search(r"\[[A-Z_.]+\].*", text)
    if found:
        return one_line(found.group(), 300)
    for line in map(str.strip, text.splitlines()):
        if "Exception:" in line or "Error:" in line:
            return one_line(line.split(": ", 1)[-1] if line.startswith(":") else line, 300)
    return one_line(text if text.strip() else "unknown error", 300)
