"""Score reviews on Spark: the local engine's rows, rule and formatting inside ``mapInArrow``.

In your own Spark job (``pip install 'imdb-reviewkit[spark]'`` on the driver and every executor):

    from runtime.spark import score_dataframe
    scored = score_dataframe(reviews, text_col="body", id_col="review_id", model="/models/imdb",
                             keep_columns=["movie_id"])
    # review_id, label, probability (float), error, movie_id

The bundle is zipped into a fresh private temp directory, shipped with ``addArchive`` and
loaded once per Python worker, on one onnxruntime thread (Spark gives each task one core).

``score_file`` is ``python -m runtime.batch --engine spark``: INPUT and OUTPUT are any path or
URI Spark can use (``file://``, ``hdfs://``, ``s3a://``, a local path). OUTPUT is Spark's native
output, a directory of part files and ``_SUCCESS``: one row per input row, no global order;
csv/tsv/jsonl part files hold exactly the bytes the local engine writes for those rows (the
workers format them; csv/tsv parts each start with the header). The driver never reads data
back: the summary counts come from accumulators. A local OUTPUT is written beside it and moved
into place on success; a URI OUTPUT is replaced by Spark (``overwrite``).
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
from dataclasses import dataclass
from typing import IO, Iterator, Sequence

from .engine import Job, WorkerError
from .errors import Failure, Terminated, one_line, require, start_term_watchdog
from .bundle import MANIFEST
from .files import redirected, sha256_file, temp_output
from .model import ModelRef
from .output import Layout, Progress, Summary, check_output, output_format_of
from .records import (CSV, DATAFRAME_OPTIONS, DEFAULT_MAX_RECORD_BYTES, OUTPUT_FORMATS, PARQUET, ROW, TEXT, TSV,
                      InputError, Rows, Spec, canonical, check_names, decode_lines, format_of, jsonl_rows,
                      nul_message, open_source, rows_of_values)

DEFAULT_MASTER = "local[2]"
_OFFSET_BITS = 33  # monotonically_increasing_id(): partition index << 33 | position in partition


def pyspark():
    """pyspark (with pyarrow), or ``MissingExtra`` naming [spark]."""
    require("pyarrow", "spark")
    require("pyspark.sql", "spark")
    return require("pyspark", "spark")


def is_uri(path: str) -> bool:
    return re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", path) is not None


def local_path(path: str) -> str | None:
    """The local file behind ``path`` (a plain path or ``file://``), else None."""
    if path.startswith("file://"):
        from urllib.parse import unquote, urlparse
        return unquote(urlparse(path).path)
    return None if is_uri(path) else path


# -- what the Python workers run --------------------------------------------------------------
@dataclass(frozen=True)
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


_CLASSIFIERS: dict = {}  # one Classifier per Python worker process and model


def _classifier(work: Work):
    from pyspark import SparkFiles

    if work.model not in _CLASSIFIERS:
        _CLASSIFIERS[work.model] = dataclasses.replace(work.model, path=SparkFiles.get(work.model.path)).load()
    return _CLASSIFIERS[work.model]


def score_batches(batches, work: Work):
    """``mapInArrow`` body: Arrow batches of one partition in, encoded output out."""
    import pyarrow as pa

    clf, header = None, work.layout.header()
    for batch in batches:
        rows = _rows(batch, work)
        if not len(rows):
            continue
        clf = clf or _classifier(work)
        chunk = work.layout.encode(rows, clf.predict_proba(rows.texts))
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
    if work.mode in ("column", CSV):
        for value, number in zip(values, numbers if work.mode == CSV else ()):
            if isinstance(value, str) and "\0" in value:  # the NUL rule of the text formats
                raise InputError(nul_message(work.name, number))
        return rows_of_values(work.name, numbers, values, {c: batch.column(c) for c in spec.columns}, spec)
    lines = [decode_lines(raw + b"\n", work.name, n - 1, spec.max_record_bytes)[0] for raw, n in zip(values, numbers)]
    if work.mode == TEXT:
        return rows_of_values(work.name, numbers, lines, {}, spec)
    return jsonl_rows(work.name, lines, numbers, spec)


def _row_numbers(batch, work: Work) -> list[int]:
    """1-based row numbers, as the local engine counts them."""
    import numpy as np

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
    from urllib.parse import unquote, urlparse
    return unquote(urlparse(uri).path) if is_uri(uri) or uri.startswith("file:") else os.path.abspath(uri)


# -- shipping the model -----------------------------------------------------------------------
_SHIPPED: dict = {}  # (application id, manifest digest) -> archive name


def _ship_bundle(spark, clf) -> ModelRef:
    """Zip the bundle (manifest + the files it lists) in a fresh private temp dir, add it to the
    SparkContext (once per application); the model in it, on one thread per task."""
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
    return dataclasses.replace(clf.ref(threads=1), path=_SHIPPED[key])


def _load(model: str | None, backend: str):
    """The Classifier on the driver: checks the bundle before any Spark job starts."""
    from .model import Classifier
    return Classifier.load(model, backend=backend, threads=1)


def _arrow_types(schema, names: Sequence[str]):
    import pyarrow as pa
    from pyspark.sql.pandas.types import to_arrow_type

    return pa.schema([pa.field(n, to_arrow_type(schema[n].dataType)) for n in names])


def _apply(df, work: Work):
    """``mapInArrow`` with the layout's output schema (Parquet) or one ``value`` text column."""
    from functools import partial

    from pyspark.sql import types as T
    from pyspark.sql.pandas.types import from_arrow_schema

    if work.layout.format == PARQUET:
        schema = from_arrow_schema(work.layout.schema())
    else:
        schema = T.StructType([T.StructField("value", T.StringType())])
    return df.mapInArrow(partial(score_batches, work=work), schema)


# -- the public API ---------------------------------------------------------------------------
def score_dataframe(df, text_col: str = "text", id_col: str | None = None, model: str | None = None,
                    backend: str = "auto", keep_columns: Sequence[str] = (), all_scores: bool = False):
    """``df`` scored: ``[id_col,] label, probability, [*labels,] error, *keep_columns``, one row per
    row of df (``all_scores``: a float column per class, named by its label).

    ``text_col`` must be a string column; a bad text scores under the bad-row rule (``error``
    says why, null otherwise). ``model``: a bundle directory (or a model file in one) on the
    driver, ``None`` for the bundled model. Lazy, like any DataFrame. Raises ``InputError`` or
    ``BundleError``.
    """
    pyspark()
    from pyspark.sql import types as T

    keep = tuple(keep_columns)
    check_names(None, df.columns, text_col, id_col, keep, options=DATAFRAME_OPTIONS)
    text_type = df.schema[text_col].dataType
    if not isinstance(text_type, (T.StringType, T.NullType)):
        raise InputError(f"column {text_col!r} is {text_type.simpleString()}, not text")
    clf = _load(model, backend)
    spec = Spec(text_col, id_col, keep)
    layout = Layout(PARQUET, tuple(clf.labels), clf.threshold, id_col, keep,
                    types=_arrow_types(df.schema, spec.columns), all_scores=all_scores)
    work = Work(_ship_bundle(df.sparkSession, clf), layout, spec, "column", "dataframe", text_col)
    scored = _apply(df.select(*dict.fromkeys([text_col, *spec.columns])), work)
    return scored if id_col is not None else scored.drop(ROW)


# -- sessions ---------------------------------------------------------------------------------
def local_session(master: str = DEFAULT_MASTER, app_name: str = "reviewkit-batch", conf: dict | None = None,
                  log: str | None = None):
    """A SparkSession; for ``local[...]`` masters bound to 127.0.0.1 only. UI and console
    progress off, Python workers on this interpreter with this ``runtime`` importable.
    ``log``: send the JVM's own stdout/stderr (log4j, warnings) to this file."""
    pyspark()
    from pyspark.sql import SparkSession

    local = master.startswith("local")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the folder holding runtime/
    paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    if here not in paths:  # the JVM hands its environment to the Python workers
        os.environ["PYTHONPATH"] = os.pathsep.join([here] + [p for p in paths if p])
    builder = SparkSession.builder.master(master).appName(app_name) \
        .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
    if local:
        os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
        builder = builder.config("spark.driver.bindAddress", "127.0.0.1").config("spark.driver.host", "127.0.0.1")
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    with _jvm_output(log):
        return builder.getOrCreate()


@contextmanager
def _jvm_output(path: str | None) -> Iterator[None]:
    """Point fds 1 and 2 at ``path`` while the JVM starts: it inherits them, so its log lines
    (and its Python workers' stderr) go there instead of the terminal."""
    if path is None:
        yield
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        with redirected(fd, (1, 2)):
            yield
    finally:
        os.close(fd)


# -- the CLI engine ---------------------------------------------------------------------------
def score_file(input: str, output: str, *, text_column: str = "text", id_column: str | None = None,
               keep_columns: Sequence[str] = (), model: str | None = None, backend: str = "auto",
               batch_size: int = 4096, input_format: str | None = None, output_format: str | None = None,
               threshold: float | None = None, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
               master: str = DEFAULT_MASTER, spark=None, progress: bool = False, stream: IO[str] | None = None,
               debug: bool = False, conf: dict | None = None, overwrite: bool = False,
               all_scores: bool = False) -> Summary:
    """``python -m runtime.batch --engine spark``: INPUT scored into the directory OUTPUT.

    An existing local OUTPUT directory is replaced only if it is a Spark output (it holds
    ``_SUCCESS``) or ``overwrite`` says so.
    ``spark``: a session to use (else the active one, else a ``local_session(master)`` started
    and stopped here, its JVM log in a temp file kept on failure or with ``debug``).
    """
    pyspark()
    input, output = os.fspath(input), os.fspath(output)
    fmt = canonical(input_format or _format_of(input))
    out_fmt = canonical(output_format or output_format_of(output), OUTPUT_FORMATS)
    keep, local = tuple(keep_columns), local_path(input)
    job = Job(inputs=(local,) if local else (), input_format=fmt, output_format=out_fmt, text_column=text_column,
              id_column=id_column, keep=keep, threshold=threshold, all_scores=all_scores, batch_size=batch_size,
              max_record_bytes=max_record_bytes)  # options, names, a local INPUT: before Spark or the model starts
    if local_path(output) is not None:
        check_output(local_path(output), [local] if local else [], directory=True, overwrite=overwrite)
    spec = job.spec
    source = open_source(local, fmt, spec, batch_size) if local else None
    if local and fmt in (CSV, TSV):  # Spark's CSV reader names no line: our parser checks the file first
        for _ in open_source(local, fmt, spec, batch_size).pieces():
            pass
    clf = _load(model, backend)
    threshold = clf.threshold_of(threshold)  # an N-class bundle refuses one before Spark starts
    start = time.perf_counter()
    with _session(spark, master, conf, debug) as (session, log):
        startup = time.perf_counter() - start if log else 0.0
        with _arrow_batches(session, batch_size), _Watch(session.sparkContext, Progress(stream, enabled=progress)):
            summary = _run(session, input, output, job, threshold, clf, source, log)
        summary.notes.append(f"Spark {session.version} {master if log else 'session'} (start {startup:.1f} s)")
    summary.seconds = time.perf_counter() - start
    return summary


@contextmanager
def _session(spark, master: str, conf: dict | None, debug: bool) -> Iterator[tuple]:
    """``(session, log)``: ``spark``, else the active session (log None), else one started here
    and stopped at the end, its JVM log in a private temp file that is kept only when the job
    failed (not when it was interrupted) or with ``debug``."""
    from pyspark.sql import SparkSession

    session = spark or SparkSession.getActiveSession()
    if session is not None:
        yield session, None
        return
    fd, log = tempfile.mkstemp(prefix="reviewkit-spark-", suffix=".log")
    os.close(fd)
    keep = debug
    try:
        session = _start(master, log, conf)
        yield session, log
    except Exception:
        keep = True
        raise
    finally:
        if session is not None:
            session.stop()
        if not keep and os.path.exists(log):
            os.unlink(log)


@contextmanager
def _arrow_batches(session, batch_size: int) -> Iterator[None]:
    """Arrow batches of ``batch_size`` rows for this job; the session's own setting after it."""
    key = "spark.sql.execution.arrow.maxRecordsPerBatch"
    previous = session.conf.get(key, None)
    session.conf.set(key, str(batch_size))
    try:
        yield
    finally:
        if previous is not None:
            session.conf.set(key, previous)
        else:
            session.conf.unset(key)


class _Watch:
    """A driver thread while the Spark jobs run: ``--progress`` shows the running stages' tasks
    done / total, and SIGINT or SIGTERM cancels the jobs. The signal handler only takes note: a
    Python exception raised inside a blocking py4j call (as the default handlers do) breaks the
    connection that stopping the session still needs. Once the jobs are cancelled the blocking
    call returns and the signal is raised as in the local engine (``interrupted``/``terminated``)."""

    def __init__(self, sc, meter: Progress, interval: float = 0.25):
        self.sc, self.meter, self.interval = sc, meter, interval
        self.caught: int | None = None
        self._saved: dict = {}
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="reviewkit-spark-watch", daemon=True)

    def __enter__(self) -> "_Watch":
        if threading.current_thread() is threading.main_thread():
            self._saved = {s: signal.signal(s, self._note) for s in (signal.SIGINT, signal.SIGTERM)}
        self._thread.start()
        return self

    def _note(self, signum, frame) -> None:
        if self.caught is None and signum == signal.SIGTERM:
            start_term_watchdog()
        self.caught = self.caught or signum

    def _loop(self) -> None:
        while not self._done.wait(self.interval):
            try:
                if self.caught is not None:
                    self.sc.cancelAllJobs()  # again each round: a job may start after the signal
                elif self.meter.enabled:
                    self.meter.update(0, self._tasks())
            except Exception:  # the session is going away: the main thread reports what happened
                return

    def _tasks(self) -> str:
        tracker, done, total = self.sc.statusTracker(), 0, 0
        for stage in tracker.getActiveStageIds():
            info = tracker.getStageInfo(stage)
            if info is not None:
                done, total = done + info.numCompletedTasks, total + info.numTasks
        return f"Spark: {done}/{total} tasks done"

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join()
        self.meter.clear()
        for s, handler in self._saved.items():
            signal.signal(s, handler)
        if self.caught is not None:  # whatever the cancelled job raised
            raise (Terminated() if self.caught == signal.SIGTERM else KeyboardInterrupt()) from None


def _format_of(path: str) -> str:
    local = local_path(path)
    if local is not None:
        return format_of(local)
    return format_of(path.rstrip("/")) if os.path.splitext(path.rstrip("/"))[1] else "parquet"


def _start(master: str, log: str, conf: dict | None = None):
    """``local_session`` for the CLI: a failure to start (no Java, bad master) as one line."""
    try:
        return local_session(master, conf=conf, log=log)
    except Exception as e:  # py4j or pyspark: Spark did not start; the JVM's log says why
        reason = _jvm_reason(log) or _first_line(str(e))
        hint = "Spark needs Java 17+ on the PATH or in JAVA_HOME" if not _java_found() else "its log"
        raise Failure(f"cannot start Spark on {master}: {reason} ({hint}: {log})") from None


def _jvm_reason(log: str) -> str | None:
    """The JVM's own reason for not starting: its log's first exception, without the class name."""
    try:
        with open(log, encoding="utf-8", errors="replace") as f:
            for line in f:
                found = re.search(r"Exception in thread \S+ [\w.$]+: (.+)", line)
                if found:
                    return one_line(found.group(1), 300)
    except OSError:
        pass
    return None


def _java_found() -> bool:
    home = os.environ.get("JAVA_HOME")
    return shutil.which("java") is not None or bool(home and os.path.exists(os.path.join(home, "bin", "java")))


def _read(spark, input: str, fmt: str, source, spec: Spec):
    """(DataFrame of only the columns the workers need, text column, mode, row-number fields of
    ``Work``). Columns are checked against Spark's schema before any scoring job."""
    from pyspark.sql import functions as F

    uri = os.path.abspath(input) if not is_uri(input) else input
    columns = list(dict.fromkeys((spec.text_column,) + spec.columns))
    if fmt in (PARQUET, CSV, TSV):
        if fmt == PARQUET:
            df = spark.read.parquet(uri)
        else:  # CSV has no nulls: an empty field is empty text, as the local engine reads it
            df = spark.read.options(header=True, multiLine=True, escape='"', mode="FAILFAST", inferSchema=False,
                                    encoding="UTF-8", sep="\t" if fmt == TSV else ",").csv(uri)
        check_names(input, df.columns, spec.text_column, spec.id_column, spec.keep)
        text_type = df.schema[spec.text_column].dataType.simpleString()
        if text_type not in ("string", "void"):
            raise InputError(f"{input}: column {spec.text_column!r} is {text_type}, not text (--text-column)")
        if fmt != PARQUET:
            df = df.select(*[F.coalesce(F.col(f"`{c}`"), F.lit("")).alias(c) for c in columns])
        elif spec.id_column is not None:  # the id is the key: no row numbers needed
            return df.select(*columns), None, "column", {}
        else:
            df = df.select(*columns, F.col("_metadata.file_path").alias("__file"),
                           F.col("_metadata.row_index").alias("__index"))
            return df, None, "column", dict(rows="parquet", offsets=_parquet_offsets(df, source))
        if spec.id_column is not None:
            return df, None, CSV, {}
        mode = CSV
    else:  # the raw bytes of each line: the workers decode them as the local engine does
        df = spark.read.text(uri, lineSep="\n").select(F.col("value").cast("binary").alias("__raw"))
        mode = fmt
    # Spark does not number lines: one counting pass gives each partition its first row number
    df = df.withColumn("__mid", F.monotonically_increasing_id())
    counts = dict(df.groupBy(F.spark_partition_id().alias("p")).count().collect())
    offsets, total = [], 0
    for p in range(max(counts, default=-1) + 1):
        offsets.append(total)
        total += counts.get(p, 0)
    return df, "__raw" if mode != CSV else None, mode, dict(rows="partitions", offsets=tuple(offsets))


def _parquet_offsets(df, source) -> tuple:
    """(file URI, rows before it) in name order: from the footers (a local INPUT) or Spark's metadata."""
    if source is not None:
        counts = [(path, source.pa.parquet.ParquetFile(path).metadata.num_rows) for path in source.files]
    else:
        counts = sorted(df.groupBy("__file").count().collect())  # answered from the footers
    pairs, total = [], 0
    for path, n in counts:
        pairs.append((_file_key(path), total))
        total += n
    return tuple(pairs)


def _run(spark, input: str, output: str, job: Job, threshold: float | None, clf, source, log) -> Summary:
    spec = job.spec
    try:
        df, raw, mode, rows = _read(spark, input, job.input_format, source, spec)
        types = _arrow_types(df.schema, spec.columns) if mode in ("column", CSV) else None
        layout = Layout(job.output_format, tuple(clf.labels), threshold, spec.id_column, spec.keep,
                        types=types, all_scores=job.all_scores)
        sc = spark.sparkContext
        counters = tuple(sc.accumulator(0) for _ in range(3))
        work = Work(_ship_bundle(spark, clf), layout, spec, mode, input, raw or spec.text_column,
                    counters=counters, **rows)
        if df.rdd.getNumPartitions() < sc.defaultParallelism:  # e.g. one small file: use every core
            df = df.repartition(sc.defaultParallelism)
        scored = _apply(df, work)
        _write(scored, job.output_format, output)
    except Exception as e:
        raise _spark_error(e, input, output, log) from None
    return Summary(counters[0].value, counters[1].value, counters[2].value, output=output,
                   two_class=clf.num_classes == 2)


def _write(df, fmt: str, output: str) -> None:
    """Spark's native output; a local OUTPUT is written beside it and moved into place."""
    local = local_path(output)
    if local is None:
        _save(df, fmt, output)
        return
    with temp_output(local, directory=True) as tmp:
        target = os.path.join(tmp, "out")
        _save(df, fmt, "file://" + os.path.abspath(target))
        if os.path.isdir(local):
            shutil.rmtree(local)
        os.replace(target, local)


def _save(df, fmt: str, uri: str) -> None:
    writer = df.write.mode("overwrite")
    if fmt == PARQUET:
        writer.parquet(uri)
    else:
        writer.text(uri)


_OURS = re.compile(r"(?m)^\s*(?:[\w.]+\.)?(InputError|BundleError|BackendError|MissingExtra): (.+)$")


def _spark_error(e: Exception, input: str, output: str, log: str | None) -> Exception:
    """A failed Spark job as one line: the one place that reads Spark's error text. Our own
    errors raised in the driver pass through untouched (a bug keeps its traceback)."""
    from .errors import ReviewkitError

    if isinstance(e, ReviewkitError) or not _is_spark(e):
        return e
    text = str(e)
    found = _OURS.search(text)
    if found:
        kind = found.group(1)
        error = InputError if kind in ("InputError", "BundleError", "MissingExtra") else Failure
        return error(found.group(2).strip())
    if "Python worker exited unexpectedly" in text or "crashed" in text:
        return WorkerError(f"a Spark Python worker died while scoring {input} (killed, or out of "
                           f"memory?); {output} was not written")
    detail = _first_line(text)
    if any(k in text for k in ("FAILED_READ_FILE", "MALFORMED", "PATH_NOT_FOUND", "UNABLE_TO_INFER_SCHEMA")):
        return InputError(f"{input}: Spark cannot read it: {detail}")
    where = f" (Spark log: {log})" if log else ""
    return Failure(f"Spark job failed: {detail}{where}")


def _is_spark(e: Exception) -> bool:
    names = {c.__module__.split(".")[0] for c in type(e).__mro__}
    return bool(names & {"py4j", "pyspark"})


def _first_line(text: str) -> str:
    """The most telling line of a py4j/Spark error: the first ``[ERROR_CLASS] ...`` or ``...Exception: ...``."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for line in lines:
        m = re.search(r"(\[[A-Z_.]+\].*)", line)
        if m:
            return one_line(m.group(1), 300)
    for line in lines:
        if "Exception:" in line or "Error:" in line:
            return one_line(line.split(": ", 1)[-1] if line.startswith(":") else line, 300)
    return one_line(lines[0] if lines else "unknown error", 300)
