"""``run_study``: recipes x seeds through the Optuna ledger, then the report.

Files in the study folder (all written atomically):

* ``study.toml`` -- the StudyConfig; ``environment.json`` -- versions, machine, git revision
* ``ledger.journal`` -- the Optuna journal (unless ``storage`` is a URL)
* ``runs/<recipe>/seed<k>.json`` -- each run's record and resolved recipe
* ``results.csv``, ``learning_curves.png``, ``gap.png``, ``report.html``

Rerunning the same command resumes: finished runs are read from the ledger,
runs killed midway are redone from scratch, none is counted twice.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from optuna.trial import TrialState
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from regularkit._util.environment import environment
from regularkit._util.io import atomic_write, atomic_write_json, atomic_write_text
from regularkit.config import to_dict, to_toml
from regularkit.data import load_dataset
from regularkit.data.sampling import stratified_subset
from regularkit.data.splits import make_splits, make_splits_from_indices
from regularkit.errors import RegularkitError
from regularkit.study import ledger, report
from regularkit.study.config import StudyConfig
from regularkit.study.execute import run_recipe
from regularkit.study.recipes import load_recipe_file, resolve
from regularkit.study.summary import RecipeSummary, summarize


@dataclass
class StudyResult:
    summaries: list[RecipeSummary]
    records: list[dict[str, Any]]
    out_dir: Path
    files: dict[str, Path]


def prepare_splits(cfg: StudyConfig):
    dataset = load_dataset(cfg.data, data_dir=cfg.data_dir)
    splits = make_splits(dataset, val_fraction=cfg.val_fraction, seed=cfg.data_seed)
    size = cfg.effective_train_size()
    if size is not None and size < len(splits.train_idx):
        keep = stratified_subset(dataset.y_train[splits.train_idx], size, seed=cfg.data_seed)
        splits = make_splits_from_indices(dataset, splits.train_idx[keep], splits.val_idx)
    return splits


def run_key(recipe_dict: dict[str, Any], data_spec: dict[str, Any], seed: int) -> str:
    """Same recipe, data and seed -> same key; any change -> a new run (never a stale result)."""
    blob = json.dumps({"recipe": recipe_dict, "data": data_spec}, sort_keys=True)
    return f"{recipe_dict['name']}/seed{seed}/{hashlib.sha1(blob.encode()).hexdigest()[:12]}"


def probs_path(out: Path, key: str) -> Path:
    """Test-set probabilities of one run, named by its key (recipe/seed/hash)."""
    recipe, seed, digest = key.split("/")
    return out / "runs" / recipe / f"{seed}.{digest}.probs.npy"


def add_seed_ensembles(summaries, records, out: Path, y_test) -> None:
    """Test error of the ensemble of each recipe's seeds (mean of their probabilities), beside the members."""
    by_recipe: dict[str, list[np.ndarray]] = {}
    for r in records:
        path = probs_path(out, r["key"])
        if path.exists():
            by_recipe.setdefault(r["recipe"], []).append(np.load(path))
    y = y_test.numpy()
    for s in summaries:
        probs = by_recipe.get(s.recipe, [])
        if len(probs) >= 2 and all(p.shape == (len(y), probs[0].shape[1]) for p in probs):
            error = float((np.mean(probs, axis=0).argmax(1) != y).mean())
            s.stats["ensemble_test_error"] = (error, 0.0)
            s.pooled_probs = (np.concatenate(probs), np.tile(y, len(probs)))
        elif len(probs) == 1:
            s.pooled_probs = (probs[0], y)


def run_study(cfg: StudyConfig, *, console=None, progress: bool = True) -> StudyResult:
    if console is None:
        console = Console()
        if not console.is_terminal:
            console = Console(width=140)  # logs and CI: do not wrap the table at 80 columns
    extra = load_recipe_file(cfg.recipe_file) if cfg.recipe_file else None
    recipes = resolve(cfg.recipes, cfg.base_recipe(), extra=extra)  # validates before any file is written
    splits = prepare_splits(cfg)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "study.toml", to_toml(cfg))
    env = environment()
    atomic_write_json(out / "environment.json", env)

    data_spec = {"data": cfg.data, "train_size": len(splits.train_idx), "val_fraction": cfg.val_fraction,
                 "data_seed": cfg.data_seed}
    jobs: dict[str, dict[str, Any]] = {}
    by_key: dict[str, Any] = {}
    for recipe in recipes:
        rd = to_dict(recipe)
        for seed in range(cfg.seeds):
            key = run_key(rd, data_spec, seed)
            jobs[key] = {"recipe": recipe.name, "seed": seed}
            by_key[key] = (recipe, seed)

    study = ledger.open_study(out, cfg.study_name, cfg.storage)
    reclaimed = ledger.reclaim_dead(study)
    if reclaimed:
        console.print(f"[yellow]{reclaimed} run(s) interrupted earlier will be redone from scratch[/]")
    ledger.enqueue_missing(study, jobs)
    keys = set(jobs)
    done = ledger.completed(study, keys)
    _train_all(study, keys, by_key, splits, out, len(jobs), len(done), console, progress)

    records_by_key = ledger.completed(study, keys)
    missing = keys - set(records_by_key)
    if missing:
        console.print(f"[yellow]{len(missing)} run(s) are still running in another worker or failed; "
                      "the table shows the finished ones[/]")
    records = [records_by_key[k] for k in jobs if k in records_by_key]
    return finish(cfg, recipes, records, out, env, console, y_test=splits.y_test)


def _train_all(study, keys, by_key, splits, out, total, already, console, progress) -> None:
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=console, disable=not progress, transient=False) as bar:
        task = bar.add_task("study", total=total, completed=already)
        while (trial := ledger.claim(study, keys)) is not None:
            recipe, seed = by_key[trial.user_attrs["key"]]
            label = f"{recipe.name} seed {seed}"
            bar.update(task, description=label)

            def on_epoch(m, label=label, epochs=recipe.optim.epochs):
                bar.update(task, description=f"{label}: epoch {m['epoch']}/{epochs} "
                                             f"val err {100 * m.get('val_error', float('nan')):.1f}%")
            try:
                record = run_recipe(recipe, splits, seed, on_epoch=on_epoch)
            except BaseException:
                # Ctrl-C or a bug: this run is marked failed and redone next time;
                # everything already finished stays in the ledger and on disk.
                study.tell(trial, state=TrialState.FAIL)
                raise
            key = record["key"] = trial.user_attrs["key"]
            probs = record.pop("test_probs")
            atomic_write(probs_path(out, key), lambda f: np.save(f, probs.numpy()))
            atomic_write_json(out / "runs" / recipe.name / f"seed{seed}.json", record)
            trial.set_user_attr("record", record)
            study.tell(trial, record["final"]["val_error"])
            bar.advance(task)
        bar.update(task, description="study")


def finish(cfg: StudyConfig, recipes, records, out: Path, env, console, *, y_test) -> StudyResult:
    summaries = summarize(records, [r.name for r in recipes])
    if not summaries:
        raise RegularkitError(f"no finished runs to report in {str(out)!r}")
    add_seed_ensembles(summaries, records, out, y_test)
    title = f"regularkit study: {cfg.data}, {cfg.model}"
    files = {"csv": report.write_csv(summaries, out / "results.csv"),
             "curves": report.plot_learning_curves(summaries, out / "learning_curves.png"),
             "test_curves": report.plot_learning_curves(summaries, out / "test_curves.png", against="test"),
             "gap": report.plot_gap(summaries, out / "gap.png"),
             "reliability": report.plot_reliability(summaries, out / "reliability.png")}
    images = [files["curves"], files["test_curves"], files["gap"], files["reliability"]]
    files["html"] = report.write_html(summaries, images, out / "report.html",
                                      title=title, config=to_dict(cfg), environment=env)
    report.print_table(summaries, title=title, console=console)
    console.print(f"results in {out}/: results.csv, learning_curves.png, test_curves.png, gap.png, "
                  "reliability.png, report.html")
    return StudyResult(summaries=summaries, records=records, out_dir=out, files=files)
