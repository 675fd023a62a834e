"""Keep native libraries' chatter out of our stderr unless the user asked for it (``--verbose``).

onnxruntime's CPU-detection library prints ``Error in cpuinfo: ...`` lines on minimal kernels
and under emulation, and LiteRT prints ``INFO: Created TensorFlow Lite XNNPACK delegate for
CPU.``: both write to file descriptor 2 from C, so Python's ``sys.stderr`` cannot filter them.
While a ``native_output()`` block runs, fd 2 points at a temp file whose text is then dropped;
when verbose, nothing is captured and the lines appear as they are written. Errors still reach
the caller as Python exceptions (``BackendError``), which is what our CLIs report.

    with native_output():
        import onnxruntime

Verbosity is process-wide and inherited by worker processes through ``REVIEWKIT_VERBOSE``.
fd 2 is process-wide too: whatever other threads write to stderr during a capture is dropped
as well, so captures wrap model loading only, never scoring.
"""
from __future__ import annotations

import os
import sys
import tempfile
import threading
from contextlib import contextmanager
from typing import Iterator

VERBOSE_ENV = "REVIEWKIT_VERBOSE"
# fd 2 is one per process: two threads swapping it at once could leave it pointing at a
# temp file, so captures take turns (re-entrant: a capture may nest in another).
_LOCK = threading.RLock()


def set_verbose(verbose: bool) -> None:
    """Show (True) or hide (False) native libraries' stderr output, here and in child processes."""
    if verbose:
        os.environ[VERBOSE_ENV] = "1"
    else:
        os.environ.pop(VERBOSE_ENV, None)


def is_verbose() -> bool:
    return os.environ.get(VERBOSE_ENV, "") not in ("", "0")


@contextmanager
def native_output() -> Iterator[None]:
    """Drop what native code writes to fd 2 inside the block, unless verbose."""
    if is_verbose():
        yield
        return
    with _LOCK, tempfile.TemporaryFile() as sink:
        _flush_stderr()  # Python's own buffered text belongs before the capture
        saved = os.dup(2)
        try:
            os.dup2(sink.fileno(), 2)
            yield
        finally:
            _flush_stderr()
            os.dup2(saved, 2)
            os.close(saved)


def _flush_stderr() -> None:
    try:
        sys.stderr.flush()
    except (AttributeError, ValueError, OSError):  # None, closed or broken: nothing to keep apart
        pass
