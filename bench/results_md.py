"""Print a study folder's results.csv as a Markdown table (for docs/results.md).

    python bench/results_md.py runs/fmnist-params [--extra ensemble_test_error,ece]
"""
from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

CORE = ("train_error", "val_error", "test_error", "gap")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("study")
    ap.add_argument("--extra", default="ensemble_test_error,ece")
    args = ap.parse_args()
    folder = Path(args.study)
    rows = list(csv.DictReader(open(folder / "results.csv")))
    extra = [e for e in args.extra.split(",") if e and f"{e}_mean" in rows[0]]
    head = ["recipe", "train err %", "val err %", "test err %", "gap %"] + [e.replace("_", " ") + " %" for e in extra]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        cells = [r["recipe"]]
        for k in CORE:
            cells.append(f"{100 * float(r[k + '_mean']):.2f} ± {100 * float(r[k + '_std']):.2f}")
        for k in extra:
            cells.append(f"{100 * float(r[k + '_mean']):.2f}" if r.get(k + "_mean") else "-")
        print("| " + " | ".join(cells) + " |")
    import tomllib
    cfg = tomllib.loads((folder / "study.toml").read_text())
    env = json.loads((folder / "environment.json").read_text())
    print(f"\n<sub>seeds per recipe: {rows[0]['n_seeds']}; git {env['git_revision'][:12]}; "
          f"torch {env['versions']['torch']}; {env['machine']['processor']}, {env['machine']['cpu_count']} cores; "
          f"config: {', '.join(f'{k}={v}' for k, v in cfg.items() if k not in ('recipes', 'out', 'study_name'))}</sub>")


if __name__ == "__main__":
    main()
