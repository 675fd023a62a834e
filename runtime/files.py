"""File helpers shared by every stage: atomic outputs, hashing, inputs that must not change while
read, small regular files, fd redirection.

An output appears under its name only when complete (docs/cli.md): on Linux it is written unnamed
(``O_TMPFILE``) and linked into place at the end, elsewhere under ``.NAME.PID.XXXX.tmp`` beside it.
"""
from __future__ import annotations

import errno
import hashlib
import os
import re
import secrets
import shutil
import stat
import sys
from contextlib import contextmanager, suppress
from typing import Callable, Iterator

from .errors import UserError

# errnos that mean "the output could not be written", whatever the writer (Python, pyarrow).
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
_PROC_FD = "/proc/self/fd"
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


class OutputError(UserError, OSError):
    """OUTPUT cannot be written; an ``OSError`` too (``errno``, ``strerror``, ``filename`` = OUTPUT)."""

    def __str__(self) -> str:
        return f"{self.filename}: {self.strerror}"


@contextmanager
def temp_output(path: str | os.PathLike, directory: bool = False) -> Iterator[str]:
    """A name to write ``path`` under, ``path`` on success and gone on failure; a write error in the block
    (or chained to it, as pyarrow's "closed file" is to its ``ENOSPC``) becomes ``OutputError``."""
    path = os.fspath(path)
    parent, base = os.path.dirname(path) or ".", os.path.basename(path)
    remove_stale(parent, base)
    if directory:  # a temp directory beside path, removed in any case: the caller moves its result onto path
        tmp = _new_name(parent, base, lambda tmp: os.mkdir(tmp, 0o700))
        try:
            yield tmp
        except Exception as e:
            _raise_output_error(e, path, tmp)
            raise
        finally:
            _remove(tmp)
        return
    out = None
    try:
        out = _TempFile(path)
        yield out.name
        out.commit()
    except Exception as e:
        _raise_output_error(e, path, parent, *([out.name] if out is not None else []))
        raise
    finally:
        if out is not None:
            out.close()


def _raise_output_error(error: Exception, path: str, *names: str) -> None:
    """``OutputError`` if ``error`` is or was caused by a write error on ``path``, ``names`` or no file."""
    seen, e = set(), None if isinstance(error, OutputError) else error
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in WRITE_ERRNOS and e.filename in (None, path, *names):
            raise OutputError(e.errno, os.strerror(e.errno), path) from None
        e = e.__cause__ or e.__context__


def _new_name(parent: str, base: str, create: Callable[[str], object]) -> str:
    """A ``.BASE.PID.XXXX.tmp`` name in ``parent`` that ``create`` made (it raises if the name exists)."""
    while True:
        tmp = os.path.join(parent, f".{base}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        with suppress(FileExistsError):
            create(tmp)
            return tmp


def remove_stale(parent: str, base: str) -> None:
    """Remove temp names of ``parent/base`` left by processes now gone."""
    pattern = re.compile(re.escape(f".{base}.") + r"(\d+)\.[A-Za-z0-9_]+\.tmp")
    try:
        names = os.listdir(parent)
    except OSError:
        return  # the caller's own open reports it
    for name in names:
        match = pattern.fullmatch(name)
        if match and not _alive(int(match.group(1))):
            _remove(os.path.join(parent, name))


def _alive(pid: int) -> bool:
    if pid == os.getpid() or os.name == "nt":  # Windows: os.kill(pid, 0) would end the process
        return True  # ours (a temp_output still open in this process), or cannot tell
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        pass
    return True


class _TempFile:
    """The file being written: unnamed (``O_TMPFILE``) where possible, else a temp name."""

    def __init__(self, path: str):
        self.path, self.parent, self.base = path, os.path.dirname(path) or ".", os.path.basename(path)
        self.fd = _open_unnamed(self.parent)
        if self.fd is not None:
            self.name = f"{_PROC_FD}/{self.fd}"
        else:  # with the mode open() would give
            self.name = _new_name(self.parent, self.base, lambda tmp: os.close(os.open(tmp, _NEW_FILE, 0o666)))

    def commit(self) -> None:
        if self.fd is not None:  # linkat cannot replace: the file is linked under a temp name, renamed below
            proc = os.open(_PROC_FD, os.O_RDONLY | os.O_DIRECTORY)
            try:  # linkat(AT_SYMLINK_FOLLOW) of /proc/self/fd/N names the unnamed file
                name = _new_name(self.parent, self.base,
                                 lambda tmp: os.link(str(self.fd), tmp, src_dir_fd=proc, follow_symlinks=True))
            finally:
                os.close(proc)
            self.close()
            self.name = name
        os.replace(self.name, self.path)

    def close(self) -> None:
        if self.fd is None:
            _remove(self.name)  # a temp name not renamed onto the output (after commit: none)
        else:
            os.close(self.fd)  # an unnamed file not linked by now is freed here
            self.fd = None


def _open_unnamed(parent: str) -> int | None:
    """An ``O_TMPFILE`` descriptor in ``parent``, or None where the OS or filesystem has none."""
    flag = getattr(os, "O_TMPFILE", None)
    if flag is None or not os.path.isdir(_PROC_FD):
        return None
    try:
        return os.open(parent, flag | os.O_WRONLY | os.O_CLOEXEC, 0o666)  # umask applies
    except OSError as e:
        if e.errno in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
            return None  # the filesystem (or an old kernel) does not support it
        raise


def _remove(path: str) -> None:
    with suppress(FileNotFoundError):
        if stat.S_ISDIR(os.lstat(path).st_mode):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.unlink(path)


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


@contextmanager
def redirected(target: int, fds: tuple[int, ...] = (2,)) -> Iterator[None]:
    """``fds`` point at ``target`` inside the block (native code, C++ or the JVM, writes to fd 2 directly)."""
    saved = [os.dup(fd) for fd in fds]
    try:
        _flush(fds)
        for fd in fds:
            os.dup2(target, fd)
        yield
    finally:
        _flush(fds)
        for fd, copy in zip(fds, saved):
            os.dup2(copy, fd)
            os.close(copy)


def _flush(fds: tuple[int, ...]) -> None:
    for fd, stream in ((1, sys.stdout), (2, sys.stderr)):
        if fd in fds:
            with suppress(Exception):  # None, closed (errors._ClosedStream) or broken: nothing to keep apart
                stream.flush()


# -- an input that must not change while it is read ------------------------------------------
class ChangedWhileRead(UserError):
    """An input file was replaced, truncated or written to while read: a wrong row count is worse than an error."""

    def __init__(self, name: str):
        super().__init__(f"{name}: changed while being read")
        self.name = name

    def __reduce__(self):  # raised in a worker, re-raised in the parent as it was
        return ChangedWhileRead, (self.name,)


def file_state(f) -> tuple[int, int, int, int]:
    """What "the same file, unchanged" means for an open file: device, inode, size, mtime."""
    st = os.fstat(f.fileno())
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def check_unchanged(f, state: tuple, name: str, position: int | None = None, path: str | None = None) -> None:
    """``ChangedWhileRead`` unless ``f`` is the file of ``state``, read up to ``position`` and still at ``path``."""
    if file_state(f) != state or (position is not None and f.tell() != position):
        raise ChangedWhileRead(name)
    if path is not None:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise ChangedWhileRead(name) from None
        if (st.st_dev, st.st_ino) != state[:2]:
            raise ChangedWhileRead(name)


@contextmanager
def unchanged(f, state: tuple, name: str, path: str | None = None, end: int | None = None) -> Iterator[None]:
    """``check_unchanged`` at the end of the block, and when it fails: then the change is the cause, not the data."""
    try:
        yield
    except (UserError, OSError):
        check_unchanged(f, state, name, path=path)
        raise
    check_unchanged(f, state, name, end, path)


def open_unchanged(path: str, name: str):
    """``path`` opened for reading; gone since its state was taken: ``ChangedWhileRead``."""
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise ChangedWhileRead(name) from None


def read_span(path: str, state: tuple, offset: int, length: int, name: str) -> bytes:
    """``length`` bytes at ``offset`` of ``path``, still the file of ``state`` after the read."""
    with open_unchanged(path, name) as f:
        f.seek(offset)
        data = f.read(length)
        check_unchanged(f, state, name, offset + length)
    return data


# -- small regular files ----------------------------------------------------------------------------
class UnsafeFile(ValueError):
    """A file that must be a small regular file is not (a FIFO, a device, a directory, too large)."""


_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def read_regular_file(path: str | os.PathLike, cap: int) -> bytes:
    """``path`` if a regular file of at most ``cap`` bytes, else ``UnsafeFile`` (message without the path)."""
    size = f"{cap >> 20} MiB" if cap >= 1 << 20 and cap % (1 << 20) == 0 else f"{cap} bytes"
    # Non-blocking (a FIFO without a writer opens at once), checked on the descriptor, cap + 1 bytes at most.
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = next((name for test, name in _KINDS if test(st.st_mode)), "a special file")
            raise UnsafeFile(f"is {kind}, not a regular file")
        if st.st_size > cap:
            raise UnsafeFile(f"is larger than {size}")
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read(cap + 1)  # the file may have grown since fstat
    finally:
        os.close(fd)
    if len(data) > cap:
        raise UnsafeFile(f"is larger than {size}")
    return data
