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
    h = hashlib.sha256()
    with open(path, "rb") as f:
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
