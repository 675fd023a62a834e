"""The TFLite Micro target: ``<bundle>/micro/``, everything a microcontroller firmware needs.

- ``model.tflite``: full-integer int8, batch 1, no metadata, and no int32 prologue. Keras'
  ``Embedding`` turns ids into ``where(ids < 0, ids + vocab, ids)`` (LESS/ADD/SELECT_V2 on
  int32), which TFLM cannot run; our tokenizer never makes a negative id, so here the
  embedding is a plain ``tf.gather`` of the same weights and the rest of the model is called
  as it is, calibrated on the same ids as ``model.int8.tflite``.
- ``model_data.h/.cc``: the model as a 16-byte-aligned ``const unsigned char[]``, and the
  manifest's labels (``RK_NUM_CLASSES``, ``RK_NUM_OUTPUTS``, ``rk_labels``; see ``c_string``).
- ``vocab_data.h/.c``: the vocabulary as a front-coded sorted table (see ``vocab_table``).
- ``model_ops.h``: registers exactly the model's ops in a ``MicroMutableOpResolver``.
- ``tokenizer.c/.h``, ``example.cc/.h``, ``README.md``: copied from the repository's ``micro/``.
- ``SHA256SUMS``: ``sha256sum -c`` list of the above (the top-level manifest lists plain names).
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
from importlib import metadata
from typing import Mapping

import numpy as np

from runtime.bundle import MANIFEST
from runtime.errors import require
from runtime.files import atomic_write_bytes, atomic_write_text, redirected
from runtime.tokenizer import SPECIAL_TOKENS, Tokenizer

from . import verify as V
from .errors import ExportError
from .manifest import write_manifest

logger = logging.getLogger(__name__)

MICRO_DIR = "micro"
SOURCES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "micro")
COPIED = ("tokenizer.h", "tokenizer.c", "example.h", "example.cc", "README.md")
GENERATED = ("model.tflite", "model_data.h", "model_data.cc", "vocab_data.h", "vocab_data.c", "model_ops.h")
VOCAB_BLOCK = 16  # words per front-coded block: one binary search step covers a block
MAX_ID = 0x7FFF  # ids are stored in 15 bits (the high byte's bit 7 marks the end of a word)
ARENA_LIMIT = 1 << 20  # the bisection's upper end
_WORD = re.compile(rb"[a-z0-9']+")
# MicroMutableOpResolver::AddX names that are not CamelCase of the TFLite builtin name.
_RESOLVER_NAMES = {"CONV_2D": "Conv2D", "DEPTHWISE_CONV_2D": "DepthwiseConv2D", "MAX_POOL_2D": "MaxPool2D",
                   "AVERAGE_POOL_2D": "AveragePool2D"}


class MicroError(ExportError, ValueError):
    """The model or vocabulary cannot be made into the microcontroller target."""


# -- the model ----------------------------------------------------------------------------
def micro_model(model, calibration_ids: np.ndarray) -> bytes:
    """``model`` with its Embedding as a plain gather, converted for TFLM.

    Two outputs: full-integer int8, as ``model.int8.tflite`` computes it. N >= 3 outputs: float,
    then its table made int8 rows with a scale per row by the rewrite of ``model.dynamic.tflite``
    (``tflite_export.quantize_tables_per_row``: the numbers of model.int8.onnx). Full-integer moved
    the arg-max of 4% of the star-rating reviews, all of it the one-scale table (measured: float
    everything after it, still 96.28%). Input ``input_ids`` [1, maxlen] int32 (TFLM does not
    resize), output ``probability`` [1, 1] or [1, N] float32.
    """
    import tensorflow as tf

    from .row_quantization import per_row
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
            raise MicroError(f"the micro target needs a chain of layers; {after.name} does not follow "
                             f"{before.name}")
    return layers[0], layers[1:]


def model_ops(flat: bytes) -> list[str]:
    """The builtin op names of a TFLite flatbuffer, in first-use order."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(flat))
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]
    ops = []
    for graph in model.subgraphs:
        for op in graph.operators:
            name = names[codes[op.opcodeIndex]]
            if name not in ops:
                ops.append(name)
    return ops


def resolver_method(op: str) -> str:
    """``FULLY_CONNECTED`` -> ``AddFullyConnected``, the MicroMutableOpResolver method."""
    return "Add" + _RESOLVER_NAMES.get(op, "".join(part.capitalize() for part in op.split("_")))


# -- TFLM and LiteRT on the host ------------------------------------------------------------
def tflm_available() -> bool:
    return importlib.util.find_spec("tflite_micro") is not None


def tflm_interpreter(flat: bytes, arena_size: int):
    runtime = require("tflite_micro.python.tflite_micro.runtime", "train")  # Linux x86_64 wheels only
    return runtime.Interpreter.from_bytes(flat, arena_size=arena_size)


def tflm_scores(flat: bytes, ids: np.ndarray, arena_size: int) -> np.ndarray:
    """``ids`` [n, maxlen] int32, one review per invoke as on a device -> float32 [n] (two
    classes) or [n, N], as ``V.probabilities`` gives a model's output."""
    interp = tflm_interpreter(flat, arena_size)
    out = np.empty((len(ids), int(interp.get_output_details(0)["shape"][-1])), dtype=np.float32)
    for i, row in enumerate(ids):
        interp.set_input(row[None, :], 0)
        interp.invoke()
        out[i] = interp.get_output(0).reshape(-1)
    return V.probabilities(out)


class TflmScorer:
    """``run(ids)`` -> ``tflm_scores``: the TFLM interpreter as a backend of ``V.check_edge_rows``."""

    def __init__(self, flat: bytes, arena_size: int):
        self.flat, self.arena_size = flat, arena_size

    def run(self, ids: np.ndarray) -> np.ndarray:
        return tflm_scores(self.flat, ids, self.arena_size)


def litert_builtin_scores(flat: bytes, ids: np.ndarray) -> np.ndarray:
    """LiteRT's reference built-in kernels, no XNNPACK: the arithmetic TFLM reproduces. Float32
    [n] (two classes) or [n, N], as ``tflm_scores``."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interp = Interpreter(model_content=flat,
                         experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    inp, outp = interp.get_input_details()[0], interp.get_output_details()[0]
    if list(inp["shape"]) != [1, ids.shape[1]]:
        interp.resize_tensor_input(inp["index"], [1, ids.shape[1]])
    interp.allocate_tensors()
    out = np.empty((len(ids), int(outp["shape"][-1])), dtype=np.float32)
    for i, row in enumerate(ids):
        interp.set_tensor(inp["index"], row[None, :])
        interp.invoke()
        out[i] = interp.get_tensor(outp["index"]).reshape(-1)
    return V.probabilities(out)


def _arena_works(flat: bytes, size: int, probe: np.ndarray) -> bool:
    try:
        with _quiet_stderr():  # TFLM prints every failed allocation
            tflm_scores(flat, probe, size)
    except (RuntimeError, ValueError):
        return False
    return True


@contextlib.contextmanager
def _quiet_stderr():
    with open(os.devnull, "w") as null, redirected(null.fileno()):
        yield


def smallest_arena(flat: bytes, maxlen: int, align: int = 16) -> int:
    """The smallest tensor arena (a multiple of ``align`` bytes) in which the TFLM interpreter
    of the ``tflite-micro`` wheel allocates and invokes the model, by bisection: the wheel's
    figure, more than TFLM built from source needs (micro/README.md)."""
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


# -- C sources ------------------------------------------------------------------------------
def vocab_table(vocab: Mapping[str, int]) -> tuple[bytes, list[int], int]:
    """(entries, block offsets, longest word) of the words a token can equal, sorted by bytes.

    Entry: shared prefix length with the previous word (0 at the start of each block of
    ``VOCAB_BLOCK`` words), the rest of the word, the id as 2 bytes, high first, with bit 7 set.
    """
    words = sorted((w.encode("ascii"), i) for w, i in vocab.items()
                   if w not in SPECIAL_TOKENS and _WORD.fullmatch(w.encode("utf-8")))
    if not words:
        raise MicroError("the vocabulary has no word a token can equal")
    if max(i for _, i in words) > MAX_ID:
        raise MicroError(f"the micro vocabulary table holds ids up to {MAX_ID}; this one has {len(vocab)} words")
    out, blocks, prev = bytearray(), [], b""
    for k, (word, i) in enumerate(words):
        if k % VOCAB_BLOCK == 0:
            blocks.append(len(out))
            prev = b""
        shared = len(os.path.commonprefix([prev, word]))
        out += bytes([shared]) + word[shared:] + bytes([0x80 | i >> 8, i & 0xFF])
        prev = word
    longest = max(len(w) for w, _ in words)
    if longest > 254:
        raise MicroError(f"the micro tokenizer keeps words of up to 254 bytes; the vocabulary has one of {longest}")
    return bytes(out), blocks, longest


def _c_bytes(data: bytes, per_line: int = 16) -> str:
    return "\n".join("    " + "".join(f"0x{b:02x}," for b in data[i:i + per_line])
                     for i in range(0, len(data), per_line))


def vocab_sources(vocab: Mapping[str, int], maxlen: int) -> dict[str, str]:
    words, blocks, longest = vocab_table(vocab)
    offset_type = "uint16_t" if len(words) <= 0xFFFF else "uint32_t"
    header = f"""/* Generated by `python -m export micro`: the vocabulary of the model in model_data.cc. */
#ifndef RK_VOCAB_DATA_H
#define RK_VOCAB_DATA_H

#include <stdint.h>

#define RK_MAXLEN {maxlen} /* ids per review: the model's input is [1, RK_MAXLEN] int32 */
#define RK_VOCAB_SIZE {len(vocab)}
#define RK_VOCAB_MAX_WORD {longest}
#define RK_VOCAB_BLOCKS {len(blocks)}
#define RK_VOCAB_BYTES {len(words)}

#ifdef __cplusplus
extern "C" {{
#endif
extern const uint8_t rk_vocab_words[RK_VOCAB_BYTES];
extern const {offset_type} rk_vocab_blocks[RK_VOCAB_BLOCKS];
#ifdef __cplusplus
}}
#endif

#endif /* RK_VOCAB_DATA_H */
"""
    source = f"""/* Generated by `python -m export micro`: the words a token can equal, sorted by bytes and
 * front coded in blocks of {VOCAB_BLOCK} (see rk_vocab_id in tokenizer.c). */
#include "vocab_data.h"

const {offset_type} rk_vocab_blocks[RK_VOCAB_BLOCKS] = {{
{chr(10).join("    " + "".join(f"{b}," for b in blocks[i:i + 12]) for i in range(0, len(blocks), 12))}
}};

const uint8_t rk_vocab_words[RK_VOCAB_BYTES] = {{
{_c_bytes(words)}
}};
"""
    return {"vocab_data.h": header, "vocab_data.c": source}


_C_SAFE = frozenset(range(0x20, 0x7F)) - frozenset(b'"\\?')  # '?': no trigraph in C


def c_string(text: str) -> str:
    """``text`` as a C string literal of its UTF-8 bytes: every byte that is not printable ASCII,
    and ``"``, ``\\``, ``?``, as a 3-digit octal escape (no digit after it can extend it)."""
    data = text.encode("utf-8")
    if 0 in data:
        raise MicroError(f"the label {text!r} has a NUL character, which ends a C string")
    return '"' + "".join(chr(b) if b in _C_SAFE else f"\\{b:03o}" for b in data) + '"'


def model_sources(flat: bytes, ops: list[str], labels: list[str]) -> dict[str, str]:
    """model_data.h/.cc (the model and its labels, in output column order) and model_ops.h."""
    return {**_model_data(flat, labels), "model_ops.h": _ops_header(ops)}


def _model_data(flat: bytes, labels: list[str]) -> dict[str, str]:
    from trainer.model import outputs

    header = f"""/* Generated by `python -m export micro`: model.tflite as a C array, and its labels. */
#ifndef RK_MODEL_DATA_H
#define RK_MODEL_DATA_H

/* The output is [1, RK_NUM_OUTPUTS] float32: two classes, one sigmoid, P(rk_labels[1]);
 * more, one softmax probability per class, column i = P(rk_labels[i]). */
#define RK_NUM_CLASSES {len(labels)}
#define RK_NUM_OUTPUTS {outputs(len(labels))}

extern const unsigned char rk_model_data[];
extern const unsigned int rk_model_data_len;
extern const char* const rk_labels[RK_NUM_CLASSES]; /* UTF-8: rk_labels[i] names class i */

#endif /* RK_MODEL_DATA_H */
"""
    source = f"""/* Generated by `python -m export micro`: model.tflite ({len(flat)} bytes, sha256
 * {hashlib.sha256(flat).hexdigest()}). 16-byte aligned, as TFLM wants its flatbuffer. */
#include "model_data.h"

alignas(16) const unsigned char rk_model_data[] = {{
{_c_bytes(flat)}
}};
const unsigned int rk_model_data_len = {len(flat)};

const char* const rk_labels[RK_NUM_CLASSES] = {{
{"".join(f"    {c_string(label)},{chr(10)}" for label in labels)}}};
"""
    return {"model_data.h": header, "model_data.cc": source}


def _ops_header(ops: list[str]) -> str:
    adds = "\n".join(f"    if (r.{resolver_method(op)}() != kTfLiteOk) return kTfLiteError;" for op in ops)
    return f"""/* Generated by `python -m export micro`: the ops of model.tflite ({", ".join(ops)}). */
#ifndef RK_MODEL_OPS_H
#define RK_MODEL_OPS_H

#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"

constexpr int kRkNumOps = {len(ops)};
using RkOpResolver = tflite::MicroMutableOpResolver<kRkNumOps>;

inline TfLiteStatus RkRegisterOps(RkOpResolver &r) {{
{adds}
    return kTfLiteOk;
}}

#endif /* RK_MODEL_OPS_H */
"""


# -- sizes ----------------------------------------------------------------------------------
def code_size(source: str, compiler: str = "gcc", flags: tuple[str, ...] = ("-Os",),
              include: str | None = None) -> int | None:
    """``text`` bytes of ``source`` compiled with ``compiler`` (``size``), None without the tools."""
    size_tool = compiler[:-3] + "size" if compiler.endswith("gcc") else "size"
    if not shutil.which(compiler) or not shutil.which(size_tool):
        return None
    with tempfile.TemporaryDirectory() as tmp:
        obj = os.path.join(tmp, "out.o")
        subprocess.run([compiler, "-std=c99", *flags, "-c", source, "-o", obj,
                        "-I", include or os.path.dirname(source)], check=True, capture_output=True)
        text = subprocess.run([size_tool, obj], check=True, capture_output=True, text=True).stdout
    return int(text.splitlines()[1].split()[0])


ARM_FLAGS = ("-Os", "-mcpu=cortex-m4", "-mthumb")


def sizes(micro: str, flat: bytes) -> dict:
    words, blocks, _ = vocab_table_sizes(micro)
    tok = os.path.join(micro, "tokenizer.c")
    return {
        "model_bytes": len(flat),
        "vocab_bytes": words + blocks,
        "tokenizer_code_bytes": {"host_gcc_Os": code_size(tok),
                                 "cortex_m4_Os": code_size(tok, "arm-none-eabi-gcc", ARM_FLAGS)},
    }


def vocab_table_sizes(micro: str) -> tuple[int, int, int]:
    """(word bytes, block index bytes, blocks) read back from the generated vocab_data.h."""
    with open(os.path.join(micro, "vocab_data.h"), encoding="ascii") as f:
        text = f.read()
    defines = dict(re.findall(r"#define (RK_\w+) (\d+)", text))
    width = 2 if "const uint16_t rk_vocab_blocks" in text else 4
    blocks = int(defines["RK_VOCAB_BLOCKS"])
    return int(defines["RK_VOCAB_BYTES"]), blocks * width, blocks


# -- the directory --------------------------------------------------------------------------
def write_micro_dir(out: str, flat: bytes, vocab: Mapping[str, int], maxlen: int, labels: list[str]) -> str:
    """Write ``out/micro/`` (generated files + copied sources + SHA256SUMS); returns its path."""
    micro = os.path.join(out, MICRO_DIR)
    missing = [n for n in COPIED if not os.path.isfile(os.path.join(SOURCES, n))]
    if missing:
        raise MicroError(f"{SOURCES}: missing {', '.join(missing)} (run from a reviewkit checkout)")
    texts = {**model_sources(flat, model_ops(flat), labels), **vocab_sources(vocab, maxlen)}  # may refuse: first
    os.makedirs(micro, exist_ok=True)
    atomic_write_bytes(os.path.join(micro, "model.tflite"), flat)
    for name in COPIED:
        with open(os.path.join(SOURCES, name), encoding="utf-8") as f:
            texts[name] = f.read()
    for name, text in texts.items():
        atomic_write_text(os.path.join(micro, name), text)
    atomic_write_text(os.path.join(micro, "SHA256SUMS"), "".join(
        f"{_sha256(os.path.join(micro, n))}  {n}\n" for n in (*GENERATED, *COPIED)))
    return micro


def _sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


# -- the step -------------------------------------------------------------------------------
def export_micro(out: str, model, tok: Tokenizer, calibration_ids: np.ndarray, test_texts: list[str],
                 test_labels: np.ndarray) -> list[V.Result]:
    """Write ``out/micro/``, check it on the test set, add a ``"micro"`` section to the manifest.

    Checks: TFLM gives the labels of LiteRT's built-in kernels on every test review (two classes:
    the threshold; N: the arg-max, ``V.predicted``), and accuracy within
    ``V.QUANT_MAX_ACCURACY_DROP`` of Keras (the verified manifest's reference); TFLM scores the
    edge rows (``V.edge_rows``) with one probability per output. Two classes: LiteRT gives the micro
    model and model.int8.tflite the same scores; N classes (another quantization): the labels agree
    with Keras' as a quantized format's must. The C header names the manifest's labels; the model
    must have their number of outputs.
    """
    from .row_quantization import per_row

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
    _check_labels(out, model, (tflm, litert), ids, result, per_row(width))
    V.check_edge_rows(result, MICRO_DIR, *V.edge_rows(tok), backends=lambda _: [("TFLM", TflmScorer(flat, arena))],
                      width=width)
    manifest["micro"] = section = _section(micro, flat, arena, tok, result, width)
    write_manifest(out, manifest)
    f, flash = result.figures, section["sizes"]["model_bytes"] + section["sizes"]["vocab_bytes"]
    logger.info(f"{result.name}: {'PASS' if result.passed else 'FAIL: ' + '; '.join(result.failures)} -- TFLM labels = "
                f"LiteRT built-in labels on {f['agreement']:.2%} of {f['n']} reviews, accuracy {f['accuracy']:.4f}, "
                f"arena {arena} B (tflite-micro wheel), flash {flash} B (model + vocabulary)")
    return [result]


def _check_labels(out: str, model, scores: tuple[np.ndarray, np.ndarray], ids: np.ndarray, result: V.Result,
                  by_row: bool) -> None:
    """TFLM's labels are LiteRT's on every review; then the model against its own reference."""
    tflm, litert = scores
    if result.figures["agreement"] < 1.0:
        result.failures.append(f"TFLM and LiteRT's built-in kernels disagree on "
                               f"{1 - result.figures['agreement']:.4%} of the labels")
    if by_row:
        _check_against_keras(model, tflm, ids, result)
    else:
        _check_same_as_int8(out, litert, ids, result)


def _check_against_keras(model, tflm: np.ndarray, ids: np.ndarray, result: V.Result) -> None:
    """An N-class micro model is not model.int8.tflite's quantization (``micro_model``): its labels
    are checked against Keras itself, by the quantized formats' rule."""
    keras = model.predict(ids, batch_size=512, verbose=0)  # [n, N]
    agreement = float(np.mean(V.predicted(tflm) == V.predicted(keras)))
    result.figures["agreement_with_keras"] = agreement
    if agreement < V.QUANT_MIN_AGREEMENT:
        result.failures.append(f"label agreement with Keras {agreement:.4%} < {V.QUANT_MIN_AGREEMENT:.0%}")


def _check_same_as_int8(out: str, litert: np.ndarray, ids: np.ndarray, result: V.Result) -> None:
    """The gather rewrite changes no number: LiteRT's built-in kernels give the micro model and
    model.int8.tflite (same weights, same calibration) the same scores. Skipped for --int8-io."""
    path = os.path.join(out, "model.int8.tflite")
    if not os.path.isfile(path):
        return
    with open(path, "rb") as f:
        int8 = f.read()
    if litert_output(int8)["dtype"] != np.float32:
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
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
        manifest["verification"]["reference"]["accuracy"], len(manifest["labels"])
    except FileNotFoundError:
        raise MicroError(f"{out}: no {MANIFEST}; the micro target is checked against a verified bundle "
                         "(run 'python -m export verify' first)") from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise MicroError(f"{path}: unreadable ({e})") from None
    return manifest


def _section(micro: str, flat: bytes, arena: int, tok: Tokenizer, result: V.Result, width: int) -> dict:
    return {
        "dir": MICRO_DIR,
        "model": "model.tflite",
        "input": {"name": "input_ids", "shape": [1, tok.maxlen], "dtype": "int32"},
        "output": {"name": "probability", "shape": [1, width], "dtype": "float32"},
        "ops": model_ops(flat),
        "tflite_micro": metadata.version("tflite-micro"),
        "arena_bytes": arena,
        "arena_measured": "the tflite-micro wheel's figure: smallest tensor arena (16-byte steps) in which "
                          "the wheel's TFLM interpreter allocates and invokes the model on this (64-bit) host; "
                          "TFLM built from source needs less (micro/README.md)",
        "sizes": sizes(micro, flat),
        "verification": {"reference": "LiteRT BUILTIN_WITHOUT_DEFAULT_DELEGATES on the same model",
                         **result.figures, "passed": result.passed, "failures": result.failures},
        "files": {n: {"size": os.path.getsize(os.path.join(micro, n)), "sha256": _sha256(os.path.join(micro, n))}
                  for n in (*GENERATED, *COPIED)},
    }
