"""Ensembles: average the predictions of several models (deck 003 "Ensemble Methods", deck 004).

Averaging ``k`` learners whose errors have variance ``v`` and covariance
``c`` gives an expected squared error ``v / k + (k - 1) c / k`` (Goodfellow
et al. 2016, §7.11; deck 003): the less correlated the members, the larger
the gain.  Members can be the same model from different seeds, the top
runs of a study, or snapshots of one run (:class:`SnapshotEnsemble`).

``average="probs"`` averages softmax probabilities (the usual ensemble);
``"logits"`` averages raw outputs (a geometric mean of probabilities,
up to normalization).  With ``log=True`` the probability average is
returned as ``log(mean p)``: softmax of it is the average again, so it can
go wherever logits are expected (cross-entropy, argmax).
"""
from __future__ import annotations

import math
from typing import Any, Callable, Iterable, Mapping, Sequence

import torch
from torch import nn

from regularkit._util.checks import check_choice
from regularkit._util.distributed import unwrap_model
from regularkit.averaging._config import AveragerConfig
from regularkit.errors import RegularkitError

AVERAGES = ("probs", "logits")


def average_outputs(outputs: Sequence[torch.Tensor], average: str = "probs", *, dim: int = 1,
                    log: bool = False) -> torch.Tensor:
    """Mean of ``softmax(output, dim)`` (``"probs"``) or of the outputs (``"logits"``)."""
    check_choice("average", average, AVERAGES)
    if len(outputs) == 0:
        raise RegularkitError("average_outputs needs at least one output, got 0")
    stacked = torch.stack(list(outputs))
    if average == "logits":
        return stacked.mean(dim=0)
    if log:
        # log(mean softmax) without leaving log space: logsumexp of log-probs minus log k
        log_p = stacked.log_softmax(dim=dim + 1 if dim >= 0 else dim)
        return torch.logsumexp(log_p, dim=0) - math.log(len(outputs))
    return stacked.softmax(dim=dim + 1 if dim >= 0 else dim).mean(dim=0)


class Ensemble(AveragerConfig, nn.Module):
    """``forward(x)`` = the average over ``models`` of their outputs (see :func:`average_outputs`).

    Outputs are N x K (class dimension 1).  Members follow the ensemble's
    train/eval mode like any submodule; put it in ``.eval()`` to predict.
    ``get_config()`` holds ``average`` and ``log``, not the members:
    ``Ensemble.from_config(config, models)``.

    Members are held, never copied: a DDP / DataParallel / ``torch.compile``
    wrapper is replaced by the bare model inside it (the same object, sharing
    its weights), so the ensemble's ``state_dict`` keys carry no ``module.`` /
    ``_orig_mod.`` and its forward starts no collective (DDP's forward
    broadcasts buffers across ranks: an ensemble evaluated on one rank alone
    would wait forever).  To compile, compile the ensemble itself.
    """

    def __init__(self, models: Iterable[nn.Module], average: str = "probs", *, log: bool = False):
        super().__init__()
        models = list(models)
        if not models:
            raise RegularkitError("Ensemble needs at least one model, got 0")
        for m in models:
            if not isinstance(m, nn.Module):
                raise RegularkitError(f"Ensemble members must be nn.Module, got {type(m).__name__}")
        self.members = nn.ModuleList(unwrap_model(m) for m in models)  # the bare models themselves, not copies
        self.average = check_choice("average", average, AVERAGES)
        if not isinstance(log, bool):
            raise RegularkitError(f"log must be True or False, got {log!r}")
        self.log = log

    @classmethod
    def from_state_dicts(cls, factory: Callable[[], nn.Module], state_dicts: Iterable[Mapping[str, Any]],
                         average: str = "probs", *, log: bool = False) -> Ensemble:
        """Build one member per state dict with ``factory()`` (e.g. the top-k runs of a study)."""
        if not callable(factory):
            raise RegularkitError(f"factory must be callable, got {type(factory).__name__}")
        members = []
        for sd in state_dicts:
            model = unwrap_model(factory())
            model.load_state_dict(sd)
            members.append(model)
        return cls(members, average, log=log)

    def forward(self, *args, **kwargs) -> torch.Tensor:
        return average_outputs([m(*args, **kwargs) for m in self.members], self.average, log=self.log)

    def __len__(self) -> int:
        return len(self.members)

    def extra_repr(self) -> str:
        return f"average={self.average!r}, log={self.log}"


__all__ = ["Ensemble", "average_outputs"]
