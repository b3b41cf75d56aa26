"""One suite over every regularizer: penalties, constraints, noise layers, augmentations.

Each family has a contract (DESIGN.md); this file checks the contract the same way for
every member, so a new technique that breaks it fails here even if its own tests pass.
"""
import pickle

import pytest
import torch
from torch import nn

from regularkit import augment as A
from regularkit import constraints as C
from regularkit import noise as N
from regularkit import penalties as P


def small_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))


PENALTIES = [P.L2(0.1), P.L2(0.1, convention="half"), P.L1(0.1), P.ElasticNet(0.1, 0.2), P.Lp(3.0, 0.1)]


@pytest.mark.parametrize("penalty", PENALTIES, ids=lambda p: type(p).__name__)
def test_penalty_contract(penalty):
    m = small_model()
    value = penalty(m)
    assert value.ndim == 0 and value.item() > 0
    value.backward()
    # weights get a gradient, biases and norm parameters never do (by default)
    assert m[0].weight.grad is not None and m[3].weight.grad is not None
    assert m[0].bias.grad is None and m[1].weight.grad is None and m[1].bias.grad is None
    clone = pickle.loads(pickle.dumps(penalty))
    assert torch.allclose(clone(m), penalty(m))
    # zero weights -> zero penalty
    with torch.no_grad():
        for p in m.parameters():
            p.zero_()
    assert penalty(m).item() == 0.0


CONSTRAINTS = [C.MaxNorm(1.0), C.UnitNorm(), C.NonNeg(), C.MinMaxNorm(0.5, 1.0), C.Orthonormal()]


@pytest.mark.parametrize("constraint", CONSTRAINTS, ids=lambda c: type(c).__name__)
def test_constraint_contract(constraint):
    w = torch.randn(5, 4, generator=torch.Generator().manual_seed(0)) * 3
    once = constraint(w)
    assert once.shape == w.shape
    assert torch.allclose(constraint(once), once, atol=1e-5)  # a projection: applying twice changes nothing
    assert pickle.loads(pickle.dumps(constraint)) == constraint
    assert type(constraint).from_config(constraint.get_config()) == constraint
    m = small_model()
    names = C.project(m, constraint)
    assert names and all(torch.allclose(constraint(p.detach()), p.detach(), atol=1e-5)
                         for n, p in m.named_parameters() if n in names)


NOISE = [N.Dropout(0.5, seed=0), N.Dropout(0.5, noise_shape=(None, 1), seed=0), N.DropPath(0.5, seed=0),
         N.GaussianNoise(0.3, seed=0), N.GaussianDropout(0.3, seed=0)]


@pytest.mark.parametrize("layer", NOISE, ids=lambda l: type(l).__name__)
def test_noise_layer_contract(layer):
    x = torch.randn(64, 10)
    layer.eval()
    assert torch.equal(layer(x), x)  # eval mode is the identity (inverted scaling)
    layer.train()
    y = layer(x)
    assert y.shape == x.shape and not torch.equal(y, x)
    a = pickle.loads(pickle.dumps(layer))
    b = pickle.loads(pickle.dumps(layer))
    assert torch.equal(a(x), b(x))  # same state, same noise


AUGMENTS = [A.HorizontalFlip(), A.RandomCrop(padding=2), A.RandomAffine(10, 0.1), A.Cutout(3),
            A.RandomErasing(p=1.0), A.MixUp(num_classes=4), A.CutMix(num_classes=4), A.RandomGaussianNoise(0.1)]


@pytest.mark.parametrize("aug", AUGMENTS, ids=lambda a: type(a).__name__)
@pytest.mark.parametrize("n", [1, 5])
def test_augmentation_contract(aug, n):
    x = torch.rand(n, 1, 8, 8)
    y = torch.arange(n) % 4
    g = lambda: torch.Generator().manual_seed(3)
    x1, y1 = aug(x, y, generator=g())
    x2, y2 = aug(x, y, generator=g())
    assert torch.equal(x1, x2) and torch.equal(y1, y2)  # same seed, same output
    assert x1.shape == x.shape and x1.dtype == x.dtype
    params = aug.make_params(x, g())
    x3, y3 = aug.apply(x, y, params)
    assert torch.equal(x3, x1) and torch.equal(y3, y1)  # sampling then applying is the call
    if y1.ndim == 2:  # mixing ops return soft targets
        assert torch.allclose(y1.sum(1), torch.ones(n)) and (y1 >= 0).all()
    assert pickle.loads(pickle.dumps(aug)).get_config() == aug.get_config()
