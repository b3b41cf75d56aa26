"""Conformance of every registered augmentation (``regularkit.augment.REGISTRY``): the contract of augment.base.

For each op: shape and dtype preserved (float32, float64, bfloat16, uint8 computed
in float32 and rounded back; the sampled parameters do not depend on the dtype)
and device and ``channels_last``, any batch size (1 and odd included), one image
C x H x W (image ops) or any batch N x ... (the others), same seed same output
and another seed another (``generator=`` per call, or the op's own rank-aware
``seed=``), fixed params give identical outputs and ``make_params`` then
``apply`` is the call, params read only the shape, different samples get
different parameters, targets passed through or made soft (rows summing to 1),
no mutation of the inputs, an ``nn.Module`` (``x`` alone in and out, in
``nn.Sequential``; the input unchanged in eval mode), pickling and config round
trip (same output), bad inputs rejected with a message naming the value.
"""
import inspect
import pickle

import pytest
import torch
from _helpers.conformance_cases import AUGMENT_CASES as CASES
from _helpers.conformance_cases import DEVICES, K, gen, params, require
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import regularkit._util.distributed as dist
import regularkit.augment as A
from regularkit.augment.base import to_integer
from regularkit.errors import RegularkitError

PARAMS = params(A.REGISTRY, CASES)


@pytest.fixture(params=PARAMS)
def entry(request):
    return require(request.param)


def same_config(a, b) -> bool:
    """``a == b``, with nested augmentations (a pipeline's ``ops``) compared by type and config, not identity."""
    if isinstance(a, A.Augmentation) or isinstance(b, A.Augmentation):
        return type(a) is type(b) and same_config(a.get_config(), b.get_config())
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_config(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same_config(u, v) for u, v in zip(a, b))
    return a == b


def batch(n=6, c=3, h=9, w=7, seed=0):
    g = gen(seed)
    return torch.rand(n, c, h, w, generator=g), torch.randint(0, K, (n,), generator=g)


@pytest.mark.parametrize("param", PARAMS)
@settings(max_examples=6, deadline=None)
@given(n=st.integers(1, 7), c=st.sampled_from([1, 3]), h=st.integers(4, 11), w=st.integers(4, 11),
       seed=st.integers(0, 2**31 - 1))
def test_shape_dtype_and_targets(param, n, c, h, w, seed):
    name, case = require(param)
    op = case.build()
    if name == "pca_color":  # fitted on RGB pixels
        c = 3
    x, y = batch(n, c, h, w, seed)
    out, y_out = op(x, y, generator=gen(seed))
    assert out.shape == x.shape and out.dtype == x.dtype
    assert torch.isfinite(out).all()
    if op.mixes_targets:
        assert y_out.shape == (n, K) and y_out.dtype == torch.float32
        assert (y_out >= 0).all()
        torch.testing.assert_close(y_out.sum(1), torch.ones(n))
    else:
        assert y_out is y


def test_same_seed_same_output_other_seed_other_output(entry):
    _, case = entry
    op = case.build()
    x, y = batch(n=8)
    a = op(x, y, generator=gen(1))
    b = op(x, y, generator=gen(1))
    c = op(x, y, generator=gen(2))
    torch.testing.assert_close(a[0], b[0], rtol=0, atol=0)
    torch.testing.assert_close(a[1], b[1], rtol=0, atol=0)
    assert not torch.equal(a[0], c[0])


def test_fixed_params_give_identical_outputs_and_sampling_then_applying_is_the_call(entry):
    _, case = entry
    op = case.build()
    x, y = batch(n=5)
    params_ = op.make_params(x, gen(3))
    first = op.apply(x, y, params_)
    again = op.apply(x.clone(), y.clone(), params_)
    torch.testing.assert_close(first[0], again[0], rtol=0, atol=0)
    torch.testing.assert_close(first[1], again[1], rtol=0, atol=0)
    called = op(x, y, generator=gen(3))
    assert torch.equal(called[0], first[0]) and torch.equal(called[1], first[1])


def test_make_params_reads_only_the_shape(entry):
    """Params drawn from a stride-0 proxy equal those drawn from the real batch (Compose relies on it)."""
    _, case = entry
    op = case.build()
    x, _ = batch(n=4)
    proxy = torch.empty((), dtype=x.dtype).expand(*x.shape)
    a, b = op.make_params(x, gen(5)), op.make_params(proxy, gen(5))
    assert repr(a) == repr(b)


def test_samples_get_different_parameters(entry):
    """Independent parameters per sample: a batch of identical images comes out as different images."""
    name, case = entry
    op = case.build()
    x = torch.rand(1, 3, 9, 7, generator=gen(0)).expand(12, 3, 9, 7).contiguous()
    if case.pipeline:  # built from other ops, whose own cases check this
        return
    if case.coarse:  # a flip is a coin per sample: between 10 and 54 heads in 64 (p < 1e-6 outside)
        flags = op.make_params(x[:1].expand(64, 3, 9, 7), gen(0))["flip"]
        assert 10 < int(flags.sum()) < 54
        return
    if op.mixes_targets:  # mixing identical images gives identical images: look at the label weights
        distinct = set(op.make_params(x, gen(4))["lam"].tolist())
        assert len(distinct) >= 6, f"{name}: only {len(distinct)} distinct lambdas for 12 samples"
        return
    out, _ = op(x, torch.arange(12) % K, generator=gen(4))
    distinct = {tuple(o.flatten().tolist()) for o in out}
    assert len(distinct) >= 6, f"{name}: only {len(distinct)} distinct outputs for 12 samples"


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_small_and_odd_batches(entry, n):
    _, case = entry
    op = case.build()
    x, y = batch(n=n)
    out, y_out = op(x, y, generator=gen(n))
    assert out.shape == x.shape and out.dtype == x.dtype
    if op.mixes_targets:
        torch.testing.assert_close(y_out.sum(1), torch.ones(n))
        assert (y_out >= 0).all()
    again = op(x, y, generator=gen(n))  # same seed, same output, at every batch size
    assert torch.equal(again[0], out) and torch.equal(again[1], y_out)
    applied = op.apply(x, y, op.make_params(x, gen(n)))  # sampling then applying is the call
    assert torch.equal(applied[0], out) and torch.equal(applied[1], y_out)


def test_inputs_are_not_mutated(entry):
    _, case = entry
    op = case.build()
    x, y = batch(n=6)
    soft = torch.softmax(torch.randn(6, K, generator=gen(1)), 1)
    for targets in (y, soft):
        x_before, y_before = x.clone(), targets.clone()
        op(x, targets, generator=gen(2))
        op.apply(x, targets, op.make_params(x, gen(2)))
        assert torch.equal(x, x_before) and torch.equal(targets, y_before)


def test_pickle_and_config_round_trip(entry):
    name, case = entry
    op = case.build()
    x, y = batch(n=4)
    expected = op(x, y, gen(0))
    clone = pickle.loads(pickle.dumps(op))
    torch.testing.assert_close(clone(x, y, gen(0))[0], expected[0], rtol=0, atol=0)
    assert same_config(clone.get_config(), op.get_config())
    config = op.get_config()
    for rebuilt in (type(op).from_config(config), A.get({"class_name": name, "config": config})):
        assert type(rebuilt) is type(op) and repr(rebuilt) == repr(op)
        assert same_config(rebuilt.get_config(), config)
        if hasattr(op, "state_dict"):  # fitted statistics are state, not config
            rebuilt.load_state_dict(op.state_dict())
        out = rebuilt(x, y, gen(0))
        torch.testing.assert_close(out[0], expected[0], rtol=0, atol=0)
        torch.testing.assert_close(out[1], expected[1], rtol=0, atol=0)
    assert A.get(op) is op


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-5), (torch.bfloat16, 0.1)])
def test_dtype_preserved_and_parameters_independent_of_it(entry, dtype, tol):
    _, case = entry
    op = case.build()
    x, y = batch(n=6)
    # the same pixel values in float32 (bfloat16 rounds the input: thresholding ops such as solarize may
    # then flip a pixel, which is the input's rounding, not the op's)
    reference = op(x.to(dtype).float(), y, generator=gen(7))
    out, y_out = op(x.to(dtype), y, generator=gen(7))
    assert out.dtype == dtype and torch.isfinite(out.float()).all()
    # parameters are drawn in float32 whatever the images' dtype: the same transform, up to rounding
    if getattr(op, "interpolation", None) == "nearest":
        # nearest-neighbour warps: where a source position is an exact half pixel (a shear of k/30 on a
        # small image), the float64 grid may pick the other neighbour than the float32 one
        assert float(((out.float() - reference[0]).abs() > tol).float().mean()) <= 0.02
    else:
        torch.testing.assert_close(out.float(), reference[0], rtol=tol, atol=tol)
    torch.testing.assert_close(y_out, reference[1], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("device", DEVICES)
def test_device_preserved(entry, device):
    _, case = entry
    op = case.build()
    x, y = batch(n=4)
    out, y_out = op(x.to(device), y.to(device), generator=gen(8))  # a CPU generator drives any device
    assert out.device.type == device and y_out.device.type == device
    reference = op(x, y, generator=gen(8))
    torch.testing.assert_close(out.cpu(), reference[0], rtol=1e-5, atol=1e-5)


def test_accepts_soft_targets(entry):
    _, case = entry
    op = case.build()
    x, y = batch(n=4)
    soft = torch.softmax(torch.randn(4, K, generator=gen(0)), 1)
    _, y_out = op(x, soft, generator=gen(0))
    assert y_out.shape == (4, K)
    torch.testing.assert_close(y_out.sum(1), torch.ones(4))


def test_non_mixing_ops_work_without_targets_and_mixing_ops_ask_for_them(entry):
    """Without ``y`` the call returns the batch alone (what ``nn.Sequential`` needs); with ``y``, the pair."""
    _, case = entry
    op = case.build()
    x, y = batch(n=3)
    if op.mixes_targets:
        with pytest.raises(RegularkitError, match="mixes labels: pass targets y"):
            op(x, generator=gen(0))
        return
    out = op(x, generator=gen(0))
    assert isinstance(out, torch.Tensor) and out.shape == x.shape
    assert torch.equal(out, op(x, y, gen(0))[0])


def test_is_a_module_in_sequential_and_the_identity_in_eval_mode(entry):
    _, case = entry
    op = case.build()
    x, y = batch(n=5)
    assert isinstance(op, nn.Module) and op.training
    if not op.mixes_targets:
        torch.manual_seed(3)
        seq = nn.Sequential(op, nn.Flatten())(x)
        torch.manual_seed(3)
        assert torch.equal(seq, op(x).flatten(1))
        assert not torch.equal(seq, x.flatten(1))
    op.eval()
    assert op(x, generator=gen(0)) is x
    out, y_out = op(x, y, gen(0))
    assert out is x and y_out is y
    op.train()
    assert not torch.equal(op(x, y, gen(0))[0], x)


def test_one_image_or_any_batch(entry):
    """Image ops take one image C x H x W (returned as C x H x W, the first row of the batch call); the
    others take any batch N x ... (vectors, sequences), dim 0 being the batch."""
    _, case = entry
    op = case.build()
    x, y = batch(n=1)
    if op.images_only:
        label = y[0]
        out, y_out = op(x[0], label, gen(4))
        ref, y_ref = op(x, y, gen(4))
        assert out.shape == x.shape[1:] and torch.equal(out, ref[0])
        if op.mixes_targets:
            assert y_out.shape == (K,) and torch.equal(y_out, y_ref[0])
        else:
            assert y_out is label
        if not op.mixes_targets:
            assert torch.equal(op(x[0], generator=gen(4)), out)
        with pytest.raises(RegularkitError, match=r"batch N x C x H x W or one image C x H x W, got shape \(6, 4\)"):
            op(torch.rand(6, 4))
        return
    for shape in [(6, 4), (6, 2, 5), (6,)]:
        v, labels = torch.rand(shape, generator=gen(1)), torch.arange(6) % K
        out, y_out = op(v, labels, gen(5))
        assert out.shape == v.shape and not torch.equal(out, v)
        params = op.make_params(v, gen(5))
        assert torch.equal(op.apply(v, labels, params)[0], out)


def rebuilt(op, **changes):
    """``op`` rebuilt from its config with ``changes``, its fitted state (PCA axes) loaded."""
    new = type(op).from_config({**op.get_config(), **changes})
    new.load_state_dict(op.state_dict())
    return new


def test_seed_is_the_ops_own_rank_aware_generator(entry, monkeypatch):
    """``seed=s``: the stream of ``torch.Generator().manual_seed(s)`` on rank 0, of ``s + r * RANK_STRIDE`` on
    rank r; it advances call after call, pickles carry its state, and a call's ``generator=`` wins."""
    _, case = entry
    op = case.build()
    x, y = batch(n=6)
    seeded = rebuilt(op, seed=11)
    assert seeded.get_config()["seed"] == 11
    g = gen(11)
    expected = [op(x, y, g) for _ in range(2)]
    got = [seeded(x, y) for _ in range(2)]
    for a, b in zip(got, expected):
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(got[0][0], got[1][0])  # the stream advances
    clone = pickle.loads(pickle.dumps(seeded))
    assert torch.equal(clone(x, y)[0], seeded(x, y)[0])  # same state, same next draw
    assert torch.equal(seeded(x, y, gen(2))[0], op(x, y, gen(2))[0])  # the call's generator wins
    seeded.reset_generator()
    assert torch.equal(seeded(x, y)[0], expected[0][0])
    monkeypatch.setattr(dist, "rank", lambda: 1)
    assert torch.equal(rebuilt(op, seed=11)(x, y)[0], op(x, y, gen(11 + dist.RANK_STRIDE))[0])
    assert not torch.equal(rebuilt(op, seed=11)(x, y)[0], expected[0][0])


def test_get_by_name_builds_defaults_or_names_the_missing_arguments(entry):
    name, _ = entry
    cls = A.REGISTRY[name]
    required = [n for n, p in inspect.signature(cls.__init__).parameters.items()
                if n != "self" and p.default is p.empty]
    if required:
        with pytest.raises(RegularkitError, match=f"augmentation '{name}' needs {', '.join(required)}"):
            A.get(name)
    else:
        op = A.get(name)
        assert type(op) is cls and same_config(op.get_config(), cls().get_config())


def test_get_rejects_unknown_names_and_objects():
    with pytest.raises(RegularkitError, match="augmentation must be one of .*; got 'hflip'"):
        A.get("hflip")
    with pytest.raises(RegularkitError, match="cannot build an augmentation from 3"):
        A.get(3)


@pytest.mark.parametrize("bad, match", [
    (torch.rand(4, 4), r"batch N x C x H x W or one image C x H x W, got shape \(4, 4\)"),
    (torch.rand(2, 3, 1, 4, 4), r"batch N x C x H x W or one image C x H x W, got shape \(2, 3, 1, 4, 4\)"),
    ([[1.0]], "must be a torch.Tensor N x C x H x W, got list"),
    (torch.rand(0, 1, 4, 4), r"at least one image .* got shape \(0, 1, 4, 4\)"),
    (torch.rand(1, 0, 4), r"at least one image .* got shape \(1, 0, 4\)"),
])
def test_bad_images_rejected(bad, match):
    with pytest.raises(RegularkitError, match=match):
        A.HorizontalFlip()(bad)


@pytest.mark.parametrize("bad, match", [
    (torch.zeros(3, dtype=torch.long), r"one row per image \(4\), got 3"),
    (torch.zeros(4), r"class indices .* got shape \(4,\) and dtype torch.float32"),
    (torch.zeros(4, 2, dtype=torch.long), r"got shape \(4, 2\) and dtype torch.int64"),
])
def test_bad_targets_rejected(bad, match):
    with pytest.raises(RegularkitError, match=match):
        A.HorizontalFlip()(torch.rand(4, 1, 3, 3), bad)


def test_bad_inputs_of_any_batch_ops_rejected():
    with pytest.raises(RegularkitError, match=r"batch N x \.\.\. with at least one dimension, got shape \(\)"):
        A.RandomGaussianNoise()(torch.tensor(1.0))
    with pytest.raises(RegularkitError, match=r"one sample and no empty dimension, got shape \(3, 0\)"):
        A.MixUp(num_classes=K)(torch.rand(3, 0), torch.zeros(3, dtype=torch.long))
    with pytest.raises(RegularkitError, match=r"must be a torch.Tensor N x \.\.\., got list"):
        A.RandomGaussianNoise()([1.0])
    with pytest.raises(RegularkitError, match="generator must be a torch.Generator or None, got 3"):
        A.HorizontalFlip()(torch.rand(2, 1, 3, 3), None, 3)
    with pytest.raises(RegularkitError, match=r"y of one image must be a 0-d class index or soft targets \(K,\), "
                                              r"got \(2, 5\)"):
        A.HorizontalFlip()(torch.rand(1, 3, 3), torch.rand(2, 5))


def same_params(a, b) -> bool:
    """Exact equality of nested params: tensors equal in value, dtype and shape."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.dtype == b.dtype \
            and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_params(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same_params(u, v) for u, v in zip(a, b))
    return a == b


def test_same_seed_same_draws_whatever_the_dtype(entry):
    _, case = entry
    op = case.build()
    x, _ = batch(n=6)
    reference = op.make_params(x, gen(9))
    for dtype in (torch.float64, torch.bfloat16, torch.uint8):
        assert same_params(op.make_params(x.to(dtype), gen(9)), reference), dtype
    assert not same_params(op.make_params(x, gen(10)), reference)


def test_uint8_images_are_computed_in_float32_and_rounded_back(entry):
    """torchvision's rule: the uint8 output is the float32 computation on the same pixel values, rounded
    (half to even) and clamped to [0, 255]; ImageDataGenerator returns float32 (Keras casts to floatx)."""
    _, case = entry
    op = case.build()
    # offsets and noise are in the images' units: make them move 0..255 pixels
    if isinstance(op, A.ColorJitter):
        op = A.ColorJitter(0.4, 0.4, 60.0)
    elif isinstance(op, A.PCAColor):
        op = A.PCAColor(std=0.5).fit(torch.rand(8, 3, 6, 6, generator=gen(99)) * 255)
    elif isinstance(op, A.RandomGaussianNoise):
        op = A.RandomGaussianNoise(20.0)
    x, y = batch(n=6)
    x8 = (x * 255).round().to(torch.uint8)
    out, y_out = op(x8, y, gen(6))
    if getattr(op, "pixel_range", None) == "dtype":
        # ops that know the value range (posterize, solarize, equalize...): floats are [0, 1], uint8 [0, 255];
        # the uint8 result is the float one on x8 / 255, up to rounding (one level per op, a few pixels more
        # where a rounded value crosses a threshold); exact per-op checks are in tests/augment/test_ops.py
        ref, y_ref = op(x8.float() / 255, y, gen(6))
        assert out.dtype == torch.uint8 and torch.equal(y_out, y_ref) and not torch.equal(out, x8)
        diff = (out.float() - ref * 255).abs()
        assert diff.mean() < 1.0 and (diff <= 1.5).float().mean() > 0.95, (diff.mean(), diff.max())
        return
    ref, y_ref = op(x8.float(), y, gen(6))
    assert torch.equal(y_out, y_ref)
    if not op.keeps_integer_dtype:
        assert out.dtype == torch.float32 and torch.equal(out, ref)
        return
    assert out.dtype == torch.uint8 and not torch.equal(out, x8)
    expected = to_integer(ref, torch.uint8)
    if getattr(op, "value", None) == "random":  # the fill: N(0, 1) on floats, uniform 0..255 on integers
        kept = ref == x8.float()
        assert torch.equal(out[kept], x8[kept]) and out[~kept].float().std() > 40
        return
    assert torch.equal(out, expected)
    assert ((ref - expected.float()).abs() <= 0.5 + 1e-6)[(ref >= 0) & (ref <= 255)].all()


def test_channels_last_in_channels_last_out(entry):
    _, case = entry
    op = case.build()
    x, y = batch(n=4)
    cl = x.contiguous(memory_format=torch.channels_last)
    out, y_out = op(cl, y, gen(3))
    ref, y_ref = op(x, y, gen(3))
    assert out.is_contiguous(memory_format=torch.channels_last) and not out.is_contiguous()
    torch.testing.assert_close(out, ref, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(y_out, y_ref, rtol=0, atol=0)
    assert op(x, y, gen(3))[0].is_contiguous()


def test_same_config_compares_nested_ops_by_config():
    assert same_config(A.Compose([A.HorizontalFlip()]).get_config(), A.Compose([A.HorizontalFlip()]).get_config())
    assert not same_config(A.Compose([A.HorizontalFlip()]).get_config(),
                           A.Compose([A.HorizontalFlip(p=0.3)]).get_config())
    assert not same_config(A.Compose([A.HorizontalFlip()]).get_config(), A.Compose([A.VerticalFlip()]).get_config())
