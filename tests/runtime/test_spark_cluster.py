"""``--engine spark`` and ``score_dataframe`` on a real standalone cluster (tests/runtime/cluster.py).

The executors are other JVMs with their own working directories (``SPARK_WORKER_DIR/APP/N``) and
their own Python workers; the driver runs in the test's directory and names the bundle by a
path relative to it, so the executors reach the model only through what the job ships. Every
job is the real command in its own process tree; results are checked row by row against
``--engine local`` on the same input, and after each job no process of it is left.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.runtime.cluster import REPO, Cluster, _alive, _descendants, app_ids, kill_tree, running_under, wait_until
from tests.runtime.test_batch import make_ids, make_texts, write_csv, write_jsonl, write_parquet
from tests.runtime.test_kill import _cmdline
from tests.runtime.test_spark import assert_same_probabilities, in_order, spark_lines

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc (Linux)")

N = 3000
BIG = 160_000  # rows: several seconds of scoring on two 1-core executors
FILES = 4  # the big input's Parquet files: a task each at least, so a lost executor loses tasks
DEFAULT_MODEL = os.path.join(REPO, "runtime", "default_model")
JOB_SECONDS = 300
# Schedule nothing until both workers' executors are registered: each then gets tasks, whatever the
# order they came up in (Spark waits at most spark.scheduler.maxRegisteredResourcesWaitingTime, 30 s).
USE_BOTH_WORKERS = ["--spark-conf", "spark.cores.max=2",
                    "--spark-conf", "spark.scheduler.minRegisteredResourcesRatio=1"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """One master and two workers for the module, stopped by PID whatever happens."""
    cluster = Cluster(str(tmp_path_factory.mktemp("spark-cluster")))
    try:
        yield cluster.start()
    finally:
        alive = cluster.stop()
        assert alive == [], f"processes of the cluster still alive: {[_cmdline(p) for p in alive]}"


@pytest.fixture
def workers(cluster) -> Cluster:
    """The cluster with both workers registered (a test before may have killed one)."""
    cluster.ensure_workers()
    return cluster


@pytest.fixture(scope="module")
def big_input(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("big") / "reviews"
    folder.mkdir()
    texts = make_texts(1000, seed=21) * (BIG // 1000)
    step = BIG // FILES
    for f in range(FILES):
        write_parquet(folder / f"part-{f}.parquet", {"id": list(range(f * step, (f + 1) * step)),
                                                      "text": texts[f * step:(f + 1) * step]})
    return str(folder)


def driver_dir(tmp_path) -> str:
    """The driver's working directory, holding the bundle as ``model`` (a relative path)."""
    folder = tmp_path / "driver"
    folder.mkdir()
    shutil.copytree(DEFAULT_MODEL, folder / "model")
    return str(folder)


def batch(cluster: Cluster, cwd: str, *args: str, engine: str = "spark") -> subprocess.Popen:
    """``python -m runtime.batch ARGS --model model`` started in ``cwd``, in its own session."""
    more = ["--master", cluster.url, *USE_BOTH_WORKERS] if engine == "spark" else []
    return subprocess.Popen([sys.executable, "-m", "runtime.batch", *args, "--model", "model", "--engine", engine,
                             *more], cwd=cwd, env=cluster.env(), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=JOB_SECONDS)
    except BaseException:
        stop(proc)
        raise
    return proc.returncode, out, err


def stop(proc: subprocess.Popen) -> None:
    """Kill a job that is still running, with its whole tree (a failed test leaks nothing)."""
    if proc.returncode is None:  # not reaped yet: its pid is still ours
        kill_tree(proc.pid)
        proc.communicate()


def new_app(cluster: Cluster, before: set) -> str:
    """The one application that appeared at the master since ``before``."""
    def found():
        active, done = app_ids(cluster)
        new = set(active + done) - before
        return new.pop() if len(new) == 1 else None
    return wait_until(found, "the job's application at the master")


def all_apps(cluster: Cluster) -> set:
    active, done = app_ids(cluster)
    return set(active + done)


def check_no_process_left(cluster: Cluster, app: str) -> None:
    wait_until(lambda: app in app_ids(cluster)[1], f"{app} to complete at the master")
    wait_until(lambda: not cluster.executors(app), f"the executors of {app} to end", seconds=60)


def check_shipped(cluster: Cluster, app: str, cwd: str, everywhere: bool = True) -> None:
    """The executors of ``app`` ran in their own directories on every worker, where the bundle
    came from the job: on each worker (``everywhere``: the job had a task for each) or on some. A
    worker may hold more than one executor of the app: under load Spark replaces an executor that
    failed to start or register, which is its retry, not a fault of ours."""
    manifest = open(os.path.join(cwd, "model", "manifest.json"), "rb").read()
    shipped_on = []
    for w in cluster.workers:
        dirs = [os.path.join(w.folder, app, e) for e in os.listdir(os.path.join(w.folder, app))]
        assert dirs, f"no executor of {app} on {w.name}"
        got = []
        for d in dirs:
            assert not os.path.exists(os.path.join(d, "model"))
            shipped = [f for f in os.listdir(d) if os.path.isfile(os.path.join(d, f, "manifest.json"))]
            assert [open(os.path.join(d, f, "manifest.json"), "rb").read() for f in shipped] in ([manifest], [])
            got += shipped
        shipped_on.append(bool(got))
    assert all(shipped_on) if everywhere else any(shipped_on)


def make_input(folder: str, fmt: str) -> tuple[str, list[str]]:
    """An input of ``N`` seeded rows, some of them bad (blank, null, missing, not text); its id option."""
    texts = make_texts(N, seed=20, multiline=fmt == "csv")
    ids = make_ids(N, seed=20)
    path = Path(folder) / f"in.{fmt}"
    if fmt == "parquet":
        values = [None if i % 101 == 7 else t for i, t in enumerate(texts)]
        return write_parquet(path, {"id": ids, "text": values}, row_group_size=700), ["--id-column", "id"]
    if fmt == "csv":
        return write_csv(path, {"key": [f"k{i}" for i in ids], "text": texts}, blank_after=9), ["--id-column", "key"]
    values = [None if i % 89 == 4 else 7 if i % 97 == 5 else t for i, t in enumerate(texts)]
    write_jsonl(path, {"text": values, "stars": [i % 5 for i in range(N)]}, blank_after=11)
    with open(path, "a") as f:
        f.write('{"stars": 1}\n')  # no text field at all
    return str(path), ["--keep-columns", "stars"]


@pytest.mark.parametrize("fmt, out_ext", [("parquet", "parquet"), ("csv", "jsonl"), ("jsonl", "csv")])
def test_every_row_once_with_the_local_engines_scores(workers, tmp_path, fmt, out_ext):
    cwd = driver_dir(tmp_path)
    inp, opts = make_input(str(tmp_path), fmt)
    local, spark = os.path.join(cwd, f"local.{out_ext}"), os.path.join(str(tmp_path), f"spark.{out_ext}")
    code, _, err = finish(batch(workers, cwd, inp, local, *opts, engine="local"))
    assert code == 0, err
    before = all_apps(workers)
    code, out, err = finish(batch(workers, cwd, inp, spark, *opts))
    assert (code, out) == (0, ""), err
    assert re.fullmatch(rf"scored {N + (fmt == 'jsonl')} rows \(.*\) in .* -> {re.escape(spark)}\n", err), err
    app = new_app(workers, before)
    check_shipped(workers, app, cwd)
    check_no_process_left(workers, app)
    if out_ext == "parquet":
        want = pq.read_table(local).to_pydict()
        got = in_order(pq.read_table(spark).to_pydict(), "id", want["id"])  # each id exactly once
        assert {k: v for k, v in got.items() if k != "probability"} == \
            {k: v for k, v in want.items() if k != "probability"}
        assert_same_probabilities(got["probability"], want["probability"])
        assert want["error"].count("text is null") == N // 101 + 1
        return
    headers, lines = spark_lines(spark)
    want = open(local, encoding="utf-8").read().splitlines()
    if out_ext == "csv":
        assert set(headers) == {want.pop(0)}
    assert sorted(lines) == sorted(want)  # the very same bytes for every row, each row once
    assert len(want) == N + (fmt == "jsonl") and len(set(want)) == len(want)


SCRIPT = """\
    # score_reviews.py, the README's example with this test's paths
    from pyspark.sql import SparkSession
    from runtime.spark import score_dataframe

    spark = SparkSession.builder.appName("score-reviews").getOrCreate()
    reviews = spark.read.parquet({input!r})
    scored = score_dataframe(reviews, text_col="body", id_col="review_id",
                             model="model",
                             keep_columns=["movie_id"])
    scored.write.mode("overwrite").parquet({output!r})
"""


def test_spark_submit_of_the_readme_example(workers, tmp_path):
    cwd = driver_dir(tmp_path)
    texts, ids = make_texts(N, seed=22), make_ids(N, seed=22)
    inp = write_parquet(tmp_path / "reviews.parquet", {"review_id": ids, "body": texts,
                                                       "movie_id": [i % 37 for i in range(N)]})
    out = str(tmp_path / "review_scores")
    script = os.path.join(cwd, "score_reviews.py")
    with open(script, "w") as f:
        f.write(textwrap.dedent(SCRIPT).format(input=inp, output=out))
    code, _, err = finish(batch(workers, cwd, inp, "local.parquet", "--id-column", "review_id", "--text-column",
                                "body", "--keep-columns", "movie_id", engine="local"))
    assert code == 0, err
    before = all_apps(workers)
    proc = subprocess.run([os.path.join(workers.home, "bin", "spark-submit"), "--master", workers.url, script],
                          cwd=cwd, env=workers.env(), capture_output=True, text=True, timeout=JOB_SECONDS)
    assert proc.returncode == 0, proc.stderr[-3000:]
    app = new_app(workers, before)
    check_shipped(workers, app, cwd, everywhere=False)  # one file, one partition: maybe one task
    check_no_process_left(workers, app)
    want = pq.read_table(os.path.join(cwd, "local.parquet")).to_pydict()
    table = pq.read_table(out)
    assert table.schema.names == ["review_id", "label", "probability", "error", "movie_id"]
    got = in_order(table.to_pydict(), "review_id", want["review_id"])
    assert got["label"] == want["label"] and got["movie_id"] == want["movie_id"]
    assert [e or None for e in got["error"]] == [e or None for e in want["error"]]
    assert_same_probabilities(got["probability"], want["probability"])


def python_workers(cluster: Cluster, app: str) -> list[str]:
    """The workers (their folders) where ``app`` has a Python worker running: tasks are being scored."""
    return [w.folder for w in cluster.workers
            if any(_cmdline(p).startswith(sys.executable + " ") for p in running_under(os.path.join(w.folder, app)))]


def start_big_job(cluster: Cluster, tmp_path, big_input: str, output: str) -> tuple[subprocess.Popen, str, str]:
    """The big job, once both executors are scoring: (driver, application id, driver's dir)."""
    cwd = driver_dir(tmp_path)
    before = all_apps(cluster)
    proc = batch(cluster, cwd, big_input, output, "--id-column", "id")
    try:
        app = new_app(cluster, before)
        wait_until(lambda: proc.poll() is not None or len(python_workers(cluster, app)) == len(cluster.workers),
                   "Python workers on both executors")
        assert proc.poll() is None, proc.communicate()[1]
    except BaseException:
        stop(proc)
        raise
    return proc, app, cwd


def test_a_worker_killed_mid_job_its_tasks_rerun_on_the_other(workers, tmp_path, big_input):
    out = str(tmp_path / "scores.parquet")
    proc, app, cwd = start_big_job(workers, tmp_path, big_input, out)
    os.rename(os.path.join(cwd, "model"), os.path.join(cwd, "hidden"))  # the retries cannot read it either
    victim, survivor = workers.workers
    below = [_cmdline(p) for p in _descendants(victim.pid)]
    assert any("CoarseGrainedExecutorBackend" in c for c in below)  # its executor JVM
    assert any(c.startswith(sys.executable + " ") for c in below)  # and its Python workers
    killed = workers.kill_worker(victim)
    code, stdout, err = finish(proc)
    assert (code, stdout) == (0, ""), err
    assert err.startswith(f"scored {BIG} rows (") and err.count("\n") == 1, err
    assert _alive(killed) == []
    ids = pq.read_table(out, columns=["id"]).column("id").to_pylist()
    assert len(ids) == BIG and sorted(ids) == list(range(BIG))  # each row exactly once
    logs = [open(os.path.join(survivor.folder, app, e, "stderr")).read() for e in os.listdir(
        os.path.join(survivor.folder, app))]
    assert any(re.search(r"Running task \d+\.[1-9]", log) for log in logs)  # a retry ran there
    check_no_process_left(workers, app)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_a_killed_driver_leaves_no_output_and_no_executor(workers, tmp_path, big_input, sig):
    out = str(tmp_path / "scores.parquet")
    proc, app, _ = start_big_job(workers, tmp_path, big_input, out)
    tree = _descendants(proc.pid)  # the driver's JVM
    try:
        proc.send_signal(sig)  # to the driver only, as `kill PID` does
        code, stdout, err = finish(proc)
        wait_until(lambda: not _alive(tree), "the driver's JVM to end", seconds=60)
        check_no_process_left(workers, app)
    finally:
        for pid in _alive(tree):  # orphaned by the SIGKILL: found by the pids noted before it
            os.kill(pid, signal.SIGKILL)
    assert not os.path.exists(out)
    if sig == signal.SIGTERM:
        assert (code, stdout, err) == (143, "", "terminated\n"), err
    else:
        assert code == -signal.SIGKILL
