"""A seeded layer's or augmentation's random stream in its state_dict: a save/load resumes the same draws.

Issue 24, item 4 (and item 5's message for a seeded augmentation under torch.compile).

The check is the one a Lightning checkpoint makes: ``torch.save(model.state_dict())``,
a freshly built model, ``load_state_dict``, and the next draws equal the ones the saved
model would have drawn next.  Unseeded layers and seeded layers that have not drawn keep
the plain layer's state_dict (a DropConnectLinear's loads into an nn.Linear).
"""
import io

import pytest
import torch
import torch._dynamo
from torch import nn

from regularkit.augment import Compose, HorizontalFlip, RandomCrop, RandomErasing
from regularkit.errors import RegularkitError
from regularkit.noise import DropConnectLinear, Dropout, DropPath, GaussianNoise

LAYERS = {
    "dropout": (lambda **kw: Dropout(0.5, **kw), (8, 6)),
    "drop_path": (lambda **kw: DropPath(0.5, **kw), (16, 3)),
    "gaussian_noise": (lambda **kw: GaussianNoise(0.5, **kw), (8, 6)),
    "drop_connect_linear": (lambda **kw: DropConnectLinear(6, 4, p=0.5, **kw), (8, 6)),
}


def model(name, **kw):
    torch.manual_seed(0)  # the same initial weights for every build
    factory, shape = LAYERS[name]
    return nn.Sequential(nn.Linear(shape[1], shape[1]), factory(**kw)).train()


def through_torch_save(state: dict) -> dict:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)  # plain tensors: loads with the safe unpickler


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_state_dict_round_trip_resumes_the_same_stream(name):
    x = torch.ones(LAYERS[name][1])
    saved = model(name, seed=5)
    for _ in range(3):
        saved(x)
    state = through_torch_save(saved.state_dict())
    assert state["1._extra_state"].dtype == torch.uint8
    expected = [saved(x) for _ in range(3)]  # what the saved model draws next
    resumed = model(name, seed=5)
    resumed.load_state_dict(state)
    assert all(torch.equal(resumed(x), e) for e in expected)
    # without the stream a fresh model starts over: the check above could fail
    assert not torch.equal(model(name, seed=5)(x), expected[0])


def test_nothing_to_resume_keeps_the_plain_layers_state_dict():
    layer = DropConnectLinear(5, 3, p=0.5, seed=1)
    assert set(layer.state_dict()) == {"weight", "bias"}  # no draw yet
    nn.Linear(5, 3).load_state_dict(DropConnectLinear(5, 3, p=0.5).state_dict())  # unseeded: never
    layer(torch.ones(2, 5))
    assert set(layer.state_dict()) == {"weight", "bias", "_extra_state"}


def test_loading_a_state_without_a_stream_restarts_the_seed_stream():
    x = torch.ones(8, 6)
    fresh_first = Dropout(0.5, seed=2)(x)
    layer = Dropout(0.5, seed=2)
    layer(x)
    layer.load_state_dict({})  # saved before any draw (or before streams were state): strict still loads
    assert torch.equal(layer(x), fresh_first)


def test_another_ranks_stream_is_not_copied(monkeypatch):
    x = torch.ones(2000)
    saved = Dropout(0.5, seed=3)
    saved(x)
    state = saved.state_dict()  # written by rank 0
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.distributed, "get_rank", lambda group=None: 1)
    on_rank_one = Dropout(0.5, seed=3)
    on_rank_one.load_state_dict(state)
    assert torch.equal(on_rank_one(x), Dropout(0.5, seed=3)(x))  # rank 1's own stream, from its start
    assert not torch.equal(on_rank_one(x) != 0, saved(x) != 0)


def test_a_callers_generator_is_neither_saved_nor_overwritten():
    g = torch.Generator().manual_seed(4)
    layer = Dropout(0.5, generator=g)
    layer(torch.ones(8))
    before = g.get_state()
    assert set(layer.state_dict()) == set()
    layer.load_state_dict({})
    assert torch.equal(g.get_state(), before)


@pytest.mark.parametrize("state, match", [
    ({"_extra_state": {"seed": 1}}, r"Dropout extra state must be a 1-D uint8 tensor \(a generator state\), got"),
    ({"_extra_state": torch.zeros(3)}, r"extra state must be a 1-D uint8 tensor"),
])
def test_bad_extra_state_names_the_value(state, match):
    with pytest.raises(RegularkitError, match=match):
        Dropout(0.5, seed=1).load_state_dict(state)


def test_a_seeded_stream_into_an_unseeded_layer_is_refused():
    saved = Dropout(0.5, seed=1)
    saved(torch.ones(4))
    with pytest.raises(RegularkitError, match=r"seeded Dropout, but this one has seed=None: build it with"):
        Dropout(0.5).load_state_dict(saved.state_dict())


# --------------------------------------------------------------------------- the same mechanism in the augmentations
@pytest.mark.parametrize("make", [lambda **kw: RandomCrop(6, padding=2, **kw), lambda **kw: RandomErasing(p=0.7, **kw),
                                  lambda **kw: Compose([HorizontalFlip(0.5), RandomCrop(6, padding=1)], **kw)],
                         ids=["random_crop", "random_erasing", "compose"])
def test_a_seeded_augmentation_in_a_model_resumes_its_stream_from_the_state_dict(make):
    x = torch.rand(5, 3, 6, 6, generator=torch.Generator().manual_seed(0))
    saved = nn.Sequential(make(seed=9), nn.Flatten())
    saved(x)
    state = through_torch_save(saved.state_dict())
    expected = [saved(x) for _ in range(2)]
    resumed = nn.Sequential(make(seed=9), nn.Flatten())
    resumed.load_state_dict(state)
    assert all(torch.equal(resumed(x), e) for e in expected)
    assert not torch.equal(nn.Sequential(make(seed=9), nn.Flatten())(x), expected[0])  # the check can fail
    assert set(nn.Sequential(make(), nn.Flatten()).state_dict()) == set()  # unseeded: nothing in it


def test_a_seeded_augmentation_under_compile_says_why_and_what_to_do():
    """fullgraph=True: regularkit's message naming the fix (not torch's "opaque object"); otherwise eager's draws."""
    x = torch.rand(4, 3, 6, 6, generator=torch.Generator().manual_seed(0))
    message = r"this augmentation draws from a torch.Generator \(seed= or generator=\).*build the op with seed=None"
    for op, kwargs in ((RandomCrop(6, padding=2, seed=1), {}),
                       (RandomCrop(6, padding=2), {"generator": torch.Generator().manual_seed(1)})):
        torch._dynamo.reset()
        with pytest.raises(torch._dynamo.exc.Unsupported, match=message):
            torch.compile(op, backend="eager", fullgraph=True)(x, **kwargs)
    torch._dynamo.reset()
    compiled = torch.compile(RandomCrop(6, padding=2, seed=1), backend="eager")  # graph breaks, draws run eagerly
    eager = RandomCrop(6, padding=2, seed=1)
    assert all(torch.equal(compiled(x), eager(x)) for _ in range(2))
    torch._dynamo.reset()
    unseeded = torch.compile(RandomCrop(6, padding=2), backend="eager", fullgraph=True)  # the global RNG traces
    torch.manual_seed(3)
    out = unseeded(x)
    torch.manual_seed(3)
    assert torch.equal(out, RandomCrop(6, padding=2)(x))
