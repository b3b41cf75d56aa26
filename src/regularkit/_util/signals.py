"""SIGTERM handled like Ctrl-C: one exception type, raised where the process is.

A study marks its running run failed and keeps every finished one when it is
interrupted; making SIGTERM raise :class:`Terminated` (a ``KeyboardInterrupt``)
gives a ``kill``, a container stop or a batch scheduler's timeout the same clean
ending as Ctrl-C, with the exit code 143 (128 + 15) instead of 130.
"""
from __future__ import annotations

import signal

__all__ = ["Terminated", "handle_sigterm", "ignore_interrupts"]


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived (handled like Ctrl-C; the CLI exits with 143)."""


def _raise_terminated(signum, frame):
    raise Terminated()


def handle_sigterm() -> None:
    """From now on SIGTERM raises :class:`Terminated` in the main thread."""
    signal.signal(signal.SIGTERM, _raise_terminated)


def ignore_interrupts() -> None:
    """Ignore further SIGINT / SIGTERM (while printing the last line after an interrupt)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
