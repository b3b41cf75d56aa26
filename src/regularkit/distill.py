"""Knowledge distillation: train a student on a teacher's softened predictions.

Hinton, Vinyals & Dean (2015), "Distilling the knowledge in a neural network".
The teacher's class probabilities, softened with a temperature ``T``
(``softmax(z / T)``: ``T > 1`` spreads the mass over the wrong classes, whose
relative sizes carry the "dark knowledge"), are the student's soft targets;
the loss is a weighted average with the ordinary cross-entropy on the labels::

    L = alpha * T^2 * KL( softmax(t / T) || softmax(s / T) ) + (1 - alpha) * CE(s, y)

with ``s`` the student's logits and ``t`` the teacher's.  The ``T^2`` factor
(Hinton et al., Sec. 2): the gradients of the soft term scale as ``1 / T^2``, so
multiplying by ``T^2`` keeps the two terms' relative weight when ``T`` changes.
The KL and the cross-entropy to the softened teacher differ by the teacher's
entropy, a constant in the student: same gradients, but the KL is 0 when the
student matches, which makes the value readable.

A teacher given as probabilities (``teacher_probs=True``: an ensemble's averaged
predictions, e.g. the study's seeds) is softened as ``p^(1/T) / sum p^(1/T)``,
which is ``softmax(log p / T)``: the same rule as for logits ``log p``.

How the peers write it (none ships it as a library loss):

* torch's knowledge-distillation tutorial: ``KLDivLoss(reduction="batchmean")(log_softmax(s/T),
  softmax(t/T)) * T**2``, the same soft term; with ``KLDivLoss``'s default
  ``reduction="mean"`` it would be divided by K as well (a common slip);
* the Keras ``Distiller`` example: ``alpha * student_loss + (1 - alpha) * distillation_loss``,
  i.e. its ``alpha`` weighs the HARD loss (0.1 there is 0.9 here); its soft term is
  ``KLDivergence(softmax(t/T), softmax(s/T)) * T**2``, as here.

Here ``alpha`` weighs the soft term, as in Hinton et al.'s "weighted average"
where the soft term dominates.  The teacher never receives a gradient.

Training with ``fit``: the labels carry the teacher.  ``fit`` shuffles the rows of ``(x, y)``
and hands each batch to the loss as ``loss_fn(logits, y)``; :func:`pack_targets` makes the
one N x K target that travels with its row, ``p + 2 onehot(y)`` (``p`` the teacher's
probabilities), and :class:`PackedDistillationLoss` unpacks it per batch.  The true class's
column lies in ``[2, 3]``, every other in ``[0, 1]``: the label is the argmax (what ``fit``'s
first-batch check and every hard-label reader see) and ``p`` is the rest, to float32
rounding (2.4e-7 on the true class's probability).  Whatever shuffles, batches or
re-runs a batch (SAM, R-Drop) moves the teacher's row with its example.  Targets that
mixing or label smoothing would rewrite are refused where the recipe is checked
(:mod:`regularkit.study.run.teacher`).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from regularkit._util.checks import check_bool, check_choice, check_in_range, check_positive
from regularkit.errors import RegularkitError
from regularkit.losses import REDUCTIONS, cross_entropy, kl_divergence

__all__ = ["soften", "distillation_loss", "DistillationLoss", "pack_targets", "unpack_targets",
           "PackedDistillationLoss"]

#: What :func:`pack_targets` adds to the true class's column: above any probability, so the label is the argmax.
LABEL_OFFSET = 2.0


def _check_logits(name: str, x) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise RegularkitError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 2 or not x.is_floating_point():
        raise RegularkitError(f"{name} must be floating N x K, got shape {tuple(x.shape)} and dtype {x.dtype}")
    return x


def soften(teacher: torch.Tensor, temperature: float, *, teacher_probs: bool = False) -> torch.Tensor:
    """The softened teacher distribution ``softmax(t / T)`` (or ``softmax(log p / T)`` for probabilities)."""
    temperature = check_positive("temperature", temperature)
    teacher = _check_logits("teacher", teacher).detach()
    if check_bool("teacher_probs", teacher_probs):
        if bool((teacher < 0).any()):
            raise RegularkitError(f"teacher probabilities must be >= 0, got a minimum of {float(teacher.min())}")
        teacher = torch.log(teacher)
    return F.softmax(teacher / temperature, dim=1)


def distillation_loss(student_logits: torch.Tensor, teacher: torch.Tensor, y: torch.Tensor | None = None, *,
                      temperature: float = 4.0, alpha: float = 0.9, teacher_probs: bool = False,
                      reduction: str = "mean") -> torch.Tensor:
    """``alpha * T^2 * KL(softmax(t/T) || softmax(s/T)) + (1 - alpha) * CE(s, y)`` (module docstring).

    Args:
        student_logits: N x K.
        teacher: the teacher's logits N x K, or its probabilities with ``teacher_probs=True``.
        y: class indices (N,) or soft targets N x K; needed unless ``alpha == 1``.
        temperature: ``T > 0`` (Hinton et al. use 1 to 20; ``T = 1`` is plain matching of probabilities).
        alpha: weight of the soft term in ``[0, 1]``.
        reduction: ``"mean"`` over examples, ``"sum"`` or ``"none"``.
    """
    student_logits = _check_logits("student_logits", student_logits)
    temperature = check_positive("temperature", temperature)
    alpha = check_in_range("alpha", alpha, 0.0, 1.0)
    check_choice("reduction", reduction, REDUCTIONS)
    if tuple(teacher.shape) != tuple(student_logits.shape):
        raise RegularkitError(f"teacher must have the student's shape {tuple(student_logits.shape)}, "
                              f"got {tuple(teacher.shape)}")
    target = soften(teacher, temperature, teacher_probs=teacher_probs).to(student_logits.dtype)
    soft = kl_divergence(target, student_logits / temperature, reduction="none") * temperature ** 2
    if alpha == 1.0:
        loss = soft
    else:
        if y is None:
            raise RegularkitError(f"distillation_loss with alpha={alpha} needs the labels y (alpha = 1 does not)")
        loss = alpha * soft + (1.0 - alpha) * cross_entropy(student_logits, y, reduction="none")
    if reduction == "mean":
        return loss.mean()
    return loss.sum() if reduction == "sum" else loss


class DistillationLoss(nn.Module):
    """Module form of :func:`distillation_loss`: ``loss(student_logits, teacher, y)``."""

    def __init__(self, temperature: float = 4.0, alpha: float = 0.9, *, teacher_probs: bool = False,
                 reduction: str = "mean"):
        super().__init__()
        self.temperature = check_positive("temperature", temperature)
        self.alpha = check_in_range("alpha", alpha, 0.0, 1.0)
        self.teacher_probs = check_bool("teacher_probs", teacher_probs)
        self.reduction = check_choice("reduction", reduction, REDUCTIONS)

    def forward(self, student_logits: torch.Tensor, teacher: torch.Tensor,
                y: torch.Tensor | None = None) -> torch.Tensor:
        return distillation_loss(student_logits, teacher, y, temperature=self.temperature, alpha=self.alpha,
                                 teacher_probs=self.teacher_probs, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, alpha={self.alpha}" + (
            ", teacher_probs=True" if self.teacher_probs else "")


def pack_targets(y: torch.Tensor, teacher_probs: torch.Tensor) -> torch.Tensor:
    """One float32 N x K target per example, ``teacher_probs + 2 onehot(y)`` (module docstring)."""
    teacher_probs = _check_logits("teacher_probs", teacher_probs)
    if not isinstance(y, torch.Tensor) or y.ndim != 1 or y.is_floating_point() or len(y) != len(teacher_probs):
        raise RegularkitError(f"y must be {len(teacher_probs)} class indices, one per teacher row, got "
                              f"{tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__}")
    lo, hi = float(teacher_probs.min()), float(teacher_probs.max())
    if lo < 0 or hi > 1:
        raise RegularkitError(f"teacher_probs must be probabilities in [0, 1], got values in [{lo:.4g}, {hi:.4g}]")
    onehot = F.one_hot(y.long(), teacher_probs.shape[1]).to(torch.float32)
    return teacher_probs.detach().to(torch.float32, copy=True) + LABEL_OFFSET * onehot


def unpack_targets(packed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(y, teacher_probs)`` from :func:`pack_targets`'s rows."""
    y = packed.argmax(1)
    return y, (packed - LABEL_OFFSET * F.one_hot(y, packed.shape[1]).to(packed.dtype)).clamp_(0.0, 1.0)


class PackedDistillationLoss(nn.Module):
    """``loss_fn(logits, packed)`` for ``fit``: :func:`distillation_loss` on the teacher's probabilities
    (``teacher_probs=True``: tempered as ``softmax(log p / T)``) and the labels that :func:`pack_targets` packed."""

    def __init__(self, temperature: float = 4.0, alpha: float = 0.5):
        super().__init__()
        self.temperature = check_positive("temperature", temperature)
        self.alpha = check_in_range("alpha", alpha, 0.0, 1.0)

    def get_config(self) -> dict:
        return {"temperature": self.temperature, "alpha": self.alpha}

    def forward(self, logits: torch.Tensor, packed: torch.Tensor) -> torch.Tensor:
        if packed.ndim != 2 or packed.shape != logits.shape:
            raise RegularkitError(f"distillation needs the packed targets N x K of pack_targets, shaped as the "
                                  f"logits {tuple(logits.shape)}; got {tuple(packed.shape)}")
        y, teacher = unpack_targets(packed.float())
        return distillation_loss(logits.float(), teacher, y, temperature=self.temperature, alpha=self.alpha,
                                 teacher_probs=True)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, alpha={self.alpha}"
