"""micro/tokenizer.c gives the Python tokenizer's ids (on bytes.decode("utf-8", "replace")) for
every code point, random and invalid UTF-8, any split of the input; it stays in bounds under
ASan/UBSan, uses < 256 B of stack and fits in 1 KB of Cortex-M4 code."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from runtime.tokenizer import Tokenizer
from tests.micro.conftest import python_ids

# Pieces that matter to the contract: case, "<br />" and its fragments, apostrophes, digits,
# the code points that lower to ASCII and their truncated encodings, other UTF-8 (valid,
# overlong, surrogates, out of range), control bytes, words longer than any vocabulary word.
PIECES = [b"the", b"movie", b"Great", b"FILM", b"don't", b"'s", b"'", b"2", b"10", b"<br />", b"<BR />", b"<Br /",
          b"<br", b" />", b"<", b"b", b"r", b"R", b" ", b"/", b">", b"\t\n", b".", b",", b"\x00", b"\x7f",
          "\u0130".encode(), "\u212a".encode(), b"\xc4", b"\xe2\x84", b"\xe2", b"\xc3\xa9", "\u00c9".encode(),
          "\u00df".encode(), "\u03a3".encode(), "\U0001F600".encode(), b"\xed\xa0\x80", b"\xc0\xaf",
          b"\xf4\x90\x80\x80",
          b"\x80", b"\xbf", b"\xff", b"\xf0\x9f", b"supercalifragilisticexpialidocious", b"abcdefghijklmnopq",
          b"abcdefghijklmnopqr"]


def random_texts(n: int, seed: int) -> list[bytes]:
    """``n`` byte strings: mostly pieces, some raw random bytes, a few long enough to truncate."""
    rng = np.random.default_rng(seed)
    lengths = np.where(rng.random(n) < 0.005, rng.integers(2000, 3000, n), rng.integers(0, 40, n))
    picks = rng.integers(0, len(PIECES) + 1, lengths.sum())  # len(PIECES): a random byte
    raw = rng.integers(0, 256, lengths.sum(), dtype=np.uint8).tobytes()
    texts, at = [], 0
    for length in lengths:
        texts.append(b"".join(PIECES[p] if p < len(PIECES) else raw[i:i + 1]
                              for i, p in zip(range(at, at + length), picks[at:at + length])))
        at += length
    return texts


@pytest.fixture(scope="module")
def texts() -> list[bytes]:
    return random_texts(100_000, seed=1)


@pytest.fixture(scope="module")
def tok(vocab) -> Tokenizer:
    return Tokenizer(vocab, 256)


def test_random_bytes_give_the_python_ids(driver, tok, texts):
    assert sum(t != t.decode("utf-8", "replace").encode() for t in texts) > 30_000  # invalid UTF-8 well covered
    expected = python_ids(tok, texts)
    assert (expected[:, 255] != 0).sum() > 200 and (expected == 2).sum() > 100_000  # truncation, unknown words
    np.testing.assert_array_equal(driver.ids(texts, 256), expected)


@pytest.mark.parametrize("chunk", [1, 2, 7])
def test_any_split_of_the_input_gives_the_same_ids(driver, tok, texts, chunk):
    """Fed in pieces (even inside a UTF-8 sequence or "<br />"), as a stream arrives."""
    np.testing.assert_array_equal(driver.ids(texts[:20_000], 256, chunk), python_ids(tok, texts[:20_000]))


def test_short_rows_keep_the_first_ids(driver, vocab, texts):
    for maxlen in (1, 2, 5):
        np.testing.assert_array_equal(driver.ids(texts[:20_000], maxlen),
                                      python_ids(Tokenizer(vocab, maxlen), texts[:20_000]))


def test_under_address_and_undefined_sanitizers(asan_driver, tok, texts):
    np.testing.assert_array_equal(asan_driver.ids(texts[:20_000], 256, 3), python_ids(tok, texts[:20_000]))


def test_bounded_fuzz_run_finds_no_memory_error(asan_driver):
    """Random bytes in exact-size heap blocks, random pieces and row lengths, for 2 seconds of CPU time."""
    assert asan_driver.fuzz(2, seed=7) > 10_000


def lowers_to_ascii() -> list[int]:
    return [cp for cp in range(0x80, sys.maxunicode + 1)
            if any(ord(c) < 0x80 for c in chr(cp).lower())]


def test_code_points_that_lower_to_ascii(driver, tok):
    """Derived from str.lower over every code point: each one in contexts where the ASCII it
    lowers to changes the tokens, so a C tokenizer treating it as a delimiter would fail."""
    special = lowers_to_ascii()
    assert special  # this Python has some (3.11: U+0130 -> "i\u0307", U+212A KELVIN SIGN -> "k")
    contexts = ["{}", "th{}s", "{}s", "a{}", "<b{}r />", "<{}r />", "{}<br />", "<br /{}", "don{}t", "{}{}{}"]
    texts = [c.replace("{}", chr(cp)).encode() for cp in special for c in contexts]
    as_delimiter = [c.replace("{}", "\ufffd").encode() for cp in special for c in contexts]
    exposed = (python_ids(tok, texts) != python_ids(tok, as_delimiter)).reshape(len(special), -1).any(axis=1)
    assert exposed.all(), [hex(cp) for cp, e in zip(special, exposed) if not e]
    np.testing.assert_array_equal(driver.ids(texts, 256), python_ids(tok, texts))
    np.testing.assert_array_equal(driver.ids(texts, 256, 1), python_ids(tok, texts))


def test_every_code_point(driver, vocab):
    """All of U+0080..U+10FFFF (surrogates as their invalid 3-byte form), 512 per text."""
    cps = [cp for cp in range(0x80, sys.maxunicode + 1)]
    enc = [chr(cp).encode("utf-8", "surrogatepass") for cp in cps]
    texts = [b"".join(b"th" + e + b"s " for e in enc[i:i + 512]) for i in range(0, len(enc), 512)]
    tok = Tokenizer(vocab, 3 * 512 + 1)
    np.testing.assert_array_equal(driver.ids(texts, tok.maxlen), python_ids(tok, texts))


# -- stack and code size ----------------------------------------------------------------------
def worst_stack(ci_file: str, entry: str) -> int:
    """Deepest stack from ``entry`` in a gcc -fcallgraph-info=su graph; library calls count 0.
    A cycle fails: the tokenizer must not recurse (its one tail call is a loop once compiled)."""
    text = open(ci_file).read()
    frame = {title: int(size) for title, size in
             re.findall(r'node: \{ title: "([^"]+)" label: "[^"]*\\n(\d+) bytes', text)}
    calls: dict[str, list[str]] = {}
    for src, dst in re.findall(r'edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"', text):
        calls.setdefault(src, []).append(dst)

    def depth(fn: str, path: tuple[str, ...]) -> int:
        assert fn not in path, f"recursion: {' -> '.join(path + (fn,))}"
        return frame.get(fn, 0) + max((depth(c, path + (fn,)) for c in calls.get(fn, [])), default=0)

    return depth(entry, ())


COMPILERS = [("gcc", ("-Os",), 1400), ("arm-none-eabi-gcc", ("-Os", "-mcpu=cortex-m4", "-mthumb"), 1024)]


@pytest.mark.parametrize("compiler, flags, max_code", [c for c in COMPILERS if shutil.which(c[0])] or COMPILERS[:1])
def test_stack_and_code_size(c_sources, tmp_path, compiler, flags, max_code):
    """< 256 B of stack on the deepest path of rk_tokenize (its state included); code size
    from `size` (1 KB is the Cortex-M4 target; the x86-64 bound only guards against growth)."""
    obj = str(tmp_path / "tokenizer.o")
    subprocess.run([compiler, "-std=c99", *flags, "-fcallgraph-info=su", "-c",
                    os.path.join(c_sources, "tokenizer.c"), "-I", c_sources, "-o", obj], check=True, cwd=tmp_path)
    assert worst_stack(str(tmp_path / "tokenizer.ci"), "rk_tokenize") < 256
    size_tool = compiler[:-3] + "size"
    text = subprocess.run([size_tool, "-A", obj], check=True, capture_output=True, text=True).stdout
    sections = dict(re.findall(r"^(\.\w+)\s+(\d+)", text, re.M))
    code = int(sections[".text"]) + int(sections.get(".rodata", 0))
    assert 200 < code <= max_code
