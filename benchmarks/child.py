"""One cold start, measured from inside: ``python -m benchmarks.child KIND BUNDLE MODEL < review``.

Loads one engine in this fresh process, scores the review read from stdin and prints one JSON
line ``{"probability": p, "max_rss_kb": k}``, ``k`` being this process's own peak resident set.
KIND is ``keras`` (TensorFlow, the reference tokenizer), ``runtime`` (``runtime.Classifier``)
or ``mediapipe``.
"""
from __future__ import annotations

import json
import os
import resource
import sys


def score(kind: str, bundle: str, model: str, text: str) -> float:
    if kind == "keras":
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import keras

        from runtime.tokenizer import Tokenizer

        import trainer.ngrams  # noqa: F401  registers the custom layers of the bigram/linear architectures

        net = keras.saving.load_model(os.path.join(bundle, model), safe_mode=True)
        tok = Tokenizer.load(os.path.join(bundle, "vocab.txt"), maxlen=net.input_shape[1])
        return float(net.predict(tok.encode_batch_reference([text]), verbose=0).reshape(-1)[0])
    if kind == "runtime":
        from runtime import Classifier

        return Classifier.load(bundle, model=model).predict_one(text)
    if kind == "mediapipe":
        from export.mediapipe_check import mediapipe_scores

        return float(mediapipe_scores(os.path.join(bundle, model), [text])[0])
    raise SystemExit(f"unknown engine kind {kind!r}")


def peak_rss_kb() -> int:
    """Peak resident set of this process since it started, in KiB.

    Linux: ``VmHWM`` of /proc/self/status, the high-water mark of this program's own address
    space. Not ``ru_maxrss``: exec() folds the spawning parent's peak into it (a child of a
    700 MB benchmark process would report 700 MB). Elsewhere ``ru_maxrss`` is all there is.
    """
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak  # macOS reports bytes


def main(argv: list[str]) -> int:
    kind, bundle, model = argv
    text = sys.stdin.read()
    probability = score(kind, bundle, model, text)
    print(json.dumps({"probability": probability, "max_rss_kb": peak_rss_kb()}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
