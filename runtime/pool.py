"""Score batches of texts in worker processes, one ``Classifier`` per worker, results in order.

The parent keeps everything but the texts (record numbers, ids, output), so ordering and
exactly-once are the parent's job: batches go out in input order, at most ``window`` at a time
(memory stays bounded), and results are taken back in the same order.
"""
from __future__ import annotations

import multiprocessing
import os
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


def _load(path, backend, model, threads, batch_size, deterministic=False) -> None:
    global _worker_clf
    import signal

    from .classifier import Classifier

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle

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
        self._executor = ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context("spawn"), initializer=_load,
            initargs=(path, backend, model, threads, batch_size, deterministic))
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

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
