"""Re-derive the adjusted calls of docs/results.md's tables from their printed 95% t intervals (issue 20).

The study folders behind docs/results.md are not in the repository, but each row prints the mean
paired difference and its 95% Student-t interval over n seeds, which fixes the standard error:
``se = (high - low) / 2 / t(n-1, 0.975)``.  This script reads every Markdown table of the file that has
a "Δ test" column, takes its k rows with an interval as the family, and prints each row's interval at
``1 - 0.05 / k`` (Bonferroni, as ``regularkit.metrics.paired.adjust``) with the new call.  The printed
bounds carry the rounding of the source (two decimals): a bound within 0.01 of zero is flagged.

    python bench/readjust_results.py docs/results.md [--seeds 3]
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path

from scipy import stats

CELL = re.compile(r"([+-]?\d+\.\d+) \[([+-]?\d+\.\d+), ([+-]?\d+\.\d+)\]( \*)?")


def tables(text: str):
    block: list[str] = []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            block.append(line)
        elif block:
            yield block
            block = []


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path", type=Path)
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()
    n = args.seeds
    t95 = stats.t.ppf(0.975, n - 1)
    for block in tables(args.path.read_text(encoding="utf-8")):
        rows = [(r.split("|")[1].strip(), CELL.search(r)) for r in block[2:]]
        rows = [(name, m) for name, m in rows if m]
        if not rows:
            continue
        k = len(rows)
        level = 1 - 0.05 / k
        tk = stats.t.ppf(1 - 0.05 / (2 * k), n - 1)
        print(f"\ntable with {k} comparisons: each at {100 * level:.4g}% (t {tk:.2f} instead of {t95:.2f})")
        for name, m in rows:
            mean, low, high = float(m.group(1)), float(m.group(2)), float(m.group(3))
            se = (high - low) / 2 / t95
            a_low, a_high = mean - tk * se, mean + tk * se
            call = a_low > 0 or a_high < 0
            was = bool(m.group(4))
            edge = " (a bound within 0.01 of 0: rounding)" if min(abs(a_low), abs(a_high)) < 0.01 else ""
            change = "" if call == was else ("  <- no longer beyond noise" if was else "  <- now beyond noise")
            print(f"  {name:24s} {mean:+.2f} [{a_low:+.2f}, {a_high:+.2f}]{' *' if call else ''}{change}{edge}")


if __name__ == "__main__":
    main()
