"""The study: train each recipe over seeds on real data and report what it buys."""
from regularkit.study.config import StudyConfig
from regularkit.study.recipes import DEFAULT_RECIPES, RECIPES, resolve


def run_study(*args, **kwargs):
    from regularkit.study.runner import run_study as _run
    return _run(*args, **kwargs)


__all__ = ["StudyConfig", "RECIPES", "DEFAULT_RECIPES", "resolve", "run_study"]
