"""Score batches of texts in worker processes, one ``Classifier`` per worker, results in order.

The parent keeps everything but the texts (record numbers, ids, output), so ordering and
exactly-once are the parent's job: batches go out in input order, at most ``window`` at a time
(memory stays bounded), and results are taken back in the same order.

Workers never outlive the parent, however it ends: each holds the read end of a pipe whose only
write end is the parent's, and exits when it reads end-of-file (the parent died or left the
``with`` block on an error); on Linux the kernel also kills it the moment the parent dies
(``PR_SET_PDEATHSIG``; strictly, when the parent *thread* that started it ends: use a pool
from the thread that will also close it). With the workers gone, multiprocessing's resource
tracker (which they hold open too) exits as well.
"""
from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, Iterable, Iterator, TypeVar

import numpy as np

from .errors import Failure

K, A, R = TypeVar("K"), TypeVar("A"), TypeVar("R")
AUTO_WORKERS_MIN_BYTES = 4 << 20  # ~4,000 reviews: below that, starting workers costs more than it saves

_worker_clf = None  # the Classifier of this worker process


class WorkerError(Failure, RuntimeError):
    """A worker process died (killed, out of memory) or could not load the model."""


def cpu_count() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def default_workers(input_bytes: int | None) -> int:
    """All cores for large inputs, one process otherwise (``None``: size unknown, e.g. stdin)."""
    if input_bytes is None or input_bytes < AUTO_WORKERS_MIN_BYTES:
        return 1
    return cpu_count()


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
EXIT_ORPHANED = 70  # a worker's exit code when its parent is gone


def _die_with_parent(parent_pid: int) -> None:
    """Linux: SIGKILL this process when its parent dies (set in the child, then checked:
    a parent that died before the call would otherwise go unnoticed)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # no usable libc: the pipe below still ends us
        pass
    if os.getppid() != parent_pid:
        os._exit(EXIT_ORPHANED)


def _exit_on_eof(lifeline) -> None:
    """Block until the parent's end of ``lifeline`` is closed, then end this process at once."""
    try:
        lifeline.recv_bytes()
    except (EOFError, OSError):
        pass
    os._exit(EXIT_ORPHANED)


def _load(path, backend, model, threads, batch_size, deterministic, parent_pid, lifeline) -> None:
    global _worker_clf
    from .model import Classifier

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    _die_with_parent(parent_pid)
    threading.Thread(target=_exit_on_eof, args=(lifeline,), name="lifeline", daemon=True).start()

    _worker_clf = Classifier.load(path, backend=backend, model=model, threads=threads, batch_size=batch_size,
                                  deterministic=deterministic)


def _call(fn, arg):
    return fn(_worker_clf, arg)


def predict_texts(clf, texts: list[str]) -> np.ndarray:
    return clf.predict(texts)


class WorkerPool:
    """``with WorkerPool(2, bundle_path) as pool: for batch, probs in pool.score(batches): ...``"""

    def __init__(self, workers: int, path=None, backend: str = "auto", model: str | None = None,
                 threads: int | None = 1, batch_size: int = 256, deterministic: bool = False):
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        # spawn: a fresh interpreter per worker, no onnxruntime thread state copied by fork.
        context = multiprocessing.get_context("spawn")
        # The lifeline's write end stays in this process only (spawned children inherit no fds
        # but those passed to them): closing it, or dying, tells every worker to exit.
        lifeline, self._lifeline = context.Pipe(duplex=False)
        self._executor = ProcessPoolExecutor(
            workers, mp_context=context, initializer=_load,
            initargs=(path, backend, model, threads, batch_size, deterministic, os.getpid(), lifeline))
        self.window = 2 * workers  # batches in flight: every worker busy, one more queued each

    def map(self, fn: Callable[[object, A], R], items: Iterable[tuple[K, A]]) -> Iterator[tuple[K, R]]:
        """``fn(classifier, arg)`` in the workers for each ``(key, arg)``; ``(key, result)`` in order.

        ``fn`` must be a module-level function (it is pickled by name).
        """
        pending: deque = deque()
        try:
            for key, arg in items:
                pending.append((key, self._executor.submit(_call, fn, arg)))
                if len(pending) >= self.window:
                    key, future = pending.popleft()
                    yield key, future.result()
            while pending:
                key, future = pending.popleft()
                yield key, future.result()
        except BrokenProcessPool:
            raise WorkerError("a worker process died (killed, out of memory, or the model failed "
                              "to load in it)") from None
        finally:
            for _, future in pending:
                future.cancel()

    def score(self, batches: Iterable[tuple[K, list[str]]]) -> Iterator[tuple[K, np.ndarray]]:
        """``(key, texts)`` pairs in -> ``(key, probabilities)`` out, in the same order."""
        return self.map(predict_texts, batches)

    def close(self, abort: bool = False) -> None:
        """Wait for the workers to finish and exit; ``abort``: end them now (an error, Ctrl-C,
        SIGTERM), without waiting for the batches they are scoring."""
        if abort:
            self._lifeline.close()
            # A worker that dies while sending a result leaves half a message in the result pipe;
            # the executor's thread then waits for the rest for as long as a write end is open,
            # and this process holds one. Closing it turns that wait into end-of-file once the
            # workers are gone (CPython's ProcessPoolExecutor keeps the queue in _result_queue).
            queue = getattr(self._executor, "_result_queue", None)
            writer = getattr(queue, "_writer", None)
            if writer is not None:
                writer.close()
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._lifeline.close()

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(abort=exc_type is not None)
