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
(batches) faster through the speed path at the end of this file (``FastEncoder``: a byte split,
proved equal in ``clean_bytes``, and ``WordTable``, a numpy lookup of 64 texts at a time),
tested against the reference on the whole IMDB corpus and on generated adversarial text
(tests/runtime/test_wordtable.py).
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
TOKENIZER_VERSION = 1
PAD, START, UNKNOWN, UNUSED = "<PAD>", "<START>", "<UNKNOWN>", "<UNUSED>"
SPECIAL_TOKENS = (PAD, START, UNKNOWN, UNUSED)  # ids 0..3, in this order
# The contract as manifest.json records it (with maxlen, num_words and vocab_file): a bundle
# whose tokenizer section says anything else is refused (runtime/bundle.py).
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
        self.start_id, self.unknown_id = 1, 2  # <PAD> is 0
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


# -- the speed path: the same ids without the regex -------------------------------------------
_TOKEN_CHARS = b"abcdefghijklmnopqrstuvwxyz0123456789'"
_WORD = re.compile(r"[a-z0-9']+")  # what a token can be: any other vocabulary entry never matches
# 256-byte table for bytes.translate: token bytes stay, every other byte becomes a space.
_TO_SPACE = bytes(b if b in _TOKEN_CHARS else 0x20 for b in range(256))
# encode_batch: below this many texts the per-text path is faster than numpy's fixed costs;
# above, texts go through numpy this many at a time (bounded memory: ~8 MB of temporaries).
_SMALL_BATCH = 8
_CHUNK = 64


def clean_bytes(text: str) -> bytes:
    r"""``text`` as ASCII bytes in which the tokens are exactly the runs of non-space bytes.

    Why this equals ``split_words`` (tokens as ASCII bytes) for every str:
    (a) ``lower()`` first, on the same str as the contract (it may make ASCII out of non-ASCII:
        KELVIN SIGN -> "k", "\u0130" -> "i\u0307"; both paths see the lowered text).
    (b) ``encode("ascii", "replace")`` keeps ASCII and turns each other code point (lone
        surrogates too) into one "?". All of them are delimiters, and so is "?"; "?" is no
        byte of "<br />", so the "<br />" occurrences stay where they were.
    (c) ``replace(b"<br />", b" ")``: "<br />" has no proper prefix that is also a suffix, so
        its occurrences are disjoint and replace() finds all of them. The regex consumes each
        occurrence whole: a match starts at the first delimiter and advances one delimiter
        or one occurrence at a time, so it arrives at an occurrence's "<" (a delimiter) and
        tries the "<br />" branch there first. It consumes no other token character. So the
        regex's delimiters are the characters outside [a-z0-9'] plus the "br" of each
        occurrence; a single space (a delimiter) in place of each occurrence leaves the same
        maximal runs of token characters, i.e. the same tokens.
    (d) ``translate(_TO_SPACE)`` turns every byte outside [a-z0-9'] into a space, so what is
        left is token bytes and spaces, and ``bytes.split()`` (which splits on ASCII
        whitespace: space, \t \n \v \f \r, none of them token bytes) yields the tokens.
        Characters that str.split() but not bytes.split() treats as space (\x1c-\x1f,
        \x85, \xa0, \u2028, ...) were delimiters and became spaces already.
    """
    return text.lower().encode("ascii", "replace").replace(b"<br />", b" ").translate(_TO_SPACE)


def split_word_bytes(text: str, limit: int = -1) -> list[bytes]:
    """``split_words(text)`` as ASCII bytes (see ``clean_bytes``), only the first ``limit`` if >= 0."""
    if limit < 0:
        return clean_bytes(text).split()
    # With maxsplit=k the first k items are whole tokens and item k+1 is the unsplit rest.
    return clean_bytes(text).split(None, limit)[:limit]


class FastEncoder:
    """``Tokenizer.encode``/``encode_batch`` for one vocabulary and ``maxlen``; same ids, faster.

    The ``WordTable`` is built on the first batch of at least ``_SMALL_BATCH`` texts.
    """

    def __init__(self, vocab: Mapping[str, int], maxlen: int, start_id: int, unknown_id: int):
        self.maxlen, self.start_id, self.unknown_id = maxlen, start_id, unknown_id
        # The only entries a token can ever equal, keyed by their bytes.
        self.byte_ids = {w.encode("ascii"): i for w, i in vocab.items() if _WORD.fullmatch(w)}
        self.table: WordTable | None = None

    def encode(self, text: str) -> list[int]:
        """``<START>`` + word ids, truncated to ``maxlen`` (not padded)."""
        words = split_word_bytes(text, self.maxlen - 1)
        return [self.start_id, *map(self.byte_ids.get, words, repeat(self.unknown_id, len(words)))]

    def encode_batch(self, texts: Sequence[str]) -> np.ndarray:
        """``[n, maxlen]`` int32 ids, padded with ``<PAD>`` (0) at the end."""
        if len(texts) < _SMALL_BATCH:
            return fill_rows(texts, self.encode, self.maxlen)
        if self.table is None:
            self.table = WordTable(self.byte_ids, self.unknown_id)
        out = np.zeros((len(texts), self.maxlen), dtype=np.int32)  # [n, maxlen]
        rest = iter(texts)
        for start in range(0, len(texts), _CHUNK):
            cleaned = [clean_bytes(text) for text in islice(rest, _CHUNK)]
            self._encode_chunk(cleaned, out[start:start + len(cleaned)])
        return out

    def _encode_chunk(self, cleaned: list[bytes], out: np.ndarray) -> None:
        """Fill ``out`` ``[n, maxlen]`` (zeros) from ``clean_bytes`` of n texts, all at once.

        The texts are joined by spaces into one byte buffer (with a space before it); a token
        starts where a non-space byte follows a space and ends where a space follows it.
        """
        n, keep = len(cleaned), self.maxlen - 1
        out[:, 0] = self.start_id
        lengths = np.fromiter(map(len, cleaned), dtype=np.int64, count=n)
        text_starts = np.cumsum(lengths + 1) - lengths  # [n] offset of each text in `buf`
        buf = b" " + b" ".join(cleaned) + b" " * self.table.width  # padding: word loads stay inside
        is_token = np.frombuffer(buf, dtype=np.uint8) != 0x20
        starts = np.flatnonzero(is_token[1:] > is_token[:-1]) + 1  # [tokens]
        ends = np.flatnonzero(is_token[:-1] > is_token[1:]) + 1
        first = np.searchsorted(starts, text_starts)  # [n] index of each text's first token
        row = np.repeat(np.arange(n), np.diff(first, append=len(starts)))  # [tokens] text of each token
        col = np.arange(len(starts)) - first[row]  # [tokens] position within its text
        kept = col < keep  # only the first maxlen - 1 tokens of a text are used
        starts, ends = starts[kept], ends[kept]
        out[row[kept], col[kept] + 1] = self.table.lookup(buf, starts, ends - starts)


def fill_rows(texts: Sequence[str], encode: Callable[[str], list[int]], maxlen: int) -> np.ndarray:
    """``[n, maxlen]`` int32: row i is ``encode(texts[i])`` padded with zeros."""
    out = np.zeros((len(texts), maxlen), dtype=np.int32)
    for row, text in enumerate(texts):
        ids = encode(text)
        out[row, : len(ids)] = ids
    return out


class WordTable:
    """Many tokens -> vocabulary ids in a few numpy passes; exact, like a dict lookup.

    A word of up to ``width`` bytes is packed little-endian into ``width // 8`` uint64 columns,
    zero padded. Vocabulary words sit in an open-addressing table of ``2**bits`` slots indexed
    by the top bits of a 64-bit hash of their columns (linear probing, at most ``max_probe``
    steps). A token's hash only picks the one candidate word it could be; the candidate's
    length and columns are then compared with the token's, so the hash never decides alone.
    This needs the vocabulary hashes distinct and non-zero (zero marks an empty slot): the
    multipliers are re-drawn until they are (for words of at most 8 bytes they always are:
    an odd multiplier is a bijection and a packed word is never zero).
    """

    def __init__(self, byte_ids: Mapping[bytes, int], unknown_id: int, seed: int = 0):
        words = list(byte_ids)
        self.width = 8 * max(1, -(-max(map(len, words), default=1) // 8))
        ncols = self.width // 8
        packed = b"".join(w.ljust(self.width, b"\0") for w in words) + bytes(self.width)
        table = np.frombuffer(packed, dtype="<u8").reshape(len(words) + 1, ncols)
        # Per word, plus a last all-zero word of length 0 that empty slots point to.
        self.cols = [table[:, k].copy() for k in range(ncols)]  # ncols x [words + 1] uint64
        self.lengths = np.array([*map(len, words), 0], dtype=np.int64)  # [words + 1]
        self.ids = np.array([*byte_ids.values(), unknown_id], dtype=np.int32)  # [words + 1]
        self.unknown_id = unknown_id
        self.bits = max(10, (4 * len(words)).bit_length())  # load factor <= 1/4: short probes
        for attempt in range(seed, seed + 100):
            self.mult = _multipliers(ncols, attempt)
            hashes = self._hash([col[:-1] for col in self.cols])
            if hashes.all() and len(np.unique(hashes)) == len(words):
                break
        else:  # pragma: no cover - 100 unlucky 64-bit draws in a row
            raise RuntimeError("cannot build the vocabulary hash table")
        self._place(hashes)

    def _hash(self, cols: list[np.ndarray]) -> np.ndarray:
        h = np.zeros(len(cols[0]), dtype=np.uint64)
        with np.errstate(over="ignore"):  # arithmetic modulo 2**64 is the point
            for col, mult in zip(cols, self.mult):
                h += col * mult
        return h

    def _place(self, hashes: np.ndarray) -> None:
        size, empty = 1 << self.bits, len(hashes)  # `empty`: the all-zero last word
        slot_word, slot_hash, self.max_probe = [empty] * size, [0] * size, 0
        for word, (h, home) in enumerate(zip(hashes.tolist(), self._home(hashes).tolist())):
            probe = 0
            while slot_word[(home + probe) % size] != empty:
                probe += 1
            slot_word[(home + probe) % size], slot_hash[(home + probe) % size] = word, h
            self.max_probe = max(self.max_probe, probe)
        self.slot_word = np.array(slot_word, dtype=np.int64)  # [size] index into self.cols
        self.slot_hash = np.array(slot_hash, dtype=np.uint64)  # [size], 0 = empty

    def _home(self, hashes: np.ndarray) -> np.ndarray:
        return (hashes >> np.uint64(64 - self.bits)).astype(np.int64)

    def _slots(self, h: np.ndarray) -> np.ndarray:
        """``[tokens]`` slot holding the vocabulary word of hash ``h``, else some slot."""
        slot = self._home(h)
        moved = np.flatnonzero(self.slot_hash[slot] != h)  # unknown words and displaced ones
        if self.max_probe and len(moved):
            home, wanted = slot[moved], h[moved]
            found = home
            for probe in range(1, self.max_probe + 1):
                at = (home + probe) & ((1 << self.bits) - 1)
                found = np.where(self.slot_hash[at] == wanted, at, found)
            slot[moved] = found
        return slot

    def lookup(self, buf: bytes, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Ids of the tokens ``buf[s:s + n]`` for s, n in ``starts``, ``lengths`` (``[tokens]`` each).

        ``buf`` must extend at least ``width`` bytes past the last token.
        """
        # Every 8-byte little-endian word of buf, one per byte offset (unaligned view, no copy).
        words = np.ndarray((len(buf) - 7,), dtype="<u8", buffer=buf, strides=(1,))
        first = words[starts] & _LOW_BYTES[np.minimum(lengths, 8)]  # [tokens] first 8 bytes
        h = first * self.mult[0]  # the hash of a word of <= 8 bytes: its other columns are 0
        long = np.flatnonzero(lengths > 8)  # the few tokens that need more columns
        rest = []  # (ncols - 1) x [long] uint64
        if len(long) and len(self.cols) > 1:
            at, left, h_long = starts[long], lengths[long], h[long]
            with np.errstate(over="ignore"):
                for k in range(1, len(self.cols)):
                    rest.append(words[at + 8 * k] & _LOW_BYTES[np.clip(left - 8 * k, 0, 8)])
                    h_long += rest[-1] * self.mult[k]
            h[long] = h_long
        word = self.slot_word[self._slots(h)]  # the only vocabulary word the token can be
        same = (self.lengths[word] == lengths) & (self.cols[0][word] == first)
        if rest:  # a token longer than `width` already differs in length
            word_long, same_long = word[long], same[long]
            for k, col in enumerate(rest, 1):
                same_long &= self.cols[k][word_long] == col
            same[long] = same_long
        return np.where(same, self.ids[word], self.unknown_id)


# _LOW_BYTES[n]: a uint64 mask keeping the low n bytes (the first n of a little-endian word).
_LOW_BYTES = np.array([(1 << (8 * n)) - 1 for n in range(9)], dtype=np.uint64)


def _multipliers(ncols: int, seed: int) -> np.ndarray:
    """Odd 64-bit multipliers of the column hash (odd: multiplying is then a bijection)."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 2**64, size=ncols, dtype=np.uint64, endpoint=False) | np.uint64(1)
