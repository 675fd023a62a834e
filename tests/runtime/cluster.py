"""A Spark standalone cluster on 127.0.0.1 for the tests: one master, two 1-core workers.

Started from the PySpark install (``spark-class ...Master`` / ``...Worker``), each daemon in its
own process group with its log in the cluster's directory and each worker with its own
``SPARK_WORKER_DIR``; ports are free ones picked at run time and every address is loopback.
The workers' environment is what "reviewkit installed on the executors" means here: this
checkout on ``PYTHONPATH``, the driver's interpreter as ``PYSPARK_PYTHON``.

Every process of the cluster is found two ways: as a descendant of a daemon, and by its working
directory (executors and their Python workers run in ``SPARK_WORKER_DIR/APP/EXECUTOR``, which
outlives a killed worker). ``stop`` ends them all, by PID, and returns the ones still alive.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field

from tests.runtime.test_kill import _alive, _descendants, _pids, _stat

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORKERS = 2
REGISTER_SECONDS = 120  # a daemon JVM on this shared 2-core machine can take 20 s to come up


def spark_home() -> str:
    try:
        from pyspark.find_spark_home import _find_spark_home
        return _find_spark_home()
    except ImportError:  # an older layout: the package directory is SPARK_HOME
        import pyspark
        return os.path.dirname(pyspark.__file__)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check, what: str, seconds: float = REGISTER_SECONDS, every: float = 0.2):
    """``check()``'s first truthy value, polled; AssertionError naming ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {seconds:.0f} s waiting for {what}")
        time.sleep(every)


def get_json(url: str):
    """A loopback JSON endpoint, None while it does not answer."""
    assert url.startswith("http://127.0.0.1:"), url
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return json.load(r)
    except (OSError, ValueError):
        return None


def cwd_of(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return ""


def running_under(folder: str) -> dict[int, int]:
    """{pid: start time} of the processes whose working directory is in ``folder``."""
    prefix = folder.rstrip(os.sep) + os.sep
    return {pid: st[2] for pid in _pids() if (cwd_of(pid) + os.sep).startswith(prefix) and (st := _stat(pid))}


def kill_tree(pid: int) -> dict[int, int]:
    """SIGKILL ``pid`` and every process below it (listed first: a killed parent orphans them)."""
    found = _descendants(pid)
    st = _stat(pid)
    if st is not None:
        found[pid] = st[2]
    for p in found:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return found


@dataclass
class Daemon:
    name: str
    proc: subprocess.Popen
    folder: str  # its working directory (a worker's SPARK_WORKER_DIR)

    @property
    def pid(self) -> int:
        return self.proc.pid


@dataclass
class Cluster:
    root: str
    home: str = field(default_factory=spark_home)
    port: int = field(default_factory=free_port)
    ui: int = field(default_factory=free_port)
    master: Daemon | None = None
    workers: list[Daemon] = field(default_factory=list)
    seen: dict[int, int] = field(default_factory=dict)  # every process of the cluster ever listed
    started: int = 0  # workers started so far (each gets a fresh directory)

    @property
    def url(self) -> str:
        return f"spark://127.0.0.1:{self.port}"

    def env(self, **more: str) -> dict[str, str]:
        """The environment of the daemons and of the drivers the tests run."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SPARK_", "PYSPARK_"))}
        env.update(SPARK_HOME=self.home, SPARK_LOCAL_IP="127.0.0.1", PYSPARK_PYTHON=sys.executable,
                   PYTHONPATH=REPO, SPARK_CONF_DIR=os.path.join(self.root, "conf"), **more)
        return env

    def _daemon(self, name: str, folder: str, args: list[str], **env: str) -> Daemon:
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(self.root, f"{name}.log"), "ab") as log:
            proc = subprocess.Popen([os.path.join(self.home, "bin", "spark-class"), *args], cwd=folder,
                                    env=self.env(**env), stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        return Daemon(name, proc, folder)

    def start(self) -> Cluster:
        os.makedirs(os.path.join(self.root, "conf"), exist_ok=True)  # no spark-defaults from elsewhere
        self.master = self._daemon("master", self.root, [
            "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(self.port),
            "--webui-port", str(self.ui)])
        wait_until(lambda: (self.state() or {}).get("status") == "ALIVE", "the Spark master")
        self.ensure_workers()
        return self

    def state(self) -> dict | None:
        """The master's JSON: workers, activeapps, completedapps."""
        return get_json(f"http://127.0.0.1:{self.ui}/json/")

    def alive_workers(self) -> int:
        return sum(w["state"] == "ALIVE" for w in (self.state() or {}).get("workers", []))

    def ensure_workers(self) -> None:
        """Replace any worker that died (a test killed it) and wait until ``WORKERS`` are registered."""
        self.workers = [w for w in self.workers if w.proc.poll() is None]
        while len(self.workers) < WORKERS:
            self.started += 1
            name = f"worker{self.started}"
            folder = os.path.join(self.root, name)
            self.workers.append(self._daemon(name, folder, [
                "org.apache.spark.deploy.worker.Worker", self.url, "--cores", "1", "--memory", "1g",
                "--host", "127.0.0.1", "--webui-port", str(free_port())], SPARK_WORKER_DIR=folder))
        wait_until(lambda: self.alive_workers() == WORKERS, f"{WORKERS} workers registered at {self.url}")
        self.processes()

    def processes(self) -> dict[int, int]:
        """{pid: start time} of every live process of the cluster (also remembered in ``seen``)."""
        found = running_under(self.root)
        for daemon in [self.master, *self.workers]:
            if daemon is not None and (st := _stat(daemon.pid)) is not None:
                found[daemon.pid] = st[2]
                found.update(_descendants(daemon.pid))
        self.seen.update(found)
        return found

    def executors(self, app: str) -> dict[int, int]:
        """{pid: start time} of the executor JVMs and Python workers of application ``app``."""
        found = {}
        for worker in self.workers:
            found.update(running_under(os.path.join(worker.folder, app)))
        self.seen.update(found)
        return found

    def kill_worker(self, worker: Daemon) -> dict[int, int]:
        """``kill -9`` a worker, its executor JVMs and their Python workers."""
        self.processes()
        return kill_tree(worker.pid)

    def stop(self, grace: float = 30) -> list[int]:
        """Stop every process of the cluster by PID: SIGTERM to each daemon's process group,
        SIGKILL whatever is left after ``grace`` seconds. The PIDs still alive (none, unless
        something could not be killed)."""
        self.processes()
        daemons = [d for d in [*self.workers, self.master] if d is not None]
        for daemon in daemons:
            try:
                os.killpg(daemon.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        for daemon in daemons:
            try:
                daemon.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        self.processes()  # executors a dead worker left behind, Python workers in their own group
        for pid in _alive(self.seen):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for daemon in daemons:
            daemon.proc.wait(timeout=30)
        deadline = time.monotonic() + 30
        while _alive(self.seen) and time.monotonic() < deadline:
            time.sleep(0.1)
        return _alive(self.seen)


def app_ids(cluster: Cluster) -> tuple[list[str], list[str]]:
    """(active, completed) application ids at the master."""
    state = cluster.state() or {}
    return [a["id"] for a in state.get("activeapps", [])], [a["id"] for a in state.get("completedapps", [])]
