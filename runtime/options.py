"""The options ``runtime.predict`` and ``runtime.batch`` share: same names, same meaning."""
from __future__ import annotations

import argparse

from .sinks import OUTPUT_FORMATS
from .sources import ALIASES, DEFAULT_MAX_RECORD_BYTES, INPUT_FORMATS, InputError


def add_options(p: argparse.ArgumentParser, batch_size: int) -> None:
    p.add_argument("--input-format", choices=INPUT_FORMATS + tuple(ALIASES), metavar="FORMAT",
                   help=f"one of {', '.join(INPUT_FORMATS)} ('lines' = text)")
    p.add_argument("--format", choices=OUTPUT_FORMATS, help=f"output format: {', '.join(OUTPUT_FORMATS)}")
    p.add_argument("--text-column", "--text-field", dest="text_column", default="text", metavar="NAME",
                   help="review column/field (default: text)")
    p.add_argument("--id-column", "--id-field", dest="id_column", metavar="NAME",
                   help="column/field written as the row key instead of the 'row' number")
    p.add_argument("--keep-columns", default="", metavar="A,B", help="more columns copied to the output")
    p.add_argument("--model", metavar="PATH", help="bundle directory or a model file in one (default: bundled model)")
    p.add_argument("--backend", choices=("auto", "onnx", "tflite"), default="auto",
                   help="inference runtime (default: auto, from the model file)")
    p.add_argument("--threshold", type=float, help="probability at or above which a review is positive "
                                                   "(default: the model's)")
    p.add_argument("--batch-size", type=int, default=batch_size, metavar="N",
                   help=f"rows per unit of work (default: {batch_size})")
    p.add_argument("--max-record-bytes", type=int, default=DEFAULT_MAX_RECORD_BYTES, metavar="N",
                   help=f"longest record (line, CSV record) accepted (default: {DEFAULT_MAX_RECORD_BYTES})")
    p.add_argument("--workers", type=int, metavar="N", help="scoring processes (default: all cores for "
                                                            "inputs over 4 MiB, else 1); output order is kept")
    p.add_argument("--deterministic", action="store_true",
                   help="TFLite on its built-in kernels only: int8 scores identical on every CPU "
                        "(x86, ARM, TFLite Micro); implies --backend tflite unless given")
    p.add_argument("--verbose", action="store_true",
                   help="let the inference libraries' own messages through to stderr")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress on stderr: a status line on a terminal, plain lines elsewhere "
                        "(default: when stderr is a terminal)")


def keep_list(text: str) -> tuple[str, ...]:
    names = [n.strip() for n in text.split(",")] if text.strip() else []
    if any(not n for n in names):
        raise InputError(f"--keep-columns {text!r} has an empty name")
    return tuple(names)
