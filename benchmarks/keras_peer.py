"""``python -m benchmarks.keras_peer [--bundle artifacts] [--data PATH] [--limit N] [--repeats 3]``

The fair Keras peer: what a current-TensorFlow user writes instead of a Python tokenizer --
tokenization inside the TF graph (``tf.strings.lower``, ``tf.strings.regex_replace`` with the
contract's pattern, ``tf.strings.split``, a ``tf.lookup.StaticHashTable`` over vocab.txt,
``<START>`` + first maxlen ids + ``<PAD>``) feeding the bundle's ``model.keras`` in one
``tf.function``. It is timed end to end on the same reviews as ``runtime.Classifier`` (ONNX and
LiteRT) in the same run, and its ids are checked against ``runtime.tokenizer`` review by review.
Prints a Markdown table (stdout) and writes ``--out/keras_peer.json``.
"""
from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from runtime.errors import ArgumentParser, run_cli
from runtime.files import atomic_write_text

from .common import add_data_option
from .engines import BATCH, BenchmarkError, batches
from .measure import throughput, timed

PEER = "Keras, tokenizer in the TF graph"


def in_graph_tokenizer(vocab_path: str, maxlen: int):
    """texts [n] tf.string -> ids [n, maxlen] int32, the tokenizer contract written in TF ops."""
    import tensorflow as tf

    from runtime.tokenizer import DELIM_PATTERN, read_vocab

    vocab = read_vocab(vocab_path)
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant(list(vocab)), tf.constant(list(vocab.values()), tf.int32)),
        default_value=vocab["<UNKNOWN>"])
    start = vocab["<START>"]

    def tokenize(texts):
        lowered = tf.strings.lower(texts, encoding="utf-8")  # Unicode, as str.lower
        words = tf.strings.split(tf.strings.regex_replace(lowered, DELIM_PATTERN, " "))  # ragged [n, None]
        ids = table.lookup(words[:, : maxlen - 1])
        ids = tf.concat([tf.fill([tf.shape(texts)[0], 1], start), ids], axis=1)
        return ids.to_tensor(default_value=0, shape=[None, maxlen])  # pad with <PAD> at the end

    return tokenize


def keras_peer(bundle: str):
    """-> (texts -> [n] float32 probabilities, texts -> [n, maxlen] ids) as one tf.function each."""
    import keras
    import tensorflow as tf

    import trainer.ngrams  # noqa: F401  registers the custom layers of the bigram/linear architectures
    from runtime.bundle import Bundle

    manifest = Bundle.load(bundle).manifest
    model = keras.saving.load_model(os.path.join(bundle, "model.keras"), safe_mode=True, compile=False)
    tokenize = in_graph_tokenizer(os.path.join(bundle, "vocab.txt"), manifest["tokenizer"]["maxlen"])
    spec = [tf.TensorSpec([None], tf.string)]
    score = tf.function(lambda texts: model(tokenize(texts), training=False)[:, 0], input_signature=spec)
    ids = tf.function(tokenize, input_signature=spec)
    return (lambda texts: score(tf.constant(texts)).numpy()), (lambda texts: ids(tf.constant(texts)).numpy())


def run(args) -> dict:
    from runtime import Classifier

    from .common import data_path, load_reviews

    texts, labels = load_reviews(data_path(args.data), args.limit)
    chunks = batches(texts, BATCH)
    rows, probs = [], {}
    for model in ("model.onnx", "model.int8.tflite"):  # the runtime first, before TensorFlow is loaded
        clf = Classifier.load(args.bundle, model=model)
        rows.append(_row(f"runtime.Classifier ({model})", lambda c=clf: [c.predict(b) for b in chunks], args, texts))
        probs[model] = np.concatenate([clf.predict(b) for b in chunks])
    predict, tokenize = keras_peer(args.bundle)
    rows.insert(0, _row(PEER, lambda: [predict(b) for b in chunks], args, texts))
    peer = np.concatenate([predict(b) for b in chunks])
    tok = Classifier.load(args.bundle, model="model.onnx").tokenizer
    ids_equal = sum(int(np.array_equal(tokenize(b), tok.encode_batch(b))) * len(b) for b in chunks)
    for row in rows:
        p = peer if row["name"] == PEER else probs[row["name"].split("(")[1][:-1]]
        row["accuracy"] = float(np.mean((p >= 0.5) == (labels == 1)))
        row["max_abs_diff_vs_peer"] = float(np.max(np.abs(p - peer)))
    return {"bundle": args.bundle, "n_reviews": len(texts), "batch": BATCH, "repeats": args.repeats,
            "reviews_with_equal_ids": ids_equal, "rows": rows}


def _row(name: str, fn, args, texts) -> dict:
    print(f"benchmarks.keras_peer: {name} ...", file=sys.stderr, flush=True)
    fn()  # warm-up pass: thread pools, caches and tracing are not what is measured
    return {"name": name, "end_to_end": throughput(timed(fn, args.repeats), len(texts))}


def table(result: dict) -> str:
    lines = ["| engine | end-to-end reviews/s (best / median) | accuracy | max abs diff vs peer |",
             "|---|---|---|---|"]
    for r in result["rows"]:
        e = r["end_to_end"]
        lines.append(f"| {r['name']} | {e['reviews_per_s']:,.0f} / {e['median_reviews_per_s']:,.0f} | "
                     f"{r['accuracy']:.4f} | {r['max_abs_diff_vs_peer']:.1e} |")
    lines.append(f"\nids equal to runtime.tokenizer for {result['reviews_with_equal_ids']} of "
                 f"{result['n_reviews']} reviews (compared per batch of {result['batch']})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(prog="python -m benchmarks.keras_peer", description=__doc__.split("\n\n")[1])
    p.add_argument("--bundle", default="artifacts", help="export bundle directory (default: artifacts)")
    add_data_option(p)
    p.add_argument("--out", default="bench", help="output directory for keras_peer.json (default: bench)")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="use N test reviews (smoke runs)")
    p.add_argument("--repeats", type=int, default=3, help="timed passes (default: 3)")
    args = p.parse_args(argv)
    if args.repeats < 1 or (args.limit is not None and args.limit < 1):
        raise BenchmarkError("--repeats and --limit must be at least 1")
    result = run(args)
    os.makedirs(args.out, exist_ok=True)
    atomic_write_text(os.path.join(args.out, "keras_peer.json"), json.dumps(result, indent=2) + "\n")
    print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main, sys.argv[1:]))
