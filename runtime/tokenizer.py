"""The one tokenizer of the project: raw review text -> int32 ids (the contract: docs/export.md).

``DELIM_PATTERN`` also runs as RE2 in the TFLite metadata: it stays valid RE2, and a change is a model-format
change (bump ``TOKENIZER_VERSION``). ``split_words`` and ``*_reference`` run the contract literally;
``encode``/``encode_batch`` give the same ids 3x-6x faster (``clean_bytes`` says why; tests/runtime/test_wordtable.py).
"""
from __future__ import annotations

import os
import re
from collections import Counter
from itertools import islice, repeat
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

from .files import UnsafeFile, atomic_write_bytes, read_regular_file
from .errors import UserError

DELIM_PATTERN = r"(?:<br />|[^a-z0-9'])+"
_DELIM = re.compile(DELIM_PATTERN)
TOKENIZER_VERSION = 1
PAD, START, UNKNOWN, UNUSED = "<PAD>", "<START>", "<UNKNOWN>", "<UNUSED>"
SPECIAL_TOKENS = (PAD, START, UNKNOWN, UNUSED)  # ids 0..3, in this order
START_ID, UNKNOWN_ID = 1, 2
# As manifest.json records it (with maxlen, num_words, vocab_file); runtime/bundle.py refuses any other.
CONTRACT = {
    "type": "regex", "version": TOKENIZER_VERSION, "delim_pattern": DELIM_PATTERN, "lowercase": True,
    "special_tokens": {token: i for i, token in enumerate(SPECIAL_TOKENS)}, "prepend_start": True,
    "unknown_token": UNKNOWN, "truncation": "end", "padding": "end",  # truncation: keep the first maxlen ids
}
DEFAULT_MAXLEN, DEFAULT_NUM_WORDS = 256, 10_000
MAX_VOCAB_BYTES = 64 << 20  # 10,000 words take 125 KB


class TokenizerError(UserError, ValueError):
    """A vocabulary file or tokenizer parameter is invalid."""


def split_words(text: str) -> list[str]:
    """Lowercase and split ``text`` into tokens: the reference."""
    return [t for t in _DELIM.split(text.lower()) if t]


def build_vocab(texts: Iterable[str], num_words: int = DEFAULT_NUM_WORDS) -> dict[str, int]:
    """The special tokens, then the ``num_words - 4`` most frequent words, ties by first appearance."""
    if num_words <= len(SPECIAL_TOKENS):
        raise TokenizerError(f"num_words must be greater than {len(SPECIAL_TOKENS)}, got {num_words}")
    counts = Counter(word for text in texts for word in split_words(text))  # no token is a special one
    words = [word for word, _ in counts.most_common(num_words - len(SPECIAL_TOKENS))]  # a stable sort
    return {word: i for i, word in enumerate([*SPECIAL_TOKENS, *words])}


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
        self._words = {i: w for w, i in self.vocab.items()}
        # The only entries a token can ever equal, keyed by their bytes.
        self._byte_ids = {w.encode("ascii"): i for w, i in self.vocab.items() if _WORD.fullmatch(w)}
        self._table: WordTable | None = None  # built by the first batch of at least _SMALL_BATCH texts

    @classmethod
    def build(cls, texts: Iterable[str], num_words: int = DEFAULT_NUM_WORDS, maxlen: int = DEFAULT_MAXLEN) -> Tokenizer:
        return cls(build_vocab(texts, num_words), maxlen)

    @classmethod
    def load(cls, path: str | os.PathLike, maxlen: int = DEFAULT_MAXLEN) -> Tokenizer:
        return cls(read_vocab(path), maxlen)

    def save(self, path: str | os.PathLike) -> None:
        """Write ``token id`` lines in id order, atomically."""
        text = "".join(f"{tok} {i}\n" for tok, i in sorted(self.vocab.items(), key=lambda kv: kv[1]))
        atomic_write_bytes(path, text.encode("utf-8"))

    @property
    def num_words(self) -> int:
        return len(self.vocab)

    def encode(self, text: str) -> list[int]:
        """``<START>`` + word ids, truncated to ``maxlen`` (not padded)."""
        keep = self.maxlen - 1
        words = clean_bytes(text).split(None, keep)[:keep]  # item keep + 1 would be the unsplit rest
        return [START_ID, *map(self._byte_ids.get, words, repeat(UNKNOWN_ID, len(words)))]

    def encode_batch(self, texts: Sequence[str]) -> np.ndarray:
        """``[n, maxlen]`` int32 ids, padded with ``<PAD>`` (0) at the end."""
        if len(texts) < _SMALL_BATCH:
            return fill_rows(texts, self.encode, self.maxlen)
        if self._table is None:
            self._table = WordTable(self._byte_ids)
        out = np.zeros((len(texts), self.maxlen), dtype=np.int32)  # [n, maxlen]
        rest = iter(texts)
        for start in range(0, len(texts), _CHUNK):
            self._encode_chunk([clean_bytes(text) for text in islice(rest, _CHUNK)], out[start:start + _CHUNK])
        return out

    def encode_reference(self, text: str) -> list[int]:
        """``encode`` done literally with the contract's regex (slow; for tests and baselines)."""
        return [START_ID, *(self.vocab.get(tok, UNKNOWN_ID) for tok in split_words(text)[: self.maxlen - 1])]

    def encode_batch_reference(self, texts: Sequence[str]) -> np.ndarray:
        """``encode_batch`` done literally with the contract's regex (slow; for tests and baselines)."""
        return fill_rows(texts, self.encode_reference, self.maxlen)

    def decode(self, ids: Iterable[int]) -> str:
        """Ids back to words (the tutorial's ``decode_review``); unknown ids read ``?``."""
        return " ".join(self._words.get(int(i), "?") for i in ids)

    def _encode_chunk(self, cleaned: list[bytes], out: np.ndarray) -> None:
        """Fill ``out`` ``[n, maxlen]`` (zeros) from n ``clean_bytes``, all at once in one buffer."""
        n = len(cleaned)
        out[:, 0] = START_ID
        lengths = np.fromiter(map(len, cleaned), dtype=np.int64, count=n)
        text_starts = np.cumsum(lengths + 1) - lengths  # [n] offset of each text in `buf`
        buf = b" " + b" ".join(cleaned) + b" " * self._table.width  # padding: word loads stay inside
        is_token = np.frombuffer(buf, dtype=np.uint8) != 0x20
        starts = np.flatnonzero(is_token[1:] > is_token[:-1]) + 1  # [tokens]
        ends = np.flatnonzero(is_token[:-1] > is_token[1:]) + 1
        first = np.searchsorted(starts, text_starts)  # [n] index of each text's first token
        row = np.repeat(np.arange(n), np.diff(first, append=len(starts)))  # [tokens] text of each token
        col = np.arange(len(starts)) - first[row]  # [tokens] position within its text
        kept = col < self.maxlen - 1  # only the first maxlen - 1 tokens of a text are used
        out[row[kept], col[kept] + 1] = self._table.lookup(buf, starts[kept], (ends - starts)[kept])


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


def fill_rows(texts: Sequence[str], encode: Callable[[str], list[int]], maxlen: int) -> np.ndarray:
    """``[n, maxlen]`` int32: row i is ``encode(texts[i])`` padded with zeros."""
    out = np.zeros((len(texts), maxlen), dtype=np.int32)
    for row, ids in enumerate(map(encode, texts)):
        out[row, : len(ids)] = ids
    return out


# -- the speed path: the same ids without the regex -------------------------------------------
_WORD = re.compile(r"[a-z0-9']+")  # what a token can be: any other vocabulary entry never matches
_TO_SPACE = bytes(b if _WORD.fullmatch(chr(b)) else 0x20 for b in range(256))  # bytes.translate: non-token -> space
# Fewer texts than _SMALL_BATCH go one by one (numpy's fixed costs); more go _CHUNK at a time (~8 MB).
_SMALL_BATCH, _CHUNK = 8, 64
_LOW_BYTES = np.array([(1 << (8 * n)) - 1 for n in range(9)], dtype=np.uint64)  # [n]: keeps the first n bytes


def clean_bytes(text: str) -> bytes:
    r"""``text`` as ASCII bytes whose runs of non-space bytes are exactly ``split_words(text)``, because:
    (a) ``lower()`` runs first, as in the contract (it can make ASCII: KELVIN SIGN -> "k"); (b) ``encode("ascii",
    "replace")`` makes each other code point (lone surrogates too) one "?": delimiters both, and "?" is no byte of
    "<br />", so its occurrences stay; (c) "<br />" has no proper prefix that is also a suffix, so its occurrences
    are disjoint and ``replace`` finds them all, and the regex, advancing one delimiter or one occurrence at a time,
    reaches each one's "<" and takes the "<br />" branch first: a space in its place leaves the same runs of
    [a-z0-9']; (d) ``translate`` makes every other byte a space, ``bytes.split()`` splits on ASCII whitespace (no
    token byte), and what only str.split() calls space (\x1c-\x1f, \x85, \u2028, ...) was a delimiter, now a space.
    """
    return text.lower().encode("ascii", "replace").replace(b"<br />", b" ").translate(_TO_SPACE)


class WordTable:
    """Many tokens -> vocabulary ids in a few numpy passes; exact, like a dict lookup.

    Words pack little-endian into ``width // 8`` uint64 columns; a 64-bit hash of the columns places each in an
    open-addressing table (linear probing, at most ``max_probe`` steps). A token's hash only picks the one word it
    could be: lengths and columns are then compared. Vocabulary hashes must be distinct and non-zero (0 marks an
    empty slot): the multipliers are re-drawn until they are.
    """

    def __init__(self, byte_ids: Mapping[bytes, int]):
        words = list(byte_ids)
        self.width = 8 * -(-max(map(len, words), default=1) // 8)
        ncols = self.width // 8
        packed = b"".join(w.ljust(self.width, b"\0") for w in words) + bytes(self.width)
        table = np.frombuffer(packed, dtype="<u8").reshape(len(words) + 1, ncols)
        # Per word, plus a last all-zero word of length 0 that empty slots point to.
        self.cols = [table[:, k].copy() for k in range(ncols)]  # ncols x [words + 1] uint64
        self.lengths = np.array([*map(len, words), 0], dtype=np.int64)  # [words + 1]
        self.ids = np.array([*byte_ids.values(), UNKNOWN_ID], dtype=np.int32)  # [words + 1]
        self.bits = max(10, (4 * len(words)).bit_length())  # load factor <= 1/4: short probes
        for attempt in range(100):
            self.mult = _multipliers(ncols, attempt)
            hashes = self._hash([col[:-1] for col in self.cols], self.mult)
            if hashes.all() and len(np.unique(hashes)) == len(words):
                break
        else:  # pragma: no cover - 100 unlucky 64-bit draws in a row
            raise RuntimeError("cannot build the vocabulary hash table")
        self._place(hashes)

    @staticmethod
    def _hash(cols: list[np.ndarray], mult: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore"):  # arithmetic modulo 2**64 is the point
            return sum((col * m for col, m in zip(cols, mult)), np.uint64(0))

    def _place(self, hashes: np.ndarray) -> None:
        size, empty = 1 << self.bits, len(hashes)  # `empty`: the all-zero last word
        slot_word, slot_hash, self.max_probe = [empty] * size, [0] * size, 0
        for word, (h, home) in enumerate(zip(hashes.tolist(), self._home(hashes).tolist())):
            slot = home
            while slot_word[slot] != empty:
                slot = (slot + 1) % size
            slot_word[slot], slot_hash[slot] = word, h
            self.max_probe = max(self.max_probe, (slot - home) % size)
        self.slot_word = np.array(slot_word, dtype=np.int64)  # [size] index into self.cols
        self.slot_hash = np.array(slot_hash, dtype=np.uint64)  # [size], 0 = empty

    def _home(self, hashes: np.ndarray) -> np.ndarray:
        return (hashes >> np.uint64(64 - self.bits)).astype(np.int64)

    def _slots(self, h: np.ndarray) -> np.ndarray:
        """``[tokens]`` slot holding the vocabulary word of hash ``h``, else some slot."""
        slot = self._home(h)
        moved = np.flatnonzero(self.slot_hash[slot] != h)  # unknown words and displaced ones
        home, wanted = slot[moved], h[moved]
        found = home
        for probe in range(1, self.max_probe + 1):
            at = (home + probe) & ((1 << self.bits) - 1)
            found = np.where(self.slot_hash[at] == wanted, at, found)
        slot[moved] = found
        return slot

    def lookup(self, buf: bytes, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Ids of the tokens ``buf[s:s + n]`` (``[tokens]`` each); ``buf`` extends ``width`` bytes past the last."""
        # Every 8-byte little-endian word of buf, one per byte offset (unaligned view, no copy).
        words = np.ndarray((len(buf) - 7,), dtype="<u8", buffer=buf, strides=(1,))
        first = words[starts] & _LOW_BYTES[np.minimum(lengths, 8)]  # [tokens] first 8 bytes
        long = np.flatnonzero(lengths > 8)  # the few tokens that need more columns
        rest = [words[starts[long] + 8 * k] & _LOW_BYTES[np.clip(lengths[long] - 8 * k, 0, 8)]
                for k in range(1, len(self.cols))]  # (ncols - 1) x [long] uint64
        h = first * self.mult[0]  # the hash of a word of <= 8 bytes: its other columns are 0
        h[long] += self._hash(rest, self.mult[1:])
        word = self.slot_word[self._slots(h)]  # the only vocabulary word the token can be
        same = (self.lengths[word] == lengths) & (self.cols[0][word] == first)
        for k, col in enumerate(rest, 1):  # a token longer than `width` already differs in length
            same[long] &= self.cols[k][word[long]] == col
        return np.where(same, self.ids[word], UNKNOWN_ID)


def _multipliers(ncols: int, seed: int) -> np.ndarray:
    """Odd 64-bit multipliers of the column hash (odd: multiplying is then a bijection)."""
    return np.random.default_rng(seed).integers(0, 2**64, size=ncols, dtype=np.uint64) | np.uint64(1)
