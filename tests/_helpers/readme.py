"""README.md read once for tests/test_readme.py and tests/test_readme_tables.py: its code blocks, prose, tables."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
#: (language, body) of every fenced block, in order; an output block has no language.
BLOCKS = [(m.group(1), m.group(2)) for m in FENCE.finditer(README)]
#: The README without its code blocks (inline code stays).
PROSE = FENCE.sub("", README)


def table(heading: str) -> list[list[str]]:
    """The rows (cells, stripped) of the first Markdown table after ``heading``, header and rule left out."""
    lines: list[str] = []
    for line in README[README.index(heading):].splitlines()[1:]:
        if line.startswith("|"):
            lines.append(line)
        elif lines:
            break
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
