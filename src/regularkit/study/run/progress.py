"""What a running study shows: a progress bar with an ETA in a terminal, one line per finished run elsewhere.

A line is printed as each run finishes -- ``[3/18] l2 seed 0: val err 8.20%,
test err 7.28% (12.3 s); about 2 min left`` -- in a log (no control characters)
and in a terminal alike, where it stays above the bar.  In a terminal the bar
also names the run and epoch in progress and counts finished runs.  The time
left is estimated from the runs finished so far by this command (their mean
wall time, shared out over the workers), never from rich's rolling speed
window, which shows ``-:--:--`` while no run finished in its last 30 s.
"""
from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from regularkit._util.fmt import pct

__all__ = ["StudyProgress", "eta_text"]


def eta_text(seconds: float) -> str:
    """``"about 2 min left"``, ``"about 40 s left"``, ``"about 1.5 h left"``."""
    if seconds < 90:
        return f"about {max(1, round(seconds))} s left"
    if seconds < 5400:
        return f"about {round(seconds / 60)} min left"
    return f"about {seconds / 3600:.1f} h left"


class StudyProgress:
    """Context manager fed by the training loop's callbacks (``start``, ``epoch``, ``done``)."""

    def __init__(self, console: Console, total: int, done: int = 0, *, enabled: bool = True, workers: int = 1):
        self.console, self.total, self.done = console, total, done
        self.workers = workers
        self.live = enabled and console.is_terminal
        self.lines = enabled
        self._t0 = time.perf_counter()
        self._finished_here = 0
        self._progress = None

    def __enter__(self) -> "StudyProgress":
        if self.live:
            columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                       TextColumn("{task.fields[eta]}")]
            self._progress = Progress(*columns, console=self.console, transient=False)
            self._progress.__enter__()
            self._task = self._progress.add_task("study", total=self.total, completed=self.done,
                                                 eta="eta: after the first run")
        return self

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.update(self._task, description="study")
            self._progress.__exit__(*exc)

    def start(self, job) -> None:
        if self._progress is not None:
            self._progress.update(self._task, description=f"{job.recipe.name} seed {job.seed}")

    def epoch(self, job, metrics: dict) -> None:
        if self._progress is not None:
            val = metrics.get("val_error")
            shown = f" val err {pct(val, 1)}%" if val is not None else ""
            self._progress.update(self._task, description=f"{job.recipe.name} seed {job.seed}: epoch "
                                                          f"{metrics['epoch']}/{job.recipe.optim.epochs}{shown}")

    def set_done(self, done: int) -> None:
        """Runs finished in the whole ledger (workers in other processes included)."""
        if done != self.done:
            self.done = done
            if self._progress is not None:
                self._progress.update(self._task, completed=done)

    def seconds_left(self) -> float:
        """Runs left times the mean wall time of this command's finished runs, over the workers."""
        per_run = (time.perf_counter() - self._t0) / max(1, self._finished_here)
        return max(0, self.total - self.done) * per_run / self.workers

    def done_run(self, job, record: dict) -> None:
        self.done += 1
        self._finished_here += 1
        eta = eta_text(self.seconds_left()) if self.done < self.total else ""
        if self._progress is not None:
            self._progress.update(self._task, completed=self.done, eta=eta)
        if self.lines:
            f = record.get("final", {})
            nan = float("nan")
            what = ("diverged" if record.get("diverged") else
                    f"val RMSE {f.get('val_error', nan):.4g}, test RMSE {f.get('test_error', nan):.4g}"
                    if record.get("task") == "regression" else
                    f"val err {pct(f.get('val_error', nan))}%, test err {pct(f.get('test_error', nan))}%")
            printer = self._progress.console if self._progress is not None else self.console  # above the bar
            printer.print(f"[{self.done}/{self.total}] {job.recipe.name} seed {job.seed}: {what} "
                          f"({record.get('seconds', 0.0):.1f} s){'; ' + eta if eta else ''}", highlight=False,
                          markup=False)
