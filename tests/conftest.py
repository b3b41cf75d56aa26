"""Shared test set-up: small thread count so the suite behaves the same on CI; tests/ on sys.path for _helpers."""
import sys
from pathlib import Path

import torch

_HERE = str(Path(__file__).parent)
if _HERE not in sys.path:  # the suite runs with --import-mode=importlib, which leaves sys.path alone
    sys.path.insert(0, _HERE)

torch.set_num_threads(1)
