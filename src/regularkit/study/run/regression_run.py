"""What a regression run records besides its RMSEs: MAE, R² and RMSE per split, in the target's units,
and its test predictions (for the seed ensemble and the figures).

A run on standardized targets is measured by :func:`regularkit.train.loop.evaluate` (its
``train_error`` / ``val_error`` / ``test_error`` are the RMSEs in the target's units, so the
summaries, the paired intervals and the verdict read them as they read error rates).  This
module adds, per split, ``{split}_rmse``, ``{split}_mae`` and ``{split}_r2``
(:func:`regularkit.metrics.regression.regression_metrics`, averaged over outputs) on the
predictions put back in units, ``y_hat = mean + std * z_hat``; the test predictions (n x k, in
units) take the place a classification run gives its test probabilities.

MC dropout (deck 004, Gal & Ghahramani 2016): when the final model has a noise layer with a
positive rate (dropout, DropConnect, ...), :func:`mc_coverage` runs it ``MC_PASSES`` times with
its noise on (:func:`regularkit.noise.mc_predict_std`, seeded), and records on test
``mc_test_rmse`` (the RMSE of the MC mean) and ``mc_coverage``: the share of test targets
inside the band ``mean ± 2 std`` (per output, averaged).  A Gaussian predictive would put about
95 % inside; MC dropout's spread holds only the model's uncertainty, not the noise in the
targets, so a coverage far below 0.95 says the band is too narrow to use as an interval.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from regularkit.metrics.regression import regression_metrics, rmse
from regularkit.noise import is_noise_layer, mc_predict_std
from regularkit.train.regression import predict

__all__ = ["regression_final", "target_scale", "mc_coverage", "MC_PASSES"]

#: Noisy passes averaged by the MC dropout measurement.
MC_PASSES = 30


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
            extra.update(mc_coverage(model, x, info.to_units(z.float()), info, device=device))
    return extra, test_pred


def _noisy(model: nn.Module) -> bool:
    return any(is_noise_layer(m) and (getattr(m, "p", 0) or 0) > 0 for m in model.modules())


def mc_coverage(model: nn.Module, x: torch.Tensor, y: torch.Tensor, info, *, device=None,
                seed: int = 0) -> dict[str, float]:
    """``{"mc_test_rmse", "mc_coverage"}`` (see the module docstring), or ``{}`` for a model without noise."""
    if not _noisy(model):
        return {}
    xb = x if device is None else x.to(device)
    generator = torch.Generator(device=xb.device).manual_seed(seed)
    mean, std = mc_predict_std(model, xb, MC_PASSES, generator)
    mean, std = info.to_units(mean.float().cpu()), std.float().cpu() * info.scale()
    inside = ((y - mean).abs() <= 2 * std).double().mean(0)
    return {"mc_test_rmse": rmse(mean, y), "mc_coverage": float(inside.mean())}
