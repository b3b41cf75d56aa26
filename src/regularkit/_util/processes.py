"""One supervisor for worker processes, the search's and the study's: spawn, wait, the exit-code policy, recover, stop.

Workers are started with the "spawn" method: a fresh interpreter each, so no
PyTorch thread pool, CUDA context or lock is inherited half-initialised from
the parent (fork's known failure modes); what a worker receives travels by
pickle.  They are not daemonic, so a worker may start its own processes
(DataLoader workers).

The exit-code policy, the same for both rooms (:class:`WorkerExit`):

===============  ===================================================================
exit code        what the supervisor does
===============  ===================================================================
0                the worker finished its share
< 0              killed by a signal (``kill -9``, the OOM killer): ``recover()`` runs at
                 once, so the work it had claimed is failed and queued again while the
                 other workers still run; the caller is told (``on_exit``) and reports it
130, 143         stopped by Ctrl-C / SIGTERM (the worker marked its own work failed):
                 recovered and reported the same way
other > 0        an error, whose message or traceback the worker printed: the other
                 workers are stopped, their work recovered, and :class:`WorkerFailed`
                 (one line naming the worker and the code) is raised
===============  ===================================================================

While the parent waits, any exception it takes (Ctrl-C, SIGTERM, a bug in a
callback) stops every live worker (SIGTERM, then SIGKILL after
:data:`~regularkit._util.signals.STOP_GRACE_S`) and recovers their work before it
propagates: nothing is left running and nothing is left claimed.

What "recover" means is the caller's (this module knows no storage): the search
and the study pass :func:`regularkit.search.storage.recover_dead_trials`, the one
recovery of a dead worker's trials.
"""
from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from regularkit._util.signals import SIGINT_EXIT, SIGTERM_EXIT, stop_processes
from regularkit.errors import RegularkitError

__all__ = ["START_METHOD", "WorkerExit", "WorkerFailed", "spawn_processes", "supervise_processes"]

START_METHOD = "spawn"


class WorkerFailed(RegularkitError):
    """A worker exited with an error code (its own message is printed above the parent's line)."""


@dataclass(frozen=True)
class WorkerExit:
    """How one worker ended, and what its recovery returned (e.g. the numbers of the re-queued trials)."""

    name: str
    pid: int | None
    code: int
    recovered: tuple = ()

    @property
    def killed(self) -> bool:
        """Ended by a signal it did not handle (SIGKILL, or a signal before its handlers were set)."""
        return self.code < 0

    @property
    def interrupted(self) -> bool:
        """Stopped by Ctrl-C or SIGTERM, which it handled (exit code 130 / 143)."""
        return self.code in (SIGINT_EXIT, SIGTERM_EXIT)

    @property
    def failed(self) -> bool:
        """Exited with an error code: a bug or a bad input, reported by the worker itself."""
        return self.code > 0 and not self.interrupted

    @property
    def lost(self) -> bool:
        """Ended by a signal, its work unfinished (killed or interrupted)."""
        return self.killed or self.interrupted

    def describe(self) -> str:
        """``worker-1 (pid 4242) was killed by signal 9 (SIGKILL)`` and the like."""
        who = f"{self.name} (pid {self.pid})"
        if self.killed:
            try:
                name = f" ({signal.Signals(-self.code).name})"
            except ValueError:
                name = ""
            return f"{who} was killed by signal {-self.code}{name}"
        if self.interrupted:
            return f"{who} was stopped by {'Ctrl-C' if self.code == SIGINT_EXIT else 'SIGTERM'} (exit code {self.code})"
        return f"{who} exited with code {self.code}"


def spawn_processes(target: Callable[..., Any], args: Sequence[tuple], names: Sequence[str]) -> list:
    """Start one "spawn" process per ``args`` entry, running ``target(*args[i])`` under ``names[i]``."""
    if len(args) != len(names):
        raise ValueError(f"spawn_processes needs one name per worker, got {len(args)} args and {len(names)} names")
    ctx = multiprocessing.get_context(START_METHOD)
    procs = [ctx.Process(target=target, args=tuple(a), name=n) for a, n in zip(args, names)]
    for p in procs:
        p.start()
    return procs


def supervise_processes(procs: Sequence, *, recover: Callable[[], Sequence] | None = None,
                        on_exit: Callable[[WorkerExit], None] | None = None,
                        poll: Callable[[], None] | None = None, poll_s: float = 1.0,
                        what: str = "worker") -> list[WorkerExit]:
    """Wait until every process of ``procs`` has ended, applying the exit-code policy (module docstring).

    ``recover()`` is called at once after each process that did not end with 0 (and after
    stopping the rest, on an error); ``on_exit`` receives every :class:`WorkerExit` as it
    happens; ``poll()`` runs every ``poll_s`` seconds while workers run (progress lines).
    Returns the exits in the order they happened; raises :class:`WorkerFailed` on an error code.
    """
    pending = list(procs)
    exits: list[WorkerExit] = []
    try:
        while pending:
            ready = multiprocessing.connection.wait([p.sentinel for p in pending],
                                                    timeout=poll_s if poll is not None else None)
            for p in [p for p in pending if p.sentinel in ready]:
                p.join()
                pending.remove(p)
                recovered = tuple(recover()) if p.exitcode != 0 and recover is not None else ()
                ended = WorkerExit(p.name, p.pid, p.exitcode, recovered)
                exits.append(ended)
                if on_exit is not None:
                    on_exit(ended)
                if ended.failed:
                    raise WorkerFailed(f"{what} {ended.describe()}; see its message above")
            if poll is not None:
                poll()
    finally:
        if pending:  # an error, a failed worker or Ctrl-C here: stop the others, then free their work
            stop_processes(pending)
            if recover is not None:
                recover()
    return exits
