"""Small file helpers shared by every stage: atomic outputs and hashing.

An output appears under its name only when complete, so a reader (or a re-run after a crash)
never sees half a file, and a failed run leaves an existing output as it was:

- On Linux the file is written unnamed (``O_TMPFILE``) in the output's directory and given its
  name at the end (``linkat`` to a temp name, then ``rename`` onto the output): a process
  killed even by SIGKILL leaves nothing behind.
- Elsewhere (or where the filesystem has no ``O_TMPFILE``) it is written under a temp name
  beside the output, ``.NAME.PID.XXXX.tmp``; a later run writing the same output removes such
  names whose process is gone.

A write error (full disk, quota, file too large) becomes one ``OutputError`` naming the output:
``OUTPUT: No space left on device``.
"""
from __future__ import annotations

import errno
import hashlib
import os
import re
import secrets
import shutil
import stat
import tempfile
from contextlib import contextmanager
from typing import Iterator

from .errors import UserError

# errnos that mean "the output could not be written", whatever the writer (Python, pyarrow).
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
_PROC_FD = "/proc/self/fd"


class OutputError(UserError, OSError):
    """OUTPUT cannot be written (full disk, quota, ...). Also an ``OSError`` with ``errno``,
    ``strerror`` and ``filename`` = OUTPUT, so that handlers of ``OSError`` show it as well."""

    def __str__(self) -> str:
        return f"{self.filename}: {self.strerror}"


@contextmanager
def temp_output(path: str | os.PathLike, directory: bool = False) -> Iterator[str]:
    """A temp file for ``path``, which becomes ``path`` on success and vanishes on failure.

    Yields a name to open (and reopen) for writing in this process; on Linux it is
    ``/proc/self/fd/N`` of an unnamed file. Write errors raised in the block (or chained to
    what it raises, as pyarrow's "closed file" is to the ``ENOSPC`` before it) come out as
    ``OutputError`` naming ``path``.

    ``directory``: a temp directory beside ``path`` instead, removed in any case; the caller
    moves its result out of it onto ``path`` (same filesystem: an atomic rename)."""
    path = os.fspath(path)
    parent, base = os.path.dirname(path) or ".", os.path.basename(path)
    remove_stale(parent, base)
    if directory:
        tmp = tempfile.mkdtemp(prefix=_prefix(base), suffix=".tmp", dir=parent)
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
    except BaseException as e:
        if out is not None:
            out.abort()
        if isinstance(e, Exception):
            _raise_output_error(e, path, parent, *([out.name] if out is not None else []))
        raise
    finally:
        if out is not None:
            out.close()


def write_error(error: BaseException, *names: str) -> OSError | None:
    """The write error (``WRITE_ERRNOS``) that ``error`` is or was caused by, if any.

    Only errors on none of the files or one of ``names``: an input that cannot be read is
    not an output problem. Follows ``__cause__``/``__context__`` (``raise ... from None``
    keeps the context)."""
    seen = set()
    e: BaseException | None = error
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in WRITE_ERRNOS and (e.filename is None or e.filename in names):
            return e
        e = e.__cause__ or e.__context__
    return None


def _raise_output_error(error: Exception, path: str, *names: str) -> None:
    """Raise ``OutputError`` naming ``path`` if ``error`` comes from a write error."""
    found = None if isinstance(error, OutputError) else write_error(error, path, *names)
    if found is not None:
        raise OutputError(found.errno, os.strerror(found.errno), path) from None


def _prefix(base: str) -> str:
    return f".{base}.{os.getpid()}."


def remove_stale(parent: str, base: str) -> None:
    """Remove temp names of ``parent/base`` (``.BASE.PID.XXXX.tmp``) left by processes now gone."""
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
    except OSError:  # PermissionError: someone else's live process
        return True
    return True


class _TempFile:
    """The file being written: unnamed (``O_TMPFILE``) where possible, else a temp name."""

    def __init__(self, path: str):
        self.path = path
        self.parent = os.path.dirname(path) or "."
        self.base = os.path.basename(path)
        self.fd = _open_unnamed(self.parent)
        if self.fd is not None:
            self.name = f"{_PROC_FD}/{self.fd}"
        else:
            fd, self.name = tempfile.mkstemp(prefix=_prefix(self.base), suffix=".tmp", dir=self.parent)
            os.close(fd)

    def commit(self) -> None:
        if self.fd is None:
            os.chmod(self.name, 0o666 & ~_umask())  # mkstemp makes 0600; give what open() would
            os.replace(self.name, self.path)
            return
        # linkat cannot replace: link under a temp name, then rename that onto the output.
        tmp = self._link()
        try:
            os.replace(tmp, self.path)
        except BaseException:
            _remove(tmp)
            raise

    def _link(self) -> str:
        proc = os.open(_PROC_FD, os.O_RDONLY | os.O_DIRECTORY)
        try:
            while True:
                tmp = os.path.join(self.parent, f"{_prefix(self.base)}{secrets.token_hex(4)}.tmp")
                try:  # linkat(AT_SYMLINK_FOLLOW) of /proc/self/fd/N: names the unnamed file
                    os.link(str(self.fd), tmp, src_dir_fd=proc, follow_symlinks=True)
                    return tmp
                except FileExistsError:
                    continue
        finally:
            os.close(proc)

    def abort(self) -> None:
        if self.fd is None:
            _remove(self.name)

    def close(self) -> None:
        if self.fd is not None:
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


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with temp_output(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


@contextmanager
def redirected(target: int, fds: tuple[int, ...] = (2,)) -> Iterator[None]:
    """Point the process-wide descriptors ``fds`` at the open descriptor ``target`` inside the
    block, and back afterwards. Native code (C++, the JVM) writes to fd 2 directly, so this is
    the only way to keep its lines out of our stderr; Python's buffers of those fds are flushed
    first and last, so that its own text lands where it was written."""
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
    import sys

    for stream in (sys.stdout if 1 in fds else None, sys.stderr if 2 in fds else None):
        try:
            stream.flush()
        except Exception:  # None, closed (errors._ClosedStream) or broken: nothing to keep apart
            pass


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


# -- an input that must not change while it is read ------------------------------------------
class ChangedWhileRead(UserError):
    """An input file was replaced, truncated or written to while a job read it: its rows would
    be a mix of two files (or invented), and a wrong number is worse than an error."""

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
    """``ChangedWhileRead`` unless ``f`` is still the file of ``state``; given a position, unless
    the reader got exactly that far (a short read: the file was cut); given a path, unless that
    name still leads to this file (not replaced by a rename)."""
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
def reading(f, state: tuple, name: str, path: str | None = None) -> Iterator[None]:
    """An error raised while ``f`` is read (a parse error, a short read) is ``ChangedWhileRead``
    when the file is no longer the one of ``state``: the change is the cause, not the data."""
    try:
        yield
    except (UserError, OSError):
        check_unchanged(f, state, name, path=path)
        raise


def open_unchanged(path: str, name: str):
    """``path`` opened for reading; gone since its state was taken: ``ChangedWhileRead``."""
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise ChangedWhileRead(name) from None


def read_span(path: str, state: tuple, offset: int, length: int, name: str) -> bytes:
    """``length`` bytes at ``offset`` of ``path``, which must still be the file of ``state``
    (checked after the read, so a change during it is seen too)."""
    with open_unchanged(path, name) as f:
        f.seek(offset)
        data = f.read(length)
        check_unchanged(f, state, name, offset + length)
    return data


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
