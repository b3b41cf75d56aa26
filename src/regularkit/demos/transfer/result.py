"""The transfer table's result: every run's record, summaries over seeds, and the 2 x 2 verdicts."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from regularkit.demos.transfer.settings import ADVICE, METHODS, TASKS
from regularkit.metrics.summary import mean_std

__all__ = ["TransferResult", "size_label"]


def size_label(size: int | None) -> str:
    return "all" if size is None else str(size)


@dataclass
class TransferResult:
    """Every run's record plus the settings, the pretraining, the environment and the time taken."""

    settings: dict[str, Any]
    pretrain: dict[str, Any]
    records: list[dict[str, Any]]
    environment: dict[str, Any]
    seconds: float = 0.0

    def sizes(self, task: str) -> list[str]:
        return list(dict.fromkeys(r["size"] for r in self.records if r["task"] == task))

    def summary(self, task: str) -> dict[tuple[str, str], dict[str, float]]:
        """``(method, size) -> {mean, std, n_train, n_val, runs}`` of the test error over the seeds."""
        out = {}
        for method in METHODS:
            for size in self.sizes(task):
                rs = [r for r in self.records if (r["task"], r["method"], r["size"]) == (task, method, size)]
                if rs:
                    mean, std = mean_std([r["test_error"] for r in rs])
                    out[method, size] = {"mean": mean, "std": std, "n_train": rs[0]["n_train"],
                                         "n_val": rs[0]["n_val"], "n_pool": rs[0].get("n_pool", 0), "runs": len(rs)}
        return out

    def gap(self, task: str, size: str, a: str, b: str) -> tuple[float, float]:
        """Mean and std over the seeds of ``error(a) - error(b)``, paired on the seed (same data split)."""
        err = {(r["method"], r["seed"]): r["test_error"] for r in self.records
               if r["task"] == task and r["size"] == size}
        seeds = sorted({seed for _, seed in err})
        return mean_std([err[a, seed] - err[b, seed] for seed in seeds])

    def cells(self) -> list[dict[str, Any]]:
        """The 2 x 2 table: per (task, little/lots) the slide's pick against the best transfer method.

        The slide says how to transfer, so its pick is judged among the transfer methods; then
        ``vs_scratch`` says whether transferring beat training from scratch at all.  Gaps are paired
        over the seeds (:meth:`gap`); a gap no larger than its std is called a tie.
        """
        cells = []
        for (task, amount), (words, advised) in ADVICE.items():
            sizes = self.sizes(task)
            if not sizes:
                continue
            size = sizes[0] if amount == "little" else sizes[-1]
            table = {m: s for (m, sz), s in self.summary(task).items() if sz == size}
            best = min((m for m in table if m != "scratch"), key=lambda m: table[m]["mean"])
            pick = min((m for m in advised if m in table), key=lambda m: table[m]["mean"])
            g, gs = self.gap(task, size, pick, best)
            if best == pick:
                verdict = "agrees"
            elif g <= gs:
                verdict = f"tie: {pick} is {100 * g:.1f} ± {100 * gs:.1f} points behind {best}"
            else:
                verdict = f"disagrees: {best} beats {pick} by {100 * g:.1f} ± {100 * gs:.1f} points"
            d, ds = self.gap(task, size, "scratch", best)
            if abs(d) <= ds:
                better = f"{best} {100 * d:.1f}" if d > 0 else f"scratch {-100 * d:.1f}"
                vs_scratch = f"tie with scratch ({better} ± {100 * ds:.1f} points better)"
            elif d > 0:
                vs_scratch = f"transfer helps: {best} beats scratch by {100 * d:.1f} ± {100 * ds:.1f} points"
            else:
                vs_scratch = f"scratch wins by {-100 * d:.1f} ± {100 * ds:.1f} points"
            b = table[best]
            cells.append({"task": task, "amount": amount, "size": size, "n": b["n_train"] + b["n_val"],
                          "advice": words, "pick": pick, "pick_error": table[pick], "best_transfer": best,
                          "best_transfer_error": b, "scratch_error": table["scratch"], "pick_gap": [g, gs],
                          "scratch_gap": [d, ds], "verdict": verdict, "vs_scratch": vs_scratch})
        return cells

    def to_dict(self) -> dict[str, Any]:
        summaries = {t: {f"{m}@{s}": v for (m, s), v in self.summary(t).items()} for t in TASKS}
        return {"settings": self.settings, "pretrain": self.pretrain, "environment": self.environment,
                "seconds": self.seconds, "records": self.records, "summary": summaries, "cells": self.cells()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TransferResult":
        """Back from :meth:`to_dict` (or the demo's JSON); summaries and cells are recomputed."""
        return cls(settings=d["settings"], pretrain=d["pretrain"], records=d["records"],
                   environment=d["environment"], seconds=d["seconds"])
