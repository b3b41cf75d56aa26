"""regularkit.transfer: frozen weights stay put under real optimizer steps, BN statistics held, heads, lr groups."""
import copy
import pickle

import pytest
import torch
from torch import nn

from regularkit.errors import RegularkitError
from regularkit.transfer import bn_frozen, find_head, freeze, lr_groups, replace_head, two_stage_finetune, unfreeze


def _sequential():
    """A handmade backbone + classifier: the head is the last Linear in module order."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(),
                         nn.Linear(8, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))


class FcNet(nn.Module):
    """torchvision-ResNet-like: features, then ``fc`` (defined before a helper Linear, to test preference)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                                      nn.Flatten())
        self.fc = nn.Linear(4, 5)
        self.aux = nn.Linear(4, 2)  # last Linear in module order, but not the head

    def forward(self, x):
        return self.fc(self.features(x))


def _x(n=16, seed=1):
    return 3.0 + 2.0 * torch.randn(n, 4, generator=torch.Generator().manual_seed(seed))


def _train(model, params, steps=3, lr=0.1, x=None):
    opt = torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=1e-2)
    x = _x() if x is None else x
    y = torch.arange(len(x)) % 3
    model.train()
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()


def _snapshot(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def test_frozen_parameters_do_not_change_under_real_steps():
    model = _sequential()
    freeze(model[:6])
    before = _snapshot(model[:6])
    head_before = model[6].weight.clone()
    _train(model, model.parameters())  # all parameters handed to the optimizer, with momentum and weight decay
    for k, v in model[:6].state_dict().items():
        assert torch.equal(v, before[k]), k  # weights and BN running statistics
    assert not torch.equal(model[6].weight, head_before)
    assert all(not p.requires_grad for p in model[:6].parameters())


def test_bn_eval_holds_statistics_even_when_the_parent_trains():
    model = _sequential()
    freeze(model[:3], bn="eval")
    model.train()
    assert bn_frozen(model[1]) and not bn_frozen(model[4])
    mean_before = model[1].running_mean.clone()
    out_train = model[:2](_x())
    assert torch.equal(model[1].running_mean, mean_before)
    assert not model[1].training and model[4].training
    # it normalizes with the stored statistics, exactly like eval mode
    model.eval()
    assert torch.allclose(out_train, model[:2](_x()))


def test_bn_train_lets_statistics_move():
    model = _sequential()
    freeze(model, bn="train")
    before = model[1].running_mean.clone()
    model.train()
    model(_x())
    assert not torch.equal(model[1].running_mean, before)
    assert all(not p.requires_grad for p in model.parameters())


def test_freeze_survives_deepcopy_and_pickling():
    model = freeze(_sequential(), bn="eval")
    for clone in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        before = clone[1].running_var.clone()
        clone.train()
        clone(_x())
        assert torch.equal(clone[1].running_var, before)


def test_unfreeze_releases_weights_and_statistics():
    model = freeze(_sequential())
    unfreeze(model)
    assert all(p.requires_grad for p in model.parameters()) and not bn_frozen(model[1])
    model.train()
    assert model[1].training
    before = model[1].running_mean.clone()
    model(_x())
    assert not torch.equal(model[1].running_mean, before)


def test_unfreeze_with_bn_eval_trains_weights_but_holds_statistics():
    model = freeze(_sequential())
    unfreeze(model, bn="eval")
    before = _snapshot(model[1])
    _train(model, model.parameters())
    assert torch.equal(model[1].running_mean, before["running_mean"])
    assert not torch.equal(model[1].weight, before["weight"])  # BN's affine weights do learn


def test_freeze_parameters_only():
    model = _sequential()
    freeze([model[0].weight, model[0].bias])
    assert not model[0].weight.requires_grad and model[3].weight.requires_grad
    assert not bn_frozen(model[1])


@pytest.mark.parametrize("factory, name, in_features", [
    (_sequential, "6", 8),                                           # last Linear in module order
    (FcNet, "fc", 4),                                                # attribute ``fc`` preferred over a later Linear
    (lambda: nn.Sequential(nn.Linear(4, 6)), "0", 4),
])
def test_find_and_replace_head(factory, name, in_features):
    model = factory()
    assert find_head(model)[0] == name
    new = replace_head(model, 10)
    assert model.get_submodule(name) is new
    assert (new.in_features, new.out_features) == (in_features, 10)
    x = torch.randn(2, 1, 6, 6) if isinstance(model, FcNet) else torch.randn(2, 4)
    assert model.eval()(x).shape == (2, 10)


def test_head_and_classifier_attributes():
    class HeadNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.head = nn.Linear(3, 2)
            self.later = nn.Linear(3, 3)

    class VGGLike(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Linear(3, 7)
            self.classifier = nn.Sequential(nn.Linear(7, 5), nn.ReLU(), nn.Dropout(), nn.Linear(5, 4))

    assert find_head(HeadNet())[0] == "head"
    vgg = VGGLike()
    assert find_head(vgg)[0] == "classifier.3"
    new = replace_head(vgg, 9, seed=3)
    assert vgg.classifier[3] is new and new.in_features == 5
    again = replace_head(VGGLike(), 9, seed=3)
    assert torch.equal(new.weight, again.weight)  # the seed makes the new head reproducible


def test_lr_groups_have_the_stated_ratios():
    model = _sequential()
    groups = {g["name"]: g for g in lr_groups(model, 0.1)}
    assert groups["head"]["lr"] == pytest.approx(0.1)
    assert groups["top"]["lr"] == pytest.approx(0.01)   # ~1/10 of the original lr
    assert groups["rest"]["lr"] == pytest.approx(0.001)  # ~1/100
    ids = lambda ps: {id(p) for p in ps}
    assert ids(groups["head"]["params"]) == ids(model[6].parameters())
    # top=1: the last hidden Linear together with the BatchNorm that follows it
    assert ids(groups["top"]["params"]) == ids(model[3].parameters()) | ids(model[4].parameters())
    assert ids(groups["rest"]["params"]) == ids(model[0].parameters()) | ids(model[1].parameters())
    every = [id(p) for g in groups.values() for p in g["params"]]
    assert sorted(every) == sorted(id(p) for p in model.parameters())  # each parameter exactly once
    torch.optim.SGD(list(groups.values()), lr=1.0)  # valid torch param groups


def test_lr_groups_by_prefix_and_trainable_only():
    model = FcNet()
    groups = {g["name"]: g for g in lr_groups(model, 1.0, top=("features.1",), top_ratio=0.5, rest_ratio=0.25)}
    assert {id(p) for p in groups["top"]["params"]} == {id(p) for p in model.features[1].parameters()}
    assert groups["top"]["lr"] == 0.5 and groups["rest"]["lr"] == 0.25
    freeze(model.features)
    groups = lr_groups(model, 1.0, top=1)
    assert [g["name"] for g in groups] == ["head", "top"]  # ``aux`` is the top-most layer below nothing else
    kept = {id(p) for g in groups for p in g["params"]}
    assert kept == {id(p) for p in [*model.fc.parameters(), *model.aux.parameters()]}  # frozen ones left out
    every = lr_groups(model, 1.0, top=1, trainable_only=False)
    assert [g["name"] for g in every] == ["head", "top", "rest"]


def test_two_stage_finetune():
    model = _sequential()
    seen = []
    x = _x(32, seed=5)

    def train_fn(m, groups, stage):
        trainable = {id(p) for p in m.parameters() if p.requires_grad}
        seen.append((stage, [(g["name"], g["lr"]) for g in groups], trainable, _snapshot(m)))
        _train(m, groups, steps=5, x=x)
        return {"stage": stage}

    result = two_stage_finetune(model, train_fn, base_lr=0.1, num_classes=4, seed=0)
    assert result == {"stage1": {"stage": 1}, "stage2": {"stage": 2}}
    assert model[6].out_features == 4
    (_, groups1, trainable1, _), (_, groups2, trainable2, before2) = seen
    assert groups1 == [("head", 0.1)] and trainable1 == {id(p) for p in model[6].parameters()}
    assert groups2 == [("head", 0.1), ("top", pytest.approx(0.01)), ("rest", pytest.approx(0.001))]
    assert trainable2 == {id(p) for p in model.parameters()}
    # stage 1 left the body unchanged (it is in stage 2's starting snapshot); BN statistics never moved
    for k, v in _sequential().state_dict().items():
        if not k.startswith("6."):
            assert torch.equal(before2[k], v), k
    assert torch.equal(model[1].running_mean, torch.zeros(8))


def test_two_stage_top_only():
    model = _sequential()
    groups_seen = []
    two_stage_finetune(model, lambda m, g, s: groups_seen.append([x["name"] for x in g]), base_lr=0.1, stage2="top")
    assert groups_seen == [["head"], ["head", "top"]]
    assert not model[0].weight.requires_grad and model[3].weight.requires_grad


@pytest.mark.parametrize("call, message", [
    (lambda: freeze(42), r"expected an nn.Module or an iterable of modules / parameters, got int"),
    (lambda: freeze([nn.Linear(2, 2), "x"]), r"expected modules or parameters, got an item of type str"),
    (lambda: freeze(nn.Linear(2, 2), bn="fixed"), r"bn must be one of 'eval', 'train'; got 'fixed'"),
    (lambda: find_head(nn.Sequential(nn.Conv2d(1, 1, 3))), r"no nn.Linear layer .* got Sequential"),
    (lambda: replace_head(_sequential(), 0), r"num_classes must be >= 1, got 0"),
    (lambda: lr_groups(_sequential(), 0.1, top=("block9",)), r"top prefix matches no parameter of the model, got 'block9'"),
    (lambda: lr_groups(_sequential(), -1.0), r"base_lr must be > 0, got -1.0"),
    (lambda: lr_groups(_sequential(), 0.1, top=-1), r"top must be >= 0, got -1"),
    (lambda: two_stage_finetune(_sequential(), None, base_lr=0.1), r"train_fn must be callable, got NoneType"),
    (lambda: two_stage_finetune(_sequential(), print, base_lr=0.1, stage2="some"), r"stage2 must be one of 'all', 'top'; got 'some'"),
])
def test_errors_name_the_value(call, message):
    with pytest.raises(RegularkitError, match=message):
        call()
