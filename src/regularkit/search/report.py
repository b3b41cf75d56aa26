"""Pictures of a search: history, best-so-far, per-parameter slices, importance, comparisons.

Every file is written atomically (temp file, then ``os.replace``), with
matplotlib's object API and the Agg canvas: no pyplot state, no display needed.
The slices plot shades the outer ``edge_fraction`` of each range, where
:mod:`regularkit.search.border` warns: a best point in the shade means the
range did not bracket the optimum.
"""
from __future__ import annotations

import base64
import html
import platform
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from regularkit._util.io import atomic_savefig, atomic_write_json, atomic_write_text, figure
from regularkit.search.border import border_warnings
from regularkit.search.coarse_to_fine import CoarseToFineResult
from regularkit.search.discipline import final_test_record
from regularkit.search.results import SearchResult, result_from_study

MIN_TRIALS_FOR_IMPORTANCE = 10  # fewer completed trials say little about which parameter matters


@dataclass(frozen=True)
class SearchReport:
    """What :func:`search_report` wrote, the border warnings, and why a plot was skipped."""

    paths: dict[str, Path]
    warnings: list[str]
    skipped: dict[str, str] = field(default_factory=dict)


def _as_result(obj: Any) -> SearchResult:
    if isinstance(obj, SearchResult):
        return obj
    if isinstance(obj, CoarseToFineResult):
        return obj.final
    if isinstance(obj, optuna.Study):
        return result_from_study(obj)
    raise TypeError(f"expected a SearchResult, CoarseToFineResult or optuna Study, got {type(obj).__name__}")


def best_so_far(result: SearchResult) -> list[float]:
    """The best completed value after each completed trial, in trial order."""
    pick = min if result.direction == "minimize" else max
    out: list[float] = []
    for t in result.completed:
        out.append(t.value if not out else pick(out[-1], t.value))
    return out


def search_report(study_or_result: Any, out_dir: str | Path, *, compare: Any = None,
                  edge_fraction: float = 0.1) -> SearchReport:
    """Write the plots of a search to ``out_dir``; return their paths and the border warnings.

    ``compare`` is a second search (e.g. grid vs this random one): their best-so-far
    curves are drawn together in ``compare.png``.
    """
    result = _as_result(study_or_result)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    warns = [] if result.best_params is None else border_warnings(result.space, result.best_params, edge_fraction)
    paths: dict[str, Path] = {}
    skipped: dict[str, str] = {}
    metric = f"objective ({result.direction}d)"

    fig = figure()
    ax = fig.add_subplot()
    for state, style in (("COMPLETE", dict(marker="o", color="C0")), ("PRUNED", dict(marker="x", color="0.6"))):
        pts = [(i, t.value) for i, t in enumerate(result.trials, 1) if t.state == state and t.value is not None]
        if pts:
            ax.scatter(*zip(*pts), s=14, label=state.lower(), **style)
    ax.set(xlabel="trial", ylabel=metric, title=f"search history ({result.sampler})")
    ax.legend()
    paths["history"] = atomic_savefig(fig, out / "history.png")

    fig = figure()
    ax = fig.add_subplot()
    ax.step(range(1, len(best_so_far(result)) + 1), best_so_far(result), where="post", color="C3")
    ax.set(xlabel="completed trials", ylabel=f"best {metric}", title="best so far")
    paths["best_so_far"] = atomic_savefig(fig, out / "best_so_far.png")

    if result.space.numeric and result.completed:
        paths["slices"] = _slices(result, out / "slices.png", edge_fraction)
    else:
        skipped["slices"] = "no numeric parameter or no completed trial"

    names = list(result.space)
    if len(names) < 2:
        skipped["importance"] = f"importance needs >= 2 parameters, the space has {len(names)}"
    elif len(result.completed) < MIN_TRIALS_FOR_IMPORTANCE:
        skipped["importance"] = (f"importance needs >= {MIN_TRIALS_FOR_IMPORTANCE} completed trials, "
                                 f"got {len(result.completed)}")
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            importance = optuna.importance.get_param_importances(result.study, params=names)
        fig = figure()
        ax = fig.add_subplot()
        ax.barh(list(importance)[::-1], list(importance.values())[::-1], color="C2")
        ax.set(xlabel="importance (optuna.importance)", title="parameter importance")
        paths["importance"] = atomic_savefig(fig, out / "importance.png")

    if compare is not None:
        other = _as_result(compare)
        fig = figure()
        ax = fig.add_subplot()
        for r, color in ((result, "C0"), (other, "C1")):
            curve = best_so_far(r)
            ax.step(range(1, len(curve) + 1), curve, where="post", color=color,
                    label=f"{r.sampler} ({len(curve)} trials)")
        ax.set(xlabel="completed trials", ylabel=f"best {metric}", title="best so far: comparison")
        ax.legend()
        paths["compare"] = atomic_savefig(fig, out / "compare.png")

    if isinstance(study_or_result, CoarseToFineResult):
        paths["stages"] = _stages(study_or_result, out / "stages.png")

    looks = final_test_record(result.study)
    summary = {**result.to_dict(), "report_warnings": warns, "skipped": skipped, "final_test": looks,
               "versions": {"optuna": optuna.__version__, "python": platform.python_version()},
               "machine": platform.platform()}
    paths["summary"] = atomic_write_json(out / "summary.json", summary)
    paths["html"] = write_html(result, paths, out / "report.html", warns, skipped, looks)
    return SearchReport(paths=paths, warnings=warns, skipped=skipped)


def _img(path: Path) -> str:
    return (f'<img alt="{html.escape(path.stem)}" '
            f'src="data:image/png;base64,{base64.b64encode(path.read_bytes()).decode("ascii")}">')


def _cell(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _final_test_html(looks: list[dict[str, Any]]) -> str:
    """The test set's looks (normally one): value, when, whether forced; or that it was not looked at."""
    if not looks:
        return "the test set is not used (see final_test)."
    parts = []
    for i, look in enumerate(looks, 1):
        value = "did not finish" if look.get("value") is None else f"test objective {look['value']:.4f}"
        forced = ", forced" if look.get("forced") else ""
        parts.append(f"look {i} at {html.escape(str(look.get('started')))}{forced}: <b>{value}</b>")
    return "the test set was looked at once the search was over: " + "; ".join(parts) + "."


def write_html(result: SearchResult, paths: dict[str, Path], path: Path, warns: list[str],
               skipped: dict[str, str], looks: list[dict[str, Any]] | None = None) -> Path:
    """One self-contained page: the best configuration, the final test look, the border warnings, the plots,
    every trial (numbered from 1, as the search's log counts them)."""
    names = list(result.space)
    best = ("no completed trial" if result.best_params is None else
            ", ".join(f"{k} = {v:.4g}" if isinstance(v, float) else f"{k} = {v}" for k, v in result.best_params.items())
            + f": objective {result.best_value:.4f}")
    rows = "".join(
        "<tr>" + f"<td>{t.number + 1}</td><td>{t.state.lower()}</td>"
        + f"<td>{'' if t.value is None else f'{t.value:.4f}'}</td>"
        + "".join(f"<td>{html.escape(_cell(t.params.get(n, '')))}</td>" for n in names) + "</tr>"
        for t in result.trials)
    head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    plots = "".join(_img(paths[k]) for k in ("best_so_far", "slices", "history", "importance", "stages", "compare")
                    if k in paths)
    notes = "".join(f"<p class=warn>{html.escape(w)}</p>" for w in warns)
    notes += "".join(f"<p class=note>{html.escape(k)}: {html.escape(v)}</p>" for k, v in skipped.items())
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>search {html.escape(result.study_name)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; padding: 0 1.5em; max-width: 70em; font-size: 18px; }}
table {{ border-collapse: collapse; font-variant-numeric: tabular-nums; }}
th, td {{ border-bottom: 1px solid #ccc; padding: .3em .7em; text-align: right; }}
img {{ max-width: 100%; margin: 1em 0; }}
.best {{ background: #eef6ee; border-left: 6px solid #2ca02c; padding: .8em 1.2em; }}
.warn {{ color: #a33; }} .note {{ color: #777; }}
</style></head><body>
<h1>Search {html.escape(result.study_name)}</h1>
<p>{result.sampler} sampler, {len(result.trials)} trials ({len(result.completed)} completed), {result.direction}
the validation objective; {_final_test_html(looks or [])}</p>
<p class=best><b>Best:</b> {html.escape(best)}</p>
{notes}
{plots}
<h2>Trials</h2>
<table><thead><tr><th>trial</th><th>state</th><th>objective</th>{head}</tr></thead><tbody>{rows}</tbody></table>
</body></html>
"""
    return atomic_write_text(path, page)


def _slices(result: SearchResult, path: Path, edge_fraction: float) -> Path:
    """Objective against each numeric parameter; border zones shaded; best point starred."""
    names = result.space.numeric
    fig = figure(3.2 * len(names), 3.2)
    for i, name in enumerate(names):
        ax = fig.add_subplot(1, len(names), i + 1)
        dist = result.space[name]
        xs = [t.params[name] for t in result.completed]
        ax.scatter(xs, [t.value for t in result.completed], s=12, color="C0")
        if dist.log:
            ax.set_xscale("log")
        lo, hi = dist.transform(dist.low), dist.transform(dist.high)
        edge = edge_fraction * (hi - lo)
        for a, b in ((lo, lo + edge), (hi - edge, hi)):
            ax.axvspan(dist.inverse(a), dist.inverse(b), color="C3", alpha=0.12, lw=0)
        if result.best_params is not None:
            ax.scatter([result.best_params[name]], [result.best_value], marker="*", s=120, color="C3")
        ax.set(xlabel=name, ylabel="objective" if i == 0 else None)
    return atomic_savefig(fig, path)


def _stages(result: CoarseToFineResult, path: Path) -> Path:
    """Each stage's range of each numeric parameter, in search units: the zoom, stage by stage."""
    names = result.spaces[0].numeric
    fig = figure(3.2 * max(1, len(names)), 2.4)
    for i, name in enumerate(names):
        ax = fig.add_subplot(1, len(names), i + 1)
        for s, space in enumerate(result.spaces):
            d = space[name]
            ax.plot([d.low, d.high], [s + 1, s + 1], lw=6, color=f"C{s}")
        if result.spaces[0][name].log:
            ax.set_xscale("log")
        ax.set(xlabel=name, ylabel="stage" if i == 0 else None, ylim=(0.5, len(result.spaces) + 0.5))
        ax.invert_yaxis()
    return atomic_savefig(fig, path)
