"""Regularization knobs on a model someone else built: the documented rules, and when they cannot apply.

A built-in model reads its knobs from the :class:`~regularkit.train.config.ModelConfig`
when it is constructed.  A user's model (``--model file.py:build``) is built
by the user's code, so the study applies the knobs afterwards, by these rules:

=====================  ==========================================================================
knob                   rule on the user's model
=====================  ==========================================================================
``dropout``            sets ``p`` of every dropout layer in it (``nn.Dropout``, ``nn.Dropout1d/2d/3d``,
                       regularkit's ``Dropout``), in module order; one rate for all, or one per
                       layer; a model without a dropout layer cannot take it (add ``nn.Dropout``
                       where you want it: where dropout goes is an architecture decision)
``dropout_kind``       ``"classic"`` replaces each of those layers by regularkit's ``Dropout(p,
                       classic=True)`` (no scaling in training, ``x keep`` at test)
``input_dropout``      wraps the model: ``Sequential(Dropout(p), model)``
``dropconnect``        replaces every ``nn.Linear`` but the head (the classifier: see
                       :func:`regularkit.transfer.find_head`) by ``DropConnectLinear`` sharing its
                       parameters; needs at least one hidden Linear
``init``, ``bias_init``  applied to every Linear and Conv layer (:func:`regularkit.init.initialize`)
``output_bias``        ``"prior"`` needs a head to set (done by the study on ``find_head``)
``batchnorm``,         refused (factory rule ``refused``): where normalisation, stochastic depth or
``drop_path``,         dropped blocks go is the model's architecture; put ``nn.BatchNorm*`` /
``drop_block``         ``DropPath`` / ``DropBlock2d`` in your factory (alpha dropout likewise)
``kind``, ``widths``,  refused (factory rule ``architecture``): a recipe that changes them asks for
``channels``, ...      another architecture
=====================  ==========================================================================

:func:`inapplicable` says, before any training, why a config cannot be applied to
a model (or ``None``); :func:`adapt` applies it.  Which knobs are applied, refused or
architecture is not listed in code here: each field of the ``ModelConfig`` says it in its
metadata (``factory=`` in :mod:`regularkit.train.model_config`, read by
:func:`regularkit.train.knobs.factory_refusal`); this module adds what only the model can tell
(a dropout layer to set, a hidden Linear for DropConnect, a head for the prior bias).
"""
from __future__ import annotations

from torch import nn

from regularkit.errors import RegularkitError
from regularkit.noise import DropConnectLinear, DropPath, Dropout
from regularkit.train.config import ModelConfig
from regularkit.train.knobs import factory_refusal
from regularkit.transfer import find_head

__all__ = ["DROPOUT_TYPES", "dropout_layers", "hidden_linears", "inapplicable", "adapt", "regularization_in",
           "as_built_note"]

DROPOUT_TYPES = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, Dropout)

def dropout_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(qualified name, layer)`` of every dropout layer, in module order."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, DROPOUT_TYPES)]


def _head(model: nn.Module) -> nn.Linear | None:
    try:
        return find_head(model)[1]
    except RegularkitError:
        return None


def hidden_linears(model: nn.Module) -> list[tuple[str, nn.Linear]]:
    """Every ``nn.Linear`` of ``model`` but its head, in module order."""
    head = _head(model)
    return [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear) and m is not head and n]


def inapplicable(cfg: ModelConfig, base: ModelConfig, model: nn.Module) -> str | None:
    """Why ``cfg`` cannot be applied to ``model`` (built by a user's factory from ``base``), or None."""
    why = factory_refusal(cfg, base)
    if why is not None:
        return why
    rates = cfg.dropout if isinstance(cfg.dropout, tuple) else (cfg.dropout,)
    layers = dropout_layers(model)
    if (any(rates) or cfg.dropout_kind == "classic") and not layers:
        return "it sets the rate of the model's dropout layers and your model has none: add nn.Dropout to it"
    if isinstance(cfg.dropout, tuple) and len(cfg.dropout) != len(layers):
        return f"it gives {len(cfg.dropout)} dropout rates but your model has {len(layers)} dropout layers"
    if cfg.dropconnect and not hidden_linears(model):
        return "it applies DropConnect to hidden nn.Linear layers and your model has none besides its head"
    if cfg.output_bias == "prior" and _head(model) is None:
        return "it sets the output bias of the classifier and your model has no nn.Linear head"
    return None


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, attr = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, attr, new)


def adapt(model: nn.Module, cfg: ModelConfig) -> nn.Module:
    """Apply ``cfg``'s knobs to ``model`` by the rules above; returns the (possibly wrapped) model.

    Architecture fields (``kind``, ``widths``, ...) are the factory's business and are not read
    here; the study refuses a recipe that changes them (:func:`inapplicable`) before any training.
    """
    reason = inapplicable(cfg, cfg, model)
    if reason is not None:
        raise RegularkitError(f"cannot apply this recipe to the model: {reason}")
    layers = dropout_layers(model)
    rates = cfg.dropout if isinstance(cfg.dropout, tuple) else (float(cfg.dropout),) * len(layers)
    if any(rates) or cfg.dropout_kind == "classic":
        for (name, layer), p in zip(layers, rates):
            if cfg.dropout_kind == "classic":
                _replace(model, name, Dropout(p, classic=True))
            else:
                layer.p = p
    if cfg.dropconnect:
        for name, linear in hidden_linears(model):
            _replace(model, name, DropConnectLinear.from_linear(linear, p=cfg.dropconnect))
    if cfg.input_dropout:
        model = nn.Sequential(Dropout(cfg.input_dropout, classic=cfg.dropout_kind == "classic"), model)
    return model


_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.LayerNorm, nn.GroupNorm)


def regularization_in(model: nn.Module) -> dict:
    """What regularizes ``model`` as it is (after :func:`adapt`), for the run record: the rate of every
    dropout, DropConnect and DropPath layer in module order, and how many normalization layers."""
    def rates(kind) -> list[float]:
        return [round(float(m.p), 6) for _, m in model.named_modules() if isinstance(m, kind)]

    return {"dropout": rates(DROPOUT_TYPES), "dropconnect": rates(DropConnectLinear), "drop_path": rates(DropPath),
            "normalization": sum(isinstance(m, _NORMS) for m in model.modules())}


def as_built_note(model: nn.Module) -> str | None:
    """``"its own dropout p=0.2, 2 normalization layers"``: the regularization a model has before any recipe
    (a user's factory), or None when it has none; the study's baseline says it is *this* model."""
    r = regularization_in(model)
    parts = []
    for kind in ("dropout", "dropconnect", "drop_path"):
        active = sorted({p for p in r[kind] if p > 0})
        if active:
            parts.append(f"its own {kind.replace('_', '-')} p=" + "/".join(f"{p:g}" for p in active))
    if r["normalization"]:
        parts.append(f"{r['normalization']} normalization layer{'s' if r['normalization'] > 1 else ''}")
    return ", ".join(parts) or None
