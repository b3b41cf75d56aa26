"""study/run/progress.py: one kept line per finished run, in a terminal too, and an ETA from finished runs."""
import io
from types import SimpleNamespace

import pytest
from rich.console import Console

from regularkit.study.run import progress as progress_mod
from regularkit.study.run.progress import StudyProgress, eta_text


@pytest.mark.parametrize("seconds, text", [(0.2, "about 1 s left"), (40, "about 40 s left"),
                                           (125, "about 2 min left"), (5400, "about 1.5 h left")])
def test_eta_text(seconds, text):
    assert eta_text(seconds) == text


def _job(name, seed):
    return SimpleNamespace(recipe=SimpleNamespace(name=name, optim=SimpleNamespace(epochs=3)), seed=seed)


@pytest.mark.parametrize("terminal", [True, False])
def test_each_finished_run_keeps_a_line_and_the_eta_comes_from_finished_runs(monkeypatch, terminal):
    clock = iter([0.0, 40.0, 80.0, 1e9])  # start; two runs finished after 40 s each
    monkeypatch.setattr(progress_mod.time, "perf_counter", lambda: next(clock))
    out = io.StringIO()
    console = Console(file=out, width=120, force_terminal=terminal, color_system=None)
    record = {"final": {"val_error": 0.082, "test_error": 0.0728}, "seconds": 40.0}
    with StudyProgress(console, total=6, workers=2) as bar:
        bar.start(_job("l2 [x]", 0))
        bar.done_run(_job("l2 [x]", 0), record)      # 5 left x 40 s / 2 workers = 100 s
        bar.done_run(_job("l2 [x]", 1), record)      # 4 left x 40 s / 2 workers = 80 s
    text = out.getvalue()
    assert "[1/6] l2 [x] seed 0: val err 8.20%, test err 7.28% (40.0 s); about 2 min left" in text
    assert "[2/6] l2 [x] seed 1: val err 8.20%, test err 7.28% (40.0 s); about 80 s left" in text
    assert "-:--:--" not in text
