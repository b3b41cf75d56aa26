"""The study's face: the terminal table with the verdict, results.csv, and report.html.

The table shows, per recipe, its strength (tuned or set), train / validation /
test error and the gap (mean ± std over seeds), the paired difference in test
error to the baseline with its 95% interval (``*`` beyond seed noise), and the
extra measurements.  The verdict (:mod:`~regularkit.study.results.verdict`) follows it
in the terminal and opens the HTML page.  Every file is written atomically; the
HTML embeds its images (base64), so it is one file a teacher can copy to a USB
stick and project.  The figures are in :mod:`~regularkit.study.results.figures`.

A regression study (``RecipeSummary.task``) shows RMSEs in the target's units instead of
percentages: train / val / test RMSE and the gap, Δ test RMSE, ens RMSE, test MAE and R², and the
``ridge (linear)`` row; the caption and the HTML say so.
"""
from __future__ import annotations

import base64
import csv
import html
import io
import json
from pathlib import Path
from typing import Any, Sequence

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from regularkit._util.fmt import pct, pct_pm
from regularkit._util.io import atomic_write_text
from regularkit.metrics.paired import Interval
from regularkit.study.results.summary import METRICS, RecipeSummary
from regularkit.study.results.verdict import units


def units_pm(mean: float, spread: float) -> str:
    """``mean ± spread`` in the target's units (4 significant digits each)."""
    return f"{units(mean)} ± {units(spread)}"

_LABELS = {"train_error": "train", "val_error": "val", "test_error": "test", "gap": "gap"}
_EXTRA_LABELS = {"weight_sparsity": "w≈0 %", "activation_sparsity": "h≈0 %",
                 "epochs_run": "epochs", "tta_test_error": "TTA test %", "ece": "ECE %",
                 "ensemble_test_error": "ens %"}


_EXTRA_ORDER = ("ensemble_test_error", "tta_test_error", "epochs_run", "ece", "weight_sparsity",
                "activation_sparsity")
#: A regression table's extra columns (results.csv has every split's RMSE, MAE and R²).
_REGRESSION_EXTRAS = ("ensemble_test_error", "test_mae", "test_r2", "epochs_run", "weight_sparsity",
                      "activation_sparsity")
_REGRESSION_LABELS = {"ensemble_test_error": "ens RMSE", "test_mae": "test MAE", "test_r2": "test R²"}


def is_regression(summaries: Sequence[RecipeSummary]) -> bool:
    """Whether the table reports RMSEs in the target's units (a regression study) instead of error rates."""
    return any(s.task == "regression" for s in summaries)


def _extra_keys(summaries: Sequence[RecipeSummary]) -> list[str]:
    present = {k for s in summaries for k in s.stats if k not in METRICS}
    if is_regression(summaries):
        return [k for k in _REGRESSION_EXTRAS if k in present]
    return [k for k in _EXTRA_ORDER if k in present] + sorted(present - set(_EXTRA_ORDER))


def _fmt_extra(key: str, m: float, s: float, regression: bool = False) -> str:
    # Extras show the mean only, to keep the table on one screen; results.csv has the std.
    if key == "epochs_run":
        return f"{m:.0f}"
    if key.endswith("_r2"):
        return f"{m:.3f}"
    if key.endswith("_mae") or key.endswith("_rmse") or (regression and key.endswith("error")):
        return units(m)
    if key.endswith("error"):
        return pct(m)
    if key.endswith("sparsity") or key == "ece":
        return pct(m, 1)
    return f"{m:.4g}"


def delta_text(iv: Interval | None, pct=pct) -> str:
    """``"-1.20 [-2.04, -0.36]*"``: the paired difference in points, its (adjusted) interval, ``*`` beyond
    noise; identical differences over seeds say so instead of showing a zero-width interval.  ``pct``:
    how a number is written (:func:`~regularkit.study.results.verdict.units` for RMSEs)."""
    if iv is None:
        return "-"
    if iv.n < 2:
        return f"{pct(iv.mean)} (1 seed)"
    star = "*" if iv.excludes_zero else ""
    if iv.method == "sign":
        return f"{pct(iv.mean)} (same every seed){star}"
    return f"{pct(iv.mean)} [{pct(iv.low)}, {pct(iv.high)}]{star}"


def _family(summaries: Sequence[RecipeSummary]) -> int:
    """How many recipes the Δ test intervals were adjusted for (1: none)."""
    return max((s.deltas["test_error"].comparisons for s in summaries if "test_error" in s.deltas), default=1)


def delta_header(summaries: Sequence[RecipeSummary]) -> str:
    what = "Δ test RMSE" if is_regression(summaries) else "Δ test"
    return f"{what} (95% CI)" if _family(summaries) == 1 else f"{what} (adj. 95% CI)"


#: How a strength's field is shown in the table: the symbol the lectures use for it.
_SYMBOLS = {"l2": "λ", "l1": "λ₁", "weight_decay": "wd", "activity_l1": "λ_h", "dropout": "p", "dropconnect": "p",
            "drop_path": "p", "input_noise": "σ", "label_smoothing": "α", "mixup_alpha": "α", "cutmix_alpha": "α",
            "max_norm": "c", "ema_decay": "decay", "pca_colour": "σ", "erasing": "p", "crop_padding": "pad"}


def _short(value: float) -> str:
    """Two significant digits, more when two would round a value below 1 up to ``1`` (an EMA decay
    of 0.9958 is not a decay of 1, which would freeze the average)."""
    for digits in range(2, 7):
        text = f"{value:.{digits}g}"
        if value == 1.0 or float(text) != 1.0:
            return text
    return repr(value)


def strength_text(strength: dict | None) -> str:
    """``"λ=0.01"``, ``"p=0.45 ✓"`` (tuned): the strength's symbol and value; several for a joint search."""
    if not strength:
        return "-"
    values = strength["value"] if isinstance(strength["value"], dict) else {strength["field"]: strength["value"]}
    parts = []
    for field, value in values.items():
        name = field.rsplit(".", 1)[-1]
        shown = _short(value) if isinstance(value, float) else str(value)
        parts.append(f"{_SYMBOLS.get(name, name)}={shown}")
    return " ".join(parts) + (" ✓" if strength.get("tuned") else "")


#: Columns left out of the terminal table (results.csv and report.html have them).
_HTML_ONLY = ("weight_sparsity", "activation_sparsity")


def table_rows(summaries: Sequence[RecipeSummary], *, terminal: bool = False) -> tuple[list[str], list[list[str]]]:
    extra = _extra_keys(summaries)
    if terminal:
        epochs = {s.stats["epochs_run"][0] for s in summaries if "epochs_run" in s.stats}
        extra = [k for k in extra if k not in _HTML_ONLY and not (k == "epochs_run" and len(epochs) == 1)]
    with_deltas = any(s.deltas for s in summaries)
    regression = is_regression(summaries)
    fmt, fmt_pm = (units, units_pm) if regression else (pct, pct_pm)
    labels = {**_EXTRA_LABELS, **(_REGRESSION_LABELS if regression else {})}
    header = (["recipe", "strength"] + [_LABELS[k] + (" RMSE" if regression else " %") for k in METRICS]
              + ([delta_header(summaries)] if with_deltas else []) + [labels.get(k, k) for k in extra])
    rows = []
    for s in summaries:
        name = s.recipe + (" ⚠" if s.warnings else "")
        if s.diverged:  # never a number computed from NaN outputs
            rows.append([name, strength_text(s.strength), s.status] + ["-"] * (len(header) - 3))
            continue
        row = [name, strength_text(s.strength)] + [fmt_pm(*s.stats[k]) if k in s.stats else "-" for k in METRICS]
        if with_deltas:
            row.append("base" if s.recipe == "baseline" else delta_text(s.deltas.get("test_error"), fmt)
                       + (" TTA" if s.with_tta and "test_error" in s.deltas else ""))
        row += [_fmt_extra(k, *s.stats[k], regression) if k in s.stats else "-" for k in extra]
        rows.append(row)
    return header, rows


def closing_notes(summaries: Sequence[RecipeSummary]) -> list[str]:
    """Lines printed under the table: diverged runs and warnings, each naming its recipe."""
    notes = []
    diverged = sum(len(s.diverged) for s in summaries)
    if diverged:
        which = ", ".join(f"{s.recipe} ({len(s.diverged)})" for s in summaries if s.diverged)
        first = next(s.diverged[0] for s in summaries if s.diverged)
        notes.append(f"{diverged} run(s) diverged: {which}; e.g. seed {first['seed']}: loss {first['value']:.3g} at "
                     f"epoch {first['epoch']}, step {first['step']} (lower the learning rate or the strength)")
    for s in summaries:
        notes += [f"⚠ {s.recipe}: {w}" for w in s.warnings]
    return notes


def caption(summaries: Sequence[RecipeSummary]) -> str:
    n = {len(s.seeds) for s in summaries if s.recipe != "ridge (linear)"} or {1}
    tta = ", TTA: the recipe's error with test-time augmentation" if any(s.with_tta for s in summaries) else ""
    k = _family(summaries)
    level = ("95% interval" if k == 1 else
             f"interval adjusted for {k} comparisons (each at {100 * (1 - 0.05 / k):.4g}%, 95% for all together)")
    if is_regression(summaries):
        delta = (f"Δ test RMSE: recipe − baseline paired by seed, in the target's units, {level}, * beyond seed noise; "
                 if any(s.deltas for s in summaries) else "")
        return (f"RMSE in the target's units, mean ± std over {n.pop() if len(n) == 1 else 'varying numbers of'} "
                f"seeds; gap = test RMSE − train RMSE; {delta}ridge (linear): one closed-form fit, not compared; "
                "strength ✓: tuned on validation; ens: RMSE of the seeds' averaged predictions")
    delta = (f"Δ test: recipe − baseline paired by seed, in points, {level}, * beyond seed noise{tta}; "
             if any(s.deltas for s in summaries) else "")
    return (f"mean ± std over {n.pop() if len(n) == 1 else 'varying numbers of'} seeds; gap = test err − train err; "
            f"{delta}"
            "strength ✓: tuned on validation; ens: test error of the seeds' averaged predictions")


def _build_table(summaries, header, rows, keep, *, title: str, wrap: bool = False) -> Table:
    table = Table(title=Text(title), caption=caption(summaries))  # a path's [brackets] are not markup
    for i in keep:
        h = header[i]
        table.add_column(h, justify="left" if i == 0 else "right", no_wrap=not wrap, overflow="fold",
                         style="bold" if h.startswith("gap") else None)
    best_test = min((s.stats["test_error"][0] for s in summaries if "test_error" in s.stats), default=None)
    for s, row in zip(summaries, rows):
        style = "green" if best_test is not None and s.stats.get("test_error", (None,))[0] == best_test else None
        table.add_row(*(row[i] for i in keep), style=style)
    return table


def _table_width(console: Console, table: Table) -> int:
    """The width the table needs to show every cell whole (its caption may wrap)."""
    caption, table.caption = table.caption, None
    try:
        return Measurement.get(console, console.options.update(width=10_000), table).maximum
    finally:
        table.caption = caption


def print_table(summaries: Sequence[RecipeSummary], *, title: str, console=None, verdict=None) -> None:
    """The table, then the closing notes and the verdict.  A number is never cut: in a terminal too
    narrow for every column the extra columns (ens, TTA, epochs, ECE: results.csv and report.html
    have them) are left out from the right and named under the table, and when even the main
    columns do not fit their cells wrap; in a log or pipe the table is printed as wide as it needs."""
    console = console or Console()
    header, rows = table_rows(summaries, terminal=True)
    delta = delta_header(summaries)
    core = header.index(delta) + 1 if delta in header else 2 + len(METRICS)
    keep = list(range(len(header)))
    table = _build_table(summaries, header, rows, keep, title=title)
    if console.is_terminal:
        while (needed := _table_width(console, table)) > console.width and len(keep) > core:
            keep.pop()
            table = _build_table(summaries, header, rows, keep, title=title)
        if needed > console.width:
            table = _build_table(summaries, header, rows, keep, title=title, wrap=True)
        console.print(table)
    else:
        width, needed = console.width, _table_width(console, table)
        console.width = max(width, needed)  # a log has no right edge; only the table is widened
        try:
            console.print(table)
        finally:
            console.width = width
    left_out = header[len(keep):]  # keep is always a prefix of the columns
    if left_out:
        console.print(f"(too narrow for {', '.join(left_out)}: see results.csv or report.html)", highlight=False)
    for note in closing_notes(summaries):
        console.print(note, style="yellow", markup=False, highlight=False)
    if verdict is not None:
        console.print(Text.assemble(("Verdict.", "bold"), " " + verdict.text))


def write_csv(summaries: Sequence[RecipeSummary], path: Path) -> Path:
    rows = [s.row() for s in summaries]
    fields: list[str] = []
    for r in rows:
        fields += [k for k in r if k not in fields]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return atomic_write_text(path, buf.getvalue())


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'


def write_html(summaries: Sequence[RecipeSummary], images: Sequence[Path], path: Path, *, title: str,
               config: dict[str, Any], environment: dict[str, Any], verdict=None, data: str = "") -> Path:
    header, rows = table_rows(summaries)
    thead = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    desc = "".join(f"<tr><td><b>{html.escape(s.recipe)}</b></td><td>{html.escape(strength_text(s.strength))}</td>"
                   f"<td class=text>{html.escape(s.description)}</td></tr>" for s in summaries)
    notes = "".join(f"<p class=note>{html.escape(n)}</p>" for n in closing_notes(summaries))
    verdict_html = (f'<div class=verdict id=verdict><b>Verdict.</b> {html.escape(verdict.text)}</div>'
                    if verdict is not None else "")
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; padding: 0 1.5em; max-width: 70em; font-size: 18px; color: #222; }}
table {{ border-collapse: collapse; font-variant-numeric: tabular-nums; }}
table.results {{ font-size: 14px; }}
th, td {{ border-bottom: 1px solid #ccc; padding: .35em .45em; text-align: right; white-space: nowrap; }}
th {{ white-space: normal; vertical-align: bottom; }}
th:first-child, td:first-child {{ text-align: left; }}
img {{ max-width: 100%; margin: 1em 0; }}
.verdict {{ background: #eef6ee; border-left: 6px solid #2ca02c; padding: .8em 1.2em; margin: 1em 0; line-height: 1.45; }}
.note {{ color: #8a5a00; }}
.data {{ color: #555; }}
td.text {{ text-align: left; }}
pre {{ background: #f5f5f5; padding: 1em; overflow-x: auto; font-size: 13px; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p class=data>{html.escape(data)}</p>
{verdict_html}
{_img(images[0]) if images else ""}
<table class=results><thead><tr>{thead}</tr></thead><tbody>{body}</tbody></table>
{notes}
<p>{_units_note(summaries)}mean ± standard deviation over seeds. The <b>gap</b> is test error minus
train error, both measured in evaluation mode at the end of training. <b>Δ test</b> is the
recipe's test error minus the baseline's, paired by seed, with Student's t interval; with several
recipes the intervals are adjusted for their number (Bonferroni: each at 1 − 0.05/k, so that all the
calls together are wrong at most 5% of the time); <b>*</b> marks an interval that excludes zero
(beyond seed noise). results.csv has the raw 95% intervals and p-values beside the adjusted ones. The test
set was used for reporting only: early stopping, the strength search and the recommendation
looked at the validation split.</p>
{_small_note(summaries)}
<h2>Recipes</h2><table class=recipes>{desc}</table>
<h2>Plots</h2>{''.join(_img(p) for p in images[1:])}
<h2>Configuration</h2><pre>{html.escape(json.dumps(config, indent=2, sort_keys=True))}</pre>
<h2>Environment</h2><pre>{html.escape(json.dumps(environment, indent=2, sort_keys=True))}</pre>
</body></html>
"""
    return atomic_write_text(path, page)


def _units_note(summaries: Sequence[RecipeSummary]) -> str:
    if is_regression(summaries):
        return ("Regression: every error is the RMSE in the target's units (train, val, test, the gap and Δ test); "
                "test MAE and R² beside them; the ridge (linear) row is one closed-form fit, outside the comparisons; ")
    return "Errors in percent, "


def _small_note(summaries: Sequence[RecipeSummary]) -> str:
    if is_regression(summaries):
        return ("<p><small>ens RMSE: RMSE of the seeds' averaged predictions. test MAE, test R²: mean absolute "
                "error and coefficient of determination on the test set. w≈0 / h≈0: fraction of weights / hidden "
                "activations with |·| ≤ 1e-3. results.csv has every split's RMSE, MAE and R², every standard "
                "deviation, and mc_coverage (the share of test targets inside MC dropout's ±2σ band) for "
                "recipes with dropout.</small></p>")
    return """<p><small>ens test: test error of the seeds' averaged predictions. TTA test: test error with
test-time augmentation. ECE: expected calibration error on the test set (15 bins).
w≈0 / h≈0: fraction of weights / hidden activations with |·| ≤ 1e-3. results.csv has every
standard deviation.</small></p>"""
