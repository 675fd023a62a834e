"""``python -m benchmarks.micro [--bundle artifacts] [--data PATH] [--out bench] [--limit N]``

The "TFLite Micro (host)" row: the bundle's ``micro/`` target (``python -m export micro``) on
the IMDB test reviews -- the C tokenizer compiled on the host, then ``micro/model.tflite`` in
the TFLM interpreter of the ``tflite-micro`` package, one review per invoke as on a device --
with its flash and RAM budget. Writes micro.json and micro.md to ``--out`` and prints the table.
"""
from __future__ import annotations

import json
import os
import platform
import struct
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone

import numpy as np

from runtime.errors import ArgumentParser, UserError, run_cli
from runtime.files import atomic_write_text

from .common import ROOT, add_data_option, data_path

COLUMNS = ["engine", "model file", "flash KB (model + vocab + tokenizer)",
           "tensor arena bytes (tflite-micro wheel)",
           "C tokenizer reviews/s (host -O2)", "invoke p50 / p99 us", "end-to-end reviews/s", "accuracy"]


class MicroBenchError(UserError):
    """The bundle has no micro/ target, or the host cannot build the C tokenizer."""


def parse_args(argv):
    p = ArgumentParser(prog="python -m benchmarks.micro", description=__doc__.split("\n\n")[1])
    p.add_argument("--bundle", default="artifacts", help="a bundle with micro/ (default: artifacts)")
    add_data_option(p)
    p.add_argument("--out", default="bench", help="output directory (default: bench)")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="use the first N test reviews (smoke runs)")
    return p.parse_args(argv)


def load_micro(bundle: str) -> tuple[dict, bytes, str]:
    """(manifest["micro"], model.tflite bytes, micro/ path)."""
    try:
        with open(os.path.join(bundle, "manifest.json"), encoding="utf-8") as f:
            section = json.load(f)["micro"]
        micro = os.path.join(bundle, section["dir"])
        with open(os.path.join(micro, section["model"]), "rb") as f:
            return section, f.read(), micro
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise MicroBenchError(f"{bundle}: no micro target ({e}); run 'python -m export micro --out {bundle}'") from None


def c_tokenizer_speed(micro: str, texts: list[bytes], passes: int = 3) -> tuple[float, float]:
    """(reviews/s, MB/s) of micro/tokenizer.c built with gcc -O2, best of ``passes``."""
    with tempfile.TemporaryDirectory() as tmp:
        exe = os.path.join(tmp, "bench")
        cmd = ["gcc", "-std=c99", "-O2", "-I", micro, os.path.join(ROOT, "benchmarks", "micro_tokenize.c"),
               os.path.join(micro, "tokenizer.c"), os.path.join(micro, "vocab_data.c"), "-o", exe]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode:
            raise MicroBenchError(f"cannot build the C tokenizer: {proc.stderr.strip()[:500]}")
        data = b"".join(struct.pack("<I", len(t)) + t for t in texts)
        out = subprocess.run([exe, str(passes)], input=data, capture_output=True, check=True).stdout.split()
    seconds = float(out[0])
    return len(texts) / seconds, sum(map(len, texts)) / seconds / 1e6


def tflm_latency(flat: bytes, ids: np.ndarray, arena: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per review: (probability, invoke seconds, set_input + invoke + get_output seconds)."""
    from export.micro import tflm_interpreter

    interp = tflm_interpreter(flat, arena)
    probs, invoke, whole = (np.empty(len(ids)) for _ in range(3))
    clock = time.perf_counter
    for i, row in enumerate(ids):
        t0 = clock()
        interp.set_input(row[None, :], 0)
        t1 = clock()
        interp.invoke()
        t2 = clock()
        probs[i] = interp.get_output(0).reshape(-1)[0]
        invoke[i], whole[i] = t2 - t1, clock() - t0
    return probs, invoke, whole


def flash_bytes(section: dict) -> dict:
    sizes = section["sizes"]
    code = sizes["tokenizer_code_bytes"]
    data = sizes["model_bytes"] + sizes["vocab_bytes"]
    return {"model": sizes["model_bytes"], "vocab": sizes["vocab_bytes"],
            "tokenizer_cortex_m4": code.get("cortex_m4_Os"), "tokenizer_host": code.get("host_gcc_Os"),
            "total": data + (code.get("cortex_m4_Os") or code.get("host_gcc_Os") or 0)}


def run(args) -> dict:
    from runtime.tokenizer import Tokenizer, read_vocab
    from trainer.data import load_imdb

    section, flat, micro = load_micro(args.bundle)
    imdb = load_imdb(data_path(args.data))
    texts, labels = imdb.test_texts[: args.limit], imdb.test_labels[: args.limit]
    raw = [t.encode("utf-8") for t in texts]
    tok = Tokenizer(read_vocab(os.path.join(args.bundle, "vocab.txt")), section["input"]["shape"][1])
    tok_rps, tok_mbs = c_tokenizer_speed(micro, raw)
    probs, invoke, whole = tflm_latency(flat, tok.encode_batch(texts), section["arena_bytes"])
    e2e = 1 / (1 / tok_rps + whole.mean())
    return {
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": {"python": platform.python_version(), "processor": platform.processor() or platform.machine(),
                    "cpus": os.cpu_count()},
        "reviews": len(texts), "model": f"{section['dir']}/{section['model']}",
        "flash_bytes": flash_bytes(section), "arena_bytes": section["arena_bytes"],
        "c_tokenizer": {"reviews_per_s": tok_rps, "mb_per_s": tok_mbs},
        "invoke_us": {"p50": float(np.percentile(invoke, 50) * 1e6), "p99": float(np.percentile(invoke, 99) * 1e6)},
        "interpreter_call_us": {"p50": float(np.percentile(whole, 50) * 1e6),
                                "p99": float(np.percentile(whole, 99) * 1e6)},
        "end_to_end_reviews_per_s": e2e,
        "accuracy": float(np.mean((probs >= 0.5) == (labels == 1))),
    }


def markdown(result: dict) -> str:
    flash = result["flash_bytes"]
    m4 = flash["tokenizer_cortex_m4"]
    code = f"{m4} B Cortex-M4" if m4 else f"{flash['tokenizer_host']} B x86-64"
    row = ["TFLite Micro (host)", result["model"],
           f"{flash['total'] / 1024:.0f} ({flash['model'] / 1024:.0f} + {flash['vocab'] / 1024:.0f} + {code})",
           f"{result['arena_bytes']:,}", f"{result['c_tokenizer']['reviews_per_s']:,.0f} "
           f"({result['c_tokenizer']['mb_per_s']:.0f} MB/s)",
           f"{result['invoke_us']['p50']:.1f} / {result['invoke_us']['p99']:.1f}",
           f"{result['end_to_end_reviews_per_s']:,.0f}", f"{result['accuracy']:.4f}"]
    return "\n".join(["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS), "| " + " | ".join(row) + " |"])


def main(argv=None) -> int:
    args = parse_args(argv)
    result = run(args)
    os.makedirs(args.out, exist_ok=True)
    table = markdown(result)
    atomic_write_text(os.path.join(args.out, "micro.json"), json.dumps(result, indent=2) + "\n")
    atomic_write_text(os.path.join(args.out, "micro.md"), table + "\n\n" + NOTES)
    print(table)
    return 0


NOTES = """- flash: model.tflite + the vocabulary table (vocab_data.c) + the C tokenizer's code (`size`
  of tokenizer.o, `arm-none-eabi-gcc -Os -mcpu=cortex-m4 -mthumb` when installed, else host gcc -Os).
  The TFLM library itself (~ the 5 kernels and the interpreter) comes on top.
- tensor arena: the `tflite-micro` wheel's figure, the smallest that works in its TFLM interpreter, by
  bisection (manifest.json `arena_bytes`); TFLM built from source needs less (micro/README.md).
- C tokenizer: micro/tokenizer.c built with gcc -O2 on the host, all reviews, best of 3 passes.
- invoke: `Interpreter.invoke()` of tflite-micro's Python wrapper, one review per call; end-to-end adds
  the C tokenizer time and the wrapper's set_input / get_output.
"""

if __name__ == "__main__":
    sys.exit(run_cli(main))
