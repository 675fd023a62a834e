"""One ``Classifier`` shared by 8 threads gives, on every backend, exactly the numbers it gives
to one thread: no error and never a wrong probability (LiteRT's interpreter is one object)."""
from __future__ import annotations

import random
import threading

import numpy as np
import pytest

from runtime import Classifier
from runtime.bundle import default_bundle_path

THREADS, CALLS = 8, 60


def _batches() -> list[list[str]]:
    """Batches of 1 to 40 reviews: the TFLite tensors are resized between calls."""
    with open(f"{default_bundle_path()}/vocab.txt", encoding="utf-8") as f:
        words = f.read().split()[4:3000]
    rng = random.Random(0)
    texts = [" ".join(rng.choices(words, k=rng.randint(1, 300))) for _ in range(400)]
    batches, start = [], 0
    while start < len(texts):
        size = rng.choice([1, 2, 7, 40])
        batches.append(texts[start:start + size])
        start += size
    return batches


@pytest.mark.parametrize("model", ["model.onnx", "model.int8.tflite"])
def test_one_classifier_shared_by_threads(model):
    clf = Classifier.load(model=model, threads=1)
    batches = _batches()
    reference = [clf.predict(batch) for batch in batches]  # one thread
    failures: list[str] = []

    def work(k: int) -> None:
        for n in range(CALLS):
            i = (n * 7 + k * 13) % len(batches)
            try:
                probs = clf.predict(batches[i])
            except Exception as e:  # noqa: BLE001 - any error is a failure of the test
                failures.append(f"batch {i}: {type(e).__name__}: {e}")
                continue
            if not np.array_equal(probs, reference[i]):
                failures.append(f"batch {i}: {probs[:3]} instead of {reference[i][:3]}")

    threads = [threading.Thread(target=work, args=(k,)) for k in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
