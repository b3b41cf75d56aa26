"""Parameter-norm penalties: L2 (weight decay), L1, elastic net, Lp, activity penalties.

The loss a learner minimises becomes J~(w) = J(w) + alpha * Omega(w) (Goodfellow,
Bengio & Courville 2016, *Deep Learning*, sec. 7.1).  Three scalings of the same
idea are in common use and give different numbers for the same "strength":

=================  ==========================  ===================  ===========
convention         term added to the loss      gradient             source
=================  ==========================  ===================  ===========
``"half"``         lam / 2 * ||w||^2           lam * w              the default; deck 000, Goodfellow 7.1.1; torch ``SGD(weight_decay=)``, the study's ``reg.l2``
``"sum"``          lam * sum w^2               2 * lam * w          cs231n, Keras ``l2`` (``penalties.l2`` keeps it)
``n=N``            (lam / N) * sum w^2         2 * lam * w / N      DuocUC: L' = 1/n (sum err + beta * pen)
=================  ==========================  ===================  ===========

``convention`` only scales squared terms (L1 has no customary 1/2); ``n`` divides
any penalty, so ``convention="half", n=N`` is also valid.

Which parameters: by default every trainable parameter with ``ndim >= 2`` -- Linear
and Conv kernels, ``MultiheadAttention.in_proj_weight``, ``Embedding.weight``, LSTM/GRU
matrices -- except names ending in ``.bias`` and names a ``no_weight_decay()`` method
returns (timm's ``param_groups_weight_decay`` and nanoGPT's ``configure_optimizers``).
Biases and normalisation parameters (1-D) are never penalised by default ("not used
for bias b", lecture 003), because a bias does not scale an input and shrinking it only
adds bias to the fit.  ``modules`` picks the rule (``None``: the rank rule;
``DEFAULT_MODULES`` or any types: their ``weight``, the rule before; ``"all"``: every
parameter) and ``pattern`` (a regex, ``re.search`` on the qualified name from
``model.named_parameters()``) keeps a subset; see :func:`select_parameters`, the one
place that chooses parameters for penalties, constraints, decay groups and sparsity.

Strength may be a number or a schedule ``f(step) -> float``.  The step is the
object's own counter ``step_count``, saved by ``state_dict()``, counting optimizer
steps or, with ``schedule_unit="epoch"``, epochs; ``train.fit`` advances it.

Coupled vs decoupled decay.  A penalty in the loss is *coupled*: its gradient
``lam * w`` enters the optimizer with the data gradient, so momentum accumulates it
and Adam divides it by sqrt(v): weights with large gradients decay less.  AdamW
(Loshchilov & Hutter 2019, "Decoupled Weight Decay Regularization") instead shrinks
``w <- w - lr * wd * w`` outside the adaptive scaling; use :func:`decay_param_groups`
with ``torch.optim.AdamW`` for that, and no L2 penalty.  With plain SGD (no momentum)
both give w <- (1 - lr * lam) w - lr * grad J.  torch's ``SGD(weight_decay=lam)`` and
``Adam(weight_decay=lam)`` are coupled: they equal ``L2(lam)`` (the default ``convention="half"``).

Two ways to apply a weight penalty: ``penalty(model)`` in the loss (autograd), or
``penalty.add_grad_(model)`` after ``backward()`` (the closed-form gradient added to
``p.grad`` in ``torch._foreach_*`` passes; the same math, what :func:`regularkit.train.fit`
does for every weight penalty with ``fused=True``, the default).

Rooms: :mod:`~regularkit.penalties.functional` (the kernels),
:mod:`~regularkit.penalties.fused` (their gradients, added to ``p.grad`` in foreach passes),
:mod:`~regularkit.penalties.weight` (``L2``, ``L1``, ``ElasticNet``, ``Lp``, ``decay_param_groups``),
:mod:`~regularkit.penalties.activity` (``ActivityPenalty``), :mod:`~regularkit.penalties.schedule`
(strength schedules) and :mod:`~regularkit.penalties.keras` (Keras' vocabulary: ``l1``, ``l2``,
``l1_l2`` build a :class:`WeightRegularizer` called on a *tensor*; ``regularize(module,
kernel_regularizer=...)`` attaches them to a layer and ``regularization_loss(model)`` sums
everything attached).  The capitalised classes are called on a *model*.  :data:`REGISTRY` names
every penalty class; :func:`get` builds one from a name or a ``{"class_name", "config"}`` dict.
"""
from __future__ import annotations

from regularkit._util.params import ALL, DEFAULT_MODULES, select_parameters
from regularkit._util.registry import build
from regularkit.metrics.sparsity import weight_sparsity
from regularkit.penalties.activity import ActivityPenalty
from regularkit.penalties.functional import elastic_net_penalty, lp_penalty
from regularkit.penalties.fused import elastic_net_add_grad_, lp_add_grad_
from regularkit.penalties.keras import WeightRegularizer, l1, l1_l2, l2, regularization_loss, regularize
from regularkit.penalties.schedule import Scheduled, ScheduleState, Strength
from regularkit.penalties.weight import L1, L2, ElasticNet, Lp, WeightPenalty, decay_param_groups

__all__ = [
    "DEFAULT_MODULES", "ALL", "select_parameters", "elastic_net_penalty", "lp_penalty",
    "elastic_net_add_grad_", "lp_add_grad_",
    "L2", "L1", "ElasticNet", "Lp", "ActivityPenalty", "WeightPenalty", "Scheduled", "ScheduleState", "Strength",
    "decay_param_groups", "weight_sparsity",
    "WeightRegularizer", "l1", "l2", "l1_l2", "regularize", "regularization_loss", "REGISTRY", "get",
]

#: The one registry of penalty names (Keras-style spelling), used by :func:`get`, configs and the conformance suite.
REGISTRY: dict[str, type] = {
    "l2": L2, "l1": L1, "elastic_net": ElasticNet, "lp": Lp, "activity": ActivityPenalty,
}


def get(identifier):
    """A penalty from a name (``"l2"``: default strength), ``{"class_name": ..., "config": {...}}``, or a penalty."""
    return build(REGISTRY, identifier, family="penalty", base=(WeightPenalty, ActivityPenalty))


