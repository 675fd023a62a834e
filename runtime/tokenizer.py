"""The one tokenizer of the project: raw review text -> int32 ids.

This is the contract of the TFLite/MediaPipe ``RegexTokenizer`` so that a phone app,
the LiteRT interpreter, onnxruntime and Keras all see the same ids:

1. lowercase the text (``str.lower``: Unicode, locale-independent; MediaPipe does *not*
   lowercase, so a phone app must lowercase with ``toLowerCase(Locale.ROOT)`` first);
2. split on ``DELIM_PATTERN`` and drop empty tokens;
3. map each token through ``vocab.txt`` (``token id`` lines), unknown -> ``<UNKNOWN>``;
4. prepend ``<START>``, keep the first ``maxlen`` ids, pad with ``<PAD>`` at the end.

``DELIM_PATTERN`` is written into the TFLite metadata and run by RE2 on the device, so it
must stay valid RE2 (no look-around, no back-references). Any change here is a model-format
change: bump ``TOKENIZER_VERSION`` and keep the old behaviour loadable.

``split_words`` and ``Tokenizer.encode_reference``/``encode_batch_reference`` run the contract
literally (the regex); ``encode``/``encode_batch`` give the same ids 3x (one text) to 6x
(batches) faster through ``runtime/wordtable.py``, which holds the proof and is tested against
this file on the whole IMDB corpus and on generated adversarial text.
"""
from __future__ import annotations

import os
import re
from collections import Counter
from typing import Iterable, Mapping, Sequence

import numpy as np

from .files import UnsafeFile, atomic_write_bytes, read_regular_file
from .errors import UserError
from .wordtable import FastEncoder, fill_rows

DELIM_PATTERN = r"(?:<br />|[^a-z0-9'])+"
TOKENIZER_VERSION = 1
PAD, START, UNKNOWN, UNUSED = "<PAD>", "<START>", "<UNKNOWN>", "<UNUSED>"
SPECIAL_TOKENS = (PAD, START, UNKNOWN, UNUSED)  # ids 0..3, in this order
# The contract as manifest.json records it (with maxlen, num_words and vocab_file): a bundle
# whose tokenizer section says anything else is refused (runtime/manifest.py).
CONTRACT = {
    "type": "regex",
    "version": TOKENIZER_VERSION,
    "delim_pattern": DELIM_PATTERN,
    "lowercase": True,
    "special_tokens": {token: i for i, token in enumerate(SPECIAL_TOKENS)},
    "prepend_start": True,
    "unknown_token": UNKNOWN,
    "truncation": "end",  # keep the first maxlen ids
    "padding": "end",
}
DEFAULT_MAXLEN = 256
DEFAULT_NUM_WORDS = 10_000

_DELIM = re.compile(DELIM_PATTERN)
MAX_VOCAB_BYTES = 64 << 20  # 10,000 words take 125 KB


class TokenizerError(UserError, ValueError):
    """A vocabulary file or tokenizer parameter is invalid."""


def split_words(text: str) -> list[str]:
    """Lowercase and split ``text`` into tokens (no vocabulary involved). The reference."""
    return [t for t in _DELIM.split(text.lower()) if t]


def build_vocab(texts: Iterable[str], num_words: int = DEFAULT_NUM_WORDS) -> dict[str, int]:
    """The special tokens, then the ``num_words - 4`` most frequent words of ``texts``.

    Ties are broken by first appearance in ``texts`` (``Counter`` keeps insertion order
    and ``most_common`` sorts stably), so the same texts always give the same vocabulary.
    """
    if num_words <= len(SPECIAL_TOKENS):
        raise TokenizerError(f"num_words must be greater than {len(SPECIAL_TOKENS)}, got {num_words}")
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(split_words(text))
    for special in SPECIAL_TOKENS:  # a literal "<pad>" can never be a token, but be explicit
        counts.pop(special, None)
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
    for word, _ in counts.most_common(num_words - len(SPECIAL_TOKENS)):
        vocab[word] = len(vocab)
    return vocab


class Tokenizer:
    """Maps raw text to fixed-length id rows. ``Tokenizer.load("vocab.txt").encode_batch(texts)``."""

    def __init__(self, vocab: Mapping[str, int], maxlen: int = DEFAULT_MAXLEN):
        if maxlen < 1:
            raise TokenizerError(f"maxlen must be at least 1, got {maxlen}")
        for i, special in enumerate(SPECIAL_TOKENS):
            if vocab.get(special) != i:
                raise TokenizerError(f"vocabulary must map {special} to {i}")
        self.vocab = dict(vocab)  # fixed from here on: the lookups below are built from it
        self.maxlen = maxlen
        self.pad_id, self.start_id, self.unknown_id = 0, 1, 2
        self._words = {i: w for w, i in self.vocab.items()}
        self._fast = FastEncoder(self.vocab, maxlen, self.start_id, self.unknown_id)

    # -- construction / persistence -------------------------------------------------
    @classmethod
    def build(cls, texts: Iterable[str], num_words: int = DEFAULT_NUM_WORDS,
              maxlen: int = DEFAULT_MAXLEN) -> "Tokenizer":
        return cls(build_vocab(texts, num_words), maxlen)

    @classmethod
    def load(cls, path: str | os.PathLike, maxlen: int = DEFAULT_MAXLEN) -> "Tokenizer":
        return cls(read_vocab(path), maxlen)

    def save(self, path: str | os.PathLike) -> None:
        write_vocab(self.vocab, path)

    @property
    def num_words(self) -> int:
        return len(self.vocab)

    # -- encoding -------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        """``<START>`` + word ids, truncated to ``maxlen`` (not padded). ``encode_reference``, faster."""
        return self._fast.encode(text)

    def encode_batch(self, texts: Sequence[str]) -> np.ndarray:
        """``[n, maxlen]`` int32 ids, padded with ``<PAD>`` at the end. ``encode_batch_reference``, faster."""
        return self._fast.encode_batch(texts)

    def encode_reference(self, text: str) -> list[int]:
        """``encode`` done literally with the contract's regex (slow; for tests and baselines)."""
        get, unk = self.vocab.get, self.unknown_id
        ids = [self.start_id]
        ids.extend(get(tok, unk) for tok in split_words(text)[: self.maxlen - 1])
        return ids

    def encode_batch_reference(self, texts: Sequence[str]) -> np.ndarray:
        """``encode_batch`` done literally with the contract's regex (slow; for tests and baselines)."""
        return fill_rows(texts, self.encode_reference, self.maxlen)

    def decode(self, ids: Iterable[int]) -> str:
        """Ids back to words (the tutorial's ``decode_review``); unknown ids read ``?``."""
        return " ".join(self._words.get(int(i), "?") for i in ids)


def read_vocab(path: str | os.PathLike) -> dict[str, int]:
    """Parse ``token id`` lines; errors name the file and line."""
    vocab: dict[str, int] = {}
    try:
        lines = read_regular_file(path, MAX_VOCAB_BYTES).decode("utf-8").splitlines()
    except UnsafeFile as e:
        raise TokenizerError(f"cannot read vocabulary {path}: it {e}") from None
    except OSError as e:
        raise TokenizerError(f"cannot read vocabulary {path}: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise TokenizerError(f"cannot read vocabulary {path}: not UTF-8 ({e.reason} at byte {e.start})") from None
    for n, line in enumerate(lines, 1):
        parts = line.split(" ")
        if len(parts) != 2 or not (parts[1].isascii() and parts[1].isdigit()) or not parts[0]:
            raise TokenizerError(f"{path}:{n}: expected 'token id', got {line!r}")
        if parts[0] in vocab:
            raise TokenizerError(f"{path}:{n}: duplicate token {parts[0]!r}")
        vocab[parts[0]] = int(parts[1])
    if sorted(vocab.values()) != list(range(len(vocab))):
        raise TokenizerError(f"{path}: ids must be 0..{len(vocab) - 1}, each exactly once")
    return vocab


def write_vocab(vocab: Mapping[str, int], path: str | os.PathLike) -> None:
    """Write ``token id`` lines in id order, atomically."""
    text = "".join(f"{tok} {i}\n" for tok, i in sorted(vocab.items(), key=lambda kv: kv[1]))
    atomic_write_bytes(path, text.encode("utf-8"))

