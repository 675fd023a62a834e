"""The project's one error family, and the one wrapper every command-line tool runs under.

Every library error is a subclass of ``UserError`` (bad input, options, data or bundle: the
user can fix it; exit 2) or ``Failure`` (the model, a conversion, a check or a worker failed;
exit 1). ``run_cli`` turns them into one ``Error: ...`` line on stderr, so the same mistake
gives the same line and exit code in ``trainer``, ``export``, ``runtime.predict``,
``runtime.batch`` and ``benchmarks``. A bug in our own code keeps its traceback.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from contextlib import contextmanager
from typing import Callable, Iterator, Sequence

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED, EXIT_BROKEN_PIPE, EXIT_TERMINATED = 130, 141, 143
DISTRIBUTION = "imdb-reviewkit"  # the name to pip install; used in every "missing extra" hint


class ReviewkitError(Exception):
    """Base of every error this project raises on purpose."""

    exit_code = EXIT_FAILED


class UserError(ReviewkitError):
    """Bad input, options, data or bundle: the message says what to change. Exit 2."""

    exit_code = EXIT_USAGE


class Failure(ReviewkitError):
    """A model, conversion, verification or worker failed on valid input. Exit 1."""

    exit_code = EXIT_FAILED


class MissingExtra(UserError):
    """An optional dependency group is not installed."""

    def __init__(self, extra: str, module: str):
        super().__init__(f"this needs the [{extra}] extra (no module named {module!r}): "
                         f"pip install '{DISTRIBUTION}[{extra}]'")
        self.extra, self.module = extra, module


def require(module: str, extra: str):
    """Import ``module`` or raise ``MissingExtra`` naming the extra that provides it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name is not None and module.split(".")[0] != e.name.split(".")[0]:
            raise  # the module is there but one of its own imports is broken: a real bug
        raise MissingExtra(extra, module) from None


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose usage mistake is one line, ``PROG: error: MESSAGE`` (exit 2), not the whole
    usage first: the one useful line stays in sight. ``--help`` still shows everything."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that cleanup runs as for Ctrl-C."""


TERM_GRACE_SECONDS = 10.0  # cleanup after SIGTERM that takes longer ends the process anyway


def _on_sigterm(signum, frame):
    start_term_watchdog()
    raise Terminated()


def start_term_watchdog() -> None:
    """After SIGTERM: end the process in ``TERM_GRACE_SECONDS`` whatever the cleanup does (an
    exception raised at an arbitrary point can leave a lock held and the cleanup waiting
    forever). Outputs are unnamed until complete, so a hard exit leaves no file."""
    watchdog = threading.Timer(TERM_GRACE_SECONDS, _hard_exit)
    watchdog.daemon = True
    watchdog.start()


def _hard_exit() -> None:
    try:
        os.write(2, b"terminated\n")
    finally:
        os._exit(EXIT_TERMINATED)


def one_line(e: BaseException | str, limit: int = 0) -> str:
    """An exception (or text) as one short line: its first non-blank line, else its type's name;
    cut to ``limit`` characters if given. For messages we did not write (a library's multi-line
    error, a JVM stack trace)."""
    line = next((line.strip() for line in str(e).splitlines() if line.strip()), type(e).__name__)
    return line if not limit or len(line) <= limit else line[:limit - 3] + "..."


def check_int(name: str, value, minimum: int = 1, error: type[Exception] = UserError) -> int:
    """``value`` if it is an int (not a bool) of at least ``minimum``; else ``error`` saying so.

    The one message for every count option and parameter: ``--workers must be at least 1, got 0``.
    """
    import numbers

    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise error(f"{name} must be at least {minimum}, got {value!r}")
    return int(value)


def error_line(e: BaseException) -> str:
    """The one line shown for an expected error (an ``OSError`` names its file)."""
    if isinstance(e, OSError) and not isinstance(e, ReviewkitError):
        name = f"{e.filename}: " if e.filename else ""
        return f"Error: {name}{e.strerror or e}"
    return f"Error: {e}"


class _ClosedStream:
    """Stands for stdin or stdout when it was closed before we started (``0<&-``, ``1>&-``):
    using it is the user's mistake, told in one line, not an AttributeError on ``None``."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attribute: str):
        raise UserError(f"{self._name} is closed")


@contextmanager
def _closed_stdio() -> Iterator[None]:
    """A closed fd 0 or 1 gets /dev/null, so that no file we open later takes its number (and
    our output never lands in it); the stream stands in as ``_ClosedStream`` while we run."""
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
    """Run ``main(argv)`` and map what it raises to one stderr line and an exit code.

    ``cleanup`` runs before the message (e.g. to clear a progress line).
    """
    with _closed_stdio():
        return _run_cli(main, argv, cleanup)


def _run_cli(main, argv, cleanup) -> int:
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        try:
            signal.signal(signal.SIGTERM, _on_sigterm)
        except ValueError:  # not the main thread (tests calling main() from a thread)
            pass
    try:
        code = main(argv)
        return EXIT_OK if code is None else code
    except SystemExit as e:  # argparse's --help (0) or usage error (2)
        return e.code if isinstance(e.code, int) else EXIT_USAGE
    except BrokenPipeError:  # `... | head`: stop quietly, as other filters do
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit flush
        except OSError:
            pass
        return EXIT_BROKEN_PIPE
    except (ReviewkitError, OSError) as e:
        _cleanup(cleanup)
        print(error_line(e), file=sys.stderr)
        return e.exit_code if isinstance(e, ReviewkitError) else EXIT_USAGE
    except KeyboardInterrupt:
        _cleanup(cleanup)
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Terminated:
        _cleanup(cleanup)
        print("terminated", file=sys.stderr)
        return EXIT_TERMINATED


def _cleanup(cleanup: Callable[[], None] | None) -> None:
    if cleanup is not None:
        try:
            cleanup()
        except Exception:  # never hide the real error behind a cleanup problem
            pass
