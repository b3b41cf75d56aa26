"""Print a study folder's results.csv as a Markdown table (for docs/results.md).

    python bench/results_md.py runs/fmnist-params [--extra ensemble_test_error,ece]
"""
from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

CORE = ("train_error", "val_error", "test_error", "gap")


def _strength(r: dict) -> str:
    """``field = value`` (✓ when searched on validation), or - for a recipe without a strength."""
    if not r.get("strength_field"):
        return "-"
    raw = r["strength_value"]
    values = json.loads(raw) if raw.startswith("{") else {r["strength_field"]: float(raw)}  # joint: a JSON object
    shown = [f"{k.split('.')[-1]} = {v:.3g}" if abs(v) >= 1e-3 or v == 0 else f"{k.split('.')[-1]} = {v:.2e}"
             for k, v in values.items()]
    return ", ".join(shown) + (" ✓" if r.get("strength_tuned") == "True" else "")


def _delta(r: dict, metric: str) -> str:
    """The paired difference to the baseline in points with its interval; ``*`` when beyond seed noise."""
    if not r.get(f"delta_{metric}_mean"):
        return "base" if r["recipe"] == "baseline" else "-"
    mean, low, high = (100 * float(r[f"delta_{metric}_{k}"]) for k in ("mean", "low", "high"))
    star = " *" if r.get(f"delta_{metric}_beyond_noise") == "True" else ""
    tta = " (TTA)" if metric == "test_error" and r.get("delta_test_error_with_tta") == "True" else ""
    return f"{mean:+.2f} [{low:+.2f}, {high:+.2f}]{star}{tta}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("study")
    ap.add_argument("--extra", default="ensemble_test_error,ece")
    args = ap.parse_args()
    folder = Path(args.study)
    rows = list(csv.DictReader(open(folder / "results.csv")))
    extra = [e for e in args.extra.split(",") if e and f"{e}_mean" in rows[0]]
    tuned = "strength_value" in rows[0]
    deltas = "delta_test_error_mean" in rows[0]
    head = (["recipe"] + (["strength"] if tuned else []) + ["train err %", "val err %", "test err %", "gap %"]
            + (["Δ test (95% CI)"] if deltas else []) + [e.replace("_", " ") + " %" for e in extra])
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        cells = [r["recipe"]]
        if tuned:
            cells.append(_strength(r))
        for k in CORE:
            cells.append(f"{100 * float(r[k + '_mean']):.2f} ± {100 * float(r[k + '_std']):.2f}")
        if deltas:
            cells.append(_delta(r, "test_error"))
        for k in extra:
            cells.append(f"{100 * float(r[k + '_mean']):.2f}" if r.get(k + "_mean") else "-")
        print("| " + " | ".join(cells) + " |")
    verdict = folder / "verdict.json"
    if verdict.is_file():
        print("\n> **Verdict** (as the study printed it). " + json.loads(verdict.read_text())["text"])
    import tomllib
    cfg = tomllib.loads((folder / "study.toml").read_text())
    env = json.loads((folder / "environment.json").read_text())
    print(f"\n<sub>seeds per recipe: {rows[0]['n_seeds']}; git {env['git_revision'][:12]}; "
          f"torch {env['versions']['torch']}; {env['machine']['processor']}, {env['machine']['cpu_count']} cores; "
          f"config: {', '.join(f'{k}={v}' for k, v in cfg.items() if k not in ('recipes', 'out', 'study_name'))}</sub>")


if __name__ == "__main__":
    main()
