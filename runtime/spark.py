"""Score reviews on Spark: the local engine's scorer inside ``mapInPandas``.

In your own Spark job (``pip install 'reviewkit[spark]'`` on the driver and every executor):

    from runtime.spark import score_dataframe
    scored = score_dataframe(reviews, text_col="body", id_col="review_id", model="/models/imdb",
                             keep_columns=["movie_id"])
    # review_id, label, probability (float), error, movie_id

The bundle is zipped on the driver, shipped with ``SparkContext.addArchive`` and loaded once
per Python worker (a module-level cache; workers are reused across tasks), on one
onnxruntime thread since Spark gives each task one core.

``score_file`` is the ``--engine spark`` of ``python -m runtime.batch``: same inputs, outputs,
columns, row numbers and error rules as the local engine. Spark writes a directory, so the
output is made one file by shuffling the (small) scored rows to a single partition, sorting
them by row number there -- input order, as the local engine -- and letting Spark's own writer
write that partition into a temp directory beside OUTPUT; its one part file is then renamed
onto OUTPUT. Scoring stays parallel, the driver never holds the data, and a failed job leaves
OUTPUT untouched. ``local_session`` starts a local session bound to 127.0.0.1 with the UI off.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import sys
import tempfile
import threading
import time
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Iterator, Sequence

import numpy as np

from . import batch, records
from .backends import BackendError
from .batch import ERROR, LABEL, PROBABILITY, RESERVED, ROW, BatchError, WorkerError
from .bundle import MANIFEST, BundleError
from .files import temp_output

DEFAULT_MASTER = "local[2]"
SPARK_EXTRA = "pip install 'reviewkit[spark]'"
_ROW = "__row"  # the internal row number column (CLI only)
_OFFSET_BITS = 33  # monotonically_increasing_id(): partition index << 33 | position in partition


def pyspark():
    """The pyspark module, or a ``BatchError`` naming the extra to install."""
    try:
        import pandas  # noqa: F401  (mapInPandas needs it)
        import pyspark
        import pyspark.sql  # noqa: F401
    except ImportError:
        raise BatchError(f"the spark engine needs PySpark and pandas: {SPARK_EXTRA}") from None
    return pyspark


# -- what the Python workers run --------------------------------------------------------------
@dataclass(frozen=True)
class ScoreConfig:
    """Everything a Python worker needs, shipped inside the ``mapInPandas`` closure."""
    archive: str  # SparkFiles name of the zipped bundle
    model: str
    backend: str
    labels: tuple[str, str]
    threshold: float
    text_column: str
    mode: str = "column"  # column: a text column; lines: text lines; jsonl: JSON lines
    passthrough: tuple[str, ...] = ()  # column mode: copied as they are
    parsed: tuple[str, ...] = ()  # jsonl mode: fields taken from each object, as JSON text
    rows: str | None = None  # None, "parquet" (file + row index) or "partitions" (__mid)
    offsets: tuple = ()  # parquet: ((path, first row), ...); partitions: first row per partition
    name: str = ""  # the input, for messages
    crash_at: int | None = None  # test hook (batch.CRASH_ENV): os._exit on this frame of a partition
    out_columns: tuple[str, ...] = ()


_CLASSIFIERS: dict = {}  # one Classifier per Python worker process and model


def _classifier(cfg: ScoreConfig):
    from pyspark import SparkFiles

    from .classifier import Classifier

    key = (SparkFiles.get(cfg.archive), cfg.model, cfg.backend)
    if key not in _CLASSIFIERS:  # threads=1: Spark gives each Python worker one core
        _CLASSIFIERS[key] = Classifier.load(key[0], backend=cfg.backend, model=cfg.model, threads=1)
    return _CLASSIFIERS[key]


def _score_frames(frames, cfg: ScoreConfig):
    """``mapInPandas`` body: pandas frames in, scored frames out (same rows, same order)."""
    clf = None
    for index, frame in enumerate(frames):
        if cfg.crash_at == index:
            os._exit(70)
        clf = clf or _classifier(cfg)
        yield _score_frame(clf, frame, cfg)


def _score_frame(clf, frame, cfg: ScoreConfig):
    import pandas as pd

    out: dict = {}
    if cfg.mode == "jsonl":
        numbers = _row_numbers(frame, cfg)
        lines = [_line(v, n) for v, n in zip(frame["value"], numbers)]
        rows, values, parsed = batch.parse_jsonl(lines, numbers.tolist(), cfg.name, cfg.text_column, cfg.parsed)
        out[_ROW] = np.asarray(rows, dtype=np.int64)
        out.update(parsed)
    else:
        if cfg.rows is not None:
            out[_ROW] = _row_numbers(frame, cfg)
        column = frame[cfg.text_column]
        if cfg.mode == "lines":
            values = [_line(v, n) for v, n in zip(column, out[_ROW])]
        else:  # a string column: anything else is a null
            values = [v if isinstance(v, str) else None for v in column]
        out.update({c: frame[c] for c in cfg.passthrough})
    probs, errors = batch.score_values(clf, values, cfg.text_column)
    out[LABEL] = batch.labels_of(probs, cfg.labels, cfg.threshold)
    out[PROBABILITY] = probs
    out[ERROR] = errors
    return pd.DataFrame(out, columns=list(cfg.out_columns))


def _line(line: str, number: int) -> str:
    """A text line as the local engine reads it: Spark split on \\n only (lineSep), so drop a
    CR left by CRLF, and the BOM of the first line."""
    line = line[:-1] if line.endswith("\r") else line
    return line[1:] if number == 1 and line.startswith("\ufeff") else line


def _row_numbers(frame, cfg: ScoreConfig) -> np.ndarray:
    """1-based row numbers, as the local engine counts them."""
    if cfg.rows == "parquet":
        from urllib.parse import unquote, urlparse
        first = dict(cfg.offsets)
        starts = frame["__file"].map(lambda uri: first[unquote(urlparse(uri).path)])
        return (starts.to_numpy(np.int64) + frame["__index"].to_numpy(np.int64) + 1).astype(np.int64)
    mid = frame["__mid"].to_numpy(np.int64)
    starts = np.asarray(cfg.offsets, dtype=np.int64)[mid >> _OFFSET_BITS]
    return starts + (mid & ((1 << _OFFSET_BITS) - 1)) + 1


# -- shipping the model -----------------------------------------------------------------------
_SHIPPED: set = set()  # (application id, archive name) already added


def _ship_bundle(spark, bundle) -> str:
    """Zip the bundle (manifest + the files it lists), add it to the SparkContext; its name."""
    with open(bundle.path(MANIFEST), "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]  # the manifest pins every file's sha256
    name = f"reviewkit-bundle-{digest}.zip"
    folder = os.path.join(tempfile.gettempdir(), f"reviewkit-spark-{os.getuid()}")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, name)
    if not os.path.exists(path):
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f, zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as z:
                for member in [MANIFEST, *bundle.manifest["files"]]:
                    z.write(bundle.path(member), member)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    sc = spark.sparkContext
    key = (sc.applicationId, name)
    if key not in _SHIPPED:
        sc.addArchive(path)
        _SHIPPED.add(key)
    return name


def _load(model: str | None, backend: str):
    """The Classifier on the driver: checks the bundle before any Spark job starts."""
    from .classifier import Classifier
    return Classifier.load(model, backend=backend, threads=1)


# -- the public API ---------------------------------------------------------------------------
def score_dataframe(df, text_col: str = "text", id_col: str | None = None, model: str | None = None,
                    backend: str = "auto", keep_columns: Sequence[str] = ()):
    """``df`` scored: ``[id_col,] label, probability, error, *keep_columns``, one row per row of df.

    ``text_col`` must be a string column; a null scores as empty text with ``error`` =
    ``"text is null"`` (``error`` is null otherwise). ``model``: a bundle directory (or a model
    file in one) on the driver, ``None`` for the bundled model; it is shipped to the executors.
    Lazy, like any DataFrame: nothing runs until an action. Raises ``BatchError``/``BundleError``.
    """
    pyspark()
    from pyspark.sql import types as T

    keep = tuple(keep_columns)
    passthrough = ([id_col] if id_col is not None else []) + list(keep)
    fields = {f.name: f for f in df.schema.fields}
    for col, what in [(text_col, "text_col")] + [(c, "id_col / keep_columns") for c in passthrough]:
        if col not in fields:
            raise BatchError(f"no column {col!r} ({what}); columns: {', '.join(df.columns)}")
    if not isinstance(fields[text_col].dataType, (T.StringType, T.NullType)):
        raise BatchError(f"column {text_col!r} is {fields[text_col].dataType.simpleString()}, not text")
    for col in passthrough:
        if col in RESERVED:
            raise BatchError(f"column {col!r} clashes with the output column of that name")
    if len(set(passthrough)) != len(passthrough):
        raise BatchError("a column is asked for twice (id_col / keep_columns)")
    clf = _load(model, backend)
    cfg = _config(df.sparkSession, clf, text_col, passthrough=tuple(passthrough))
    leading = [fields[id_col]] if id_col is not None else []
    return _apply(df.select(*dict.fromkeys([text_col, *passthrough])), cfg, leading, [fields[c] for c in keep])


def _config(spark, clf, text_column: str, **kw) -> ScoreConfig:
    archive = _ship_bundle(spark, clf.bundle)
    return ScoreConfig(archive, clf.model, clf.backend_name, tuple(clf.labels), clf.threshold,
                       text_column, crash_at=batch._crash_at(), **kw)


def _apply(df, cfg: ScoreConfig, leading: list, trailing: list = ()):
    """mapInPandas with the output schema ``leading + label, probability, error + trailing``."""
    from functools import partial

    from pyspark.sql import types as T

    fields = list(leading) + [T.StructField(LABEL, T.StringType()), T.StructField(PROBABILITY, T.FloatType()),
                              T.StructField(ERROR, T.StringType())] + list(trailing)
    schema = T.StructType(fields)
    cfg = dataclasses.replace(cfg, out_columns=tuple(f.name for f in fields))
    return df.mapInPandas(partial(_score_frames, cfg=cfg), schema)


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
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for f in (fd, *saved):
            os.close(f)


# -- the CLI engine ---------------------------------------------------------------------------
def score_file(input: str, output: str, *, text_column: str = "text", id_column: str | None = None,
               keep_columns: Sequence[str] = (), model: str | None = None, backend: str = "auto",
               batch_size: int = batch.DEFAULT_BATCH_SIZE, master: str = DEFAULT_MASTER, spark=None,
               progress: bool = False, stream: IO[str] | None = None) -> batch.Summary:
    """``python -m runtime.batch --engine spark``: as ``batch.score_file``, on Spark.

    ``spark``: a session to use (else the active one, else a ``local_session(master)`` started
    and stopped here, its JVM log in a temp file). ``batch_size`` sets Arrow's records per batch.
    """
    job = batch.plan(input, output, text_column, id_column, keep_columns, model, backend, batch_size)
    pyspark()
    batch.pyarrow()
    start = time.perf_counter()
    reader = _Reader(job)  # checks the input's columns before Spark or the model starts
    clf = _load(job.model, job.backend)
    from pyspark.sql import SparkSession

    session, log = spark or SparkSession.getActiveSession(), None
    owned = session is None
    startup = time.perf_counter()
    if owned:
        log = os.path.join(tempfile.gettempdir(), f"reviewkit-spark-{os.getpid()}.log")
        session = _start(master, log)
    startup = time.perf_counter() - startup if owned else 0.0
    meter = batch.row_progress(stream, progress)
    watcher = _SparkProgress(session, meter) if progress else None
    key = "spark.sql.execution.arrow.maxRecordsPerBatch"
    previous = session.conf.get(key, None)
    keep_log = False
    try:
        session.conf.set(key, str(job.batch_size))
        if watcher:
            watcher.start()
        rows, bad = _run(session, job, reader, clf, log)
    except Exception as e:
        keep_log = log is not None and log in str(e)  # the message points at it
        raise
    finally:
        if watcher:
            watcher.stop()
        meter.clear()
        if previous is not None:
            session.conf.set(key, previous)
        else:
            session.conf.unset(key)
        if owned:
            session.stop()
        if log is not None and not keep_log and os.path.exists(log):
            os.unlink(log)
    summary = batch.Summary(rows, bad, time.perf_counter() - start, job.output)
    summary.notes.append(f"Spark {session.version} {master if owned else 'session'} "
                         f"(start {startup:.1f} s)")
    return summary


def _start(master: str, log: str):
    """``local_session`` for the CLI: a failure to start (no Java, bad master) as one line."""
    try:
        return local_session(master, log=log)
    except Exception as e:
        raise WorkerError(f"cannot start Spark on {master}: {_first_line(str(e))} "
                          f"(Spark needs Java 17+; its log: {log})") from None


class _Reader:
    """The input as a DataFrame plus how its row numbers are found; columns checked up front."""

    def __init__(self, job: batch.Job):
        self.job = job
        if job.input_format == "parquet":
            source = batch.ParquetSource(job)  # first file's columns and text type
            self.files, self.offsets, total = [], [], 0
            for path in source.files:
                f = batch._parquet_file(source.pa, path)
                batch._check_columns(path, f.schema_arrow.names, job)
                self.files.append(os.path.abspath(path))
                self.offsets.append((os.path.abspath(path), total))
                total += f.metadata.num_rows
        elif job.input_format == "csv":
            batch.CsvSource(job)  # the header has the columns

    def dataframe(self, spark):
        """(DataFrame with the needed columns and row sources, config fields for ScoreConfig)."""
        from pyspark.sql import functions as F

        job, cols = self.job, list(dict.fromkeys([self.job.text_column, *self.job.passthrough]))
        if job.input_format == "parquet":
            df = spark.read.parquet(*self.files).select(
                *cols, F.col("_metadata.file_path").alias("__file"), F.col("_metadata.row_index").alias("__index"))
            return df, dict(rows="parquet", offsets=tuple(self.offsets))
        if job.input_format == "csv":
            df = spark.read.options(header=True, multiLine=True, escape='"', mode="FAILFAST",
                                    inferSchema=False, encoding="UTF-8").csv(os.path.abspath(job.input))
            # CSV has no nulls: an empty field is empty text, as pyarrow reads it
            df = df.select(*[F.coalesce(F.col(f"`{c}`"), F.lit("")).alias(c) for c in cols])
        else:
            df = spark.read.text(os.path.abspath(job.input), lineSep="\n")
        df = df.withColumn("__mid", F.monotonically_increasing_id())
        counts = dict(df.groupBy(F.spark_partition_id().alias("p")).count().collect())
        offsets, total = [], 0
        for p in range(max(counts, default=-1) + 1):
            offsets.append(total)
            total += counts.get(p, 0)
        parallelism = spark.sparkContext.defaultParallelism
        if df.rdd.getNumPartitions() < parallelism:  # e.g. one small file: score it on every core
            df = df.repartition(parallelism)
        return df, dict(rows="partitions", offsets=tuple(offsets))


def _run(spark, job: batch.Job, reader: _Reader, clf, log: str | None) -> tuple[int, int]:
    """Score into OUTPUT; (rows, rows with an error)."""
    from pyspark.sql import types as T

    try:
        df, rows = reader.dataframe(spark)
        fields = {f.name: f for f in df.schema.fields}
        if job.input_format == "jsonl":
            mode, text = "jsonl", job.text_column
            field = {c: T.StructField(c, T.StringType()) for c in job.passthrough}  # JSON text
            cfg = _config(spark, clf, text, mode=mode, parsed=tuple(job.passthrough), name=job.input, **rows)
        else:
            text = job.text_column if job.input_format != "text" else "value"
            field = fields
            cfg = _config(spark, clf, text, mode="lines" if job.input_format == "text" else "column",
                          passthrough=tuple(job.passthrough), name=job.input, **rows)
        leading = [T.StructField(_ROW, T.LongType())] + ([field[job.id_column]] if job.id_column else [])
        scored = _apply(df, cfg, leading, [field[c] for c in job.keep_columns])
        key = [job.id_column] if job.id_column is not None else [scored[_ROW].alias(ROW)]
        ordered = scored.repartition(1, _ROW).sortWithinPartitions(_ROW) \
            .select(*key, LABEL, PROBABILITY, ERROR, *job.keep_columns)
        with temp_output(job.output, directory=True) as tmp:
            target = os.path.join(tmp, "out")
            _write(ordered, job.output_format, target)
            part = _single_part(target)
            counts = _count_rows(part, job.output_format)
            os.replace(part, job.output)
        return counts
    except (BatchError, BundleError, BackendError):
        raise
    except Exception as e:  # py4j / pyspark errors: one line, no JVM stack trace
        raise _spark_error(e, job, log) from None


def _write(df, fmt: str, target: str) -> None:
    writer = df.write.mode("overwrite")
    if fmt == "parquet":
        writer.parquet(target)
    elif fmt == "csv":  # RFC 4180: "" escapes a quote (Spark's default escape is a backslash)
        writer.options(header=True, escape='"', quote='"').csv(target)
    else:
        writer.option("ignoreNullFields", False).json(target)


def _single_part(target: str) -> str:
    parts = sorted(f for f in os.listdir(target) if f.startswith("part-") and not f.endswith(".crc"))
    if len(parts) != 1:
        raise WorkerError(f"Spark wrote {len(parts)} part files to {target}, expected 1")
    return os.path.join(target, parts[0])


def _count_rows(path: str, fmt: str) -> tuple[int, int]:
    """(rows, rows with an error) of a written part file, for the summary."""
    pa = batch.pyarrow()
    if fmt == "parquet":
        errors = pa.parquet.read_table(path, columns=[ERROR]).column(ERROR)
        return len(errors), len(errors) - errors.null_count
    import csv
    import json
    with open(path, encoding="utf-8", newline="") as f:
        if fmt == "jsonl":
            flags = [json.loads(line)[ERROR] is not None for line in f]
        else:
            rows = csv.reader(f)
            at = next(rows).index(ERROR)
            flags = [row[at] != "" for row in rows]
    return len(flags), sum(flags)


_OUR_ERRORS = {"BatchError": BatchError, "BundleError": BatchError, "BackendError": BackendError,
               "WorkerError": WorkerError}


def _spark_error(e: Exception, job: batch.Job, log: str | None) -> Exception:
    """A failed Spark job as one of our one-line errors."""
    text = str(e)
    found = re.search(r"(?m)^\s*(?:[\w.]+\.)?(BatchError|BundleError|BackendError|WorkerError): (.+)$", text)
    if found:
        return _OUR_ERRORS[found.group(1)](found.group(2).strip())
    if "Python worker exited unexpectedly" in text or "crashed" in text:
        return WorkerError(f"a Spark Python worker died while scoring {job.input} (killed, or out of "
                           f"memory?); {job.output} was not written")
    detail = _first_line(text)
    if "FAILED_READ_FILE" in text or "MALFORMED" in text.upper():
        return BatchError(f"{job.input}: Spark cannot read it: {detail}")
    where = f" (Spark log: {log})" if log else ""
    return WorkerError(f"Spark job failed: {detail}{where}")


def _first_line(text: str) -> str:
    """The most telling line of a py4j/Spark error: the first ``[ERROR_CLASS] ...`` or ``...Exception: ...``."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for line in lines:
        m = re.search(r"(\[[A-Z_.]+\].*)", line)
        if m:
            return _short(m.group(1))
    for line in lines:
        if "Exception:" in line or "Error:" in line:
            return _short(line.split(": ", 1)[-1] if line.startswith(":") else line)
    return _short(lines[0] if lines else type(Exception).__name__)


def _short(line: str) -> str:
    return line if len(line) <= 300 else line[:297] + "..."


class _SparkProgress:
    """Tasks done / total of the running stages, polled twice a second (Spark's own bar is off)."""

    def __init__(self, spark, meter: records.Progress):
        self.tracker, self.meter = spark.sparkContext.statusTracker(), meter
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(0.5):
            try:
                infos = [self.tracker.getStageInfo(s) for s in self.tracker.getActiveStageIds()]
            except Exception:  # the context is stopping
                return
            infos = [i for i in infos if i is not None]
            if infos:
                done, total = sum(i.numCompletedTasks for i in infos), sum(i.numTasks for i in infos)
                self.meter.update(0, f"spark: {done}/{total} tasks in {len(infos)} stage(s)")
