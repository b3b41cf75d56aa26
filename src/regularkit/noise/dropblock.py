"""DropBlock: drop contiguous squares of a feature map, not scattered units.

Ghiasi, Lin & Le (2018), "DropBlock: A regularization method for convolutional
networks", NeurIPS.  Neighbouring activations of a conv map are correlated, so
dropping single units (dropout) removes little information; DropBlock drops
``block_size x block_size`` squares instead.  Per sample and channel:

1. seeds ``M_ij ~ Bernoulli(gamma)`` at the positions where a whole block fits;
2. every seed zeroes the ``block_size x block_size`` square centred on it;
3. ``A * M * count(M) / count_ones(M)`` (normalised to keep the mean).

``gamma`` is chosen so that about ``drop_prob`` of the units are dropped
(Ghiasi et al., Eq. 1, written per dimension for non-square maps)::

    gamma = drop_prob / (kh * kw) * (H * W) / ((H - kh + 1) * (W - kw + 1)),

with ``kh = min(block_size, H)``, ``kw = min(block_size, W)``.  ``gamma_scale``
multiplies it (timm's per-stage knob); it is capped at 1.  Blocks overlap, so
the realised fraction is a little below ``drop_prob``.

Variants (timm's ``drop_block_2d`` / ``drop_block_fast_2d``, timm/layers/drop.py):

* ``fast=False``: seeds only where the whole block fits, as the paper;
* ``fast=True`` (default, timm's default): seeds anywhere, blocks clipped at
  the border; same ``gamma``, so a little more than ``drop_prob`` is dropped;
* ``batchwise=True``: one mask (1 x C x H x W) shared by the whole batch.

The normalisation divides by the kept fraction of the whole mask (all samples
and channels), as timm does.  Where we differ from timm on purpose: ``gamma``
uses the clipped block in both factors (timm divides by ``W - block_size + 1``
with the unclipped size, which is zero or negative once the block exceeds the
map); even block sizes are exact (the block spans ``k // 2`` before the seed and
``(k - 1) // 2`` after; timm's padding gives a mask one pixel too large);
``batchwise`` works in both variants (timm's fast path ignores it); a fully
dropped tensor is exactly 0 (timm divides by ``sum + 1e-7``).  Seeds are drawn
as ``u < gamma`` in float32 (:mod:`regularkit._util.rng`); timm's fast path
uses ``bernoulli_(gamma)``, the same distribution.

Scheduled DropBlock (Ghiasi et al., Sec. 3): the drop probability rises
linearly from 0 to its target over training.  :func:`scheduled_drop_prob` is
the rule, :class:`DropBlockSchedule` applies it to every :class:`DropBlock2d`
of a model after each step.  Eval is the identity.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from regularkit._util.checks import check_bool, check_int, check_non_negative, check_rate
from regularkit._util.rng import rand
from regularkit.errors import RegularkitError
from regularkit.noise.dropout import layer_generator, traceable_generator
from regularkit.noise.stochastic import Stochastic, check_float_tensor


def clipped_block(block_size: int, h: int, w: int) -> tuple[int, int]:
    """The block's height and width on an ``h x w`` map: ``block_size`` clipped to the map."""
    return min(block_size, h), min(block_size, w)


def drop_block_gamma(drop_prob: float, block_size: int, h: int, w: int, gamma_scale: float = 1.0) -> float:
    """The seed probability (module docstring): ``drop_prob / (kh kw) * H W / ((H - kh + 1)(W - kw + 1))``."""
    kh, kw = clipped_block(block_size, h, w)
    gamma = gamma_scale * drop_prob * (h * w) / (kh * kw) / ((h - kh + 1) * (w - kw + 1))
    return min(gamma, 1.0)


def valid_seeds(h: int, w: int, kh: int, kw: int, device) -> torch.Tensor:
    """``True`` where a ``kh x kw`` block centred on the position lies inside the map (rows
    ``[kh // 2, h - (kh - 1) // 2)``, columns alike): ``(h - kh + 1) * (w - kw + 1)`` positions."""
    rows = torch.arange(h, device=device)
    cols = torch.arange(w, device=device)
    ok_r = (rows >= kh // 2) & (rows < h - (kh - 1) // 2)
    ok_c = (cols >= kw // 2) & (cols < w - (kw - 1) // 2)
    return ok_r[:, None] & ok_c[None, :]


def _check_maps(x: torch.Tensor) -> torch.Tensor:
    check_float_tensor("x", x)
    if x.ndim != 4:
        raise RegularkitError(f"drop_block_2d needs feature maps N x C x H x W, got shape {tuple(x.shape)}")
    return x


def drop_block_seeds(shape, drop_prob: float, block_size: int, *, fast: bool = True, batchwise: bool = False,
                     gamma_scale: float = 1.0, device="cpu", generator: torch.Generator | None = None) -> torch.Tensor:
    """Sample the block centres (``True`` = a block is dropped there) for maps of ``shape`` N x C x H x W.

    The mask is ``1 x C x H x W`` when ``batchwise``, else ``N x C x H x W``.
    """
    n, c, h, w = (int(s) for s in shape)
    gamma = drop_block_gamma(drop_prob, block_size, h, w, gamma_scale)
    seeds = rand((1 if batchwise else n, c, h, w), device=device, generator=generator) < gamma
    if not fast:
        seeds = seeds & valid_seeds(h, w, *clipped_block(block_size, h, w), device=seeds.device)
    return seeds


def block_mask(seeds: torch.Tensor, block_size: int) -> torch.Tensor:
    """The keep mask (``True`` = kept): every seed grown into its block (a max-pool of the seeds)."""
    kh, kw = clipped_block(block_size, seeds.shape[2], seeds.shape[3])
    padded = F.pad(seeds.to(torch.float32), ((kw - 1) // 2, kw // 2, (kh - 1) // 2, kh // 2))
    return F.max_pool2d(padded, (kh, kw), stride=1) == 0


def apply_drop_block(x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """``x * keep * numel / count(keep)`` (the kept fraction of the whole mask); all dropped: exact zeros."""
    kept = keep.sum(dtype=torch.float32)
    scale = (keep.numel() / kept.clamp(min=1.0)).to(x.dtype)
    return torch.where(keep, x * scale, torch.zeros((), dtype=x.dtype, device=x.device))


def drop_block_2d(x: torch.Tensor, drop_prob: float, block_size: int = 7, *, training: bool = True,
                  generator: torch.Generator | None = None, batchwise: bool = False, fast: bool = True,
                  gamma_scale: float = 1.0) -> torch.Tensor:
    """DropBlock on feature maps ``x`` (N x C x H x W); see the module docstring for the variants.

    Args:
        x: floating feature maps.
        drop_prob: target fraction of dropped units, in ``[0, 1)``.
        block_size: side of the dropped squares (clipped to the map).
        training: eval returns ``x`` itself.
        generator: source of the seeds; ``None`` uses torch's global RNG.
        batchwise: one mask for the whole batch.
        fast: seeds anywhere (timm's fast path) instead of only where a whole block fits.
        gamma_scale: multiplies ``gamma``.
    """
    drop_prob = check_rate("drop_prob", drop_prob)
    block_size = check_int("block_size", block_size, minimum=1)
    gamma_scale = check_non_negative("gamma_scale", gamma_scale)
    _check_maps(x)
    if not training or drop_prob == 0 or gamma_scale == 0:
        return x
    seeds = drop_block_seeds(x.shape, drop_prob, block_size, fast=check_bool("fast", fast),
                             batchwise=check_bool("batchwise", batchwise), gamma_scale=gamma_scale,
                             device=x.device, generator=traceable_generator(generator))
    return apply_drop_block(x, block_mask(seeds, block_size))


class DropBlock2d(Stochastic):
    """Module form of :func:`drop_block_2d` (timm's ``DropBlock2d`` arguments, plus ``seed=`` / ``generator=``).

    ``drop_prob`` may be changed during training (:meth:`set_drop_prob`, or
    :class:`DropBlockSchedule` for the paper's linear ramp).

    >>> layer = DropBlock2d(0.1, block_size=5, seed=0)
    """

    def __init__(self, drop_prob: float = 0.1, block_size: int = 7, *, gamma_scale: float = 1.0,
                 batchwise: bool = False, fast: bool = True, seed: int | None = None,
                 generator: torch.Generator | None = None):
        super().__init__(seed=seed, generator=generator)
        self.drop_prob = check_rate("drop_prob", drop_prob)
        self.block_size = check_int("block_size", block_size, minimum=1)
        self.gamma_scale = check_non_negative("gamma_scale", gamma_scale)
        self.batchwise = check_bool("batchwise", batchwise)
        self.fast = check_bool("fast", fast)

    def set_drop_prob(self, drop_prob: float) -> None:
        """Change the drop probability (a schedule's current value)."""
        self.drop_prob = check_rate("drop_prob", drop_prob)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        active = self.training and self.drop_prob > 0
        generator = layer_generator(self, x.device) if active else None
        return drop_block_2d(x, self.drop_prob, self.block_size, training=self.training, generator=generator,
                             batchwise=self.batchwise, fast=self.fast, gamma_scale=self.gamma_scale)

    def extra_repr(self) -> str:
        parts = [f"drop_prob={self.drop_prob}", f"block_size={self.block_size}"]
        if self.gamma_scale != 1.0:
            parts.append(f"gamma_scale={self.gamma_scale}")
        parts += [f"{k}=True" for k in ("batchwise",) if self.batchwise] + ([] if self.fast else ["fast=False"])
        return ", ".join(parts)


def scheduled_drop_prob(target: float, step: int, ramp_steps: int) -> float:
    """Scheduled DropBlock: ``target * min(1, step / ramp_steps)`` (0 at step 0, ``target`` from ``ramp_steps`` on)."""
    target = check_rate("target", target)
    step = check_int("step", step, minimum=0)
    ramp_steps = check_int("ramp_steps", ramp_steps, minimum=1)
    return target * min(1.0, step / ramp_steps)


class DropBlockSchedule:
    """Ramp every :class:`DropBlock2d` of ``model`` linearly from 0 to its own ``drop_prob`` over ``ramp_steps``.

    The targets are the layers' ``drop_prob`` when the schedule is built; the
    layers start at 0.  Call it after every optimizer step (``fit``'s
    ``after_step`` calls ``schedule(model)``).  ``state_dict`` / ``load_state_dict``
    carry the step, so a resumed run continues the ramp.
    """

    def __init__(self, model: nn.Module, ramp_steps: int):
        if not isinstance(model, nn.Module):
            raise RegularkitError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.ramp_steps = check_int("ramp_steps", ramp_steps, minimum=1)
        self.layers = [m for m in model.modules() if isinstance(m, DropBlock2d)]
        if not self.layers:
            raise RegularkitError(f"the model has no DropBlock2d layer to schedule ({type(model).__name__})")
        self.targets = [m.drop_prob for m in self.layers]
        self.step_count = 0
        self._apply()

    def _apply(self) -> None:
        for layer, target in zip(self.layers, self.targets):
            layer.set_drop_prob(scheduled_drop_prob(target, self.step_count, self.ramp_steps))

    def step(self) -> None:
        self.step_count += 1
        self._apply()

    def __call__(self, model: nn.Module | None = None) -> None:
        self.step()

    def state_dict(self) -> dict:
        return {"step_count": self.step_count}

    def load_state_dict(self, state: dict) -> None:
        self.step_count = check_int("step_count", state.get("step_count"), minimum=0)
        self._apply()
