"""What a regression run records besides its RMSEs: MAE, R² and RMSE per split, in the target's units,
and its test predictions (for the seed ensemble and the figures).

A run on standardized targets is measured by :func:`regularkit.train.loop.evaluate` (its
``train_error`` / ``val_error`` / ``test_error`` are the RMSEs in the target's units, so the
summaries, the paired intervals and the verdict read them as they read error rates).  This
module adds, per split, ``{split}_rmse``, ``{split}_mae`` and ``{split}_r2``
(:func:`regularkit.metrics.regression.regression_metrics`, averaged over outputs) on the
predictions put back in units, ``y_hat = mean + std * z_hat``; the test predictions (n x k, in
units) take the place a classification run gives its test probabilities.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from regularkit.metrics.regression import regression_metrics
from regularkit.train.regression import predict

__all__ = ["regression_final", "target_scale"]


def target_scale(splits) -> torch.Tensor | None:
    """The targets' std per output for ``evaluate`` / ``fit`` (``None``: a classification run)."""
    return None if splits.regression is None else splits.regression.scale()


def regression_final(model: nn.Module, splits, *, device=None, precision=None,
                     with_test: bool = True) -> tuple[dict[str, float], torch.Tensor | None]:
    """``({split}_rmse, {split}_mae, {split}_r2 for each split}, test predictions in units or None)``."""
    info = splits.regression
    sets = {"train": splits.train, "val": splits.val, **({"test": splits.test} if with_test else {})}
    extra: dict[str, Any] = {}
    test_pred = None
    for name, (x, z) in sets.items():
        pred = info.to_units(predict(model, x, device=device, precision=precision))
        for metric, value in regression_metrics(pred, info.to_units(z.float())).items():
            extra[f"{name}_{metric}"] = value
        if name == "test":
            test_pred = pred
    return extra, test_pred
