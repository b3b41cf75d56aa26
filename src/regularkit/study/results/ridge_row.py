"""The regression study's linear reference: closed-form ridge on the same features, and the seeds' ensemble.

A network that cannot beat a linear model is the first thing a user must learn (deck 000: ridge
regression, L2 as Tikhonov).  Every regression study fits
:func:`regularkit.analysis.ridge_on_validation` on the run's own splits: the features as the
network sees them (flattened to n x d), the targets in their units, alpha chosen by validation
MSE over the log grid, the model fitted on the training rows only.  Its RMSE, MAE and R² on each
split (:func:`regularkit.metrics.regression.regression_metrics`) make the ``ridge (linear)`` row:
one deterministic fit (std 0), outside the paired comparisons (nothing to pair by seed), which
the verdict compares with every network's mean test RMSE (:func:`ridge_sentence`).

:func:`add_regression_ensembles` is the regression ``ens`` column: the RMSE of the seeds'
averaged test predictions (in units), the counterpart of averaged probabilities.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from regularkit.analysis import ridge_on_validation
from regularkit.metrics.regression import regression_metrics, rmse
from regularkit.study.run.artifacts import stored_outputs
from regularkit.study.results.summary import RecipeSummary

__all__ = ["RIDGE", "ridge_summary", "ridge_sentence", "add_regression_ensembles", "test_targets"]

RIDGE = "ridge (linear)"


def _units(splits, z) -> np.ndarray:
    return splits.regression.to_units(z.float()).numpy().astype(np.float64)


def test_targets(splits) -> np.ndarray:
    """The test targets in their units (n x k)."""
    return _units(splits, splits.y_test)


def ridge_summary(splits) -> RecipeSummary:
    """The ``ridge (linear)`` row of a regression study on ``splits`` (see the module docstring)."""
    flat = {name: x.reshape(x.shape[0], -1).double().numpy() for name, x in
            (("train", splits.x_train), ("val", splits.x_val), ("test", splits.x_test))}
    y = {"train": _units(splits, splits.y_train), "val": _units(splits, splits.y_val), "test": test_targets(splits)}
    fit = ridge_on_validation(flat["train"], y["train"], flat["val"], y["val"])
    s = RecipeSummary(recipe=RIDGE, description=f"closed-form ridge regression with an intercept, alpha = "
                      f"{fit.alpha:g} chosen on validation MSE, fitted on the training rows", seeds=[0])
    for split in ("train", "val", "test"):
        pred = flat[split] @ fit.coef + fit.intercept
        m = regression_metrics(pred, y[split])
        s.stats[f"{split}_error"] = (m["rmse"], 0.0)
        for name in ("rmse", "mae", "r2"):
            s.stats[f"{split}_{name}"] = (m[name], 0.0)
    s.stats["gap"] = (s.stats["test_error"][0] - s.stats["train_error"][0], 0.0)
    s.strength = {"field": "alpha", "value": float(fit.alpha), "tuned": True}
    s.task = "regression"
    return s


def ridge_sentence(ridge: RecipeSummary, summaries: Sequence[RecipeSummary]) -> str | None:
    """The verdict's line on the linear reference: when it beats every network's mean test RMSE, or none."""
    nets = [s for s in summaries if not s.diverged and "test_error" in s.stats and s.recipe != RIDGE]
    if not nets:
        return None
    best = min(nets, key=lambda s: s.stats["test_error"][0])
    r = ridge.stats["test_error"][0]
    if r < best.stats["test_error"][0]:
        return (f"The linear ridge model (test RMSE {r:.4g}) beats every network, the best of which ({best.recipe}) "
                f"reaches {best.stats['test_error'][0]:.4g}: on this data a linear model is the one to beat, and "
                "the networks do not.")
    return (f"The best network ({best.recipe}, test RMSE {best.stats['test_error'][0]:.4g}) does better than the "
            f"linear ridge model ({r:.4g}).")


def add_regression_ensembles(summaries, records, store, splits) -> int:
    """``ensemble_test_error``: the RMSE of each recipe's seeds' averaged test predictions; returns how many
    finished runs had no predictions in this store (another machine's)."""
    by_recipe, unseen = stored_outputs(records, store)
    y = test_targets(splits)
    for s in summaries:
        preds = by_recipe.get(s.recipe, [])
        if len(preds) >= 2 and all(p.shape == y.shape for p in preds):
            s.stats["ensemble_test_error"] = (rmse(np.mean(preds, axis=0), y), 0.0)
        if preds and preds[0].shape == y.shape:
            s.pooled_probs = (np.mean(preds, axis=0), y)  # the figures' predicted-vs-true: the seeds' mean
    return unseen
