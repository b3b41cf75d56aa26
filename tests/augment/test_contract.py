"""One conformance suite run over every augmentation: the contract of regularkit.augment.base.

For each op: shape and dtype preserved, any batch size (1 and odd included),
same seed same output, fixed params give identical outputs, different samples
get different parameters, targets passed through or made soft, pickling and
config round trip, bad inputs rejected with a message naming the value.
"""
import pickle

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import regularkit.augment as A
from regularkit.errors import RegularkitError

K = 5


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _pca():
    return A.PCAColor(std=0.5).fit(torch.rand(8, 3, 6, 6, generator=gen(99)))


# name -> factory; each op is configured so that it changes (almost) every sample.
OPS = {
    "hflip": lambda: A.HorizontalFlip(p=0.5),
    "vflip": lambda: A.VerticalFlip(p=0.5),
    "crop": lambda: A.RandomCrop(padding=3),
    "crop_reflect": lambda: A.RandomCrop(padding=(2, 3), padding_mode="reflect"),
    "crop_wrap": lambda: A.RandomCrop(padding=2, padding_mode="wrap"),
    "affine": lambda: A.RandomAffine(30, 0.2, 10, (0.8, 1.2), fill_mode="reflect"),
    "affine_wrap": lambda: A.RandomAffine(30, 0.2, fill_mode="wrap"),
    "affine_cval": lambda: A.RandomAffine(45, fill_mode="constant", cval=0.5),
    "scale_crop": lambda: A.RandomScaleCrop((1.0, 1.5)),
    "jitter": lambda: A.ColorJitter(0.4, 0.4, 0.2),
    "pca": _pca,
    "cutout": lambda: A.Cutout(3),
    "erasing": lambda: A.RandomErasing(p=1.0, scale=(0.1, 0.4)),
    "erasing_random": lambda: A.RandomErasing(p=1.0, value="random"),
    "mixup": lambda: A.MixUp(1.0, num_classes=K),
    "cutmix": lambda: A.CutMix(1.0, num_classes=K),
    "mixup_cutmix": lambda: A.MixUpCutMix(0.8, 1.0, num_classes=K, switch_prob=0.5),
    "noise": lambda: A.RandomGaussianNoise(0.1),
    "compose": lambda: A.Compose([A.RandomCrop(padding=2), A.HorizontalFlip(), A.MixUp(num_classes=K)], p=[1, 1, 0.7]),
    "oneof": lambda: A.OneOf([A.MixUp(num_classes=K), A.CutMix(num_classes=K)], p=[0.5, 0.5]),
    "keras": lambda: A.ImageDataGenerator(rotation_range=20, width_shift_range=0.2, height_shift_range=2,
                                          shear_range=10, zoom_range=0.2, channel_shift_range=0.1,
                                          horizontal_flip=True, data_format="channels_first"),
}
NAMES = sorted(OPS)
# Ops whose parameters are a few discrete values, so two samples may legitimately coincide.
COARSE = {"hflip", "vflip"}


def batch(n=6, c=3, h=9, w=7, seed=0):
    g = gen(seed)
    return torch.rand(n, c, h, w, generator=g), torch.randint(0, K, (n,), generator=g)


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=6, deadline=None)
@given(n=st.integers(1, 7), c=st.sampled_from([1, 3]), h=st.integers(4, 11), w=st.integers(4, 11),
       seed=st.integers(0, 2**31 - 1))
def test_shape_dtype_and_targets(name, n, c, h, w, seed):
    op = OPS[name]()
    if name == "pca" and c != 3:
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


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_output_different_seed_different(name):
    op = OPS[name]()
    x, y = batch(n=8)
    a = op(x, y, generator=gen(1))
    b = op(x, y, generator=gen(1))
    c = op(x, y, generator=gen(2))
    torch.testing.assert_close(a[0], b[0], rtol=0, atol=0)
    torch.testing.assert_close(a[1], b[1], rtol=0, atol=0)
    assert not torch.equal(a[0], c[0])


@pytest.mark.parametrize("name", NAMES)
def test_fixed_params_give_identical_outputs(name):
    op = OPS[name]()
    x, y = batch(n=5)
    params = op.make_params(x, gen(3))
    first = op.apply(x, y, params)
    again = op.apply(x.clone(), y.clone(), params)
    torch.testing.assert_close(first[0], again[0], rtol=0, atol=0)
    torch.testing.assert_close(first[1], again[1], rtol=0, atol=0)


@pytest.mark.parametrize("name", NAMES)
def test_make_params_reads_only_the_shape(name):
    """Params drawn from a stride-0 proxy equal those drawn from the real batch (Compose relies on it)."""
    op = OPS[name]()
    x, _ = batch(n=4)
    proxy = torch.empty((), dtype=x.dtype).expand(*x.shape)
    a, b = op.make_params(x, gen(5)), op.make_params(proxy, gen(5))
    assert repr(a) == repr(b)


@pytest.mark.parametrize("name", sorted(set(NAMES) - COARSE - {"compose", "oneof", "keras"}))
def test_samples_get_different_parameters(name):
    """Independent parameters per sample: a batch of identical images comes out as different images."""
    op = OPS[name]()
    x = torch.rand(1, 3, 9, 7, generator=gen(0)).expand(12, 3, 9, 7).contiguous()
    y = torch.arange(12) % K
    if op.mixes_targets:  # mixing identical images gives identical images: look at the label weights
        distinct = set(op.make_params(x, gen(4))["lam"].tolist())
        assert len(distinct) >= 6, f"{name}: only {len(distinct)} distinct lambdas for 12 samples"
        return
    out, _ = op(x, y, generator=gen(4))
    distinct = {tuple(o.flatten().tolist()) for o in out}
    assert len(distinct) >= 6, f"{name}: only {len(distinct)} distinct outputs for 12 samples"


@pytest.mark.parametrize("name", sorted(COARSE))
def test_flips_are_drawn_per_sample(name):
    op = OPS[name]()
    x = torch.rand(1, 1, 4, 4).expand(64, 1, 4, 4)
    flags = op.make_params(x, gen(0))["flip"]
    assert 10 < int(flags.sum()) < 54


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_small_and_odd_batches(name, n):
    op = OPS[name]()
    x, y = batch(n=n)
    out, y_out = op(x, y, generator=gen(n))
    assert out.shape == x.shape
    if op.mixes_targets:
        torch.testing.assert_close(y_out.sum(1), torch.ones(n))


@pytest.mark.parametrize("name", NAMES)
def test_pickle_and_config_round_trip(name):
    op = OPS[name]()
    x, y = batch(n=4)
    clone = pickle.loads(pickle.dumps(op))
    torch.testing.assert_close(op(x, y, gen(0))[0], clone(x, y, gen(0))[0], rtol=0, atol=0)
    rebuilt = type(op).from_config(op.get_config())
    assert repr(rebuilt) == repr(op)


@pytest.mark.parametrize("name", NAMES)
def test_accepts_soft_targets(name):
    op = OPS[name]()
    x, y = batch(n=4)
    soft = torch.softmax(torch.randn(4, K, generator=gen(0)), 1)
    _, y_out = op(x, soft, generator=gen(0))
    assert y_out.shape == (4, K)
    torch.testing.assert_close(y_out.sum(1), torch.ones(4))


@pytest.mark.parametrize("name", sorted(n for n in NAMES if not OPS[n]().mixes_targets))
def test_non_mixing_ops_work_without_targets(name):
    x, _ = batch(n=3)
    out, y_out = OPS[name]()(x, generator=gen(0))
    assert y_out is None and out.shape == x.shape


@pytest.mark.parametrize("bad, match", [
    (torch.rand(3, 4, 4), r"4-D batch N x C x H x W, got shape \(3, 4, 4\)"),
    ([[1.0]], "must be a torch.Tensor N x C x H x W, got list"),
    (torch.rand(0, 1, 4, 4), r"at least one image .* got shape \(0, 1, 4, 4\)"),
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


def test_integer_images_supported_where_no_interpolation_happens():
    x = torch.randint(0, 255, (4, 3, 6, 6), dtype=torch.uint8)
    for op in (A.HorizontalFlip(), A.RandomCrop(padding=2), A.Cutout(3)):
        out, _ = op(x, generator=gen(0))
        assert out.dtype == torch.uint8
    with pytest.raises(RegularkitError, match="floating point, got torch.uint8"):
        A.RandomAffine(10)(x)
    with pytest.raises(RegularkitError, match="floating-point images, got torch.uint8"):
        A.MixUp(num_classes=3)(x, torch.zeros(4, dtype=torch.long))
