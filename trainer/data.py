"""Load the Stanford Large Movie Review Dataset v1 (IMDB) from a folder, a tar archive or a URL.

Accepted layouts: ``[aclImdb/]{train,test}/{pos,neg}/*.txt``; anything else in the archive
(``train/unsup/``, ``*.feat``, ``imdb.vocab``, ``urls_*.txt``) is ignored. Archives are read
as a stream (no extraction, one pass over the gzip data); a link, device or oddly named member
is refused, and so are a review over MAX_REVIEW_BYTES and an archive over MAX_ARCHIVE_BYTES
once uncompressed. Reviews are ordered by
(split, label neg then pos, file name), so every form of the same data gives the same arrays.
"""
from __future__ import annotations

import argparse
import bz2
import gzip
import hashlib
import lzma
import os
import posixpath
import re
import sys
import tarfile
import tempfile
import urllib.parse
import urllib.request
import zlib
from dataclasses import dataclass
from typing import Callable

import numpy as np

from runtime.files import sha256_file
from runtime.errors import UserError

OFFICIAL_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
# From tensorflow_datasets/datasets/imdb_reviews/checksums.tsv (84,125,825 bytes).
OFFICIAL_SHA256 = "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe"
_KNOWN_SHA256 = {
    OFFICIAL_URL: OFFICIAL_SHA256,
    OFFICIAL_URL.replace("https://", "http://", 1): OFFICIAL_SHA256,
}
ENV_DATA = "IMDB_DATA"
ENV_CACHE = "REVIEWKIT_CACHE"
DEFAULT_CACHE = "~/.cache/reviewkit"

# Reviews are ~1.3 KB on average and 14 KB at most in IMDB v1; the official archive is ~0.5 GB
# uncompressed. Anything far beyond is refused before it can fill memory or run for minutes.
MAX_REVIEW_BYTES = 1 << 20
MAX_ARCHIVE_BYTES = 2 << 30

SPLITS = ("train", "test")
LABELS = ("neg", "pos")  # index = label value, and the sort order within a split
_LAYOUT = "[aclImdb/]{train,test}/{pos,neg}/*.txt"
_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
# What tarfile and the decompressors raise on damaged input.
_ARCHIVE_ERRORS = (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, OSError)

Fetch = Callable[[str, str], None]  # fetch(url, dest_path): write the whole body to dest_path
Progress = Callable[[int, "int | None"], None]  # progress(bytes_done, bytes_total_or_None)


class DataError(UserError):
    """The IMDB data cannot be found, read, trusted or downloaded (one-line message)."""


@dataclass(frozen=True, eq=False)  # eq=False: comparing ndarrays inside a tuple is ambiguous
class Imdb:
    train_texts: list[str]
    train_labels: np.ndarray  # [n_train] int32, 1 = pos
    test_texts: list[str]
    test_labels: np.ndarray  # [n_test] int32, 1 = pos
    train_files: list[str]  # each review's "split/label/name.txt", for messages and its rating
    test_files: list[str]


def resolve_source(data: str | None, recorded: str | None = None, default: str | None = OFFICIAL_URL) -> str:
    """``data`` (--data) if given, else ``$IMDB_DATA``, else ``recorded`` (the source the model was
    trained on), else ``default``; empty counts as unset. With no default, the error names --data."""
    source = data or os.environ.get(ENV_DATA) or recorded or default
    if not source:
        raise DataError(f"no IMDB data source known for this model: pass --data PATH (a folder, tar archive "
                        f"or URL such as {OFFICIAL_URL}) or set {ENV_DATA}")
    return source


def is_url(source: str) -> bool:
    return bool(_URL_RE.match(source))


def is_imdb_folder(path: str) -> bool:
    """Whether ``path`` (or its ``aclImdb/`` child) holds the aclImdb layout: a ``train`` or
    ``test`` folder with ``pos`` or ``neg`` in it (a folder of label folders has neither)."""
    root = _data_root(path)
    return any(os.path.isdir(os.path.join(root, split, label)) for split in SPLITS for label in LABELS)


def read_text_file(path: str) -> str:
    """One review file as text, read as IMDB reviews are (size cap, invalid UTF-8 replaced)."""
    try:
        return _decode(_read_review_file(path))
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror}") from e


def recorded_source(source: str) -> str:
    """How a source is written in the training metadata: URLs as given, paths made absolute
    (so export finds the data from any working directory)."""
    if _URL_RE.match(source):
        return source
    return os.path.abspath(os.path.expanduser(source))


TRAINING_DEFAULT = (f"${ENV_DATA}, else the official archive, downloaded once into ${ENV_CACHE} "
                    f"(default {DEFAULT_CACHE})")
RECORDED_DEFAULT = f"${ENV_DATA}, else the data the model was trained on (recorded in metrics.json)"


def add_data_argument(parser: argparse.ArgumentParser, default: str = TRAINING_DEFAULT) -> argparse.Action:
    """Add the ``--data PATH`` option shared by the trainer and export CLIs."""
    return parser.add_argument(
        "--data", metavar="PATH", default=None,
        help="labelled texts: a CSV or TSV file with a header, a JSONL file or a Parquet file or "
             "directory (see --text-column, --label-column), or a folder with one subfolder of .txt "
             "files per label; or IMDB reviews: an aclImdb/ folder (or its parent), a tar archive such as "
             "aclImdb_v1.tar.gz, or an http(s):// or file:// URL of one (append #sha256=HEX "
             f"to check it). Default: {default}.")


def load_imdb(data: str | os.PathLike | None = None, *, cache_dir: str | os.PathLike | None = None,
              fetch: Fetch | None = None, progress: Progress | bool | None = None,
              sha256: str | None = None) -> Imdb:
    """Load IMDB from ``resolve_source(data)``: a folder, a tar archive or a URL.

    URLs are downloaded once into the cache (see ``download``); ``cache_dir``, ``fetch``,
    ``progress`` and ``sha256`` only matter for URLs.
    """
    source = resolve_source(None if data is None else os.fspath(data))
    if _URL_RE.match(source):
        path = download(source, cache_dir=cache_dir, fetch=fetch, progress=progress, sha256=sha256)
        return _to_imdb(_read_tar(path), path)
    path = os.path.expanduser(source)
    if not os.path.lexists(path):
        raise DataError(f"IMDB data path does not exist: {source}")
    if os.path.isdir(path):
        return _to_imdb(_read_folder(path), source)
    if os.path.isfile(path):
        return _to_imdb(_read_tar(path), source)
    raise DataError(f"not an IMDB folder, tar archive or URL: {source}")


# ---------------------------------------------------------------- reading

def _review_key(name: str) -> tuple[str, str, str] | None:
    """``(split, label, file_name)`` for a review path, None for anything else."""
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if parts and parts[0] == "aclImdb":
        parts = parts[1:]
    if (len(parts) == 3 and parts[0] in SPLITS and parts[1] in LABELS
            and parts[2].endswith(".txt")):
        return parts[0], parts[1], parts[2]
    return None


def rating(file_name: str) -> int | None:
    """The star rating in a review's file name (``<id>_<rating>.txt``, 1-10 in IMDB), or None."""
    match = re.fullmatch(r"\d+_(\d+)\.txt", posixpath.basename(file_name))
    return int(match.group(1)) if match else None


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


def _open_binary(path: str):
    try:
        return open(path, "rb")
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror}") from e


class _TailReader:
    """Read-only file wrapper that remembers the last 1024 bytes read and counts them all.

    ``limit`` caps the uncompressed bytes (a gzip bomb of zeros stops there, never in memory).

    tarfile treats a missing header as the end of the archive, so a tar cut at a block
    boundary would load silently with fewer reviews; a complete tar ends with two zero
    blocks, which is what ``complete`` checks once the stream is drained.
    """

    def __init__(self, raw, path: str, limit: int):
        self.raw, self.tail, self.path, self.limit, self.total = raw, b"", path, limit, 0

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            return b"".join(iter(lambda: self.read(1 << 20), b""))
        chunk = self.raw.read(size)
        self.total += len(chunk)
        if self.total > self.limit:
            raise DataError(f"{self.path}: more than {self.limit} bytes once uncompressed "
                            "(the cap on an archive's size); not an IMDB archive")
        self.tail = (self.tail + chunk)[-1024:]
        return chunk

    def complete(self) -> bool:
        while self.read(1 << 20):
            pass  # drain: also makes gzip/bz2/xz check their end marker and CRC
        return self.tail == bytes(1024)


def _decompressed(f):
    """``f`` wrapped in the decompressor its magic bytes call for (our module objects raise
    EOFError on a truncated stream, where tarfile's own stream reader stops quietly)."""
    magic = f.read(6)
    f.seek(0)
    if magic.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=f, mode="rb"), True
    if magic.startswith(b"BZh"):
        return bz2.BZ2File(f), True
    if magic.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMAFile(f), True
    return f, False


def _stream_members(path: str, visit: Callable[[tarfile.TarFile, tarfile.TarInfo], None],
                    not_tar: str) -> None:
    """One forward pass over a (compressed) tar: ``visit(tar, member)`` for each member.

    Unsafe members raise DataError; so do damaged or truncated archives, including a
    plain tar cut at a block boundary (``not_tar`` is the message when nothing is a tar).
    """
    with _open_binary(path) as f:
        raw, compressed = _decompressed(f)
        stream = _TailReader(raw, path, MAX_ARCHIVE_BYTES)
        try:
            tar = tarfile.open(fileobj=stream, mode="r|")  # stream mode: no seeking back
        except _ARCHIVE_ERRORS as e:
            problem = "corrupt or truncated archive" if compressed else not_tar
            raise DataError(f"{problem}: {path}") from e
        try:
            with tar:
                for member in tar:
                    _check_member(member, path)
                    visit(tar, member)
            complete = stream.complete()
        except _ARCHIVE_ERRORS as e:
            raise DataError(f"corrupt or truncated archive: {path}") from e
    if not complete:
        raise DataError(f"corrupt or truncated archive: {path}")


def _read_tar(path: str) -> dict[tuple[str, str, str], str]:
    reviews = {}

    def keep_review(tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        key = _review_key(member.name)
        if key is not None and member.isfile():
            reviews[key] = _decode(tar.extractfile(member).read(MAX_REVIEW_BYTES + 1))

    _stream_members(path, keep_review, not_tar="not an IMDB folder, tar archive or URL")
    return reviews


def _data_root(path: str) -> str:
    """``path`` itself if it holds train/ or test/, else its ``aclImdb/`` child if that does."""
    for root in (path, os.path.join(path, "aclImdb")):
        if any(os.path.isdir(os.path.join(root, split)) for split in SPLITS):
            return root
    return path


def _read_folder(path: str) -> dict[tuple[str, str, str], str]:
    root = _data_root(path)
    reviews = {}
    for split in SPLITS:
        for label in LABELS:
            folder = os.path.join(root, split, label)
            if not os.path.isdir(folder):
                continue
            try:
                with os.scandir(folder) as entries:
                    names = [e.name for e in entries if e.name.endswith(".txt") and e.is_file()]
                for name in names:
                    reviews[split, label, name] = _decode(_read_review_file(os.path.join(folder, name)))
            except OSError as e:
                raise DataError(f"cannot read {e.filename or folder}: {e.strerror}") from e
    return reviews


def _read_review_file(path: str) -> bytes:
    """A review file's bytes: a regular file (links resolve, as anywhere on disk) of at most
    MAX_REVIEW_BYTES, read with a cap so a file that grows meanwhile cannot blow memory."""
    with open(path, "rb") as fh:
        raw = fh.read(MAX_REVIEW_BYTES + 1)
    if len(raw) > MAX_REVIEW_BYTES:
        raise DataError(f"review file {path} is over the {MAX_REVIEW_BYTES}-byte cap")
    return raw


def _to_imdb(reviews: dict[tuple[str, str, str], str], where: str) -> Imdb:
    """Check every split/label is present, then sort into the deterministic order."""
    if not reviews:
        raise DataError(f"no IMDB reviews in {where}: expected {_LAYOUT}")
    present = {key[:2] for key in reviews}
    missing = [f"{split}/{label}" for split in SPLITS for label in LABELS if (split, label) not in present]
    if missing:
        raise DataError(f"incomplete IMDB data in {where}: no {', '.join(missing)} reviews")
    columns, files = [], []
    for split in SPLITS:
        keys = sorted(k for k in reviews if k[0] == split)  # (split, label, name): neg < pos
        columns.append([reviews[k] for k in keys])
        columns.append(np.array([LABELS.index(k[1]) for k in keys], dtype=np.int32))
        files.append(["/".join(k) for k in keys])
    return Imdb(*columns, *files)


# ---------------------------------------------------------------- archive safety

def _unsafe_reason(member: tarfile.TarInfo) -> str | None:
    """Why ``member`` is refused, or None. Nothing is extracted, but one policy for every
    reader: links are never followed (a link member is an error), nor are odd paths or devices."""
    name = member.name
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return "is an absolute path"
    if ".." in name.split("/"):
        return "has a '..' component"
    if member.issym() or member.islnk():
        kind = "symlink" if member.issym() else "hardlink"
        return f"is a {kind} to {member.linkname!r} (links in an archive are never followed)"
    if member.ischr() or member.isblk() or member.isfifo():
        return "is a device or FIFO"
    if _review_key(name) is not None and member.size > MAX_REVIEW_BYTES:
        return f"is a review of {member.size} bytes, over the {MAX_REVIEW_BYTES}-byte cap"
    return None


def _check_member(member: tarfile.TarInfo, archive: str) -> None:
    reason = _unsafe_reason(member)
    if reason:
        raise DataError(f"unsafe member in {archive}: {member.name!r} {reason}")


# ---------------------------------------------------------------- download

def download(url: str, *, cache_dir: str | os.PathLike | None = None, fetch: Fetch | None = None,
             progress: Progress | bool | None = None, sha256: str | None = None) -> str:
    """Download ``url`` once into the cache and return the cached file's path.

    The expected sha256 is ``sha256``, else a ``#sha256=HEX`` URL fragment, else the known
    value for the official URL; with none, any content is accepted. The body goes to a
    temp file in the cache folder and is renamed only once verified. ``fetch(url, dest)``
    replaces urllib (tests use it); ``progress`` is a ``(done, total)`` callback, or
    None/True for a report on stderr, or False for silence.
    """
    url, expected = _split_checksum(url, sha256)
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in ("http", "https", "file"):
        raise DataError(f"not an IMDB folder, tar archive or URL: {url}")
    cache = _cache_dir(cache_dir)
    target = os.path.join(cache, _cache_name(url))
    try:
        if os.path.isfile(target):
            if expected is None or sha256_file(target) == expected:
                return target
            os.unlink(target)  # damaged, or the expected checksum changed: fetch again
    except OSError as e:
        raise DataError(f"cannot use cached file {target}: {e.strerror}") from e
    if fetch is None:
        if progress is None or progress is True:
            progress = _stderr_progress(url)
        report = progress or None
        fetch = lambda u, d: _urllib_fetch(u, d, report)  # noqa: E731
    _fetch_verified(url, target, expected, fetch)
    return target


def _split_checksum(url: str, sha256: str | None) -> tuple[str, str | None]:
    """(url without fragment, expected lowercase sha256 or None)."""
    base, _, fragment = url.partition("#")
    from_url = fragment[len("sha256="):] if fragment.startswith("sha256=") else None
    if sha256 and from_url and sha256.lower() != from_url.lower():
        raise DataError(f"conflicting sha256 for {base}: {sha256} given, {from_url} in the URL")
    expected = sha256 or from_url or _KNOWN_SHA256.get(base)
    if expected is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", expected):
        raise DataError(f"invalid sha256 for {base}: {expected!r}")
    return base, expected and expected.lower()


def _cache_dir(cache_dir: str | os.PathLike | None) -> str:
    path = os.path.expanduser(os.fspath(cache_dir) if cache_dir else
                              os.environ.get(ENV_CACHE) or DEFAULT_CACHE)
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create cache folder {path}: {e.strerror}") from e
    return path


def _cache_name(url: str) -> str:
    """``<url hash>-<file name>``: readable, and two URLs never share a cache file."""
    name = posixpath.basename(urllib.parse.urlsplit(url).path)
    name = re.sub(r"[^A-Za-z0-9._-]", "_", name) or "download"
    return f"{hashlib.sha256(url.encode('utf-8')).hexdigest()[:12]}-{name}"


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def _fetch_verified(url: str, target: str, expected: str | None, fetch: Fetch) -> None:
    cache = os.path.dirname(target)
    try:
        fd, tmp = tempfile.mkstemp(prefix=os.path.basename(target) + ".", suffix=".part", dir=cache)
    except OSError as e:
        raise DataError(f"cannot write to cache folder {cache}: {e.strerror}") from e
    os.close(fd)
    try:
        try:
            fetch(url, tmp)
            got = sha256_file(tmp)
        except DataError:
            raise
        except Exception as e:  # any fetch failure, whatever the injected fetch raises
            raise DataError(f"download failed for {url}: {_one_line(e)} "
                            f"(offline? pass --data PATH to a local copy, or set {ENV_DATA})") from e
        if expected is not None and got != expected:
            raise DataError(f"checksum mismatch for {url}: expected sha256 {expected}, got {got}")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _urllib_fetch(url: str, dest: str, progress: Progress | None) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": "reviewkit"})
    with urllib.request.urlopen(request, timeout=60) as response, open(dest, "wb") as out:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        done = 0
        if progress:
            progress(done, total)
        while chunk := response.read(1 << 20):
            out.write(chunk)
            done += len(chunk)
            if progress:
                progress(done, total)


def _stderr_progress(url: str) -> Progress:
    """One stderr line per 10 % (or per 8 MiB when the size is unknown)."""
    last = [-1]

    def report(done: int, total: int | None) -> None:
        step = done * 10 // total if total else done >> 23
        if step == last[0]:
            return
        last[0] = step
        size = f"{done / 1e6:.1f} of {total / 1e6:.1f} MB" if total else f"{done / 1e6:.1f} MB"
        print(f"downloading {url}: {size}", file=sys.stderr, flush=True)
    return report
