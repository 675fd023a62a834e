"""Hostile and malformed bundles: each is refused with its exact one-line reason, never a traceback.

The manifest is the root of trust (issue 10): names must be plain names of regular files inside
the bundle, the tokenizer contract must equal the runtime's, every value has its type and range,
manifest.json and vocab.txt are read capped and only if regular. (That the model's embedding
table has a row for every vocabulary id is checked by ``export verify``: tests/export/test_vocab_fits.py.)
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime import Bundle, BundleError, Classifier
from runtime.bundle import MAX_MANIFEST_BYTES, parse_manifest
from runtime.tokenizer import Tokenizer, TokenizerError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLAIN = r"must be a plain file name inside the bundle (no /, \, .., NUL)"


@pytest.fixture
def root(tiny_bundle, tmp_path):
    dest = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, dest)
    return dest


def read_manifest(root) -> dict:
    return json.loads((root / "manifest.json").read_text())


def write_manifest(root, manifest) -> None:
    (root / "manifest.json").write_text(json.dumps(manifest))


def refusal(root, load=Bundle.load) -> str:
    with pytest.raises(BundleError) as err:
        load(root)
    return str(err.value)


def entry_of(path) -> dict:
    data = open(path, "rb").read()
    return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


# -- file names and where they lead -----------------------------------------------------------
@pytest.mark.parametrize("name, reason", [
    ("/etc/hostname", PLAIN),
    ("../outside.txt", PLAIN),
    ("..", PLAIN),
    (".", PLAIN),
    ("sub/vocab.txt", PLAIN),
    ("sub\\vocab.txt", PLAIN),
    ("vocab\0.txt", PLAIN),
    ("", 'must be a file name, got ""'),
])
def test_file_names_must_be_plain(root, tmp_path, name, reason):
    outside = tmp_path / "outside.txt"
    outside.write_text("secret\n")
    manifest = read_manifest(root)
    manifest["files"][name] = entry_of(outside)  # a matching hash must not make it loadable
    write_manifest(root, manifest)
    assert refusal(root) == f"{root}/manifest.json: files[{name!r}]: {reason}"


def test_symlink_out_of_the_bundle_is_refused_without_its_size(root, tmp_path):
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"x" * 12345)
    os.symlink(outside, root / "extra.bin")
    manifest = read_manifest(root)
    manifest["files"]["extra.bin"] = entry_of(outside)
    write_manifest(root, manifest)
    expected = f"{root}/extra.bin: resolves outside the bundle directory (listed in manifest.json)"
    assert refusal(root) == expected
    manifest["files"]["extra.bin"] = {"size": 1, "sha256": "0" * 64}  # a wrong size: still not revealed
    write_manifest(root, manifest)
    assert refusal(root) == expected and "12345" not in expected


def test_symlink_to_a_device_is_refused(root):
    os.unlink(root / "labels.txt")
    os.symlink("/dev/zero", root / "labels.txt")
    assert refusal(root) == f"{root}/labels.txt: resolves outside the bundle directory (listed in manifest.json)"


def test_symlink_inside_the_bundle_is_followed(root):
    os.rename(root / "labels.txt", root / "labels.real")
    os.symlink("labels.real", root / "labels.txt")
    assert Bundle.load(root).labels == ["negative", "positive"]


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_listed_file_must_be_regular(root, kind):
    os.unlink(root / "labels.txt")
    os.mkfifo(root / "labels.txt") if kind == "fifo" else os.mkdir(root / "labels.txt")
    assert refusal(root) == f"{root}/labels.txt: not a regular file (listed in manifest.json)"


def test_every_bad_file_is_reported_together(root):
    size = read_manifest(root)["files"]["model.onnx"]["size"]
    os.unlink(root / "labels.txt")
    (root / "model.onnx").write_bytes(b"tampered")
    assert refusal(root).splitlines() == [
        f"{root}: 2 problems:",
        f"  - {root}/model.onnx: size 8 does not match manifest.json ({size}); the file was changed or truncated",
        f"  - {root}/labels.txt: missing (listed in manifest.json)",
    ]


# -- the tokenizer contract: every field must equal what this runtime reproduces ---------------
CONTRACT_CHANGES = [
    ("type", "wordpiece", '"wordpiece" is not what this runtime reproduces ("regex")'),
    ("version", 2, "2 is not what this runtime reproduces (1)"),
    ("version", True, "true is not what this runtime reproduces (1)"),
    ("delim_pattern", r"\W+", '"\\\\W+" is not what this runtime reproduces ("(?:<br />|[^a-z0-9\'])+")'),
    ("lowercase", False, "false is not what this runtime reproduces (true)"),
    ("lowercase", 1, "1 is not what this runtime reproduces (true)"),
    ("special_tokens", {"<PAD>": 0, "<START>": 1, "<UNK>": 2, "<UNUSED>": 3},
     '{"<PAD>": 0, "<START>": 1, "<UNK>": 2, "<UNUSED>": 3} is not what this runtime reproduces '
     '({"<PAD>": 0, "<START>": 1, "<UNKNOWN>": 2, "<UNUSED>": 3})'),
    ("special_tokens", {"<PAD>": False, "<START>": 1, "<UNKNOWN>": 2, "<UNUSED>": 3},
     '{"<PAD>": false, "<START>": 1, "<UNKNOWN>": 2, "<UNUSED>": 3} is not what this runtime reproduces '
     '({"<PAD>": 0, "<START>": 1, "<UNKNOWN>": 2, "<UNUSED>": 3})'),
    ("prepend_start", False, "false is not what this runtime reproduces (true)"),
    ("unknown_token", "<UNK>", '"<UNK>" is not what this runtime reproduces ("<UNKNOWN>")'),
    ("truncation", "start", '"start" is not what this runtime reproduces ("end")'),
    ("padding", "start", '"start" is not what this runtime reproduces ("end")'),
    ("maxlen", 0, "must be an integer from 1 to 16384, got 0"),
    ("maxlen", 10**9, "must be an integer from 1 to 16384, got 1000000000"),
    ("maxlen", 256.0, "must be an integer from 1 to 16384, got 256.0"),
    ("maxlen", "256", 'must be an integer from 1 to 16384, got "256"'),
    ("num_words", "10000", 'must be an integer from 5 to 10000000, got "10000"'),
    ("num_words", True, "must be an integer from 5 to 10000000, got true"),
    ("num_words", 4, "must be an integer from 5 to 10000000, got 4"),
    ("vocab_file", "../vocab.txt", PLAIN),
    ("vocab_file", "model.keras2", "'model.keras2' is not listed in files"),
]


@pytest.mark.parametrize("key, value, reason", CONTRACT_CHANGES)
def test_tokenizer_field_must_equal_the_contract(root, key, value, reason):
    manifest = read_manifest(root)
    manifest["tokenizer"][key] = value
    write_manifest(root, manifest)
    assert refusal(root) == f"{root}/manifest.json: tokenizer.{key}: {reason}"


@pytest.mark.parametrize("key", ["type", "version", "delim_pattern", "lowercase", "special_tokens", "prepend_start",
                                 "unknown_token", "truncation", "padding", "maxlen", "num_words", "vocab_file"])
def test_missing_tokenizer_field_is_named(root, key):
    manifest = read_manifest(root)
    del manifest["tokenizer"][key]
    write_manifest(root, manifest)
    assert refusal(root) == f"{root}/manifest.json: tokenizer.{key}: missing"


# -- malformed structure ------------------------------------------------------------------------
LABELS = "labels: must be 2 to 1000 distinct non-empty strings (the class names, in output order), got "
THRESHOLD = "threshold: must be a number between 0 and 1 (exclusive), got "
STRUCTURE = [
    ({"labels": ["positive"]}, LABELS + '["positive"]'),
    ({"labels": ["a", "b", "c"]}, "threshold: must be null for 3 labels (the arg-max), got 0.5"),
    ({"labels": ["a", "b"], "threshold": None}, THRESHOLD + "null"),
    ({"labels": "ab"}, LABELS + '"ab"'),
    ({"labels": ["same", "same"]}, LABELS + '["same", "same"]'),
    ({"labels": ["", "positive"]}, LABELS + '["", "positive"]'),
    ({"labels": [0, 1]}, LABELS + "[0, 1]"),
    ({"threshold": "abc"}, THRESHOLD + '"abc"'),
    ({"threshold": float("nan")}, THRESHOLD + "NaN"),
    ({"threshold": float("inf")}, THRESHOLD + "Infinity"),
    ({"threshold": 2}, THRESHOLD + "2"),
    ({"threshold": -1}, THRESHOLD + "-1"),
    ({"threshold": 0}, THRESHOLD + "0"),
    ({"threshold": 1.0}, THRESHOLD + "1.0"),
    ({"threshold": True}, THRESHOLD + "true"),
    ({"threshold": None}, THRESHOLD + "null"),
    ({"tokenizer": "x"}, 'tokenizer: must be an object, got "x"'),
    ({"tokenizer": None}, "tokenizer: must be an object, got null"),
    ({"files": []}, "files: must be an object of name -> {size, sha256}, got []"),
    ({"files": "vocab.txt"}, 'files: must be an object of name -> {size, sha256}, got "vocab.txt"'),
    ({"files": {}}, "tokenizer.vocab_file: 'vocab.txt' is not listed in files"),
]


@pytest.mark.parametrize("changes, reason", STRUCTURE)
def test_malformed_structure_is_refused(root, changes, reason):
    write_manifest(root, {**read_manifest(root), **changes})
    assert refusal(root) == f"{root}/manifest.json: {reason}"


@pytest.mark.parametrize("key, what", [
    ("tokenizer", "the tokenizer contract"), ("labels", "the class names, in output order"),
    ("threshold", "two labels: the probability from which the second is predicted; more: null"),
    ("files", "the size and sha256 of every file"),
])
def test_missing_section_is_named(root, key, what):
    manifest = read_manifest(root)
    del manifest[key]
    write_manifest(root, manifest)
    assert refusal(root) == f"{root}/manifest.json: {key}: missing ({what})"


ENTRY = "files['vocab.txt']"
FILE_ENTRIES = [
    ({"size": 10}, f"{ENTRY}.sha256: missing"),
    ({"sha256": "0" * 64}, f"{ENTRY}.size: missing"),
    ({"size": -1, "sha256": "0" * 64}, f"{ENTRY}.size: must be an integer at least 0, got -1"),
    ({"size": "10", "sha256": "0" * 64}, f'{ENTRY}.size: must be an integer at least 0, got "10"'),
    ({"size": True, "sha256": "0" * 64}, f"{ENTRY}.size: must be an integer at least 0, got true"),
    ({"size": 10, "sha256": "A" * 64}, f'{ENTRY}.sha256: must be 64 lowercase hex digits, got "{"A" * 64}"'),
    ({"size": 10, "sha256": "abc"}, f'{ENTRY}.sha256: must be 64 lowercase hex digits, got "abc"'),
    ({"size": 10, "sha256": None}, f"{ENTRY}.sha256: must be 64 lowercase hex digits, got null"),
    ([10, "0" * 64], f'{ENTRY}: must be an object {{size, sha256}}, got [10, "{"0" * 64}"]'),
]


@pytest.mark.parametrize("entry, reason", FILE_ENTRIES)
def test_malformed_file_entry_is_refused(root, entry, reason):
    manifest = read_manifest(root)
    manifest["files"]["vocab.txt"] = entry
    write_manifest(root, manifest)
    assert refusal(root) == f"{root}/manifest.json: {reason}"


@pytest.mark.parametrize("version, shown", [(True, "true"), ("1", '"1"'), (1.0, "1.0"), (2, "2"), (None, "null")])
def test_format_version_must_be_a_supported_integer(root, version, shown):
    write_manifest(root, {**read_manifest(root), "format_version": version})
    assert refusal(root) == f"{root}/manifest.json: unknown format_version {shown} (this runtime reads 1)"


def test_missing_format_version(root):
    manifest = read_manifest(root)
    del manifest["format_version"]
    write_manifest(root, manifest)
    assert refusal(root) == f"{root}/manifest.json: unknown format_version missing (this runtime reads 1)"


@pytest.mark.parametrize("text, reason", [
    ("[1, 2]", "not a manifest (a JSON array, not an object)"),
    ('"manifest"', "not a manifest (a JSON string, not an object)"),
    ('{"format_version": 1, "format_version": 1}', "unreadable manifest: duplicate key 'format_version'"),
    ("[" * 100_000 + "]" * 100_000, "unreadable manifest: nested too deeply"),
    ('{"a": ' * 100_000 + "1" + "}" * 100_000, "unreadable manifest: nested too deeply"),
    (b"\xff\xfe{}", "unreadable manifest: not UTF-8 (invalid start byte at byte 0)"),
])
def test_unreadable_manifest(root, text, reason):
    path = root / "manifest.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    assert refusal(root) == f"{path}: {reason}"


def test_huge_integer_is_refused(root):
    path = root / "manifest.json"
    path.write_text('{"format_version": ' + "1" * 5000 + "}")
    if hasattr(sys, "get_int_max_str_digits"):  # Python >= 3.10.7 refuses to parse it
        assert refusal(root) == (f"{path}: unreadable manifest: Exceeds the limit (4300 digits) for integer "
                                 "string conversion: value has 5000 digits; use sys.set_int_max_str_digits() "
                                 "to increase the limit")
    else:
        assert refusal(root).startswith(f"{path}: unknown format_version 1111111111")


def test_every_manifest_problem_is_reported_together(root):
    manifest = read_manifest(root)
    del manifest["tokenizer"]["maxlen"]
    manifest["tokenizer"]["padding"] = "start"
    manifest["threshold"] = "abc"
    manifest["files"]["/etc/hostname"] = {"size": 1, "sha256": "0" * 64}
    manifest["training"] = {"anything": ["goes", {"here": None}]}  # sections the runtime ignores
    write_manifest(root, manifest)
    assert refusal(root).splitlines() == [
        f"{root}/manifest.json: 4 problems:",
        '  - tokenizer.padding: "start" is not what this runtime reproduces ("end")',
        "  - tokenizer.maxlen: missing",
        '  - threshold: must be a number between 0 and 1 (exclusive), got "abc"',
        f"  - files['/etc/hostname']: {PLAIN}",
    ]


def test_unknown_sections_are_allowed(root):
    manifest = read_manifest(root)
    manifest.update(web={"files": {"web/model.js": 1}}, micro=[1, 2], arch="x", tools={"tensorflow-cpu": "2"})
    write_manifest(root, manifest)
    assert Bundle.load(root).manifest["micro"] == [1, 2]


# -- manifest.json and vocab.txt that are not small regular files ----------------------------
def _cli_refusal(bundle_dir) -> tuple[int, str]:
    """``runtime.predict`` on the bundle in a child process that must not hang."""
    proc = subprocess.run([sys.executable, "-m", "runtime.predict", "--model", str(bundle_dir), "--text", "good"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stderr


def test_fifo_manifest_does_not_block(root):
    os.unlink(root / "manifest.json")
    os.mkfifo(root / "manifest.json")
    assert _cli_refusal(root) == (2, f"Error: {root}/manifest.json: is a FIFO, not a regular file\n")


def test_dev_zero_as_manifest_is_refused(root):
    os.unlink(root / "manifest.json")
    os.symlink("/dev/zero", root / "manifest.json")
    assert _cli_refusal(root) == (2, f"Error: {root}/manifest.json: is a character device, not a regular file\n")


def test_directory_as_manifest_is_refused(root):
    os.unlink(root / "manifest.json")
    os.mkdir(root / "manifest.json")
    assert refusal(root) == f"{root}/manifest.json: is a directory, not a regular file"


def test_huge_manifest_is_refused_unread(root):
    path = root / "manifest.json"
    with open(path, "r+b") as f:
        f.truncate(100 * 1024 * 1024)  # 100 MB (sparse: nothing to write)
    assert refusal(root) == f"{path}: is larger than 4 MiB"
    with open(path, "r+b") as f:
        f.truncate(MAX_MANIFEST_BYTES)  # at the cap: read, and refused for what it says
    assert refusal(root).startswith(f"{path}: unreadable manifest: ")


def test_vocab_that_is_not_a_regular_file(root, tmp_path):
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(TokenizerError) as err:
        Tokenizer.load(tmp_path / "fifo")
    assert str(err.value) == f"cannot read vocabulary {tmp_path}/fifo: it is a FIFO, not a regular file"
    os.unlink(root / "vocab.txt")
    os.mkfifo(root / "vocab.txt")
    assert refusal(root, lambda r: Bundle.load(r, verify=False).tokenizer()) == (
        f"cannot read vocabulary {root}/vocab.txt: it is a FIFO, not a regular file")


def test_huge_vocab_is_refused_unread(tmp_path):
    path = tmp_path / "vocab.txt"
    with open(path, "wb") as f:
        f.truncate(1 << 30)
    with pytest.raises(TokenizerError) as err:
        Tokenizer.load(path)
    assert str(err.value) == f"cannot read vocabulary {path}: it is larger than 64 MiB"


# -- the vocabulary against num_words -------------------------------------------------------------------------------
def _relist(root, name) -> None:
    manifest = read_manifest(root)
    manifest["files"][name] = entry_of(root / name)
    write_manifest(root, manifest)


def test_vocab_ids_must_each_appear_once(root):
    path = root / "vocab.txt"
    lines = path.read_text().splitlines()
    lines[-1] = lines[-1].split(" ")[0] + " 4"  # the last id twice, one id missing
    path.write_text("\n".join(lines) + "\n")
    _relist(root, "vocab.txt")
    assert refusal(root, Classifier.load) == f"{path}: ids must be 0..{len(lines) - 1}, each exactly once"


def test_vocab_larger_than_num_words(root):
    path = root / "vocab.txt"
    n = read_manifest(root)["tokenizer"]["num_words"]
    path.write_text(path.read_text() + f"extraword {n}\n")
    _relist(root, "vocab.txt")
    assert refusal(root, Classifier.load) == (f"{path}: {n + 1} words, manifest.json says tokenizer.num_words "
                                              f"is {n}")


# -- any JSON anywhere: a BundleError or a Manifest, never another exception ------------------
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                    max_leaves=8)
SLOTS = [(), ("tokenizer",), ("files",), ("files", "vocab.txt")]


@settings(max_examples=300, deadline=None)
@given(slot=st.sampled_from(SLOTS), key=st.sampled_from(["format_version", "tokenizer", "labels", "threshold",
                                                         "files", "maxlen", "num_words", "vocab_file", "padding",
                                                         "special_tokens", "size", "sha256", "vocab.txt", "x"]),
       value=JSON)
def test_any_value_anywhere_is_a_bundle_error_or_loads(tiny_manifest, slot, key, value):
    manifest = json.loads(tiny_manifest)
    target = manifest
    for part in slot:
        target = target[part]
    target[key] = value
    try:
        parse_manifest(manifest, "manifest.json")
    except BundleError as e:
        assert str(e).startswith("manifest.json: ") and all(line.removeprefix("  - ") for line in str(e).splitlines())


@pytest.fixture(scope="module")
def tiny_manifest(tiny_bundle) -> str:
    return open(os.path.join(tiny_bundle, "manifest.json")).read()
