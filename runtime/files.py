"""Small file helpers shared by every stage: atomic outputs and hashing.

Outputs are written under a temp name beside their target and renamed onto it only when
complete, so a reader (or a re-run after a crash) never sees half a file.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def temp_output(path: str | os.PathLike, directory: bool = False) -> Iterator[str]:
    """A temp file beside ``path``, renamed onto it on success and removed on failure.

    ``directory``: a temp directory beside ``path`` instead, removed in any case; the caller
    moves its result out of it onto ``path`` (same filesystem: an atomic rename)."""
    path = os.fspath(path)
    parent, base = os.path.dirname(path) or ".", os.path.basename(path)
    if directory:
        tmp = tempfile.mkdtemp(prefix=f".{base}.", suffix=".tmp", dir=parent)
    else:
        fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=".tmp", dir=parent)
        os.close(fd)
    try:
        yield tmp
        if not directory:
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give what open() would
            os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise
    if directory:
        _remove(tmp)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with temp_output(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def sha256_file(path: str | os.PathLike) -> str:
    with open(path, "rb") as f:
        return sha256_stream(f)


def sha256_stream(f) -> str:
    """sha256 hex digest of what is left to read in the binary file object ``f``."""
    h = hashlib.sha256()
    for chunk in iter(lambda: f.read(1 << 20), b""):
        h.update(chunk)
    return h.hexdigest()


def _remove(path: str) -> None:
    try:
        if stat.S_ISDIR(os.lstat(path).st_mode):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.unlink(path)
    except FileNotFoundError:
        pass


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class UnsafeFile(ValueError):
    """A file that must be a small regular file is not (a FIFO, a device, a directory, too large)."""


_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def read_regular_file(path: str | os.PathLike, cap: int) -> bytes:
    """The bytes of ``path`` (symlinks followed) if it is a regular file of at most ``cap`` bytes.

    Never blocks and never reads more than ``cap + 1`` bytes: the file is opened non-blocking
    (a FIFO without a writer opens at once) and its kind checked on the open descriptor before
    reading. Raises ``OSError`` (missing, unreadable) or ``UnsafeFile`` (message without the path).
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = next((name for test, name in _KINDS if test(mode)), "a special file")
            raise UnsafeFile(f"is {kind}, not a regular file")
        if os.fstat(fd).st_size > cap:
            raise UnsafeFile(f"is larger than {_size_text(cap)}")
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read(cap + 1)  # the file may have grown since fstat
        if len(data) > cap:
            raise UnsafeFile(f"is larger than {_size_text(cap)}")
        return data
    finally:
        os.close(fd)


def _size_text(n: int) -> str:
    return f"{n >> 20} MiB" if n >= 1 << 20 and n % (1 << 20) == 0 else f"{n} bytes"
