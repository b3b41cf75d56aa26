"""Test-time averaging: Monte Carlo dropout versus the weight-scaling rule.

A network trained with noise computes ``y = f(x, z)`` with a random mask
``z``; at test time we want ``E_z[f(x, z)] = sum_z p(z) f(x, z)`` (deck 004,
"Dropout: test time").  Two ways to get it:

* weight scaling (plain ``model.eval()``): replace every mask by its
  expectation -- exact for a network linear in the masked units, an
  approximation once a nonlinearity follows the noise (Srivastava et al.
  2014, Section 7.5; for ReLU after the noise, Jensen's inequality makes the
  scaled net under-estimate ``E_z[relu(.)]``);
* Monte Carlo averaging over ``k`` masks (Gal & Ghahramani 2016, "Dropout as
  a Bayesian approximation"): keep the noise layers in train mode, run the
  net ``k`` times, average.  Unbiased for ``E_z``, with error ~ ``std / sqrt(k)``.

During Monte Carlo averaging only the noise layers run in train mode; every
other module (BatchNorm above all) stays in eval mode, so the running
statistics are neither used as batch statistics nor updated.
"""
from __future__ import annotations

import contextlib
from typing import Callable, Iterator

import torch
from torch import nn

from regularkit._util.checks import check_int
from regularkit._util.rng import check_generator
from regularkit.noise.stochastic import Stochastic, use_generator

# torch's own noise layers also count as "dropout" for Monte Carlo averaging.
TORCH_NOISE_LAYERS = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout)

Transform = Callable[[torch.Tensor], torch.Tensor] | None


def is_noise_layer(module: nn.Module) -> bool:
    """Does ``module`` draw noise in train mode (a regularkit noise layer or a torch dropout)?"""
    return isinstance(module, (Stochastic,) + TORCH_NOISE_LAYERS)


@contextlib.contextmanager
def mc_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Noise layers in train mode, everything else in eval mode; every module's mode restored after."""
    saved = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        for m in model.modules():
            if is_noise_layer(m):
                m.training = True  # not m.train(): that would also flip the layer's children
        yield model
    finally:
        for m, mode in saved:
            m.training = mode


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    saved = [(m, m.training) for m in model.modules()]
    try:
        yield model.eval()
    finally:
        for m, mode in saved:
            m.training = mode


def _mc_moments(model: nn.Module, x: torch.Tensor, k: int, generator: torch.Generator | None,
                transform: Transform) -> tuple[torch.Tensor, torch.Tensor, torch.dtype]:
    """Mean and (population) variance over ``k`` noisy passes, accumulated in float64, and the output dtype."""
    k = check_int("k", k, minimum=1)
    check_generator(generator)
    total = total_sq = None
    with torch.no_grad(), mc_mode(model), use_generator(model, generator):
        for _ in range(k):
            out = model(x)
            out = out if transform is None else transform(out)
            dtype = out.dtype
            out = out.double()  # float64 sums: k passes of float32/bfloat16 would lose digits
            total = out if total is None else total + out
            total_sq = out * out if total_sq is None else total_sq + out * out
    mean = total / k
    var = (total_sq / k - mean * mean).clamp_min(0.0)
    return mean, var, dtype


def mc_predict(model: nn.Module, x: torch.Tensor, k: int, generator: torch.Generator | None = None, *,
               transform: Transform = None) -> torch.Tensor:
    """Monte Carlo estimate of ``E_z[f(x, z)]``: the mean of ``k`` passes with fresh noise.

    Args:
        model: any module; its noise layers (regularkit's and torch's dropouts) are
            switched to train mode for the call, all others to eval mode.
        x: the input batch.
        k: number of masks averaged (>= 1).
        generator: drives every regularkit noise layer (and seeds a fork of the
            global RNG for torch's own dropouts), so the estimate is reproducible.
        transform: applied to each pass before averaging, e.g. ``lambda z: z.softmax(-1)``
            to average probabilities rather than logits.
    """
    mean, _, dtype = _mc_moments(model, x, k, generator, transform)
    return mean.to(dtype)


def mc_predict_std(model: nn.Module, x: torch.Tensor, k: int, generator: torch.Generator | None = None, *,
                   transform: Transform = None) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`mc_predict`'s mean and the spread of the ``k`` passes, ``sqrt(mean(f^2) - mean(f)^2)``
    (population std over the masks): the predictive spread of MC dropout (deck 004)."""
    mean, var, dtype = _mc_moments(model, x, k, generator, transform)
    return mean.to(dtype), var.sqrt().to(dtype)


def weight_scaling_predict(model: nn.Module, x: torch.Tensor, *, transform: Transform = None) -> torch.Tensor:
    """The weight-scaling rule: one deterministic pass in eval mode (modes restored after)."""
    with torch.no_grad(), _eval_mode(model):
        out = model(x)
    return out if transform is None else transform(out)


def compare_mc_to_weight_scaling(model: nn.Module, x: torch.Tensor, k: int = 100,
                                 generator: torch.Generator | None = None, *,
                                 transform: Transform = None) -> dict[str, float | int | None]:
    """A small report of how far weight scaling is from the Monte Carlo ``E_z[f(x, z)]``.

    Keys: ``k``; ``max_abs_diff``, ``mean_abs_diff`` and the signed ``mean_diff``
    (MC minus weight scaling) over every output entry; ``mc_stderr``, the mean
    Monte Carlo standard error ``std / sqrt(k)`` -- differences many times larger
    are systematic (a nonlinearity after the noise), not sampling error;
    ``argmax_agreement``, the fraction of rows whose predicted class agrees
    (``None`` for outputs without a class dimension).
    """
    mean, var, _ = _mc_moments(model, x, k, generator, transform)
    scaled = weight_scaling_predict(model, x, transform=transform).double()
    diff = mean - scaled
    agreement = None
    if mean.ndim >= 2:
        agreement = float((mean.argmax(-1) == scaled.argmax(-1)).double().mean())
    return {
        "k": int(k),
        "max_abs_diff": float(diff.abs().max()),
        "mean_abs_diff": float(diff.abs().mean()),
        "mean_diff": float(diff.mean()),
        "mc_stderr": float((var / k).sqrt().mean()),
        "argmax_agreement": agreement,
    }
