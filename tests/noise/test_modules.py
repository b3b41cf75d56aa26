"""One conformance suite over every noise module: seeds, eval behaviour, pickling, copies, state dicts."""
import copy
import pickle

import pytest
import torch
from torch import nn

from regularkit.noise import (
    DropConnect,
    DropConnectConv2d,
    DropConnectLinear,
    Dropout,
    DropPath,
    GaussianDropout,
    GaussianNoise,
    Stochastic,
    is_noise_layer,
    use_generator,
)

# name -> (factory(seed=..., generator=...), input); every module here draws noise in train mode
MODULES = {
    "dropout": (lambda **kw: Dropout(0.5, **kw), lambda: torch.ones(8, 6)),
    "dropout_classic": (lambda **kw: Dropout(0.5, classic=True, noise_shape=(None, 1), **kw), lambda: torch.ones(8, 6)),
    "drop_path": (lambda **kw: DropPath(0.5, **kw), lambda: torch.ones(32, 3)),
    "gaussian_noise": (lambda **kw: GaussianNoise(0.5, **kw), lambda: torch.zeros(8, 6)),
    "gaussian_dropout": (lambda **kw: GaussianDropout(0.5, **kw), lambda: torch.ones(8, 6)),
    "drop_connect": (lambda **kw: DropConnect(0.5, **kw), lambda: torch.ones(8, 6)),
    "drop_connect_linear": (lambda **kw: DropConnectLinear(6, 4, p=0.5, per_sample=True, **kw),
                            lambda: torch.ones(8, 6)),
    "drop_connect_conv": (lambda **kw: DropConnectConv2d(2, 3, 3, p=0.5, **kw), lambda: torch.ones(2, 2, 5, 5)),
}
# modules whose eval mode is the identity (the others apply a deterministic test-time rule)
IDENTITY_IN_EVAL = {"dropout", "drop_path", "gaussian_noise", "gaussian_dropout", "drop_connect"}


def build(name, **kw):
    factory, make_x = MODULES[name]
    torch.manual_seed(0)  # layers with weights draw their init from the global RNG
    return factory(**kw), make_x()


@pytest.fixture(params=sorted(MODULES))
def name(request):
    return request.param


def test_same_seed_same_output_different_seed_different_output(name):
    a, x = build(name, seed=1)
    b, _ = build(name, seed=1)
    c, _ = build(name, seed=2)
    first = a(x)
    assert torch.equal(first, b(x))
    assert torch.equal(a(x), b(x))  # and the streams stay in step
    assert not torch.equal(first, c(x))
    assert not torch.equal(first, a(x))  # a new mask at every forward


def test_generator_argument_is_equivalent_to_seed(name):
    a, x = build(name, seed=5)
    b, _ = build(name, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a(x), b(x))


def test_eval_is_deterministic_and_identity_where_it_must_be(name):
    module, x = build(name, seed=0)
    module.eval()
    assert torch.equal(module(x), module(x))
    if name in IDENTITY_IN_EVAL:
        assert torch.equal(module(x), x)


def test_pickle_round_trip_continues_the_same_stream(name):
    module, x = build(name, seed=3)
    module(x)  # create the private generator and advance it
    clone = pickle.loads(pickle.dumps(module))
    assert type(clone) is type(module) and repr(clone) == repr(module)
    assert torch.equal(clone(x), module(x))
    fresh = pickle.loads(pickle.dumps(build(name, seed=3)[0]))  # pickled before any forward
    assert torch.equal(fresh(x), build(name, seed=3)[0](x))


def test_deepcopy_has_its_own_generator(name):
    module, x = build(name, seed=4)
    module(x)
    twin = copy.deepcopy(module)
    assert torch.equal(twin(x), module(x))
    if module.generator is not None:
        assert twin.generator is not module.generator


def test_reset_generator_restarts_the_seed_stream(name):
    module, x = build(name, seed=6)
    first = module(x)
    module(x)
    module.reset_generator()
    assert torch.equal(module(x), first)


def test_state_dict_holds_no_randomness(name):
    module, _ = build(name, seed=0)
    keys = set(module.state_dict())
    assert keys <= {"weight", "bias"}


def test_use_generator_overrides_and_restores(name):
    module, x = build(name, seed=7)
    assert is_noise_layer(module) and isinstance(module, Stochastic)
    with use_generator(module, torch.Generator().manual_seed(9)):
        a = module(x)
    with use_generator(module, torch.Generator().manual_seed(9)):
        b = module(x)
    assert torch.equal(a, b)
    assert module._override is None


def test_torch_dropout_counts_as_a_noise_layer():
    assert is_noise_layer(nn.Dropout(0.1)) and is_noise_layer(nn.Dropout2d(0.1))
    assert not is_noise_layer(nn.Linear(2, 2)) and not is_noise_layer(nn.BatchNorm1d(2))


def test_gpu_generator_mismatch_falls_back_to_moving_the_noise():
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    x = torch.ones(64, 64, device="cuda")
    out = Dropout(0.5, generator=torch.Generator().manual_seed(0))(x)  # CPU generator, CUDA data
    assert out.device.type == "cuda"
    assert torch.equal(out.cpu(), Dropout(0.5, generator=torch.Generator().manual_seed(0))(x.cpu()))
    seeded = Dropout(0.5, seed=1)
    assert seeded(x).device.type == "cuda" and seeded.generator.device.type == "cuda"


# ---------------------------------------------------------------- torch.compile
# torch 2.13's dynamo cannot trace a torch.Generator argument (graph break "Failed to convert args/kwargs to
# proxy" at torch.rand(..., generator=g)), nor create or seed one inside a graph.  The default layers (no seed,
# no generator: torch's global RNG) must compile to one graph; seeded ones break the graph at the draw, on purpose
# with our message (GENERATOR_NOT_TRACEABLE), and give the same masks as eager.
COMPILED = {
    "dropout": (lambda **kw: Dropout(0.5, **kw), (8, 6)),
    "drop_path": (lambda **kw: DropPath(0.5, **kw), (32, 3)),
    "gaussian_noise": (lambda **kw: GaussianNoise(0.5, **kw), (8, 6)),
    "gaussian_dropout": (lambda **kw: GaussianDropout(0.5, **kw), (8, 6)),
    "drop_connect_linear": (lambda **kw: DropConnectLinear(6, 4, p=0.5, **kw), (8, 6)),
}


def compile_counting(module, **kwargs):
    """``torch.compile`` with an eager backend that records each graph, after a dynamo reset; returns both."""
    import torch._dynamo
    torch._dynamo.reset()
    graphs = []

    def backend(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    return torch.compile(module, backend=backend, **kwargs), graphs


@pytest.mark.parametrize("name", sorted(COMPILED))
def test_unseeded_layer_compiles_to_one_graph_in_train_mode(name):
    factory, shape = COMPILED[name]
    torch.manual_seed(0)
    layer = factory().train()
    x = torch.rand(shape) + 1
    compiled, graphs = compile_counting(layer, fullgraph=True)  # fullgraph: any graph break raises
    torch.manual_seed(1)
    out, again = compiled(x), compiled(x)
    assert len(graphs) == 1  # one graph, reused by the second call
    torch.manual_seed(1)
    assert torch.equal(out, layer(x)) and torch.equal(again, layer(x))  # the global RNG's draws, as eager
    assert not torch.equal(out, again)  # and fresh noise at each call


@pytest.mark.parametrize("name", sorted(COMPILED))
def test_seeded_layer_says_why_it_cannot_be_one_graph_and_matches_eager(name):
    import torch._dynamo
    factory, shape = COMPILED[name]
    x = torch.rand(shape) + 1
    message = r"this noise draws from a torch.Generator \(seed= or generator=\), which torch.compile cannot trace"
    for randomness in ({"seed": 1}, {"generator": torch.Generator().manual_seed(1)}):
        compiled, _ = compile_counting(factory(**randomness), fullgraph=True)
        with pytest.raises(torch._dynamo.exc.Unsupported, match=message):
            compiled(x)
    torch.manual_seed(0)
    layer = factory(generator=torch.Generator().manual_seed(1))
    torch.manual_seed(0)
    reference = factory(seed=1)
    compiled, graphs = compile_counting(layer)  # without fullgraph: graph breaks, the draws run eagerly
    for _ in range(2):
        assert torch.equal(compiled(x), reference(x))  # the generator's stream, exactly as eager
    assert len(graphs) >= 1
