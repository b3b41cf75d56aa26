"""Test-time augmentation: average the model over a fixed set of transformed copies of each input.

Deck 002 ("At testing: average network response at a fixed set of
transformations") and deck 004 ("Testing: average a fixed set of crops";
ResNet: 10 crops, 4 corners + centre, + flips, at several scales; He et al.
2016, following Krizhevsky et al. 2012).  In the deck-004 reading of
regularisation, training adds noise and testing marginalises it out:
``y = E_z[f(x, z)]`` approximated by a finite average over transformations z.

Sets (``transforms=``):

* ``"flips"``: identity and horizontal flip;
* ``"five_crop"``: 4 corner crops and the centre crop of ``crop_fraction`` of
  the size, each brought back to the input size (bilinear resize, or zero
  padding around the centred crop with ``crop_fit="pad"``) so any model
  that takes the input size works;
* ``"ten_crop"``: the five crops and their horizontal flips;
* ``"scales"``: zoom about the centre by each factor in ``scales`` (edge
  pixels repeated where a zoom-out leaves a border);
* a list of names (``"identity"``, ``"hflip"``, ``"vflip"``) or callables
  ``N x C x H x W -> N x C x H x W``.

``average="logits"`` averages the model's outputs; ``average="probs"``
averages their softmax (over dim 1) and so returns probabilities.  The model
runs in eval mode (its previous mode is restored afterwards); by default all
views go through it in one concatenated batch.

Wrapped models: :class:`TTA` keeps the bare model inside a DDP /
DataParallel / ``torch.compile`` wrapper
(:func:`regularkit._util.distributed.unwrap_model`), switches *its* mode and
runs it.  A wrapper's ``training`` flag need not be the bare model's (calling
``ddp.module.eval()`` leaves ``ddp.training`` True), and DDP's forward
broadcasts buffers to every rank: evaluating on one rank through the wrapper
would wait forever for the others.  Compile the TTA module itself to compile
the averaged forward.
"""
from __future__ import annotations

from functools import partial
from typing import Callable, List, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from regularkit._util.checks import check_bool, check_choice, check_in_range, check_positive
from regularkit._util.distributed import unwrap_model
from regularkit.augment.affine import affine
from regularkit.errors import RegularkitError

View = Callable[[torch.Tensor], torch.Tensor]
SETS = ("flips", "five_crop", "ten_crop", "scales")


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


def _hflip(x: torch.Tensor) -> torch.Tensor:
    return x.flip(-1)


def _vflip(x: torch.Tensor) -> torch.Tensor:
    return x.flip(-2)


NAMED = {"identity": _identity, "hflip": _hflip, "vflip": _vflip}


def _crop(x: torch.Tensor, top_frac: float, left_frac: float, fraction: float, fit: str) -> torch.Tensor:
    h, w = x.shape[-2:]
    ch, cw = max(1, round(fraction * h)), max(1, round(fraction * w))
    top, left = round(top_frac * (h - ch)), round(left_frac * (w - cw))
    patch = x[..., top:top + ch, left:left + cw]
    if fit == "pad":
        pt, pl = (h - ch) // 2, (w - cw) // 2
        return F.pad(patch, (pl, w - cw - pl, pt, h - ch - pt))
    return F.interpolate(patch, size=(h, w), mode="bilinear", align_corners=False)


def _scale(x: torch.Tensor, scale: float) -> torch.Tensor:
    if scale == 1.0:
        return x
    matrix = torch.tensor([[1.0 / scale, 0.0, 0.0], [0.0, 1.0 / scale, 0.0]])
    return affine(x, matrix, fill_mode="nearest")


def _chain(x: torch.Tensor, views: Sequence[View]) -> torch.Tensor:
    for v in views:
        x = v(x)
    return x


# Views are partials of module-level functions, so a TTA model pickles (and deep-copies) cleanly.
def crop_view(top_frac: float, left_frac: float, fraction: float, fit: str = "resize") -> View:
    """A fixed crop of ``fraction`` of the size at (top, left), given as fractions of the free room.

    (0, 0) is the top-left corner, (1, 1) the bottom-right, (0.5, 0.5) the
    centre; the crop is resized back to the input size, or zero-padded around
    its centre with ``fit="pad"``.
    """
    return partial(_crop, top_frac=top_frac, left_frac=left_frac, fraction=fraction, fit=fit)


def scale_view(scale: float) -> View:
    """Zoom about the centre by ``scale`` (> 1 magnifies), output the input size."""
    return partial(_scale, scale=scale)


def _compose(*views: View) -> View:
    return partial(_chain, views=views)


def tta_views(transforms="flips", *, crop_fraction: float = 0.875, crop_fit: str = "resize",
              scales: Sequence[float] = (0.9, 1.0, 1.1)) -> List[View]:
    """The list of view functions a TTA set stands for (see the module docstring)."""
    check_in_range("crop_fraction", crop_fraction, 0.0, 1.0, low_inclusive=False)
    check_choice("crop_fit", crop_fit, ("resize", "pad"))
    if isinstance(transforms, str):
        check_choice("transforms", transforms, SETS)
        if transforms == "flips":
            return [_identity, _hflip]
        if transforms == "scales":
            if not scales:
                raise RegularkitError("scales must hold at least one factor, got an empty sequence")
            return [scale_view(check_positive("scales", s)) for s in scales]
        corners = [(0, 0), (0, 1), (1, 0), (1, 1), (0.5, 0.5)]
        crops = [crop_view(top, left, crop_fraction, crop_fit) for top, left in corners]
        return crops if transforms == "five_crop" else crops + [_compose(c, _hflip) for c in crops]
    views = []
    for t in transforms:
        if isinstance(t, str):
            views.append(NAMED[check_choice("transform name", t, tuple(NAMED))])
        elif callable(t):
            views.append(t)
        else:
            raise RegularkitError(f"a TTA transform must be a name or a callable, got {t!r}")
    if not views:
        raise RegularkitError("transforms must hold at least one view, got an empty list")
    return views


class TTA(nn.Module):
    """Wrap ``model`` so that ``forward(x)`` averages it over a fixed set of views of ``x``.

    Args:
        model: any ``nn.Module`` taking N x C x H x W; a DDP or ``torch.compile``
            wrapper is replaced by the bare model inside it (module docstring).
        transforms: ``"flips"`` | ``"five_crop"`` | ``"ten_crop"`` | ``"scales"`` | a list (module docstring).
        average: ``"logits"`` (mean output) or ``"probs"`` (mean softmax over dim 1).
        crop_fraction, crop_fit, scales: parameters of the crop and scale sets.
        batched: run all views as one concatenated batch (fast, V times the
            memory) or one forward per view.
    """

    def __init__(self, model: nn.Module, transforms="flips", *, average: str = "logits",
                 crop_fraction: float = 0.875, crop_fit: str = "resize", scales: Sequence[float] = (0.9, 1.0, 1.1),
                 batched: bool = True):
        super().__init__()
        if not isinstance(model, nn.Module):
            raise RegularkitError(f"model must be an nn.Module, got {type(model).__name__}")
        self.model = unwrap_model(model)
        self.views = tta_views(transforms, crop_fraction=crop_fraction, crop_fit=crop_fit, scales=scales)
        self.average = check_choice("average", average, ("logits", "probs"))
        self.batched = check_bool("batched", batched)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() != 4:
            raise RegularkitError(f"TTA needs a batch N x C x H x W, got {getattr(x, 'shape', type(x).__name__)}")
        was_training = self.model.training
        self.model.eval()
        try:
            if self.batched:
                views = [v(x) for v in self.views]
                out = self.model(torch.cat(views, 0))
                out = out.view(len(views), x.shape[0], *out.shape[1:])
                return (out.softmax(2) if self.average == "probs" else out).mean(0)
            total = None
            for v in self.views:
                out = self.model(v(x))
                out = out.softmax(1) if self.average == "probs" else out
                total = out if total is None else total + out
            return total / len(self.views)
        finally:
            self.model.train(was_training)
