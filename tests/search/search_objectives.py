"""Objectives for the worker tests: importable by spawned workers, and countable through files.

Each call writes ``start-<id>.json`` when it begins and ``done-<id>.json`` when it
returns, holding the params and the worker pid, so a test can count how often
each configuration really ran, across processes, without trusting the storage.
"""
from __future__ import annotations

import json
import math
import os
import signal
import time
import uuid
from pathlib import Path


def _write(folder: Path, kind: str, run_id: str, params: dict) -> None:
    payload = {"params": {k: v for k, v in params.items()}, "pid": os.getpid()}
    tmp = folder / f".{kind}-{run_id}.tmp"
    tmp.write_text(json.dumps(payload))
    os.replace(tmp, folder / f"{kind}-{run_id}.json")


def read_runs(folder: Path, kind: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(Path(folder).glob(f"{kind}-*.json"))]


def bowl(params: dict) -> float:
    """A smooth objective with its minimum at lr = 1e-3."""
    return (math.log10(params["lr"]) + 3.0) ** 2 + 0.1 * params.get("dropout", 0.0)


class CountingObjective:
    """Records each run in ``folder``; sleeps a little so two workers really overlap."""

    def __init__(self, folder: str | Path, sleep: float = 0.05):
        self.folder = Path(folder)
        self.sleep = sleep

    def __call__(self, params: dict, report) -> float:
        run_id = uuid.uuid4().hex
        _write(self.folder, "start", run_id, params)
        time.sleep(self.sleep)
        value = bowl(params)
        _write(self.folder, "done", run_id, params)
        return value


class KillOnceObjective(CountingObjective):
    """Like CountingObjective, but the ``kill_at``-th run overall SIGKILLs its own worker mid-trial."""

    def __init__(self, folder: str | Path, kill_at: int = 3, sleep: float = 0.05):
        super().__init__(folder, sleep)
        self.kill_at = kill_at

    def __call__(self, params: dict, report) -> float:
        if len(read_runs(self.folder, "start")) + 1 >= self.kill_at:
            try:  # O_EXCL: exactly one run, in whichever worker, wins the right to die
                os.close(os.open(self.folder / "killed.flag", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                pass
            else:
                _write(self.folder, "start", uuid.uuid4().hex, params)
                os.kill(os.getpid(), signal.SIGKILL)
        return super().__call__(params, report)
