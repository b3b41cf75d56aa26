"""Augmentations under ``torch.compile`` (issue 24, item 5; docs/augment.md, "torch.compile").

* Every registered op and variant of the conformance cases, unseeded: no graph break
  (``torch._dynamo.explain`` on ``op(x, y)``, 6x3x16x16), except the ops of ``NOT_FULLGRAPH``, each with
  its reason; those must still fail ``fullgraph=True`` (the entry goes when the op is fixed).
* Compiled with ``fullgraph=True`` (eager backend), a second batch size recompiles with a symbolic batch
  dim (torch's automatic dynamic shapes) and still draws what eager draws after the same
  ``torch.manual_seed``: the policies' compiled form (every op on the batch, selected per sample) gives
  the eager subsets' numbers.
* A few ops through inductor (slow): one graph, outputs with the op's invariants (inductor's RNG is not eager's).
* The issue's pipeline: the ops the docs list as graph-break free, unseeded, in one ``nn.Sequential``
  compiled with ``fullgraph=True`` (any graph break raises) -- RandomErasing among them, which broke
  the graph 4 times before its boxes were drawn without a data-dependent loop -- and, on the eager
  backend, the eager pipeline's output after the same ``torch.manual_seed``.
* Every registered op drawing from a ``torch.Generator`` (``generator=`` or ``seed=``): with
  ``fullgraph=True``, regularkit's message naming the fix (the noise layers' mechanism,
  ``noise.stochastic.break_before_draw``), not torch's "opaque object".
"""
import pytest
import torch
import torch._dynamo
from _helpers.conformance_cases import AUGMENT_CASES, K
from torch import nn

import regularkit.augment as A

MESSAGE = (r"regularkit: this augmentation draws from a torch\.Generator \(seed= or generator=\), which "
           r"torch\.compile cannot trace .* build the op with seed=None, call it without generator=, and seed "
           r"torch's global RNG \(torch\.manual_seed\)")


#: Registered ops that are not one graph unseeded, and why.
#: OneOf: each op runs on the subset of samples that drew it (so a MixUp partner comes from the same subset),
#: a batch size that depends on the draw; it breaks the graph itself, with a message naming the alternatives.
NOT_FULLGRAPH = {
    "one_of": r"regularkit: OneOf runs each op on the subset of samples that drew it, .* For one graph "
              r"\(fullgraph=True\), use MixUpCutMix for MixUp/CutMix",
}

#: Every conformance case, plus a shrinking RandomResizedCrop (the antialiased taps, not the enlarging warp).
CASES = {f"{name}[{variant}]": (name, case.build) for name, cases in AUGMENT_CASES.items()
         for variant, case in cases.items()}
CASES["random_resized_crop[shrink]"] = ("random_resized_crop", lambda: A.RandomResizedCrop((7, 5), (0.3, 1.0)))


def batch(n, seed=0):
    return torch.rand(n, 3, 16, 16, generator=torch.Generator().manual_seed(seed)), torch.arange(n) % K


def test_the_cases_cover_the_registry_and_the_exceptions_are_registered():
    assert {name for name, _ in CASES.values()} == set(A.REGISTRY) and set(NOT_FULLGRAPH) <= set(A.REGISTRY)


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_registered_op_is_one_graph_unseeded(case):
    name, build = CASES[case]
    op = build().train()
    x, y = batch(6)
    torch._dynamo.reset()
    if name in NOT_FULLGRAPH:  # still breaks: when it stops, the entry and its docs line go
        with pytest.raises(torch._dynamo.exc.Unsupported, match=NOT_FULLGRAPH[name]):  # regularkit's message
            torch.compile(op, backend="eager", fullgraph=True)(x, y)
        return
    explained = torch._dynamo.explain(op)(x, y)
    assert explained.graph_break_count == 0, [str(b.reason).splitlines()[0] for b in explained.break_reasons]


# ops this issue made compile (their draws or kernels changed); the other ops are pinned by the pipeline test,
# the policies' compiled form against the eager subsets by tests/augment/test_ops.py (bit for bit, every op)
SLOW = pytest.mark.slow  # 5-15 s each on a shared CPU
CHANGED = ["mix_up[]", "cut_mix[]", "mix_up_cut_mix[]", "compose[]", "image_data_generator[]",
           pytest.param("random_resized_crop[shrink]", marks=SLOW), pytest.param("trivial_augment_wide[]", marks=SLOW)]


@pytest.mark.parametrize("case", CHANGED)
def test_compiled_draws_what_eager_draws_across_batch_sizes(case):
    """fullgraph, eager backend: same ``torch.manual_seed``, same output and targets as eager, at batch 6 and
    then at batch 9 (the recompile with a symbolic batch size, which torch 2.13's ``rand(generator=None)``
    refused before rng passed no generator argument for the global RNG)."""
    _, build = CASES[case]
    op = build().train()
    torch._dynamo.reset()
    compiled = torch.compile(op, backend="eager", fullgraph=True)
    for n in (6, 9):
        x, y = batch(n, seed=n)
        torch.manual_seed(n)
        out, y_out = compiled(x, y)
        torch.manual_seed(n)
        ref, y_ref = op(x, y)
        assert torch.equal(out, ref) and torch.equal(y_out, y_ref) and not torch.equal(out, x)


@pytest.mark.slow  # inductor builds C++ kernels: about 20-60 s on a CPU
@pytest.mark.parametrize("build", [lambda: A.MixUp(0.4, num_classes=K), lambda: A.RandomResizedCrop((7, 5))],
                         ids=["mix_up", "random_resized_crop_shrink"])
def test_inductor_compiles_an_op_into_one_graph(build):
    op = build().train()
    x, y = batch(6)
    torch._dynamo.reset()
    torch.manual_seed(0)
    out, y_out = torch.compile(op, backend="inductor", fullgraph=True)(x, y)
    assert out.shape == op.output_shape(x.shape) and bool(torch.isfinite(out).all())
    assert out.min() >= -1e-6 and out.max() <= 1 + 1e-6  # blends and resamplings of [0, 1] pixels
    if op.mixes_targets:
        torch.testing.assert_close(y_out.sum(1), torch.ones(6))
        assert not torch.equal(out, x)


def pipeline():
    """The docs' graph-break-free ops (float images; PCAColor fitted on other images)."""
    pca = A.PCAColor(std=0.5).fit(torch.rand(8, 3, 6, 6, generator=torch.Generator().manual_seed(9)))
    return nn.Sequential(A.HorizontalFlip(), A.VerticalFlip(), A.RandomCrop(padding=2, padding_mode="reflect"),
                         A.RandomAffine(20, 0.1, 5, (0.9, 1.1)), A.RandomScaleCrop((1.0, 1.3)),
                         A.ColorJitter(0.3, 0.3, 0.2), pca, A.Cutout(4), A.RandomErasing(p=0.8),
                         A.RandomErasing(p=1.0, value="random"), A.RandomGaussianNoise(0.05),
                         A.GaussianBlur(3), A.RandomResizedCrop(antialias=False)).train()


@pytest.mark.slow  # one compile of 13 ops: 5-10 s on a CPU
def test_an_unseeded_pipeline_is_one_graph_and_draws_what_eager_draws():
    x = torch.rand(5, 3, 16, 12, generator=torch.Generator().manual_seed(0))
    model = pipeline()
    torch._dynamo.reset()
    compiled = torch.compile(model, backend="eager", fullgraph=True)
    torch.manual_seed(4)
    out = compiled(x)
    torch.manual_seed(4)
    assert torch.equal(out, model(x))
    assert out.shape == x.shape and not torch.equal(out, x)


@pytest.mark.parametrize("name", sorted(AUGMENT_CASES))
def test_a_seeded_op_names_the_fix_under_fullgraph(name):
    case = AUGMENT_CASES[name][""]
    x = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    y = torch.arange(4) % K
    torch._dynamo.reset()
    with pytest.raises(torch._dynamo.exc.Unsupported, match=MESSAGE):
        torch.compile(case.build().train(), backend="eager", fullgraph=True)(x, y,
                                                                             generator=torch.Generator().manual_seed(1))
    op = case.build().train()
    op.seed = 3  # the op's own seeded generator: the other guard
    torch._dynamo.reset()
    with pytest.raises(torch._dynamo.exc.Unsupported, match=MESSAGE):
        torch.compile(op, backend="eager", fullgraph=True)(x, y)
