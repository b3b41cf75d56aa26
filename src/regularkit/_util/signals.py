"""Ctrl-C and SIGTERM: one exception type each, raised once, where the process is.

A study marks its running run failed and keeps every finished one when it is
interrupted.  While :func:`interrupts_raise` is active, the first SIGINT raises
``KeyboardInterrupt`` and the first SIGTERM raises :class:`Terminated` (a
``KeyboardInterrupt`` too), so a ``kill``, a container stop or a batch scheduler's
timeout end as cleanly as Ctrl-C, with exit code 143 (128 + 15) instead of 130.

After the first signal, further SIGINT / SIGTERM are ignored until the block
ends: a user who presses Ctrl-C twice gets the same single line, never a second
``KeyboardInterrupt`` in the middle of marking the run failed (which would end
in a traceback).  The previous handlers come back when the block ends, so a
caller in a notebook or a test keeps its own.
"""
from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator

__all__ = ["SIGINT_EXIT", "SIGTERM_EXIT", "STOP_GRACE_S", "Terminated", "interrupts_raise", "ignore_interrupts",
           "stop_processes"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)

#: Exit codes of a process stopped by Ctrl-C or SIGTERM (128 + the signal number, as shells report them).
SIGINT_EXIT, SIGTERM_EXIT = 128 + signal.SIGINT, 128 + signal.SIGTERM
#: How long a child asked to stop may take to mark its run failed and exit before it is killed.
STOP_GRACE_S = 10.0


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived (handled like Ctrl-C; the CLI exits with 143)."""


def ignore_interrupts() -> None:
    """Ignore further SIGINT / SIGTERM (in the main thread; elsewhere nothing can be set)."""
    if threading.current_thread() is threading.main_thread():
        for s in _SIGNALS:
            signal.signal(s, signal.SIG_IGN)


def _raise_once(signum, frame):
    ignore_interrupts()
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


@contextlib.contextmanager
def interrupts_raise() -> Iterator[None]:
    """Within the block, the first SIGINT / SIGTERM raise (see the module docstring); restored after.

    Signal handlers belong to the main thread: called from another thread this changes nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in _SIGNALS}
    for s in _SIGNALS:
        signal.signal(s, _raise_once)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)


def stop_processes(procs, *, grace_s: float = STOP_GRACE_S) -> None:
    """Ask every live process in ``procs`` to stop (SIGTERM), wait up to ``grace_s`` for all, kill the rest.

    A child that already took a Ctrl-C ignores the SIGTERM and is finishing its clean-up: the grace
    period lets it; one stuck past it is killed, so the parent never waits forever.
    """
    procs = list(procs)
    for p in procs:
        if p.is_alive():
            p.terminate()
    deadline = time.monotonic() + grace_s
    for p in procs:
        p.join(max(0.0, deadline - time.monotonic()))
    for p in procs:
        if p.is_alive():
            p.kill()
            p.join()
