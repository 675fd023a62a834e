import numpy as np
import pytest

from runtime.tokenizer import (DELIM_PATTERN, Tokenizer, TokenizerError, build_vocab, read_vocab,
                               split_words)

WORDS = ["the", "film", "it's", "great", "br", "42"]


@pytest.fixture
def tok():
    vocab = {"<PAD>": 0, "<START>": 1, "<UNKNOWN>": 2, "<UNUSED>": 3}
    vocab.update({w: i for i, w in enumerate(WORDS, 4)})
    return Tokenizer(vocab, maxlen=8)


def test_delimiter_pattern_is_the_contract():
    assert DELIM_PATTERN == r"(?:<br />|[^a-z0-9'])+"


@pytest.mark.parametrize("text, words", [
    ("The FILM", ["the", "film"]),                       # capitals are lowercased
    ("great<br /><br />film", ["great", "film"]),        # the HTML line break is a delimiter
    ("great<br/>film", ["great", "br", "film"]),         # ...but only in its exact IMDB form
    ("It's 'great'", ["it's", "'great'"]),               # apostrophes stay inside tokens
    ("café naïve", ["caf", "na", "ve"]),                 # non-ASCII letters split like RE2 does
    ("R2D2 in 1977", ["r2d2", "in", "1977"]),            # digits are token characters
    ("", []),
    ("  ...!!  ", []),                                   # only delimiters -> no empty tokens
    ("\tthe\r\nfilm ", ["the", "film"]),
])
def test_split_words(text, words):
    assert split_words(text) == words


def test_encode_prepends_start_and_maps_unknown(tok):
    assert tok.encode("The film, it's GREAT!") == [1, 4, 5, 6, 7]
    assert tok.encode("the zebra") == [1, 4, 2]
    assert tok.encode("") == [1]


def test_encode_batch_pads_at_end_and_truncates(tok):
    ids = tok.encode_batch(["the film", "the " * 20, ""])
    assert ids.dtype == np.int32 and ids.shape == (3, 8)
    assert ids[0].tolist() == [1, 4, 5, 0, 0, 0, 0, 0]
    assert ids[1].tolist() == [1] + [4] * 7            # <START> counts towards maxlen
    assert ids[2].tolist() == [1] + [0] * 7
    assert tok.encode_batch([]).shape == (0, 8)


def test_decode_round_trip(tok):
    assert tok.decode(tok.encode_batch(["The film is great"])[0][:5]) == "<START> the film <UNKNOWN> great"
    assert tok.decode([99]) == "?"


def test_build_vocab_is_frequency_ordered_with_first_appearance_ties():
    texts = ["b a c", "c a", "d"]
    vocab = build_vocab(texts, num_words=7)
    assert list(vocab) == ["<PAD>", "<START>", "<UNKNOWN>", "<UNUSED>", "a", "c", "b"]
    assert build_vocab(list(texts), num_words=7) == vocab  # deterministic


def test_build_vocab_rejects_tiny_num_words():
    with pytest.raises(TokenizerError, match="num_words must be greater than 4, got 4"):
        build_vocab(["a"], num_words=4)


def test_save_load_round_trip(tmp_path, tok):
    path = tmp_path / "vocab.txt"
    tok.save(path)
    lines = path.read_text().splitlines()
    assert lines[:5] == ["<PAD> 0", "<START> 1", "<UNKNOWN> 2", "<UNUSED> 3", "the 4"]
    assert Tokenizer.load(path, maxlen=8).vocab == tok.vocab


@pytest.mark.parametrize("content, message", [
    ("<PAD> 0\n<START> 1\nbad line here\n", "vocab.txt:3: expected 'token id', got 'bad line here'"),
    ("<PAD> 0\n<PAD> 1\n", "vocab.txt:2: duplicate token '<PAD>'"),
    ("<PAD> 0\n<START> 5\n", "vocab.txt: ids must be 0..1, each exactly once"),
])
def test_read_vocab_errors_name_file_and_line(tmp_path, content, message):
    path = tmp_path / "vocab.txt"
    path.write_text(content)
    with pytest.raises(TokenizerError) as err:
        read_vocab(path)
    assert str(err.value) == f"{tmp_path}/{message}"


def test_vocab_must_start_with_special_tokens():
    with pytest.raises(TokenizerError, match="vocabulary must map <PAD> to 0"):
        Tokenizer({"a": 0})
