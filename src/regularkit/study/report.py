"""The study's face: terminal table, results.csv, learning curves, gap chart, report.html.

Every file is written atomically, so a crash never leaves a half-written
report; the HTML embeds its images (base64), so it is one file a teacher can
copy to a USB stick and project.
"""
from __future__ import annotations

import base64
import csv
import html
import io
import json
from pathlib import Path
from typing import Any, Sequence

import matplotlib
import torch
from rich.console import Console
from rich.table import Table

from regularkit._util.fmt import pct, pct_pm
from regularkit._util.io import atomic_savefig, atomic_write_text, figure
from regularkit.metrics.calibration import calibration_bins
from regularkit.study.summary import METRICS, RecipeSummary

_LABELS = {"train_error": "train err", "val_error": "val err", "test_error": "test err", "gap": "gap"}
_EXTRA_LABELS = {"weight_sparsity": "w≈0 %", "activation_sparsity": "h≈0 %",
                 "epochs_run": "epochs", "tta_test_error": "TTA test %", "ece": "ECE %",
                 "ensemble_test_error": "ens test %"}


_EXTRA_ORDER = ("ensemble_test_error", "tta_test_error", "epochs_run", "ece", "weight_sparsity",
                "activation_sparsity")


def _extra_keys(summaries: Sequence[RecipeSummary]) -> list[str]:
    present = {k for s in summaries for k in s.stats if k not in METRICS}
    return [k for k in _EXTRA_ORDER if k in present] + sorted(present - set(_EXTRA_ORDER))


def _fmt_extra(key: str, m: float, s: float) -> str:
    # Extras show the mean only, to keep the table on one screen; results.csv has the std.
    if key == "epochs_run":
        return f"{m:.0f}"
    if key.endswith("error"):
        return pct(m)
    if key.endswith("sparsity") or key == "ece":
        return pct(m, 1)
    return f"{m:.4g}"


def table_rows(summaries: Sequence[RecipeSummary]) -> tuple[list[str], list[list[str]]]:
    extra = _extra_keys(summaries)
    header = ["recipe"] + [_LABELS[k] + " %" for k in METRICS] + [_EXTRA_LABELS.get(k, k) for k in extra]
    rows = []
    for s in summaries:
        name = s.recipe + (" ⚠" if s.warnings else "")
        if s.diverged:  # never a number computed from NaN outputs
            rows.append([name, s.status] + ["-"] * (len(header) - 2))
            continue
        row = [name] + [pct_pm(*s.stats[k]) if k in s.stats else "-" for k in METRICS]
        row += [_fmt_extra(k, *s.stats[k]) if k in s.stats else "-" for k in extra]
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


def print_table(summaries: Sequence[RecipeSummary], *, title: str, console=None) -> None:
    console = console or Console()
    header, rows = table_rows(summaries)
    n = {len(s.seeds) for s in summaries}
    caption = (f"mean ± std over {n.pop() if len(n) == 1 else 'varying numbers of'} seeds; gap = test err − train err; "
               "ens test: the seeds' averaged predictions; w≈0 / h≈0: weights / activations with |·| ≤ 1e-3")
    table = Table(title=title, caption=caption)
    for i, h in enumerate(header):
        table.add_column(h, justify="left" if i == 0 else "right", no_wrap=True,
                         style="bold" if h.startswith("gap") else None)
    best_test = min((s.stats["test_error"][0] for s in summaries if "test_error" in s.stats), default=None)
    for s, row in zip(summaries, rows):
        style = "green" if best_test is not None and s.stats.get("test_error", (None,))[0] == best_test else None
        table.add_row(*row, style=style)
    console.print(table)
    for note in closing_notes(summaries):
        console.print(f"[yellow]{note}[/]", highlight=False)


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


def plot_learning_curves(summaries: Sequence[RecipeSummary], path: Path, *, against: str = "val") -> Path:
    """Train error (dashed) and ``against`` error (solid: "val", or "test" as in the lecture's dropout figure)."""
    fig = figure(8, 5, layout=None)
    ax = fig.add_subplot()
    colors = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    other = f"{against}_error"
    later = [y for s in summaries for k in ("train_error", other)
             for y in (s.curves.get(k) or [])[max(1, len(s.curves.get(k) or []) // 10):]]
    if later:  # the first epochs' errors (near chance) would squash the part worth reading
        ax.set_ylim(0, 100 * min(1.0, 1.3 * max(later)) + 0.5)
    for i, s in enumerate(summaries):
        c = colors[i % len(colors)]
        for key, style in (("train_error", "--"), (other, "-")):
            ys = s.curves.get(key) or []
            if ys:
                ax.plot(range(1, len(ys) + 1), [100 * y for y in ys], style, color=c,
                        label=f"{s.recipe} ({'train' if key == 'train_error' else against})")
    ax.set_xlabel("epoch")
    ax.set_ylabel("error %")
    name = {"val": "validation", "test": "test"}[against]
    ax.set_title(f"Learning curves: train (dashed) and {name} (solid) error, mean over seeds")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    return atomic_savefig(fig, path, dpi=110)


def plot_gap(summaries: Sequence[RecipeSummary], path: Path) -> Path:
    fig = figure(8, 4.5, layout=None)
    ax = fig.add_subplot()
    summaries = [s for s in summaries if not s.diverged]
    names = [s.recipe for s in summaries]
    xs = range(len(names))
    width = 0.27
    for j, (key, label) in enumerate((("train_error", "train"), ("test_error", "test"), ("gap", "gap"))):
        means = [100 * s.stats[key][0] for s in summaries]
        stds = [100 * s.stats[key][1] for s in summaries]
        ax.bar([x + (j - 1) * width for x in xs], means, width, yerr=stds, capsize=3, label=label)
    ax.set_xticks(list(xs), names, rotation=20, ha="right")
    ax.set_ylabel("error %")
    ax.set_title("Train error, test error and the gap (mean ± std over seeds)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return atomic_savefig(fig, path, dpi=110)


def plot_reliability(summaries: Sequence[RecipeSummary], path: Path, n_bins: int = 15) -> Path:
    """Reliability diagram: accuracy vs confidence per recipe (test set, all seeds pooled)."""
    fig = figure(6, 6, layout=None)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], ":", color="gray", label="perfect calibration")
    for s in summaries:
        if s.pooled_probs is None:
            continue
        probs, y = s.pooled_probs
        bins = calibration_bins(torch.as_tensor(probs, dtype=torch.float64), torch.as_tensor(y), n_bins)
        keep = bins.counts > 0
        ece = s.stats.get("ece", (float("nan"),))[0]
        ax.plot(bins.confidence[keep].numpy(), bins.accuracy[keep].numpy(), "o-", ms=3,
                label=f"{s.recipe} (ECE {100 * ece:.1f}%)")
    ax.set_xlabel("confidence (max probability)")
    ax.set_ylabel("accuracy")
    ax.set_title("Reliability on the test set (seeds pooled)")
    ax.set_xlim(0, 1), ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return atomic_savefig(fig, path, dpi=110)


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'


def write_html(summaries: Sequence[RecipeSummary], images: Sequence[Path], path: Path, *, title: str,
               config: dict[str, Any], environment: dict[str, Any]) -> Path:
    header, rows = table_rows(summaries)
    thead = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    desc = "".join(f"<li><b>{html.escape(s.recipe)}</b>: {html.escape(s.description)}</li>" for s in summaries)
    notes = "".join(f"<p class=note>{html.escape(n)}</p>" for n in closing_notes(summaries))
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; padding: 0 1.5em; max-width: 70em; font-size: 18px; color: #222; }}
table {{ border-collapse: collapse; font-variant-numeric: tabular-nums; }}
th, td {{ border-bottom: 1px solid #ccc; padding: .35em .8em; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
img {{ max-width: 100%; margin: 1em 0; }}
pre {{ background: #f5f5f5; padding: 1em; overflow-x: auto; font-size: 13px; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p>Errors in percent, mean ± standard deviation over seeds. The <b>gap</b> is test error minus
train error, both measured in evaluation mode at the end of training. The test set was used for
reporting only: early stopping and every other choice looked at the validation split.</p>
<table><thead><tr>{thead}</tr></thead><tbody>{body}</tbody></table>
{notes}
<p><small>ens test: test error of the seeds' averaged predictions. TTA test: test error with
test-time augmentation. ECE: expected calibration error on the test set (15 bins).
w≈0 / h≈0: fraction of weights / hidden activations with |·| ≤ 1e-3. results.csv has every
standard deviation.</small></p>
<h2>Recipes</h2><ul>{desc}</ul>
<h2>Plots</h2>{''.join(_img(p) for p in images)}
<h2>Configuration</h2><pre>{html.escape(json.dumps(config, indent=2, sort_keys=True))}</pre>
<h2>Environment</h2><pre>{html.escape(json.dumps(environment, indent=2, sort_keys=True))}</pre>
</body></html>
"""
    return atomic_write_text(path, page)
