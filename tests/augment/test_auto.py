"""RandAugment, TrivialAugmentWide, AutoAugment: torchvision v2's magnitude bins, the sampling laws, the application."""
import math

import pytest
import torch

import regularkit.augment as A
from regularkit.augment.auto import AUTO_AUGMENT, POLICIES, RAND_AUGMENT, TRIVIAL_AUGMENT_WIDE, magnitude_table
from regularkit.augment.ops import OPS, apply_ops
from regularkit.errors import RegularkitError

I = {name: i for i, name in enumerate(OPS)}


def gen(seed):
    return torch.Generator().manual_seed(seed)


def proxy(n, h=32, w=32):
    return torch.empty(()).expand(n, 3, h, w)


# --------------------------------------------------------------------------- magnitude bins
def test_randaugment_magnitude_9_of_31_is_torchvisions_bin():
    t = magnitude_table(RAND_AUGMENT, 31, 32, 40)[:, 9]
    expected = {"shear_x": 0.09, "shear_y": 0.09, "translate_x": 150 / 331 * 40 * 0.3,
                "translate_y": 150 / 331 * 32 * 0.3, "rotate": 9.0, "brightness": 0.27, "color": 0.27,
                "contrast": 0.27, "sharpness": 0.27, "posterize": 7.0, "solarize": 0.7}
    for name, value in expected.items():
        assert t[I[name]].item() == pytest.approx(value, abs=1e-6), name
    for name in ("identity", "auto_contrast", "equalize", "invert"):
        assert t[I[name]] == 0


def test_posterize_bins_of_each_space():
    ra = magnitude_table(RAND_AUGMENT, 31, 8, 8)[I["posterize"]]
    ta = magnitude_table(TRIVIAL_AUGMENT_WIDE, 31, 8, 8)[I["posterize"]]
    aa = magnitude_table(AUTO_AUGMENT, 10, 8, 8)[I["posterize"]]
    assert ra[[0, 3, 4, 30]].tolist() == [8, 8, 7, 4]      # 8 - round(k / 7.5), round half to even
    assert ta[[0, 2, 3, 30]].tolist() == [8, 8, 7, 2]      # 8 - round(k / 5)
    assert aa.tolist() == [8, 8, 7, 7, 6, 6, 5, 5, 4, 4]   # 8 - round(k / 2.25)
    assert ta.min() == 2 and ra.min() == 4


def test_trivialaugment_wide_ranges():
    t = magnitude_table(TRIVIAL_AUGMENT_WIDE, 31, 32, 32)[:, 30]
    assert t[I["rotate"]] == 135 and t[I["translate_x"]] == 32 and t[I["shear_x"]] == pytest.approx(0.99)
    assert t[I["color"]] == pytest.approx(0.99) and t[I["solarize"]] == 0


# --------------------------------------------------------------------------- sampling laws
def test_randaugment_draws_14_ops_uniformly_at_the_global_magnitude_with_random_signs():
    n = 14_000
    p = A.RandAugment().make_params(proxy(n), gen(0))
    assert p["op"].shape == (n, 2)
    counts = torch.bincount(p["op"].flatten(), minlength=len(OPS))
    assert counts[I["invert"]] == 0  # RandAugment has no invert
    used = counts[[I[k] for k in RAND_AUGMENT]].float() / (2 * n)
    assert (used - 1 / 14).abs().max() < 0.006  # 5 sigma of a binomial(28000, 1/14) share
    rotate = p["magnitude"][p["op"] == I["rotate"]]
    assert set(rotate.abs().tolist()) == {9.0} and abs((rotate > 0).float().mean() - 0.5) < 0.05
    post = p["magnitude"][p["op"] == I["posterize"]]
    assert set(post.tolist()) == {7.0}  # unsigned
    tx = p["magnitude"][p["op"] == I["translate_x"]]
    assert set(tx.abs().tolist()) == {float(math.trunc(150 / 331 * 32 * 0.3))}  # torchvision's int(m)


def test_trivialaugment_one_op_per_sample_and_uniform_bins():
    n = 20_000
    p = A.TrivialAugmentWide().make_params(proxy(n), gen(1))
    assert p["op"].shape == (n, 1)
    rot = p["magnitude"][p["op"] == I["rotate"]].abs() / 4.5  # bins of 135 / 30 degrees
    hist = torch.bincount(rot.round().long(), minlength=31).float() / rot.numel()
    assert (hist - 1 / 31).abs().max() < 0.02


@pytest.mark.parametrize("policy", ["imagenet", "cifar10"])
def test_autoaugment_applies_each_subpolicy_op_with_its_probability(policy):
    n = 40_000
    p = A.AutoAugment(policy).make_params(proxy(n), gen(2))
    subs = POLICIES[policy]
    for slot in range(2):  # expected share of each op in a slot: mean over sub-policies of p(op in that slot)
        expected = torch.zeros(len(OPS))
        for sub in subs:
            name, prob, _ = sub[slot]
            expected[I[name]] += prob / len(subs)
        expected[0] = 1 - expected.sum()
        got = torch.bincount(p["op"][:, slot], minlength=len(OPS)).float() / n
        assert (got - expected).abs().max() < 0.012, policy
    # ImageNet's ("posterize", 0.4, 8) is 4 bits; CIFAR's ("translate_y", *, 9) is 150/331 * 32 pixels
    mags = p["magnitude"][p["op"] == (I["posterize"] if policy == "imagenet" else I["translate_y"])]
    expected = ({8.0 - round(k / 2.25) for k in (5, 6, 7, 8)} if policy == "imagenet"
                else {float(math.trunc(150 / 331 * 32 * k / 9)) for k in (3, 9)})
    assert set(mags.abs().tolist()) == expected


# --------------------------------------------------------------------------- application
def test_apply_is_the_layers_of_apply_ops_in_order_for_float_and_uint8():
    x = torch.rand(16, 3, 12, 10, generator=gen(3))
    x8 = (x * 255).round().to(torch.uint8)
    op = A.RandAugment(num_ops=3, magnitude=20)
    p = op.make_params(x, gen(4))
    for images in (x, x8):
        expected = images
        for layer in range(3):
            expected = apply_ops(expected, p["op"][:, layer], p["magnitude"][:, layer])
        assert torch.equal(op.apply(images, None, p)[0], expected)


def test_each_sample_gets_its_own_ops_and_one_image_works():
    x = torch.rand(1, 3, 12, 12, generator=gen(5)).expand(32, 3, 12, 12)
    out = A.TrivialAugmentWide()(x, generator=gen(6))
    assert len({tuple(o.flatten().tolist()) for o in out}) > 8
    single = A.AutoAugment("cifar10")(x[0], generator=gen(7))
    assert single.shape == (3, 12, 12)


def test_num_ops_zero_is_the_identity_and_errors_name_the_value():
    x = torch.rand(4, 3, 8, 8, generator=gen(8))
    assert torch.equal(A.RandAugment(num_ops=0)(x, generator=gen(0)), x)
    with pytest.raises(RegularkitError, match="magnitude must be a bin below num_magnitude_bins=31, got 31"):
        A.RandAugment(magnitude=31)
    with pytest.raises(RegularkitError, match="policy must be one of .*got 'svhn'"):
        A.AutoAugment("svhn")
    with pytest.raises(RegularkitError, match=r"fill must be in \[0.0, 1.0\], got 128"):
        A.TrivialAugmentWide(fill=128)
    with pytest.raises(RegularkitError, match="got dtype torch.int32"):
        A.RandAugment()(torch.zeros(2, 3, 8, 8, dtype=torch.int32))


@pytest.mark.parametrize("policy, total_p, total_bins, checksum", [("imagenet", 31.0, 159, 3143.8),
                                                                   ("cifar10", 26.5, 187, 3053.9)])
def test_policies_are_the_published_tables(policy, total_p, total_bins, checksum):
    """Digests of torchvision's lists (``_get_policies``), computed from its source: 25 sub-policies of two
    ops; the sums of probabilities and bins, and sum_i i p_i (1 + bin_i) over the 50 ops in order, which
    changes with any single value or any move."""
    subs = POLICIES[policy]
    assert len(subs) == 25 and all(len(sub) == 2 for sub in subs)
    flat = [op for sub in subs for op in sub]
    assert sum(p for _, p, _ in flat) == pytest.approx(total_p)
    assert sum(b or 0 for _, _, b in flat) == total_bins
    assert sum(i * p * (1 + (b or 0)) for i, (_, p, b) in enumerate(flat)) == pytest.approx(checksum)
    assert {name for name, _, _ in flat} <= set(AUTO_AUGMENT)
    assert [name for name, _, _ in flat][:4] == (["posterize", "rotate", "solarize", "auto_contrast"]
                                                if policy == "imagenet" else
                                                ["invert", "contrast", "rotate", "translate_x"])
