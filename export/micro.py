"""The TFLite Micro target, ``<bundle>/micro/`` (micro/README.md): the model with its Embedding as a plain
gather (TFLM cannot run Keras' int32 prologue for negative ids), C sources of it and of the vocabulary
(from micro/templates/), micro/'s tokenizer and example, and SHA256SUMS; checked with TFLM against LiteRT."""
from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import re
import shutil
import string
import subprocess
import tempfile
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace
from typing import Mapping

import numpy as np

from runtime.bundle import MANIFEST
from runtime.errors import require
from runtime.files import atomic_write_bytes, redirected
from runtime.tokenizer import SPECIAL_TOKENS, Tokenizer

from . import verify as V
from .errors import ExportError
from .manifest import file_entries, write_manifest
from .row_quantization import per_row

logger = logging.getLogger(__name__)

MICRO_DIR = "micro"
SOURCES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "micro")
COPIED = ("tokenizer.h", "tokenizer.c", "example.h", "example.cc", "README.md")
GENERATED = ("model.tflite", "model_data.h", "model_data.cc", "vocab_data.h", "vocab_data.c", "model_ops.h")
VOCAB_BLOCK = 16  # words per front-coded block: one binary search step covers a block
MAX_ID = 0x7FFF  # ids are stored in 15 bits (the high byte's bit 7 marks the end of a word)
ARENA_LIMIT = 1 << 20  # the bisection's upper end
ARM_FLAGS = ("-Os", "-mcpu=cortex-m4", "-mthumb")
_WORD = re.compile(rb"[a-z0-9']+")
# MicroMutableOpResolver::AddX names that are not CamelCase of the TFLite builtin name.
_RESOLVER_NAMES = {"CONV_2D": "Conv2D", "DEPTHWISE_CONV_2D": "DepthwiseConv2D", "MAX_POOL_2D": "MaxPool2D",
                   "AVERAGE_POOL_2D": "AveragePool2D"}


class MicroError(ExportError, ValueError):
    """The model or vocabulary cannot be made into the microcontroller target."""


def micro_model(model, calibration_ids: np.ndarray) -> bytes:
    """``model`` with its Embedding as a plain gather, batch 1; quantized as model.int8.tflite (two
    classes) or model.dynamic.tflite (N: full-integer moved 4% of the star arg-maxes)."""
    import tensorflow as tf

    from .signature import check_calibration, convert, converter, int8_flatbuffer, model_maxlen, serving_function
    from .tflite_export import quantize_tables_per_row

    calibration_ids = check_calibration(calibration_ids, model_maxlen(model))
    embedding, rest = _split_embedding(model)
    table = tf.constant(embedding.get_weights()[0])  # [vocab, dim] float32

    def body(input_ids):
        x = tf.gather(table, input_ids)  # [1, maxlen, dim]
        for layer in rest:
            x = layer(x, training=False)
        return x

    serve = serving_function(model, batch=1, body=body)
    if per_row(int(model.output_shape[-1])):
        flat = quantize_tables_per_row(convert(converter(serve)))
    else:
        flat = int8_flatbuffer(serve, calibration_ids)
    bad = {"LESS", "ADD", "SELECT", "SELECT_V2"} & set(model_ops(flat))
    if bad:
        raise MicroError(f"the micro model still has int32 index ops: {', '.join(sorted(bad))}")
    return flat


def _split_embedding(model):
    """(the Embedding layer, the layers after it): the model must be a plain chain."""
    import keras

    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    if not layers or not isinstance(layers[0], keras.layers.Embedding):
        raise MicroError("the micro target needs a model that starts with an Embedding layer")
    for before, after in zip(layers, layers[1:]):
        if after.input is not before.output:
            raise MicroError(f"the micro target needs a chain of layers; {after.name} does not follow {before.name}")
    return layers[0], layers[1:]


def model_ops(flat: bytes) -> list[str]:
    """The builtin op names of a TFLite flatbuffer, in first-use order."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(flat))
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    codes = [names[max(c.builtinCode, c.deprecatedBuiltinCode)] for c in model.operatorCodes]
    return list(dict.fromkeys(codes[op.opcodeIndex] for graph in model.subgraphs for op in graph.operators))


def resolver_method(op: str) -> str:
    """``FULLY_CONNECTED`` -> ``AddFullyConnected``, the MicroMutableOpResolver method."""
    return "Add" + _RESOLVER_NAMES.get(op, "".join(part.capitalize() for part in op.split("_")))


def tflm_available() -> bool:
    return importlib.util.find_spec("tflite_micro") is not None


def tflm_interpreter(flat: bytes, arena_size: int):
    runtime = require("tflite_micro.python.tflite_micro.runtime", "train")  # Linux x86_64 wheels only
    return runtime.Interpreter.from_bytes(flat, arena_size=arena_size)


def _row_by_row(ids: np.ndarray, width: int, invoke) -> np.ndarray:
    """``invoke(row)`` on each [1, maxlen] row, as on a device -> ``V.probabilities``: [n] or [n, N]."""
    out = np.empty((len(ids), width), dtype=np.float32)
    for i, row in enumerate(ids):
        out[i] = invoke(row[None, :]).reshape(-1)
    return V.probabilities(out)


def tflm_scores(flat: bytes, ids: np.ndarray, arena_size: int) -> np.ndarray:
    interp = tflm_interpreter(flat, arena_size)

    def invoke(row):
        interp.set_input(row, 0)
        interp.invoke()
        return interp.get_output(0)

    return _row_by_row(ids, int(interp.get_output_details(0)["shape"][-1]), invoke)


def litert_builtin_scores(flat: bytes, ids: np.ndarray) -> np.ndarray:
    """LiteRT's reference built-in kernels, no XNNPACK: the arithmetic TFLM reproduces."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from .signature import INPUT_NAME, OUTPUT_NAME

    interp = Interpreter(model_content=flat,
                         experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    run = interp.get_signature_runner()  # export.signature's names
    return _row_by_row(ids, int(interp.get_output_details()[0]["shape"][-1]),
                       lambda row: run(**{INPUT_NAME: row})[OUTPUT_NAME])


def _arena_works(flat: bytes, size: int, probe: np.ndarray) -> bool:
    try:
        with open(os.devnull, "w") as null, redirected(null.fileno()):  # TFLM prints every failed allocation
            tflm_scores(flat, probe, size)
    except (RuntimeError, ValueError):
        return False
    return True


def smallest_arena(flat: bytes, maxlen: int, align: int = 16) -> int:
    """The smallest arena (``align`` steps) the ``tflite-micro`` wheel's interpreter runs the model in."""
    probe = np.ones((1, maxlen), dtype=np.int32)
    lo, hi = 0, 1024  # lo fails, hi works
    while not _arena_works(flat, hi, probe):
        lo, hi = hi, hi * 2
        if hi > ARENA_LIMIT:
            raise MicroError(f"TFLM cannot run the micro model in {ARENA_LIMIT} bytes of arena")
    while hi - lo > align:
        mid = (lo + hi) // 2 // align * align
        lo, hi = (lo, mid) if _arena_works(flat, mid, probe) else (mid, hi)
    return hi


def vocab_table(vocab: Mapping[str, int]) -> tuple[bytes, list[int], int]:
    """(entries, block offsets, longest word) of the words a token can equal, sorted by bytes. Entry: the
    prefix shared with the previous word (0 starting a block), the rest, the id as 2 bytes (high first, bit 7 set)."""
    words = sorted((w.encode("ascii"), i) for w, i in vocab.items()
                   if w not in SPECIAL_TOKENS and _WORD.fullmatch(w.encode("utf-8")))
    if not words:
        raise MicroError("the vocabulary has no word a token can equal")
    if max(i for _, i in words) > MAX_ID:
        raise MicroError(f"the micro vocabulary table holds ids up to {MAX_ID}; this one has {len(vocab)} words")
    out, blocks = bytearray(), []
    for k, (word, i) in enumerate(words):
        if k % VOCAB_BLOCK == 0:
            blocks.append(len(out))
        shared = len(os.path.commonprefix([words[k - 1][0], word])) if k % VOCAB_BLOCK else 0
        out += bytes([shared]) + word[shared:] + bytes([0x80 | i >> 8, i & 0xFF])
    longest = max(len(w) for w, _ in words)
    if longest > 254:
        raise MicroError(f"the micro tokenizer keeps words of up to 254 bytes; the vocabulary has one of {longest}")
    return bytes(out), blocks, longest


def _offset_bytes(words: bytes) -> int:  # of an rk_vocab_blocks entry
    return 2 if len(words) <= 0xFFFF else 4


def _render(name: str, **values) -> str:
    """micro/templates/``name``.in with its ``${...}`` filled in."""
    return string.Template(Path(SOURCES, "templates", name + ".in").read_text(encoding="utf-8")).substitute(values)


def _c_lines(values, per_line: int, fmt: str) -> str:
    """An array initialiser: ``per_line`` values a line, each ``fmt`` (with its comma), indented."""
    return "\n".join("    " + "".join(fmt.format(v) for v in values[i:i + per_line])
                     for i in range(0, len(values), per_line))


def vocab_sources(vocab: Mapping[str, int], maxlen: int) -> dict[str, str]:
    words, blocks, longest = vocab_table(vocab)
    common = {"offset_type": f"uint{8 * _offset_bytes(words)}_t"}
    return {"vocab_data.h": _render("vocab_data.h", **common, maxlen=maxlen, vocab_size=len(vocab),
                                    longest=longest, blocks=len(blocks), words=len(words)),
            "vocab_data.c": _render("vocab_data.c", **common, block=VOCAB_BLOCK,
                                    block_offsets=_c_lines(blocks, 12, "{},"),
                                    word_bytes=_c_lines(words, 16, "0x{:02x},"))}


_C_SAFE = frozenset(range(0x20, 0x7F)) - frozenset(b'"\\?')  # '?': no trigraph in C


def c_string(text: str) -> str:
    """``text``'s UTF-8 bytes as a C string literal, ``_C_SAFE`` as they are, others 3-digit octal escapes."""
    data = text.encode("utf-8")
    if 0 in data:
        raise MicroError(f"the label {text!r} has a NUL character, which ends a C string")
    return '"' + "".join(chr(b) if b in _C_SAFE else f"\\{b:03o}" for b in data) + '"'


def model_sources(flat: bytes, ops: list[str], labels: list[str]) -> dict[str, str]:
    """model_data.h/.cc (the model and its labels, in output column order) and model_ops.h."""
    from trainer.model import outputs

    adds = [f"    if (r.{resolver_method(op)}() != kTfLiteOk) return kTfLiteError;" for op in ops]
    return {
        "model_data.h": _render("model_data.h", classes=len(labels), outputs=outputs(len(labels))),
        "model_data.cc": _render("model_data.cc", size=len(flat), sha256=hashlib.sha256(flat).hexdigest(),
                                 data=_c_lines(flat, 16, "0x{:02x},"),
                                 labels="".join(f"    {c_string(label)},\n" for label in labels)),
        "model_ops.h": _render("model_ops.h", op_names=", ".join(ops), count=len(ops), adds="\n".join(adds)),
    }


def write_micro_dir(out: str, flat: bytes, vocab: Mapping[str, int], maxlen: int, labels: list[str]) -> str:
    """Write ``out/micro/`` (generated files + copied sources + SHA256SUMS); returns its path."""
    micro = os.path.join(out, MICRO_DIR)
    missing = [n for n in COPIED if not os.path.isfile(os.path.join(SOURCES, n))]
    if missing:
        raise MicroError(f"{SOURCES}: missing {', '.join(missing)} (run from a reviewkit checkout)")
    texts = {**model_sources(flat, model_ops(flat), labels), **vocab_sources(vocab, maxlen)}  # may refuse: first
    files = {"model.tflite": flat, **{name: text.encode("utf-8") for name, text in texts.items()},
             **{name: Path(SOURCES, name).read_bytes() for name in COPIED}}
    os.makedirs(micro, exist_ok=True)
    for name, data in files.items():
        atomic_write_bytes(os.path.join(micro, name), data)
    sums = "".join(f"{e['sha256']}  {n}\n" for n, e in file_entries(micro, (*GENERATED, *COPIED)).items())
    atomic_write_bytes(os.path.join(micro, "SHA256SUMS"), sums.encode("utf-8"))
    return micro


def code_size(source: str, compiler: str = "gcc", flags: tuple[str, ...] = ("-Os",)) -> int | None:
    """``text`` bytes of ``source`` compiled with ``compiler`` (``size``), None without the tools."""
    size_tool = compiler[:-3] + "size"  # gcc -> size, arm-none-eabi-gcc -> arm-none-eabi-size
    if not shutil.which(compiler) or not shutil.which(size_tool):
        return None
    with tempfile.TemporaryDirectory() as tmp:
        obj = os.path.join(tmp, "out.o")
        subprocess.run([compiler, "-std=c99", *flags, "-c", source, "-o", obj, "-I", os.path.dirname(source)],
                       check=True, capture_output=True)
        text = subprocess.run([size_tool, obj], check=True, capture_output=True, text=True).stdout
    return int(text.splitlines()[1].split()[0])


def export_micro(out: str, model, tok: Tokenizer, calibration_ids: np.ndarray, test_texts: list[str],
                 test_labels: np.ndarray) -> list[V.Result]:
    """Write ``out/micro/``, check it (micro/README.md), add a ``"micro"`` section to the manifest."""
    manifest = _read_manifest(out)
    flat = micro_model(model, calibration_ids)
    width = _output_width(flat, manifest["labels"])
    micro = write_micro_dir(out, flat, tok.vocab, tok.maxlen, manifest["labels"])
    logger.info(f"wrote {micro}/ (model.tflite {len(flat) / 1024:.0f} KiB, C sources)")
    arena = smallest_arena(flat, tok.maxlen)
    ids = tok.encode_batch(test_texts)  # [n, maxlen] int32
    logger.info(f"scoring {len(ids)} test reviews with the TFLite Micro interpreter (arena {arena} bytes, the "
                "tflite-micro wheel's figure)")
    tflm, litert = tflm_scores(flat, ids, arena), litert_builtin_scores(flat, ids)
    result = V.compare(f"{MICRO_DIR}/model.tflite", tflm, litert, test_labels,
                       quantized=True, reference_accuracy=manifest["verification"]["reference"]["accuracy"])
    _check_labels(out, model, tflm, litert, ids, result, per_row(width))
    scorer = SimpleNamespace(run=lambda rows: tflm_scores(flat, rows, arena))
    V.check_edge_rows(result, MICRO_DIR, *V.edge_rows(tok), backends=lambda _: [("TFLM", scorer)], width=width)
    manifest["micro"] = section = _section(micro, flat, arena, tok, result, width)
    write_manifest(out, manifest)
    f, flash = result.figures, section["sizes"]["model_bytes"] + section["sizes"]["vocab_bytes"]
    logger.info(f"{result.name}: {'PASS' if result.passed else 'FAIL: ' + '; '.join(result.failures)} -- TFLM labels = "
                f"LiteRT built-in labels on {f['agreement']:.2%} of {f['n']} reviews, accuracy {f['accuracy']:.4f}, "
                f"arena {arena} B (tflite-micro wheel), flash {flash} B (model + vocabulary)")
    return [result]


def _check_labels(out: str, model, tflm: np.ndarray, litert: np.ndarray, ids: np.ndarray, result: V.Result,
                  by_row: bool) -> None:
    """TFLM's labels are LiteRT's on every review. N classes (not model.int8.tflite's quantization): labels
    against Keras by the quantized formats' rule; two: LiteRT gives model.int8.tflite the same scores."""
    if result.figures["agreement"] < 1.0:
        result.failures.append(f"TFLM and LiteRT's built-in kernels disagree on "
                               f"{1 - result.figures['agreement']:.4%} of the labels")
    if by_row:
        keras = model.predict(ids, batch_size=512, verbose=0)  # [n, N]
        agreement = result.figures["agreement_with_keras"] = float(np.mean(V.predicted(tflm) == V.predicted(keras)))
        if agreement < V.QUANT_MIN_AGREEMENT:
            result.failures.append(f"label agreement with Keras {agreement:.4%} < {V.QUANT_MIN_AGREEMENT:.0%}")
        return
    path = Path(out, "model.int8.tflite")
    int8 = path.read_bytes() if path.is_file() else None
    if int8 is None or litert_output(int8)["dtype"] != np.float32:  # none, or --int8-io
        return
    diff = float(np.abs(litert_builtin_scores(int8, ids) - litert).max())
    result.figures["max_abs_diff_vs_model_int8_tflite"] = diff
    if diff > 0:
        result.failures.append(f"the micro model differs from model.int8.tflite by up to {diff:.3g} "
                               "(LiteRT built-in kernels)")


def litert_output(flat: bytes) -> dict:
    """LiteRT's details of the model's output tensor (``dtype``, ``shape``)."""
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter(model_content=flat).get_output_details()[0]


def _output_width(flat: bytes, labels: list[str]) -> int:
    """The micro model's outputs: 1 for two labels, N for N (a model for other labels is refused)."""
    from trainer.model import outputs

    width, wanted = int(litert_output(flat)["shape"][-1]), outputs(len(labels))
    if width != wanted:
        raise MicroError(f"the micro model has {width} output{'s' * (width != 1)}, but {MANIFEST} names "
                         f"{len(labels)} labels (needing {wanted})")
    return width


def _read_manifest(out: str) -> dict:
    path = os.path.join(out, MANIFEST)
    try:
        manifest = json.loads(Path(path).read_text(encoding="utf-8"))
        manifest["verification"]["reference"]["accuracy"], len(manifest["labels"])
    except FileNotFoundError:
        raise MicroError(f"{out}: no {MANIFEST}; the micro target is checked against a verified bundle "
                         "(run 'python -m export verify' first)") from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise MicroError(f"{path}: unreadable ({e})") from None
    return manifest


def _section(micro: str, flat: bytes, arena: int, tok: Tokenizer, result: V.Result, width: int) -> dict:
    from .signature import INPUT_NAME, OUTPUT_NAME

    words, blocks, _ = vocab_table(tok.vocab)
    c_file = os.path.join(micro, "tokenizer.c")
    return {
        "dir": MICRO_DIR,
        "model": "model.tflite",
        "input": {"name": INPUT_NAME, "shape": [1, tok.maxlen], "dtype": "int32"},
        "output": {"name": OUTPUT_NAME, "shape": [1, width], "dtype": "float32"},
        "ops": model_ops(flat),
        "tflite_micro": metadata.version("tflite-micro"),
        "arena_bytes": arena,
        "arena_measured": "the tflite-micro wheel's figure: smallest tensor arena (16-byte steps) in which "
                          "the wheel's TFLM interpreter allocates and invokes the model on this (64-bit) host; "
                          "TFLM built from source needs less (micro/README.md)",
        "sizes": {"model_bytes": len(flat), "vocab_bytes": len(words) + len(blocks) * _offset_bytes(words),
                  "tokenizer_code_bytes": {"host_gcc_Os": code_size(c_file),
                                           "cortex_m4_Os": code_size(c_file, "arm-none-eabi-gcc", ARM_FLAGS)}},
        "verification": {"reference": "LiteRT BUILTIN_WITHOUT_DEFAULT_DELEGATES on the same model",
                         **result.figures, "passed": result.passed, "failures": result.failures},
        "files": file_entries(micro, (*GENERATED, *COPIED)),
    }
