"""The study: train each recipe over seeds on real data and report what it buys.

Rooms: :mod:`.config` (what to run), :mod:`.recipes` and :mod:`.assemble` (the catalog
room's named recipes and wiring, :mod:`regularkit.recipe`, under the study's import paths),
:mod:`.execute` (train and
measure one run), :mod:`.ledger` (which runs are done, over the search's
storage), :mod:`.pipeline` (``run_study``: runs through the ledger, then the
report), :mod:`.summary` (records -> numbers), :mod:`.report` (table, CSV,
figures, HTML) and :mod:`.objective` (a recipe as a search objective).

Names are resolved on first use (as :mod:`regularkit.data` does): a study's worker
process imports ``regularkit.study.run.worker``, which needs this package but not
the report's matplotlib and statistics.
"""

from __future__ import annotations

from regularkit._util.exports import lazy_exports

# public name -> submodule that defines it
_EXPORTS = {
    "StudyConfig": "config", "StudyResult": "pipeline", "run_study": "pipeline",
    "RECIPES": "recipes", "DEFAULT_RECIPES": "recipes", "resolve": "recipes",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = sorted(_EXPORTS)
