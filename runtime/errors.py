"""The project's one error family, and ``run_cli``, the wrapper every command-line tool runs under:
``UserError`` exits 2, ``Failure`` 1, either as one ``Error: ...`` line, the same in every tool.
A bug in our own code keeps its traceback.
"""
from __future__ import annotations

import argparse
import importlib
import numbers
import os
import signal
import sys
import threading
from contextlib import contextmanager, suppress
from typing import Callable, Iterator, Sequence

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED, EXIT_BROKEN_PIPE, EXIT_TERMINATED = 130, 141, 143
DISTRIBUTION = "imdb-reviewkit"  # the name to pip install; used in every "missing extra" hint
TERM_GRACE_SECONDS = 10.0  # cleanup after SIGTERM that takes longer ends the process anyway


class ReviewkitError(Exception):
    """Base of every error this project raises on purpose."""

    exit_code = EXIT_FAILED


class UserError(ReviewkitError):
    """Bad input, options, data or bundle: the message says what to change. Exit 2."""

    exit_code = EXIT_USAGE


class Failure(ReviewkitError):
    """A model, conversion, verification or worker failed on valid input. Exit 1."""


class MissingExtra(UserError):
    def __init__(self, extra: str, module: str):
        super().__init__(f"this needs the [{extra}] extra (no module named {module!r}): "
                         f"pip install '{DISTRIBUTION}[{extra}]'")


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that cleanup runs as for Ctrl-C."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose usage mistake is the one line ``PROG: error: MESSAGE`` (exit 2), not the usage first."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def require(module: str, extra: str):
    """Import ``module`` or raise ``MissingExtra`` naming the extra that provides it."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name is not None and module.split(".")[0] != e.name.split(".")[0]:
            raise  # the module is there but one of its own imports is broken: a real bug
        raise MissingExtra(extra, module) from None


def one_line(e: BaseException | str, limit: int = 0) -> str:
    """A message we did not write (a library's, a JVM trace) as one line, cut to ``limit`` characters if given."""
    line = next((line.strip() for line in str(e).splitlines() if line.strip()), type(e).__name__)
    return line if not limit or len(line) <= limit else line[:limit - 3] + "..."


def check_int(name: str, value, minimum: int = 1, error: type[Exception] = UserError) -> int:
    """``value`` if it is an int (not a bool) >= ``minimum``, else ``--workers must be at least 1, got 0``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise error(f"{name} must be at least {minimum}, got {value!r}")
    return int(value)


def start_term_watchdog() -> None:
    """After SIGTERM, end the process in ``TERM_GRACE_SECONDS`` even if cleanup waits on a lock left held."""
    watchdog = threading.Timer(TERM_GRACE_SECONDS, _hard_exit)
    watchdog.daemon = True
    watchdog.start()


def _hard_exit() -> None:
    try:
        os.write(2, b"terminated\n")
    finally:
        os._exit(EXIT_TERMINATED)


def _on_sigterm(signum, frame):
    start_term_watchdog()
    raise Terminated()


class _ClosedStream:
    """stdin or stdout closed before we started (``0<&-``): using it is one error line, not an AttributeError."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attribute: str):
        raise UserError(f"{self._name} is closed")


@contextmanager
def _closed_stdio() -> Iterator[None]:
    """A closed fd 0 or 1 gets /dev/null while we run, so that no file we open takes its number."""
    closed = [(fd, name) for fd, name in ((0, "stdin"), (1, "stdout")) if getattr(sys, name) is None]
    for fd, name in closed:
        null = os.open(os.devnull, os.O_RDWR)
        if null != fd:
            os.dup2(null, fd)
            os.close(null)
        setattr(sys, name, _ClosedStream(name))
    try:
        yield
    finally:
        for _, name in closed:
            setattr(sys, name, None)  # as Python had it, for its own flush at exit


def run_cli(main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None,
            cleanup: Callable[[], None] | None = None) -> int:
    """Run ``main(argv)``; what it raises becomes one stderr line and an exit code (``cleanup`` runs first)."""
    main_thread = threading.current_thread() is threading.main_thread()  # signals reach it only
    if main_thread and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _on_sigterm)
    with _closed_stdio():
        try:
            return main(argv) or EXIT_OK
        except SystemExit as e:  # argparse's --help (0) or usage error (2)
            return e.code if isinstance(e.code, int) else EXIT_USAGE
        except BrokenPipeError:  # `... | head`: stop quietly, as other filters do
            with suppress(OSError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit flush
            return EXIT_BROKEN_PIPE
        except (ReviewkitError, OSError, KeyboardInterrupt, Terminated) as e:
            if cleanup is not None:
                with suppress(Exception):  # never hide the real error behind a cleanup problem
                    cleanup()
            line, code = _outcome(e)
            print(line, file=sys.stderr)
            return code


def _outcome(e: BaseException) -> tuple[str, int]:
    """The stderr line and exit code of an expected error (an ``OSError`` names its file)."""
    if isinstance(e, KeyboardInterrupt):
        return "interrupted", EXIT_INTERRUPTED
    if isinstance(e, Terminated):
        return "terminated", EXIT_TERMINATED
    if isinstance(e, ReviewkitError):
        return f"Error: {e}", e.exit_code
    name = f"{e.filename}: " if e.filename else ""
    return f"Error: {name}{e.strerror or e}", EXIT_USAGE
