"""Transfer learning: freeze / unfreeze, swap the head, discriminative learning rates, two-stage fine-tuning.

The cookbook (deck 003, "Transfer Learning With Convnets"; Yosinski et al.
2014; cs231n): start from a network trained on a large, similar task; swap
the classifier layer for one with the new number of classes; with little
data train only that layer (the network is a fixed feature extractor), with
more data fine-tune, using "~1/10th of the original learning rate when
fine-tuning the top-most layers and ~1/100th for other layers".  "A
two-stage approach": first train only the new classifier to convergence, so
the pretrained weights never see the noisy gradients of a random head; then
train more of the network at a reduced learning rate.

Works with any ``nn.Module``: regularkit's models (head named ``head``),
torchvision's (``fc`` or ``classifier``), timm's (``head`` / ``head.fc``).

BatchNorm under ``freeze(..., bn="eval")``: ``requires_grad=False`` alone
does not stop a BatchNorm layer from updating its running statistics (and
normalizing with batch statistics) as soon as the parent model is put in
``.train()``.  We flag each such layer and register a forward pre-hook that
sets it back to eval mode right before every forward, so whatever calls
``.train()`` (a training loop, ``torch.optim.swa_utils.update_bn``) the frozen
layers normalize with, and keep, their stored statistics.  A hook (rather
than a patched ``train`` method or a swapped class) survives ``deepcopy``,
pickling and ``model.to(...)``.  ``unfreeze`` clears the flag; the hook
then does nothing.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
from torch import nn
from torch.nn.modules.batchnorm import _NormBase

from regularkit._util.checks import check_choice, check_int, check_positive
from regularkit.errors import RegularkitError

HEAD_NAMES = ("head", "fc", "classifier")
BN_MODES = ("eval", "train")
_FROZEN = "_regularkit_bn_frozen"
_HOOKED = "_regularkit_bn_hooked"


def _hold_eval(module: nn.Module, args) -> None:
    if getattr(module, _FROZEN, False):
        module.training = False


def bn_frozen(module: nn.Module) -> bool:
    """Whether ``module`` is a normalization layer whose statistics :func:`freeze` holds fixed."""
    return bool(getattr(module, _FROZEN, False))


def _targets(obj) -> tuple[list[nn.Module], list[torch.Tensor]]:
    if isinstance(obj, nn.Module):
        return [obj], []
    if isinstance(obj, torch.Tensor):
        return [], [obj]
    modules, params = [], []
    try:
        items = list(obj)
    except TypeError:
        raise RegularkitError(f"expected an nn.Module or an iterable of modules / parameters, "
                              f"got {type(obj).__name__}") from None
    for item in items:
        if isinstance(item, nn.Module):
            modules.append(item)
        elif isinstance(item, torch.Tensor):
            params.append(item)
        else:
            raise RegularkitError(f"expected modules or parameters, got an item of type {type(item).__name__}")
    return modules, params


def _set_bn(root: nn.Module, hold: bool) -> None:
    for m in root.modules():
        if isinstance(m, _NormBase) and m.track_running_stats:
            if hold and not getattr(m, _HOOKED, False):
                m.register_forward_pre_hook(_hold_eval)
                setattr(m, _HOOKED, True)
            setattr(m, _FROZEN, hold)
            m.train(False if hold else root.training)


def freeze(module_or_params, *, bn: str = "eval"):
    """Set ``requires_grad=False``; with ``bn="eval"`` also hold BatchNorm statistics fixed.

    Accepts a module, a parameter, or an iterable of either.  ``bn="train"``
    freezes the weights only: BatchNorm layers keep normalizing with batch
    statistics and updating their running averages in train mode.  Returns
    its argument.
    """
    return _set_trainable(module_or_params, False, bn)


def unfreeze(module_or_params, *, bn: str = "train"):
    """Set ``requires_grad=True``; ``bn="train"`` releases held BatchNorm layers (they follow the
    module's train/eval mode again), ``bn="eval"`` keeps (or starts) holding their statistics
    while their affine weights train, as Keras advises for fine-tuning.  Returns its argument."""
    return _set_trainable(module_or_params, True, bn)


def _set_trainable(module_or_params, trainable: bool, bn: str):
    """What freeze and unfreeze share: ``requires_grad`` on every parameter, BatchNorm held or released."""
    check_choice("bn", bn, BN_MODES)
    modules, params = _targets(module_or_params)
    for p in params + [p for m in modules for p in m.parameters()]:
        p.requires_grad_(trainable)
    for m in modules:
        _set_bn(m, hold=(bn == "eval"))
    return module_or_params


def _last_linear(module: nn.Module) -> tuple[str, nn.Linear] | None:
    found = None
    for name, m in module.named_modules():
        if isinstance(m, nn.Linear):
            found = (name, m)
    return found


def find_head(model: nn.Module) -> tuple[str, nn.Linear]:
    """``(qualified name, layer)`` of the classifier: an ``nn.Linear`` attribute named ``head``,
    ``fc`` or ``classifier`` (or the last Linear inside such a submodule), else the last Linear."""
    if not isinstance(model, nn.Module):
        raise RegularkitError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    for attr in HEAD_NAMES:
        sub = dict(model.named_children()).get(attr)  # registered children only, never a method
        if isinstance(sub, nn.Module) and (found := _last_linear(sub)) is not None:
            name, layer = found
            return (f"{attr}.{name}" if name else attr), layer
    found = _last_linear(model)
    if found is None or found[0] == "":
        raise RegularkitError(f"model has no nn.Linear layer below the root to use as the head, "
                              f"got {type(model).__name__}")
    return found


def replace_head(model: nn.Module, num_classes: int, *, seed: int | None = None) -> nn.Linear:
    """Swap the head (see :func:`find_head`) for a fresh ``nn.Linear(in_features, num_classes)``.

    The new layer has the old one's bias setting, device and dtype and is
    trainable; ``seed`` makes its initial weights reproducible without
    touching the global RNG's state.  Returns the new layer.
    """
    num_classes = check_int("num_classes", num_classes, minimum=1)
    name, old = find_head(model)
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        new = nn.Linear(old.in_features, num_classes, bias=old.bias is not None,
                        device=old.weight.device, dtype=old.weight.dtype)
    new.train(model.training)
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, new)
    return new


def _layers(model: nn.Module) -> list[list[tuple[str, nn.Parameter]]]:
    """Parameters grouped into layers, bottom to top, in module order.

    A layer is a module that owns parameters; a normalization layer joins the
    layer before it (it normalizes that layer's output, deck 003), so
    ``top=1`` on ``Linear -> BatchNorm -> ReLU`` means both.
    """
    layers: list[list[tuple[str, nn.Parameter]]] = []
    seen: set[int] = set()
    for mname, m in model.named_modules():
        own = [(f"{mname}.{n}" if mname else n, p) for n, p in m.named_parameters(recurse=False)
               if id(p) not in seen]
        if not own:
            continue
        seen.update(id(p) for _, p in own)
        if isinstance(m, (_NormBase, nn.LayerNorm, nn.GroupNorm)) and layers:
            layers[-1].extend(own)
        else:
            layers.append(own)
    return layers


def lr_groups(model: nn.Module, base_lr: float, top: int | str | Sequence[str] = 1, top_ratio: float = 0.1,
              rest_ratio: float = 0.01, head_ratio: float = 1.0, *,
              trainable_only: bool = True) -> list[dict[str, Any]]:
    """Discriminative learning rates as torch param groups: head, top-most layers, the rest.

    The cookbook: ``~1/10`` of the original lr for the top-most layers and
    ``~1/100`` for the others (deck 003).  Learning rates are ``base_lr``
    times ``head_ratio`` (the new head, :func:`find_head`), ``top_ratio``
    and ``rest_ratio``.  ``top`` is how many layers below the head count as
    "top" (a layer owns parameters; BatchNorm joins the layer before it), or
    module-name prefixes (``top=("layer4",)`` for a torchvision ResNet).
    Each group is ``{"params", "lr", "name"}``; empty groups are left out,
    and so are frozen parameters unless ``trainable_only=False``.
    """
    base_lr = check_positive("base_lr", base_lr)
    ratios = {"head": check_positive("head_ratio", head_ratio), "top": check_positive("top_ratio", top_ratio),
              "rest": check_positive("rest_ratio", rest_ratio)}
    _, head = find_head(model)
    head_ids = {id(p) for p in head.parameters()}
    layers = [[(n, p) for n, p in layer if id(p) not in head_ids] for layer in _layers(model)]
    layers = [layer for layer in layers if layer]
    if isinstance(top, str) or (isinstance(top, Sequence) and not isinstance(top, (bytes, bytearray))):
        prefixes = (top,) if isinstance(top, str) else tuple(top)
        for prefix in prefixes:
            if not isinstance(prefix, str):
                raise RegularkitError(f"top must be an int or module-name prefixes, got {top!r}")
        named = [(n, p) for layer in layers for n, p in layer]
        for prefix in prefixes:
            if not any(n == prefix or n.startswith(prefix + ".") for n, _ in named):
                raise RegularkitError(f"top prefix matches no parameter of the model, got {prefix!r}")
        top_ids = {id(p) for n, p in named if any(n == q or n.startswith(q + ".") for q in prefixes)}
    else:
        n_top = check_int("top", top, minimum=0)
        top_ids = {id(p) for layer in (layers[-n_top:] if n_top else []) for _, p in layer}
    buckets: dict[str, list[nn.Parameter]] = {"head": [], "top": [], "rest": []}
    seen: set[int] = set()
    for p in model.parameters():
        if id(p) in seen or (trainable_only and not p.requires_grad):
            continue
        seen.add(id(p))
        key = "head" if id(p) in head_ids else "top" if id(p) in top_ids else "rest"
        buckets[key].append(p)
    return [{"params": ps, "lr": base_lr * ratios[key], "name": key} for key, ps in buckets.items() if ps]


def two_stage_finetune(model: nn.Module, train_fn: Callable[[nn.Module, list[dict[str, Any]], int], Any], *,
                       base_lr: float, num_classes: int | None = None, stage2: str = "all",
                       top: int | str | Sequence[str] = 1, top_ratio: float = 0.1, rest_ratio: float = 0.01,
                       head_ratio: float = 1.0, bn: str = "eval", seed: int | None = None) -> dict[str, Any]:
    """The cookbook's two stages; ``train_fn(model, param_groups, stage) -> history`` runs your loop.

    ``num_classes`` given: the head is replaced first (:func:`replace_head`).
    Stage 1: everything but the head frozen (``bn`` as in :func:`freeze`);
    ``train_fn(model, [head group], 1)``.  Stage 2: ``stage2="all"``
    unfreezes the whole network, ``"top"`` only the ``top`` layers; then
    ``train_fn(model, lr_groups(...), 2)`` with the reduced learning rates.
    With ``bn="eval"`` BatchNorm statistics stay fixed in both stages.
    Returns ``{"stage1": history, "stage2": history}``.
    """
    check_choice("stage2", stage2, ("all", "top"))
    check_choice("bn", bn, BN_MODES)
    if not callable(train_fn):
        raise RegularkitError(f"train_fn must be callable, got {type(train_fn).__name__}")
    kwargs = dict(top_ratio=top_ratio, rest_ratio=rest_ratio, head_ratio=head_ratio)
    if num_classes is not None:
        replace_head(model, num_classes, seed=seed)
    _, head = find_head(model)
    freeze(model, bn=bn)
    unfreeze(head.parameters())
    history1 = train_fn(model, lr_groups(model, base_lr, top=0, **kwargs), 1)
    if stage2 == "all":
        unfreeze(model, bn=bn)
    else:
        top_params = [p for g in lr_groups(model, base_lr, top=top, trainable_only=False, **kwargs)
                      if g["name"] == "top" for p in g["params"]]
        unfreeze(top_params)
    history2 = train_fn(model, lr_groups(model, base_lr, top=top, **kwargs), 2)
    return {"stage1": history1, "stage2": history2}


__all__ = ["freeze", "unfreeze", "bn_frozen", "find_head", "replace_head", "lr_groups", "two_stage_finetune",
           "HEAD_NAMES"]
