"""The micro model and micro/ directory, on the session's tiny model and bundle (two classes) and
its three-class bundle."""
from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess

import numpy as np
import pytest

from export import micro as M
from export import verify as V
from export.manifest import IMDB_LABELS
from tests.conftest import THREE_LABELS, three_class_corpus
from tests.micro.conftest import bundle_copy

HERE = os.path.dirname(os.path.abspath(__file__))
TFLM_OPS = ["GATHER", "MEAN", "FULLY_CONNECTED", "LOGISTIC", "DEQUANTIZE"]
# a softmax head: int8 table rows times their scales, the rest float (export.micro.micro_model)
TFLM_OPS_N = ["GATHER", "CAST", "MUL", "MEAN", "FULLY_CONNECTED", "SOFTMAX"]


@pytest.fixture(scope="module")
def micro_flat(tiny_trained) -> bytes:
    model, tok, texts, _ = tiny_trained
    return M.micro_model(model, tok.encode_batch(texts))


@pytest.fixture(scope="module")
def ids(tiny_trained) -> np.ndarray:
    _, tok, texts, _ = tiny_trained
    return tok.encode_batch(texts + ["", "a review with no word of the vocabulary"])


def test_micro_model_has_only_the_ops_tflm_runs(micro_flat):
    assert M.model_ops(micro_flat) == TFLM_OPS
    assert [M.resolver_method(op) for op in TFLM_OPS] == [
        "AddGather", "AddMean", "AddFullyConnected", "AddLogistic", "AddDequantize"]


def test_the_keras_embedding_prologue_is_what_tflm_cannot_run(tiny_trained):
    """Why the micro model exists: model.int8.tflite's int32 index fix-up fails in TFLM."""
    from export.tflite_export import to_tflite

    model, tok, texts, _ = tiny_trained
    flat = to_tflite(model, "int8", calibration_ids=tok.encode_batch(texts[:50]))
    assert {"LESS", "ADD", "SELECT_V2"} <= set(M.model_ops(flat))
    with pytest.raises(RuntimeError):
        M.tflm_scores(flat, tok.encode_batch(texts[:1]), 1 << 16)


def test_tflm_gives_litert_builtin_labels_and_the_int8_model_scores(tiny_trained, tiny_bundle, micro_flat, ids):
    tflm = M.tflm_scores(micro_flat, ids, 1 << 16)
    litert = M.litert_builtin_scores(micro_flat, ids)
    assert np.array_equal(tflm >= 0.5, litert >= 0.5)
    assert np.abs(tflm - litert).max() <= 2 / 256  # at most two steps of the int8 output's scale
    assert 0.1 < (tflm >= 0.5).mean() < 0.9
    with open(os.path.join(tiny_bundle, "model.int8.tflite"), "rb") as f:  # same calibration: same numbers
        np.testing.assert_array_equal(M.litert_builtin_scores(f.read(), ids), litert)


def test_smallest_arena_is_the_smallest(micro_flat):
    arena = M.smallest_arena(micro_flat, 256)
    probe = np.ones((1, 256), dtype=np.int32)
    assert arena % 16 == 0 and 1024 < arena <= 8 * 1024
    assert M._arena_works(micro_flat, arena, probe) and not M._arena_works(micro_flat, arena - 16, probe)


def test_model_data_is_the_model_as_an_aligned_c_array(micro_flat, tmp_path):
    sources = M.model_sources(micro_flat, M.model_ops(micro_flat), IMDB_LABELS)
    array = re.search(r"alignas\(16\) const unsigned char rk_model_data\[\] = \{(.*?)\};", sources["model_data.cc"],
                      re.S).group(1)
    assert bytes(int(b, 16) for b in re.findall(r"0x([0-9a-f]{2})", array)) == micro_flat
    assert f"rk_model_data_len = {len(micro_flat)};" in sources["model_data.cc"]
    assert "MicroMutableOpResolver<kRkNumOps>" in sources["model_ops.h"] and "kRkNumOps = 5" in sources["model_ops.h"]
    assert "#define RK_NUM_CLASSES 2\n#define RK_NUM_OUTPUTS 1\n" in sources["model_data.h"]
    assert 'rk_labels[RK_NUM_CLASSES] = {\n    "negative",\n    "positive",\n};\n' in sources["model_data.cc"]
    for name, text in sources.items():
        (tmp_path / name).write_text(text)
    subprocess.run(["g++", "-std=c++11", "-Wall", "-Wextra", "-Werror", "-c", "model_data.cc"], cwd=tmp_path,
                   check=True)


def test_vocab_table_is_sorted_front_coded_and_complete(vocab):
    words, blocks, longest = M.vocab_table(vocab)
    decoded, prev, at = {}, b"", 0
    while at < len(words):
        shared, end = words[at], at + 1
        while words[end] < 0x80:
            end += 1
        word = (b"" if at in blocks else prev[:shared]) + words[at + 1:end]
        assert at not in blocks or shared == 0
        assert word > prev or at in blocks
        decoded[word.decode()] = (words[end] & 0x7F) << 8 | words[end + 1]
        prev, at = word, end + 2
    assert decoded == {w: i for w, i in vocab.items() if i >= 4}
    assert longest == max(map(len, decoded)) and len(blocks) == -(-len(decoded) // M.VOCAB_BLOCK)
    assert len(words) < 7 * len(decoded)  # front coding: ~5.8 bytes a word for IMDB's 9,996


def test_too_large_a_vocabulary_is_refused():
    with pytest.raises(M.MicroError, match="ids up to 32767"):
        M.vocab_table({f"w{i}": i for i in range(40_000)})


def test_export_micro_writes_the_directory_and_the_manifest_section(tiny_trained, tiny_bundle, tmp_path):
    from runtime import Classifier

    model, tok, texts, labels = tiny_trained
    out = bundle_copy(tiny_bundle, tmp_path)
    files_before = json.load(open(os.path.join(out, "manifest.json")))["files"]
    results = M.export_micro(out, model, tok, tok.encode_batch(texts), texts, labels)
    manifest = json.load(open(os.path.join(out, "manifest.json")))
    micro, section = os.path.join(out, "micro"), manifest["micro"]
    assert sorted(os.listdir(micro)) == sorted([*M.GENERATED, *M.COPIED, "SHA256SUMS"])
    assert manifest["files"] == files_before and all("/" not in name for name in manifest["files"])
    for line in open(os.path.join(micro, "SHA256SUMS")):
        digest, name = line.split()
        assert hashlib.sha256(open(os.path.join(micro, name), "rb").read()).hexdigest() == digest
        assert section["files"][name]["sha256"] == digest
    assert section["ops"] == TFLM_OPS and section["arena_bytes"] <= 8 * 1024
    assert section["arena_measured"].startswith("the tflite-micro wheel's figure")
    ver = section["verification"]
    assert ver["n"] == len(texts) and ver["agreement"] == 1.0 and ver["max_abs_diff_vs_model_int8_tflite"] == 0.0
    # How well the toy model learned depends on thread scheduling (0.98 was seen on a loaded
    # machine); what holds for any outcome: the micro accuracy is model.int8.tflite's on LiteRT's
    # built-in kernels, and the verdict is the 0.5-point rule applied to the recorded figures.
    with open(os.path.join(out, "model.int8.tflite"), "rb") as f:
        int8 = M.litert_builtin_scores(f.read(), tok.encode_batch(texts))
    assert ver["accuracy"] == V.accuracy(int8, labels)
    drop = manifest["verification"]["reference"]["accuracy"] - ver["accuracy"]
    assert ver["accuracy_drop"] == drop
    assert results[0].passed is ver["passed"] is (drop <= V.QUANT_MAX_ACCURACY_DROP)
    assert all("below Keras" in failure for failure in ver["failures"])
    assert list(ver["edge_rows"]["TFLM"]) == V.edge_rows(tok)[0]  # TFLM scored every edge row
    assert section["sizes"]["model_bytes"] == os.path.getsize(os.path.join(micro, "model.tflite"))
    assert Classifier.load(out).predict(["great film"]).shape == (1,)  # the runtime ignores the section


def test_export_micro_needs_a_verified_bundle(tiny_trained, tmp_path):
    model, tok, texts, labels = tiny_trained
    with pytest.raises(M.MicroError, match="export verify"):
        M.export_micro(str(tmp_path), model, tok, tok.encode_batch(texts), texts, labels)


def test_export_micro_fails_below_the_keras_accuracy(tiny_trained, tiny_bundle, tmp_path):
    model, tok, texts, labels = tiny_trained
    out = bundle_copy(tiny_bundle, tmp_path)  # reference accuracy 1.0; inverted labels score 0
    results = M.export_micro(out, model, tok, tok.encode_batch(texts), texts, 1 - labels)
    ver = json.load(open(os.path.join(out, "manifest.json")))["micro"]["verification"]
    assert not results[0].passed and not ver["passed"] and "below Keras" in ver["failures"][0]


def build_example(micro: str, where, static_memory: bool = True) -> str:
    """example.cc + the generated sources + tests/micro/example_main.cc (the stand-in library, always
    with -DTF_LITE_STATIC_MEMORY), as C++17/C99 with -Werror; ``static_memory=False`` leaves the
    define out of example.cc only, as the old documented build line did."""
    flags = ["-Wall", "-Wextra", "-Werror", "-I", micro, "-I", os.path.join(HERE, "tflm_stub")]
    objs = []
    for src, cc in (("example.cc", "g++"), ("model_data.cc", "g++"), (os.path.join(HERE, "example_main.cc"), "g++"),
                    ("tokenizer.c", "gcc"), ("vocab_data.c", "gcc")):
        obj = os.path.join(where, os.path.basename(src) + ".o")
        std = "-std=c++17" if cc == "g++" else "-std=c99"
        define = ["-DTF_LITE_STATIC_MEMORY"] if static_memory or src != "example.cc" else []
        subprocess.run([cc, std, "-O1", *flags, *define, "-c", os.path.join(micro, src), "-o", obj], check=True)
        objs.append(obj)
    exe = os.path.join(where, "example")
    subprocess.run(["g++", *objs, "-o", exe], check=True)
    return exe


def test_example_cc_compiles_and_feeds_the_input_tensor(micro_flat, vocab, tmp_path):
    """Linked against a stand-in for the TFLM headers (tflm_stub/): both entry points put the
    Python ids in the input tensor, and the model's 5 ops are registered."""
    from runtime.tokenizer import Tokenizer

    exe = build_example(M.write_micro_dir(str(tmp_path), micro_flat, vocab, 256, IMDB_LABELS), str(tmp_path))
    review = "İt's a GREAT film<br />I loved it… 10/10 \u212aing"
    out = subprocess.run([exe, "review", review], check=True, capture_output=True, text=True).stdout.splitlines()
    expected = " ".join(map(str, Tokenizer(vocab, 256).encode_batch([review])[0]))
    assert out == [expected, expected, "5"]


def write_example_micro(micro: str, vocab, labels: list[str]) -> str:
    """A micro/ directory for the C side only (no model): the stand-in's GetModel only checks that it
    is given rk_model_data, so any bytes do for the model."""
    ops = TFLM_OPS if len(labels) == 2 else TFLM_OPS_N
    texts = {**M.model_sources(b"TFL3" * 8, ops, labels), **M.vocab_sources(vocab, 256)}
    for name in ("example.h", "example.cc", "tokenizer.h", "tokenizer.c"):
        texts[name] = open(os.path.join(M.SOURCES, name), encoding="utf-8").read()
    for name, text in texts.items():
        with open(os.path.join(micro, name), "w", encoding="utf-8") as f:
            f.write(text)
    return micro


@pytest.fixture(scope="module")
def example_micro(vocab, tmp_path_factory) -> str:
    return write_example_micro(str(tmp_path_factory.mktemp("example_micro")), vocab, IMDB_LABELS)


@pytest.fixture(scope="module", params=[IMDB_LABELS, THREE_LABELS], ids=["2 classes", "3 classes"])
def example_exe(request, vocab, tmp_path_factory) -> tuple[str, int]:
    """example.cc built for two classes (output [1, 1]) and for three ([1, 3]), and its op count."""
    micro = write_example_micro(str(tmp_path_factory.mktemp("example_micro")), vocab, request.param)
    ops = TFLM_OPS if len(request.param) == 2 else TFLM_OPS_N
    return build_example(micro, str(tmp_path_factory.mktemp("example_build"))), len(ops)


def run_fault(exe: str, fault: str) -> str:
    """ClassifyReview twice, BeginReview, EndReview, EndReview without BeginReview, ops registered."""
    return subprocess.run([exe, "fault", fault], check=True, capture_output=True, text=True, timeout=30).stdout.strip()


# example.h: -1 set-up, -2 input not [1, RK_MAXLEN] int32, -3 output not [1, RK_NUM_OUTPUTS] float32
# or a score not a probability, -4 Invoke() failed; a failed set-up gives its code for good and
# registers the ops once (OPS: how many the model has). The stand-in scores class 1 0.75, with two
# classes or three.
FAULTS = {
    "none": "0.75 0.75 1 0.75 -1 OPS",
    **{f"input_{what}": "-2 -2 0 -2 -2 OPS" for what in ("type", "rank", "rows", "cols", "bytes", "no_data")},
    **{f"output_{what}": "-3 -3 0 -3 -3 OPS" for what in ("type", "shape", "rows", "bytes")},
    "nan": "-3 -3 1 -3 -1 OPS", "negative": "-3 -3 1 -3 -1 OPS", "above_one": "-3 -3 1 -3 -1 OPS",
    "invoke": "-4 -4 1 -4 -1 OPS",
    "alloc": "-1 -1 0 -1 -1 OPS", "version": "-1 -1 0 -1 -1 0", "register": "-1 -1 0 -1 -1 1001",
}


@pytest.mark.parametrize("fault", FAULTS)
def test_example_cc_returns_the_documented_error_code(example_exe, fault):
    exe, ops = example_exe
    assert run_fault(exe, fault) == FAULTS[fault].replace("OPS", str(ops))


def test_example_cc_without_static_memory_is_an_input_error_not_a_score(example_micro, tmp_path):
    """The old build line: example.cc without -DTF_LITE_STATIC_MEMORY, the library with it. The
    tensor is read through TfLiteTensor's other layout: -2 from every entry point."""
    exe = build_example(example_micro, str(tmp_path), static_memory=False)
    assert run_fault(exe, "none") == "-2 -2 0 -2 -2 5"


def test_the_error_codes_are_documented_as_example_h_defines_them():
    header = open(os.path.join(M.SOURCES, "example.h"), encoding="utf-8").read()
    codes = dict(re.findall(r"(kRkError\w+) = (-\d+),", header))
    assert codes == {"kRkErrorSetup": "-1", "kRkErrorInput": "-2", "kRkErrorOutput": "-3", "kRkErrorInvoke": "-4"}
    readme = open(os.path.join(M.SOURCES, "README.md"), encoding="utf-8").read()
    for name, value in codes.items():
        assert re.search(rf"\| `{value}` \| `{name}` \|", readme), name
    assert "-DTF_LITE_STATIC_MEMORY" in readme and "-I$TFLM/third_party/gemmlowp" in readme


# -- N classes -------------------------------------------------------------------------------
def test_c_string_escapes_every_byte_that_is_not_plain_printable_ascii():
    assert M.c_string("alpha beta-1") == '"alpha beta-1"'
    assert M.c_string('say "hi"') == r'"say \042hi\042"'
    assert M.c_string("back\\slash") == r'"back\134slash"'
    assert M.c_string("??=") == r'"\077\077="'  # no trigraph
    assert M.c_string("é1") == r'"\303\2511"'  # 3 octal digits: the "1" after stays a character
    assert M.c_string("tab\there\n\x7f") == r'"tab\011here\012\177"'
    with pytest.raises(M.MicroError) as e:
        M.c_string("a\0b")
    assert str(e.value) == "the label 'a\\x00b' has a NUL character, which ends a C string"


def test_labels_round_trip_through_the_c_compiler(vocab, tmp_path):
    labels = ['say "hi"', "back\\slash", "café ☕ ??= \t*/ \\0"]
    exe = build_example(write_example_micro(str(tmp_path), vocab, labels), str(tmp_path))
    out = subprocess.run([exe, "labels", "-"], check=True, capture_output=True, text=True).stdout.splitlines()
    assert out == ["3", *(label.encode("utf-8").hex() for label in labels)]


@pytest.fixture(scope="module")
def three_micro(three_class_bundle, tmp_path_factory):
    """(bundle, results, tokenizer, texts, labels, TFLM scores [n, 3]): export_micro on a copy of the
    session's 3-class bundle, checked on the fixture's own 300 texts."""
    from export.pipeline import load_keras, load_tokenizer

    out = bundle_copy(three_class_bundle, tmp_path_factory.mktemp("three_micro"))
    tok = load_tokenizer(out)
    texts, labels = three_class_corpus(300, seed=0)
    results = M.export_micro(out, load_keras(out), tok, tok.encode_batch(texts[:100]), texts, labels)
    flat = open(os.path.join(out, "micro", "model.tflite"), "rb").read()
    return out, results, tok, texts, labels, M.tflm_scores(flat, tok.encode_batch(texts), 1 << 16)


def test_export_micro_of_a_three_class_bundle(three_micro):
    from export.pipeline import load_keras

    out, results, tok, texts, labels, tflm = three_micro
    manifest = json.load(open(os.path.join(out, "manifest.json")))
    section, micro = manifest["micro"], os.path.join(out, "micro")
    header = open(os.path.join(micro, "model_data.h")).read()
    assert "#define RK_NUM_CLASSES 3\n#define RK_NUM_OUTPUTS 3\n" in header
    assert 'rk_labels[RK_NUM_CLASSES] = {\n    "alpha",\n    "beta",\n    "gamma",\n};\n' in open(
        os.path.join(micro, "model_data.cc")).read()
    assert section["ops"] == TFLM_OPS_N and section["output"]["shape"] == [1, 3] and tflm.shape == (300, 3)
    ver = section["verification"]
    litert = M.litert_builtin_scores(open(os.path.join(micro, "model.tflite"), "rb").read(), tok.encode_batch(texts))
    # What the figures are made of, whatever the toy model learnt: TFLM's arg-max against LiteRT's.
    assert ver["agreement"] == float(np.mean(V.predicted(tflm) == V.predicted(litert)))
    keras = load_keras(out).predict(tok.encode_batch(texts), verbose=0)
    assert ver["accuracy"] == V.accuracy(tflm, labels)
    assert ver["agreement_with_keras"] == float(np.mean(V.predicted(tflm) == V.predicted(keras)))
    assert ver["max_abs_diff"] == float(np.abs(tflm.astype(np.float64) - litert).max()) <= 1e-5  # float after the table
    edge = ver["edge_rows"]["TFLM"]
    assert list(edge) == V.edge_rows(tok)[0] and all(len(p) == 3 for p in edge.values())
    assert results[0].passed is ver["passed"] is (not ver["failures"])


def test_three_class_micro_table_is_int8_rows_with_their_scales(three_micro):
    """The micro model computes what Keras computes with the table replaced by its per-row int8
    rows (``row_scales``, as model.int8.onnx)."""
    import keras

    from export.pipeline import load_keras
    from export.row_quantization import row_scales

    out, _, tok, texts, _, tflm = three_micro
    model = load_keras(out)
    embedding = next(layer for layer in model.layers if isinstance(layer, keras.layers.Embedding))
    rows, scales = row_scales(embedding.get_weights()[0])
    embedding.set_weights([rows * scales])
    np.testing.assert_allclose(tflm, model.predict(tok.encode_batch(texts), verbose=0), atol=1e-5)


def test_the_compiled_example_returns_the_tflm_arg_max(three_micro, tmp_path):
    """example.cc built from the exported micro/ (model_data.cc holds the real model; the stand-in's
    Invoke writes TFLM's scores of each fixture text): it feeds the model the Python ids,
    ReviewClass() is TFLM's arg-max, and ClassifyReview the probability of that class. Ties go to
    the lowest index, as in Python."""
    out, _, tok, *_, tflm = three_micro
    exe = build_example(os.path.join(out, "micro"), str(tmp_path))
    review = "The APPLE and the sea<br />of stone"
    fed = subprocess.run([exe, "review", review], check=True, capture_output=True, text=True).stdout.splitlines()
    expected = " ".join(map(str, tok.encode_batch([review])[0]))
    assert fed == [expected, expected, str(len(TFLM_OPS_N))]
    ties = np.array([[0.5, 0.5, 0.0], [0.25, 0.375, 0.375], [1 / 3] * 3], dtype=np.float32)
    rows = np.concatenate([tflm, ties])
    stdin = "".join(" ".join(f"{x:.9g}" for x in row) + "\n" for row in rows)
    lines = subprocess.run([exe, "scores", "-"], input=stdin, check=True, capture_output=True, text=True,
                           timeout=60).stdout.splitlines()
    classes = V.predicted(rows)
    assert [int(line.split()[1]) for line in lines] == classes.tolist()
    assert [np.float32(line.split()[0]) for line in lines] == rows[np.arange(len(rows)), classes].tolist()
    assert classes[-3:].tolist() == [0, 1, 0]


def test_the_example_gives_the_output_error_for_a_score_that_is_not_a_probability(example_exe):
    exe = example_exe[0]
    """Any of the N scores (two classes: the one) NaN, < 0 or > 1: -3 from both calls."""
    labels = subprocess.run([exe, "labels", "-"], check=True, capture_output=True, text=True).stdout
    classes = int(labels.split()[0])
    width = 1 if classes == 2 else classes
    rows = [[0.5] * width, [float("nan")] + [0.5] * (width - 1), [0.5] * (width - 1) + [-0.5], [1.5] * width]
    stdin = "".join(" ".join(map(str, row)) + "\n" for row in rows)
    lines = subprocess.run([exe, "scores", "-"], input=stdin, check=True, capture_output=True, text=True,
                           timeout=30).stdout.splitlines()
    assert lines == [f"0.5 {1 if width == 1 else 0}", "-3 -3", "-3 -3", "-3 -3"]


def test_export_micro_refuses_a_model_of_another_number_of_labels(tiny_trained, tiny_bundle, tmp_path):
    model, tok, texts, labels = tiny_trained
    out = bundle_copy(tiny_bundle, tmp_path)
    with open(os.path.join(out, "manifest.json")) as f:
        manifest = json.load(f)
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump({**manifest, "labels": THREE_LABELS}, f)
    with pytest.raises(M.MicroError) as e:
        M.export_micro(out, model, tok, tok.encode_batch(texts), texts, labels)
    assert str(e.value) == "the micro model has 1 output, but manifest.json names 3 labels (needing 3)"
    assert not os.path.exists(os.path.join(out, "micro"))
