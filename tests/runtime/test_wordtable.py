"""``runtime.tokenizer``'s speed path gives exactly the ids of the regex reference.

``encode``/``encode_batch`` split ``clean_bytes`` (lower, ASCII bytes, ``<br />`` replaced,
translate) and, for batches, a numpy hash-table lookup; ``encode_reference``,
``encode_batch_reference`` and ``split_words`` run ``DELIM_PATTERN`` literally.
"""
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import runtime.tokenizer as wordtable_module
from runtime.bundle import default_bundle_path
from runtime.tokenizer import SPECIAL_TOKENS, Tokenizer, clean_bytes, split_words
from tests.conftest import SHARED_ARCHIVE

# Pieces that stress every step of the fast path: the <br /> alternative and its near misses,
# characters whose lower() is ASCII (KELVIN SIGN, Turkish dotted I), non-ASCII letters and
# combining marks, characters that are whitespace to str.split() but not to bytes.split(),
# control characters, a lone surrogate, emoji, and words of 8/9/16/17/24/25+ bytes.
FRAGMENTS = [
    "<br />", "<BR />", "<Br />", "<br/>", "<br  />", "<br", "br />", " />", "<", ">", "/", "<<br />br />",
    "a", "B", "it's", "'", "''", "0", "42", "R2D2", "The", "FILM", "great", "movie",
    "\u212a", "\u0130", "\u0131", "\u00df", "\u00e9", "e\u0301", "\u0307", "\u03a3", "\u03c3\u03c2", "\ufb01",
    "\U0001f600", "\U0001f1eb\U0001f1f7", "\u00e0\u00ff", "\u0100", "\uffff", "\ud800",
    " ", "  ", "\t", "\n", "\r\n", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f", "\x85", "\xa0",
    "\u2028", "\u2029", "\u3000", "\x00", "\x7f", "?", "!", ".", ",", "-", "_", '"',
    "abcdefgh", "abcdefghi", "abcdefghijklmnop", "abcdefghijklmnopq", "unfortunately",
    "abcdefghijklmnopqrstuvwx", "abcdefghijklmnopqrstuvwxy", "x" * 40, "it'''s", "0123456789",
]
texts_st = st.lists(
    st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=4),
              st.text(alphabet="abcdeKI'<br />\u212a\u0130", max_size=12)),
    max_size=80).map("".join)

# Tokens a vocabulary can hold: short and long, at and around the 8-byte column boundaries.
VOCAB_WORDS = ["a", "b", "it's", "'", "''", "0", "42", "r2d2", "the", "film", "great", "movie", "k", "i",
               "br", "abcdefgh", "abcdefghi", "abcdefghijklmnop", "abcdefghijklmnopq", "unfortunately",
               "abcdefghijklmnopqrstuvwx", "it'''s", "0123456789", "x" * 40, "abcdeki", "kk", "ii"]


def make_tokenizer(words, maxlen):
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
    for word in words:
        vocab.setdefault(word, len(vocab))
    return Tokenizer(vocab, maxlen=maxlen)


@pytest.fixture(scope="module")
def real_tok():
    """The shipped model's 10,000-word IMDB vocabulary."""
    return Tokenizer.load(os.path.join(default_bundle_path(), "vocab.txt"))


@pytest.fixture(scope="module")
def word_tok():
    """A small vocabulary that also holds words which can never be tokens."""
    return make_tokenizer(VOCAB_WORDS + ["The", "caf\u00e9", "<br />", "a b", "\u212a"], maxlen=8)


def assert_same_ids(tok, texts):
    expected = tok.encode_batch_reference(texts)
    assert expected.dtype == np.int32 and expected.shape == (len(texts), tok.maxlen)
    np.testing.assert_array_equal(tok.encode_batch(texts), expected)
    for text, row in zip(texts, expected):
        ids = tok.encode(text)
        assert ids == tok.encode_reference(text)
        assert ids == row[:len(ids)].tolist() and not row[len(ids):].any()


@settings(max_examples=400, deadline=None)
@given(texts_st)
@example("\u212aelvin \u0130stanbul <BR />x<br />y")
@example("a<br /><br />b<br/>c<<br />d")
@example("\x1cone\x1dtwo\x1ethree\x1ffour\x85five\xa0six\u2028seven\x0beight\x0cnine\x00ten")
def test_clean_bytes_splits_into_split_words(text):
    words = split_words(text)
    assert [w.decode("ascii") for w in clean_bytes(text).split()] == words
    for maxlen in (1, 2, 4, 8):  # encode's split with a limit: exactly the first maxlen - 1 words
        tok = make_tokenizer(words, maxlen)
        assert tok.encode(text) == tok.encode_reference(text) == [1, *map(tok.vocab.get, words[:maxlen - 1])]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(texts_st, max_size=20))
def test_encode_equals_reference_on_generated_text(word_tok, texts):
    assert_same_ids(word_tok, texts)  # maxlen 8: most texts are truncated


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(texts_st, min_size=8, max_size=30))
def test_encode_batch_equals_reference_with_the_real_vocabulary(real_tok, texts):
    assert_same_ids(real_tok, texts)


@pytest.mark.parametrize("n", [0, 1, 7, 8, 63, 64, 65, 129])  # both paths and the chunk edges
def test_batch_sizes_and_long_texts(real_tok, n):
    words = "The film<br />was GREAT, it's a \u212ailler movie; br brr 1977 caf\u00e9 ".split(" ")
    texts = [" ".join(words[j % len(words)] for j in range(i * 131 % 700)) for i in range(n)]
    assert_same_ids(real_tok, texts)
    if n > 3:
        assert max(len(split_words(t)) for t in texts) > real_tok.maxlen  # some are truncated


def test_maxlen_one_keeps_only_start():
    tok = make_tokenizer(VOCAB_WORDS, maxlen=1)
    assert_same_ids(tok, ["the film"] * 10 + [""])
    assert tok.encode_batch(["the film"] * 10).tolist() == [[1]] * 10


def test_vocabulary_of_special_tokens_only():
    tok = make_tokenizer([], maxlen=5)
    assert tok.encode_batch(["a b c d e f"] * 9).tolist() == [[1, 2, 2, 2, 2]] * 9


def test_long_words_are_matched_exactly():
    tok = make_tokenizer(["abcdefghijklmnopq", "abcdefgh", "abcdefghi"], maxlen=8)
    row = tok.encode_batch(["abcdefghijklmnopq abcdefghijklmnop abcdefghijklmnopqr abcdefgh "
                            "abcdefghi abcdefghz abcdefg"] * 8)[0]
    assert row.tolist() == [1, 4, 2, 2, 5, 6, 2, 2]
    # A token longer than the longest word packs to that word's 24 bytes: its length tells them apart.
    tok = make_tokenizer(["abcdefghijklmnopqrstuvwx"], maxlen=4)
    rows = tok.encode_batch(["abcdefghijklmnopqrstuvwx abcdefghijklmnopqrstuvwxy abcdefghijklmnopqrstuvwxyz"] * 8)
    assert tok._table.width == 24 and rows[0].tolist() == [1, 4, 2, 2]


def test_real_vocabulary_probes_the_hash_table(real_tok):
    real_tok.encode_batch(["warm up"] * 8)
    table = real_tok._table
    assert table.max_probe > 0 and table.width == 24  # the collision path and 3 columns are used
    words = [w for w in real_tok.vocab if w not in SPECIAL_TOKENS]
    ids = real_tok.encode_batch([" ".join(words[i:i + 255]) for i in range(0, len(words), 255)])
    assert sorted(ids[:, 1:][ids[:, 1:] > 0].tolist()) == list(range(4, len(real_tok.vocab)))


def test_hash_table_redraws_colliding_multipliers(monkeypatch):
    real = wordtable_module._multipliers
    draws = []

    def first_draw_all_zero(ncols, seed):  # every hash 0: must be refused
        draws.append(seed)
        return real(ncols, seed) * np.uint64(0) if len(draws) == 1 else real(ncols, seed)

    monkeypatch.setattr(wordtable_module, "_multipliers", first_draw_all_zero)
    tok = make_tokenizer(VOCAB_WORDS, maxlen=16)
    texts = [" ".join(VOCAB_WORDS[i:] + VOCAB_WORDS[:i]) for i in range(10)]
    assert_same_ids(tok, texts)
    assert draws == [0, 1]


@pytest.mark.e2e
def test_whole_imdb_corpus_tokenizes_identically(real_tok):
    from trainer.data import load_imdb

    imdb = load_imdb(SHARED_ARCHIVE)
    texts = imdb.train_texts + imdb.test_texts
    assert len(texts) == 50_000
    for text in texts:  # every token, not only the first 255
        assert [w.decode("ascii") for w in clean_bytes(text).split()] == split_words(text), text[:200]
    np.testing.assert_array_equal(real_tok.encode_batch(texts), real_tok.encode_batch_reference(texts))
