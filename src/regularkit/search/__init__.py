"""Hyper-parameter selection: search spaces, random / grid / TPE search, coarse-to-fine, k-fold.

The lecture's recipe (cs231n; Haschke's deep-learning cook book), with Optuna
doing the sampling, pruning, storage and parallel workers:

* search in log space (``LogUniform``), random rather than grid;
* coarse -> fine in stages, few epochs first (``coarse_to_fine``);
* careful with best values on the border (``border_warnings``);
* select on validation error or k-fold (``kfold_evaluate``), never on test
  (``final_test`` looks at the test set once and records it);
* many models in parallel (``workers=N``; one study across machines through a
  shared storage, see docs/distributed.md).
"""
from regularkit.search.border import border_warnings
from regularkit.search.coarse_to_fine import CoarseToFineResult, coarse_to_fine, narrow_space
from regularkit.search.discipline import final_test, final_test_record
from regularkit.search.kfold import KFoldResult, kfold_evaluate
from regularkit.search.optimize import run_search
from regularkit.search.report import SearchReport, search_report
from regularkit.search.results import SearchResult, TrialRecord, result_from_study
from regularkit.search.space import Categorical, Int, LogUniform, SearchSpace, Uniform
from regularkit.search.storage import open_storage, recover_dead_trials

__all__ = [
    "Categorical", "CoarseToFineResult", "Int", "KFoldResult", "LogUniform", "SearchReport", "SearchResult",
    "SearchSpace", "TrialRecord", "Uniform", "border_warnings", "coarse_to_fine", "final_test",
    "final_test_record", "kfold_evaluate", "narrow_space", "open_storage", "recover_dead_trials",
    "result_from_study", "run_search", "search_report",
]
