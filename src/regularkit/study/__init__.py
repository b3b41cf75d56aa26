"""The study: train each recipe over seeds on real data and report what it buys.

Rooms: :mod:`.config` (what to run), :mod:`.recipes` and :mod:`.assemble` (the catalog
room's named recipes and wiring, :mod:`regularkit.recipe`, under the study's import paths),
:mod:`.execute` (train and
measure one run), :mod:`.ledger` (which runs are done, over the search's
storage), :mod:`.pipeline` (``run_study``: runs through the ledger, then the
report), :mod:`.summary` (records -> numbers), :mod:`.report` (table, CSV,
figures, HTML) and :mod:`.objective` (a recipe as a search objective).
"""
from regularkit.study.config import StudyConfig
from regularkit.study.pipeline import StudyResult, run_study
from regularkit.study.recipes import DEFAULT_RECIPES, RECIPES, resolve

__all__ = ["StudyConfig", "StudyResult", "RECIPES", "DEFAULT_RECIPES", "resolve", "run_study"]
