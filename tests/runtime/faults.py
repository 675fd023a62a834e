"""Faults injected from the tests, and worker functions for them (the shipped code has no test hooks)."""
from __future__ import annotations

import importlib
import os
from dataclasses import dataclass


@dataclass(frozen=True)
class CrashAt:
    """``engine.score_piece`` replaced (``monkeypatch.setattr(engine, "score_piece", CrashAt(5))``):
    the worker process that gets Parquet row group ``group`` dies (``os._exit``), as if killed;
    other pieces are scored as usual (by the real one: the workers import it afresh)."""
    group: int

    def __call__(self, clf, task):
        if getattr(task.piece, "group", None) == self.group:
            os._exit(70)
        return importlib.import_module("runtime.engine").score_piece(clf, task)


def crash_batches(batches, work):
    """A ``runtime.spark.score_batches`` whose Python worker dies at its first batch."""
    for _ in batches:
        os._exit(70)
    yield from ()


def predict(clf, texts: list[str]):
    """A ``WorkerPool.map`` function (pickled by name): the probabilities of ``texts``."""
    return clf.predict(texts)
