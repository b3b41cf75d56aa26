"""Mutation testing of one module against its tests: ``python tools/mutate.py --module M --tests T ...``.

The command of ``make mutate`` (docs/mutation.md); the code is the package next to
this file, :mod:`mutation` (its docstring says what a mutant is and how a run works).
``--child job.json`` is internal: the subprocess runner's pytest run of one mutant.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the mutation package, also when imported

from mutation.cli import main  # noqa: E402
from mutation.pytest_side import child_main  # noqa: E402

if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        sys.exit(child_main(json.loads(Path(sys.argv[2]).read_text())))
    sys.exit(main())
