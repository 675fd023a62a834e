"""A metadata-carrying ``.tflite`` through MediaPipe Tasks' ``TextClassifier``: it tokenizes with the
metadata's RegexTokenizer (RE2, C++), so equal scores mean the metadata, vocab.txt/labels.txt and
``runtime/tokenizer.py`` agree. MediaPipe does not lowercase: the text is ``str.lower``-ed first."""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from .errors import ExportError

POSITIVE_LABEL = "positive"  # the one line of labels.txt for our [batch, 1] sigmoid head


class MediaPipeUnavailable(ExportError):
    """The ``mediapipe`` package is not installed (``pip install 'imdb-reviewkit[dev]'``)."""


class MediaPipeCheckError(ExportError):
    """MediaPipe could not load the model or did not return the expected category."""


def mediapipe_scores(model_path: str | os.PathLike, texts: Sequence[str],
                     labels: Sequence[str] = (POSITIVE_LABEL,)) -> np.ndarray:
    """Scores in the order of ``labels`` (labels.txt's lines): [n] float32 for one label, [n, N] for N."""
    try:
        from mediapipe.tasks.python.core.base_options import BaseOptions
        from mediapipe.tasks.python.text import text_classifier
    except ImportError as e:
        raise MediaPipeUnavailable(f"mediapipe is not installed or broken: {e}") from None
    options = text_classifier.TextClassifierOptions(  # every category, none filtered out (a score is >= 0)
        base_options=BaseOptions(model_asset_path=os.fspath(model_path)), max_results=-1, score_threshold=0.0)
    try:
        classifier = text_classifier.TextClassifier.create_from_options(options)
    except (RuntimeError, ValueError, OSError) as e:  # its status text, without the multi-line source trace
        detail = " ".join(str(e).split("=== Source Location Trace")[0].split()) or type(e).__name__
        raise MediaPipeCheckError(f"MediaPipe cannot load {model_path}: {detail}") from None
    with classifier:
        scores = np.array([_scores(classifier.classify(text.lower()), labels) for text in texts],
                          dtype=np.float32).reshape(len(texts), len(labels))  # [n, N]
    return scores[:, 0] if len(labels) == 1 else scores


def _scores(result, labels: Sequence[str]) -> list[float]:
    """The score of each of ``labels``; MediaPipe must return exactly these categories."""
    if len(result.classifications) != 1:
        raise MediaPipeCheckError(f"expected 1 classification head, got {len(result.classifications)}")
    categories = result.classifications[0].categories
    scores = {c.category_name: c.score for c in categories}
    if len(categories) != len(labels) or set(scores) != set(labels):
        wanted = repr(labels[0]) if len(labels) == 1 else sorted(labels)
        raise MediaPipeCheckError(f"MediaPipe returned categories {sorted(scores)}, not {wanted}")
    return [scores[label] for label in labels]
