"""Compose and OneOf: sampling in one step, per-sample probabilities, consistent soft targets."""
import pickle

import pytest
import torch
from torch import nn

import regularkit.augment as A
from regularkit.errors import RegularkitError

K = 4


def gen(seed):
    return torch.Generator().manual_seed(seed)


def batch(n=8, seed=0):
    g = gen(seed)
    return torch.rand(n, 3, 6, 6, generator=g), torch.randint(0, K, (n,), generator=g)


def test_compose_equals_ops_applied_in_order_with_the_same_params():
    x, y = batch()
    ops = [A.RandomCrop(padding=2), A.HorizontalFlip(), A.CutMix(num_classes=K)]
    pipe = A.Compose(ops)
    params = pipe.make_params(x, gen(1))
    out, y_out = pipe.apply(x, y, params)
    ref_x, ref_y = x, y
    for op, (mask, sub) in zip(ops, params["steps"]):
        assert mask is None
        ref_x, ref_y = op.apply(ref_x, ref_y, sub)
    assert torch.equal(out, ref_x) and torch.equal(y_out, ref_y)


def test_compose_probability_zero_is_identity_and_one_is_the_op():
    x, y = batch()
    out, y_out = A.Compose([A.HorizontalFlip(p=1.0)], p=0.0)(x, y, gen(0))
    assert torch.equal(out, x) and torch.equal(y_out, y)
    out, _ = A.Compose([A.HorizontalFlip(p=1.0)], p=1.0)(x, y, gen(0))
    assert torch.equal(out, x.flip(-1))


def test_compose_probability_is_per_sample():
    x = torch.rand(1, 1, 4, 4).expand(400, 1, 4, 4).contiguous()
    out = A.Compose([A.HorizontalFlip(p=1.0)], p=0.3)(x, generator=gen(0))
    flipped = (out != x).flatten(1).any(1).float().mean()
    assert 0.22 < flipped < 0.38


def test_compose_mixing_with_probability_gives_consistent_soft_targets():
    x, y = batch(20)
    pipe = A.Compose([A.MixUp(num_classes=K, label_smoothing=0.1)], p=0.5)
    params = pipe.make_params(x, gen(2))
    out, y_out = pipe.apply(x, y, params)
    mask = params["steps"][0][0]
    smooth = 0.9 * torch.eye(K)[y] + 0.1 / K
    torch.testing.assert_close(y_out[~mask], smooth[~mask])  # untouched rows: smoothed one-hots
    assert torch.equal(out[~mask], x[~mask])
    torch.testing.assert_close(y_out.sum(1), torch.ones(20))


def test_compose_samples_through_shape_changing_ops():
    x, y = batch()
    pipe = A.Compose([A.RandomCrop(4), A.RandomErasing(p=1.0), A.HorizontalFlip()])
    out, _ = pipe(x, y, gen(0))
    assert out.shape == (8, 3, 4, 4) and pipe.output_shape(x.shape) == (8, 3, 4, 4)
    with pytest.raises(RegularkitError, match=r"RandomCrop changes the image shape .* \(p must be 1\)"):
        A.Compose([A.RandomCrop(4)], p=0.5)(x, y, gen(0))


def test_one_of_assigns_each_sample_one_op_per_sample():
    x, y = batch(300)
    switch = A.OneOf([A.HorizontalFlip(p=1.0), A.VerticalFlip(p=1.0)], p=[0.25, 0.75])
    params = switch.make_params(x, gen(0))
    out, y_out = switch.apply(x, y, params)
    choice = params["choice"]
    assert torch.equal(out[choice == 0], x[choice == 0].flip(-1))
    assert torch.equal(out[choice == 1], x[choice == 1].flip(-2))
    assert 0.18 < float((choice == 0).float().mean()) < 0.32
    assert torch.equal(y_out, y)


def test_one_of_mixup_cutmix_switch_and_per_batch_mode():
    x, y = batch(31)  # odd, as timm refuses
    switch = A.OneOf([A.MixUp(num_classes=K), A.CutMix(num_classes=K)])
    out, y_out = switch(x, y, gen(0))
    assert out.shape == x.shape and y_out.shape == (31, K)
    assert ((y_out > 0).sum(1) <= 2).all()
    torch.testing.assert_close(y_out.sum(1), torch.ones(31))
    whole = A.OneOf([A.MixUp(num_classes=K), A.CutMix(num_classes=K)], per_sample=False)
    assert len(set(whole.make_params(x, gen(0))["choice"].tolist())) == 1


def test_one_of_mixed_with_a_plain_op_converts_untouched_rows():
    x, y = batch(40)
    switch = A.OneOf([A.MixUp(num_classes=K, label_smoothing=0.2), A.HorizontalFlip(p=1.0)])
    params = switch.make_params(x, gen(3))
    _, y_out = switch.apply(x, y, params)
    plain = params["choice"] == 1
    torch.testing.assert_close(y_out[plain], 0.8 * torch.eye(K)[y[plain]] + 0.2 / K)


@pytest.mark.parametrize("make, match", [
    (lambda: A.Compose([]), "ops must hold at least one augmentation, got an empty list"),
    (lambda: A.Compose([3]), "ops must be regularkit augmentations or callables x -> x, got int"),
    (lambda: A.Compose([lambda x, y: (x, y)]),
     "a plain callable in a pipeline takes x alone and returns x; <lambda> needs more arguments"),
    (lambda: A.Compose([A.HorizontalFlip()], p=[0.5, 0.5]), r"one probability per op \(1\), got 2"),
    (lambda: A.Compose([A.HorizontalFlip()], p=2.0), r"p must be in \[0, 1\], got 2.0"),
    (lambda: A.OneOf([A.HorizontalFlip()], p=[-1.0]), r"one non-negative weight per op, not all zero, got \[-1.0\]"),
    (lambda: A.OneOf([A.MixUp(num_classes=3), A.CutMix(num_classes=4)]),
     "mixing ops in one pipeline must share num_classes and label_smoothing"),
])
def test_pipeline_errors(make, match):
    with pytest.raises(RegularkitError, match=match):
        make()


def test_one_of_refuses_shape_changing_ops():
    with pytest.raises(RegularkitError, match="OneOf needs ops that keep the image shape"):
        A.OneOf([A.RandomCrop(3), A.HorizontalFlip()])(torch.rand(2, 1, 5, 5))


def halve(x):
    """A plain step x -> x (module level, so the pipeline pickles)."""
    return x / 2


def test_compose_runs_plain_callables_in_order_per_sample_and_pickles():
    x, y = batch(40)
    flip = A.HorizontalFlip(p=1.0)
    pipe = A.Compose([halve, flip, nn.Identity()], p=[0.5, 1.0, 1.0])
    params = pipe.make_params(x, gen(0))
    out, y_out = pipe.apply(x, y, params)
    halved = params["steps"][0][0]
    assert params["steps"][0][1] == {} and y_out is y
    assert torch.equal(out[halved], (x[halved] / 2).flip(-1)) and torch.equal(out[~halved], x[~halved].flip(-1))
    assert 0.3 < float(halved.float().mean()) < 0.7
    clone = pickle.loads(pickle.dumps(pipe))
    assert torch.equal(clone(x, y, gen(0))[0], out) and clone.get_config()["ops"][0] is halve
    assert isinstance(pipe._steps["1"], A.HorizontalFlip) and isinstance(pipe._steps["2"], nn.Identity)
    with pytest.raises(RegularkitError, match=r"a plain callable in a pipeline must return x's shape "
                                              r"\(40, 3, 6, 6\); <lambda> returned \(40, 3, 3, 6\)"):
        A.Compose([lambda t: t[:, :, :3]])(x)


def test_pipelines_take_any_batch_unless_an_op_needs_images():
    v, y = torch.rand(9, 6, generator=gen(1)), torch.arange(9) % K
    pipe = A.Compose([A.RandomGaussianNoise(0.1), A.MixUp(num_classes=K)], p=[1.0, 0.5])
    out, y_out = pipe(v, y, gen(2))
    assert out.shape == (9, 6) and y_out.shape == (9, K) and not pipe.images_only
    assert not A.OneOf([A.MixUp(num_classes=K), halve]).images_only
    with pytest.raises(RegularkitError, match=r"batch N x C x H x W or one image C x H x W, got shape \(9, 6\)"):
        A.Compose([A.RandomGaussianNoise(0.1), A.HorizontalFlip()])(v)


def test_pipeline_generator_drives_every_op_and_ops_keep_their_seeds_without_one():
    x, _ = batch(16)
    alone = A.HorizontalFlip()(x, generator=gen(3))
    assert torch.equal(A.Compose([A.HorizontalFlip(seed=3)])(x), alone)  # no pipeline generator: the op's seed
    assert torch.equal(A.Compose([A.HorizontalFlip(seed=3)], seed=4)(x), A.HorizontalFlip()(x, generator=gen(4)))
    assert torch.equal(A.Compose([A.HorizontalFlip(seed=3)])(x, generator=gen(4)), A.HorizontalFlip()(x, None, gen(4)))
    assert not torch.equal(alone, A.HorizontalFlip()(x, generator=gen(4)))


def test_eval_reaches_the_ops_of_a_pipeline():
    x, y = batch()
    pipe = A.Compose([A.HorizontalFlip(p=1.0), A.OneOf([A.VerticalFlip(p=1.0)])])
    pipe.eval()
    assert not any(m.training for m in pipe.modules())
    assert pipe(x) is x
    pipe.train()
    assert all(m.training for m in pipe.modules()) and torch.equal(pipe(x), x.flip(-1).flip(-2))


def test_pipelines_with_mixing_compile_without_graph_breaks():
    x, y = batch(8)
    for pipe in (A.Compose([A.HorizontalFlip(), A.MixUp(num_classes=K, label_smoothing=0.1)], p=[1.0, 0.5]),
                 A.OneOf([A.MixUp(num_classes=K), A.CutMix(num_classes=K), halve])):
        params = pipe.make_params(x, gen(1))
        torch._dynamo.reset()
        explained = torch._dynamo.explain(pipe.apply)(x, y, params)
        assert explained.graph_break_count == 0, explained.break_reasons
    torch._dynamo.reset()
