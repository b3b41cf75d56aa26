"""The end of a study: the seeds' ensembles, the chance error, the verdict, the table, the CSV, the
figures and the HTML report of the finished runs (``finish``), and what a study returns (``StudyResult``).

Called by :func:`regularkit.study.pipeline.run_study` once the runs are trained; the seed-ensemble and
chance computations live here, with the results, not in the orchestration.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from regularkit._util.io import atomic_write_json
from regularkit.config import to_dict
from regularkit.errors import RegularkitError
from regularkit.study.results import figures, report
from regularkit.study.run.artifacts import stored_outputs
from regularkit.study.plan import Plan
from regularkit.study.recipes import strength_for
from regularkit.study.results.figures_regression import regression_figures
from regularkit.study.results.ridge_row import add_regression_ensembles, ridge_sentence, ridge_summary
from regularkit.study.results.statistics import compare_to_baseline
from regularkit.study.results.summary import RecipeSummary, summarize
from regularkit.study.results.verdict import make_verdict


__all__ = ["StudyResult", "finish", "add_seed_ensembles", "chance_error"]


@dataclass
class StudyResult:
    summaries: list[RecipeSummary]
    records: list[dict[str, Any]]
    out_dir: Path
    files: dict[str, Path]
    plan: Plan | None = None
    verdict: Any = None


def _write_run_files(records, out: Path) -> None:
    for r in records:
        atomic_write_json(out / "runs" / r["recipe"] / f"seed{r['seed']}.json", r)


def add_seed_ensembles(summaries, records, store, y_test) -> int:
    """Test error of the ensemble of each recipe's seeds (mean of their probabilities), beside the members.

    Returns how many finished runs had no probabilities in this store (made on a machine whose
    artifact store this one does not see).
    """
    by_recipe, unseen = stored_outputs(records, store)
    y = y_test.numpy()
    for s in summaries:
        probs = by_recipe.get(s.recipe, [])
        if len(probs) >= 2 and all(p.shape == (len(y), probs[0].shape[1]) for p in probs):
            error = float((np.mean(probs, axis=0).argmax(1) != y).mean())
            s.stats["ensemble_test_error"] = (error, 0.0)
            s.pooled_probs = (np.concatenate(probs), np.tile(y, len(probs)))
        elif len(probs) == 1:
            s.pooled_probs = (probs[0], y)
    return unseen


def _strength(plan: Plan, recipe) -> dict | None:
    if recipe.name in plan.tuned:
        return {**plan.tuned[recipe.name], "tuned": True}
    strength = strength_for(recipe.name, plan.extra_recipes)
    return None if strength is None else {"field": strength.field, "value": strength.value(recipe), "tuned": False}


def chance_error(y_test) -> float:
    """The error of always answering the most common test class."""
    counts = np.bincount(np.asarray(y_test))
    return float(1 - counts.max() / counts.sum())


def finish(plan: Plan, records, out: Path, env, console, store) -> StudyResult:
    """Summaries, intervals, the verdict, the table, the CSV, the figures and the HTML report of ``records``."""
    cfg = plan.cfg
    summaries = summarize(records, [r.name for r in plan.recipes])
    if not summaries:
        raise RegularkitError(f"no finished runs to report in {str(out)!r}")
    comparisons = compare_to_baseline(summaries, records)
    recipes = {r.name: r for r in plan.recipes}
    for s in summaries:
        s.warnings = list(plan.warnings.get(s.recipe, []))
        s.strength = _strength(plan, recipes[s.recipe])
        s.deltas = comparisons.get(s.recipe, {})
    splits = plan.data.splits
    regression = splits.regression is not None
    verdict = make_verdict(summaries, comparisons, seeds=cfg.seeds, task=splits.task,
                           chance_error=math.nan if regression else chance_error(splits.y_test))
    for s in summaries:
        if s.recipe in verdict.seeds_needed:  # undecided on test: the seeds that would settle it ("" for ~0)
            s.seeds_needed = verdict.seeds_needed[s.recipe] or ""
    _write_run_files(records, out)
    if regression:  # the seeds' averaged predictions, and the linear reference row (study/results/ridge_row.py)
        unseen = add_regression_ensembles(summaries, records, store, splits)
        ridge = ridge_summary(splits)
        if sentence := ridge_sentence(ridge, summaries):
            verdict = dataclasses.replace(verdict, lines=verdict.lines + [sentence])
        summaries = summaries + [ridge]
    else:
        unseen = add_seed_ensembles(summaries, records, store, splits.y_test)
    if unseen:
        console.print(f"[yellow]{unseen} run(s) were made where this machine cannot see their artifact store; "
                      "the seed-ensemble column leaves them out (share --artifacts between machines)[/]")
    title = f"regularkit study: {plan.data.dataset.name}, {cfg.model}"
    files = {"csv": report.write_csv(summaries, out / "results.csv")}
    if regression:
        files.update(regression_figures(summaries, comparisons, out, verdict.recommended))
    elif comparisons:
        files["forest"] = figures.plot_forest(comparisons, out / "forest.png", labels={
            s.recipe: f"{s.recipe} (test error with TTA)" for s in summaries if s.with_tta})
    if not regression:
        files.update(curves=figures.plot_curves(summaries, out / "learning_curves.png"),
                     test_curves=figures.plot_curves(summaries, out / "test_curves.png", against="test"),
                     gap=figures.plot_gap(summaries, out / "gap.png"),
                     reliability=figures.plot_reliability(summaries, out / "reliability.png"))
    images = [files[k] for k in ("forest", "curves", "test_curves", "gap", "reliability", "predicted", "residuals")
              if k in files]
    files["html"] = report.write_html(summaries, images, out / "report.html", title=title, config=to_dict(cfg),
                                      environment=env, verdict=verdict, data=plan.data.description)
    files["verdict"] = atomic_write_json(out / "verdict.json", {**dataclasses.asdict(verdict), "text": verdict.text})
    if plan.tuned:
        atomic_write_json(out / "tuning.json", plan.tuned)
    report.print_table(summaries, title=title, console=console, verdict=verdict)
    console.print(f"results in {out}/: results.csv, {', '.join(p.name for p in images)}, report.html, verdict.json",
                  markup=False, highlight=False)
    return StudyResult(summaries=summaries, records=records, out_dir=out, files=files, plan=plan, verdict=verdict)
