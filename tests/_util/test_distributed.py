"""_util.distributed: ranks and their seeds (also as the noise layers use them), unwrapping, refusing to copy wrappers.

A real process group is in tests/test_ddp.py; here the rank is faked by patching
``torch.distributed``, which is what :func:`rank` reads.
"""
import copy
import pickle
from pathlib import Path

import pytest
import torch
from torch import nn

import regularkit.distributed as public
from regularkit._util import distributed as D
from regularkit.errors import RegularkitError
from regularkit.noise import Dropout
from regularkit.noise.dropout import dropout


@pytest.fixture
def rank_one(monkeypatch):
    """This process is rank 1 of 2, as far as regularkit can tell."""
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.distributed, "get_rank", lambda group=None: 1)
    monkeypatch.setattr(torch.distributed, "get_world_size", lambda group=None: 2)


def test_outside_a_process_group_rank_zero_keeps_the_seed():
    assert (D.rank(), D.world_size()) == (0, 1)
    assert D.rank_seed(7) == 7
    assert torch.equal(torch.rand(4, generator=D.rank_generator(7)),
                       torch.rand(4, generator=torch.Generator().manual_seed(7)))


def test_rank_r_draws_from_seed_plus_r_strides(rank_one):
    assert (D.rank(), D.world_size()) == (1, 2)
    assert D.rank_seed(7) == 7 + D.RANK_STRIDE
    draws = torch.rand(4, generator=D.rank_generator(7))
    assert torch.equal(draws, torch.rand(4, generator=torch.Generator().manual_seed(7 + D.RANK_STRIDE)))
    assert not torch.equal(draws, torch.rand(4, generator=torch.Generator().manual_seed(7)))


@pytest.mark.parametrize("seed, message", [(-1, r"seed must be >= 0, got -1"),
                                           (1.5, r"seed must be an integer, got 1.5"),
                                           ("3", r"seed must be an integer, got '3'")])
def test_rank_seed_errors_name_the_value(seed, message):
    with pytest.raises(RegularkitError, match=message):
        D.rank_seed(seed)


# --------------------------------------------------------------------------- the noise layers' seed= per rank
def _masks(layer: nn.Module, n: int = 2) -> list[torch.Tensor]:
    x = torch.ones(2000)
    return [layer(x) != 0 for _ in range(n)]


def _reference(seed: int, n: int = 2) -> list[torch.Tensor]:
    """The pure function driven by a generator seeded with ``seed``: what ``Dropout(seed=...)`` must draw."""
    g = torch.Generator().manual_seed(seed)
    return [dropout(torch.ones(2000), 0.5, generator=g) != 0 for _ in range(n)]


def test_seeded_dropout_on_rank_zero_is_unchanged():
    masks = _masks(Dropout(0.5, seed=3).train())
    for mask, expected in zip(masks, _reference(3)):
        assert torch.equal(mask, expected)


def test_seeded_dropout_draws_its_rank_stream_reproducibly(rank_one):
    layer = Dropout(0.5, seed=3).train()
    masks = _masks(layer)
    for mask, expected in zip(masks, _reference(3 + D.RANK_STRIDE)):
        assert torch.equal(mask, expected)
    assert not torch.equal(masks[0], _reference(3)[0])  # rank 1 drops other units than rank 0
    assert all(torch.equal(a, b) for a, b in zip(_masks(Dropout(0.5, seed=3).train()), masks))  # reproducible


def test_copies_carry_the_rank_stream_and_reset_restarts_it(rank_one, monkeypatch):
    layer = Dropout(0.5, seed=3).train()
    _masks(layer, 1)
    for clone in (copy.deepcopy(layer), pickle.loads(pickle.dumps(layer))):
        assert torch.equal(_masks(clone, 1)[0], _masks(copy.deepcopy(layer), 1)[0])
        assert torch.equal(_masks(clone, 1)[0], _reference(3 + D.RANK_STRIDE, 3)[2])  # the third draw
    monkeypatch.setattr(torch.distributed, "get_rank", lambda group=None: 0)  # unpickled on rank 0
    clone = pickle.loads(pickle.dumps(layer))
    clone.reset_generator()
    assert torch.equal(_masks(clone, 1)[0], _reference(3)[0])


# --------------------------------------------------------------------------- wrappers
class FakeCompiled(nn.Module):
    """What ``torch.compile`` returns, as far as unwrapping sees: the model in ``_orig_mod``."""

    def __init__(self, model):
        super().__init__()
        self._orig_mod = model

    def forward(self, *args):
        return self._orig_mod(*args)


def test_unwrap_peels_data_parallel_and_compile_in_any_order():
    model = nn.Linear(2, 2)
    for wrapped in (nn.DataParallel(model), FakeCompiled(model), nn.DataParallel(FakeCompiled(model)),
                    FakeCompiled(nn.DataParallel(model))):
        assert D.is_wrapped(wrapped) and D.unwrap_model(wrapped) is model
    assert not D.is_wrapped(model) and D.unwrap_model(model) is model


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # importing torch._dynamo warns about torch.jit
def test_unwrap_peels_a_real_torch_compile_module():
    model = nn.Linear(2, 2)
    compiled = torch.compile(model)  # nothing is compiled until its first forward
    assert D.is_wrapped(compiled) and D.unwrap_model(compiled) is model
    assert D.bare_model(nn.DataParallel(compiled)) is model


def test_bare_copy_copies_the_bare_model_only():
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    clone = D.bare_copy(nn.DataParallel(FakeCompiled(model)))
    assert type(clone) is nn.Sequential and clone.state_dict().keys() == model.state_dict().keys()
    assert not {p.data_ptr() for p in clone.parameters()} & {p.data_ptr() for p in model.parameters()}
    for k, v in model.state_dict().items():
        assert torch.equal(clone.state_dict()[k], v), k


@pytest.mark.parametrize("make, message", [
    (lambda: nn.Sequential(nn.Linear(2, 2), nn.DataParallel(nn.Linear(2, 2))),
     r"cannot copy a model with a wrapper inside it: submodule '1' is a DataParallel; wrap the whole model once"),
    (lambda: nn.DataParallel(nn.Sequential(nn.DataParallel(nn.Linear(2, 2)))),
     r"submodule '0' is a DataParallel"),
    (lambda: "model", r"model must be a torch.nn.Module, got str"),
])
def test_a_wrapper_inside_the_model_is_refused(make, message):
    for fn in (D.bare_model, D.bare_copy):
        with pytest.raises(RegularkitError, match=message):
            fn(make())


# --------------------------------------------------------------------------- the public import path
def test_public_module_is_the_same_implementation(rank_one):
    """``regularkit.distributed`` (the documented path) re-exports these very functions, not copies."""
    for name in public.__all__:
        assert getattr(public, name) is getattr(D, name), name
    assert torch.equal(torch.rand(3, generator=public.rank_generator(5)),
                       torch.rand(3, generator=torch.Generator().manual_seed(5 + D.RANK_STRIDE)))


def test_docs_point_at_the_public_path():
    text = (Path(__file__).resolve().parents[2] / "docs" / "distributed.md").read_text(encoding="utf-8")
    assert "from regularkit.distributed import" in text
    assert "regularkit._util.distributed` is the one place" not in text
