"""Noise under ``torch.compile``: every registered layer with an explicit generator (issue 21, item 8), and
what docs/noise.md promises per backend (issue 24, item 5).

torch 2.13's dynamo cannot trace a ``torch.Generator``: a draw from one is a graph break with
torch's "Failed to convert args/kwargs to proxy", creating one inside a graph an "opaque object".
The guards in ``noise/dropout.py`` (``traceable_generator`` before a draw from an explicit
generator, ``layer_generator`` before a seeded layer creates its own) break the graph first,
through the one mechanism ``noise.stochastic.break_before_draw``, with regularkit's message.
Removing either guard makes these tests fail (checked by hand): with ``fullgraph=True`` the
call then raises torch's message, not ours.  The eager backend keeps them fast; the draws
themselves are checked against eager for the layers the other compile tests do not cover.

Backends (docs/noise.md, docs/augment.md): eager and aot_eager run torch's own random ops, so a
compiled layer draws the eager masks after the same ``torch.manual_seed`` (tests/noise/test_modules.py,
tests/augment/test_erase.py); inductor generates its own random kernels from the global seed: the
same seed gives the same compiled masks run after run, not the eager ones (the slow test below).
"""
import pytest
import torch
import torch._dynamo
from _helpers.conformance_cases import NOISE_CASES

import regularkit.augment as A
import regularkit.noise as N
from regularkit.augment.base import GENERATOR_NOT_TRACEABLE as AUGMENT_MESSAGE
from regularkit.noise.dropout import GENERATOR_NOT_TRACEABLE

MESSAGE = (r"regularkit: this noise draws from a torch\.Generator \(seed= or generator=\), which torch\.compile "
           r"cannot trace .* build the layer with seed=None, call it without generator=, and seed torch's global RNG")


def first_case(name):
    return NOISE_CASES[name][""]


def compiled(layer, **kwargs):
    torch._dynamo.reset()
    return torch.compile(layer, backend="eager", **kwargs)


@pytest.mark.parametrize("name", sorted(N.REGISTRY))
@pytest.mark.parametrize("randomness", ["generator", "seed"])
def test_fullgraph_names_the_fix_for_every_registered_layer(name, randomness):
    """An explicit ``generator=`` (the draw's guard) and ``seed=`` (the creation's guard): our message, not torch's."""
    case = first_case(name)
    kwargs = {"generator": torch.Generator().manual_seed(1)} if randomness == "generator" else {"seed": 1}
    layer = case.make(**kwargs).train()
    with pytest.raises(torch._dynamo.exc.Unsupported, match=MESSAGE):
        compiled(layer, fullgraph=True)(case.x())


@pytest.mark.parametrize("name", ["drop_block2d", "alpha_dropout"])
def test_without_fullgraph_an_explicit_generator_gives_the_eager_stream(name):
    """The draws run eagerly between graphs: the same values as eager from a generator of the same seed."""
    case = first_case(name)
    layer = case.make(generator=torch.Generator().manual_seed(4)).train()
    eager = case.make(generator=torch.Generator().manual_seed(4)).train()  # the same weights (case.make seeds)
    fn, x = compiled(layer), case.x()
    outs = [fn(x) for _ in range(2)]
    assert all(torch.equal(o, eager(x)) for o in outs)
    assert not torch.equal(outs[0], outs[1])  # the stream advances


@pytest.mark.parametrize("fn, args", [(N.dropout, (0.5,)), (N.drop_path, (0.5,)), (N.gaussian_noise, (0.5,)),
                                      (N.alpha_dropout, (0.3,))])
def test_pure_functions_called_with_a_generator_name_the_fix(fn, args):
    x = torch.randn(8, 6, generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(1)
    torch._dynamo.reset()
    call = torch.compile(lambda t: fn(t, *args, training=True, generator=g), backend="eager", fullgraph=True)
    with pytest.raises(torch._dynamo.exc.Unsupported, match=MESSAGE):
        call(x)
    torch._dynamo.reset()
    plain = torch.compile(lambda t: fn(t, *args, training=True), backend="eager", fullgraph=True)
    torch.manual_seed(2)
    out = plain(x)
    torch.manual_seed(2)
    assert torch.equal(out, fn(x, *args, training=True))  # without a generator: one graph, eager's draws


def test_noise_and_augmentations_share_one_message():
    """One mechanism: the two messages are the same sentence, naming the thing and what to build."""
    assert GENERATOR_NOT_TRACEABLE.replace("noise", "X").replace("layer", "Y") == \
        AUGMENT_MESSAGE.replace("augmentation", "X").replace(" op ", " Y ")


@pytest.mark.slow  # inductor compiles C++ kernels: 10-60 s on a CPU
def test_inductor_draws_its_own_masks_reproducibly_from_the_global_seed():
    """One graph (fullgraph) through inductor of RandomErasing then Dropout: the same torch.manual_seed gives the
    same output twice; it is not eager's draw (docs say so); dropout still drops half and scales by 1/keep, and
    every sample still has its box erased (p = 1; erased pixels are -1, so -2 when kept)."""
    torch._dynamo.reset()
    model = torch.nn.Sequential(A.RandomErasing(p=1.0, value=-1.0), N.Dropout(0.5)).train()
    x = torch.rand(16, 3, 16, 16, generator=torch.Generator().manual_seed(0)) + 1.0
    fn = torch.compile(model, backend="inductor", fullgraph=True)
    torch.manual_seed(7)
    out = fn(x)
    torch.manual_seed(7)
    assert torch.equal(fn(x), out)
    torch.manual_seed(7)
    assert not torch.equal(model(x), out)
    dropped = out == 0
    assert abs(float(dropped.float().mean()) - 0.5) < 4 * (0.25 / out.numel()) ** 0.5
    kept = ~dropped
    assert torch.equal(kept, torch.isclose(out, 2 * x) | (out == -2.0))
    assert (out == -2.0).flatten(1).any(1).all()
