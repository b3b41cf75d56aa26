"""DropBlock: timm's two kernels restated (same draws, same masks), mask statistics, blocks, schedule, errors."""
import pytest
import torch
import torch.nn.functional as F

from regularkit.errors import RegularkitError
from regularkit.noise import DropBlock2d, DropBlockSchedule, drop_block_2d, scheduled_drop_prob
from regularkit.noise.dropblock import block_mask, drop_block_gamma, drop_block_seeds, valid_seeds


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------- timm restated (timm/layers/drop.py)
def timm_gamma(drop_prob, block_size, h, w, gamma_scale=1.0):
    clipped = min(block_size, w, h)
    return gamma_scale * drop_prob * (w * h) / clipped ** 2 / ((w - block_size + 1) * (h - block_size + 1))


def timm_drop_block_2d(x, drop_prob, block_size, u, gamma_scale=1.0):
    """timm's ``drop_block_2d`` (with_noise=False); ``u`` stands for its ``torch.rand_like(x)`` (or the
    ``(1, C, H, W)`` draw when batchwise), so both sides can use one set of draws."""
    _, _, h, w = x.shape
    k = min(block_size, w, h)
    gamma = timm_gamma(drop_prob, block_size, h, w, gamma_scale)
    hi, wi = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    valid = ((hi >= k // 2) & (hi < h - (k - 1) // 2) & (wi >= k // 2) & (wi < w - (k - 1) // 2)).to(x.dtype)
    mask = ((2 - gamma - valid + u) >= 1).to(x.dtype)
    mask = -F.max_pool2d(-mask, kernel_size=k, stride=1, padding=k // 2)
    return x * mask * (mask.numel() / mask.sum().add(1e-7))


def timm_drop_block_fast_2d(x, drop_prob, block_size, u, gamma_scale=1.0):
    """timm's ``drop_block_fast_2d``; its ``bernoulli_(gamma)`` draw is written ``u < gamma`` (the same law)."""
    _, _, h, w = x.shape
    k = min(block_size, w, h)
    gamma = timm_gamma(drop_prob, block_size, h, w, gamma_scale)
    mask = F.max_pool2d((u < gamma).to(x.dtype), kernel_size=k, stride=1, padding=k // 2)
    mask = 1 - mask
    return x * mask * (mask.numel() / mask.sum().add(1e-6))


@pytest.mark.parametrize("shape, p, k", [((4, 3, 12, 12), 0.2, 5), ((3, 2, 9, 15), 0.3, 3), ((8, 16, 7, 7), 0.3, 7)])
@pytest.mark.parametrize("batchwise", [False, True])
def test_exact_variant_is_timms_drop_block_2d_on_the_same_draws(shape, p, k, batchwise):
    x = torch.rand(shape, generator=gen(0)) + 0.5
    ours = drop_block_2d(x, p, k, fast=False, batchwise=batchwise, generator=gen(1))
    u = torch.rand((1,) + shape[1:] if batchwise else shape, generator=gen(1))
    torch.testing.assert_close(ours, timm_drop_block_2d(x, p, k, u), rtol=1e-5, atol=0)
    assert (ours == 0).any()  # something was dropped


@pytest.mark.parametrize("shape, p, k", [((4, 3, 12, 12), 0.2, 5), ((3, 2, 9, 15), 0.3, 3)])
def test_fast_variant_is_timms_drop_block_fast_2d_on_the_same_draws(shape, p, k):
    x = torch.rand(shape, generator=gen(2)) + 0.5
    ours = drop_block_2d(x, p, k, generator=gen(3))
    u = torch.rand(shape, generator=gen(3))
    torch.testing.assert_close(ours, timm_drop_block_fast_2d(x, p, k, u), rtol=1e-5, atol=0)


def test_gamma_is_the_papers_formula_per_dimension():
    # Ghiasi et al. Eq. 1: drop_prob / block^2 * feat^2 / (feat - block + 1)^2
    assert drop_block_gamma(0.1, 7, 14, 14) == pytest.approx(0.1 / 49 * 196 / 64, rel=1e-12)
    assert drop_block_gamma(0.2, 3, 8, 12) == pytest.approx(0.2 / 9 * 96 / (6 * 10), rel=1e-12)
    assert drop_block_gamma(0.2, 3, 8, 12, gamma_scale=0.25) == pytest.approx(0.05 / 9 * 96 / 60, rel=1e-12)
    # a block larger than the map is clipped per dimension (timm would divide by W - 7 + 1 = -1 here)
    assert drop_block_gamma(0.3, 7, 5, 9) == pytest.approx(0.3 / 35 * 45 / (1 * 3), rel=1e-12)
    assert drop_block_gamma(0.9, 3, 3, 3, gamma_scale=5.0) == 1.0  # capped
    assert timm_gamma(0.2, 3, 8, 12) == pytest.approx(drop_block_gamma(0.2, 3, 8, 12), rel=1e-12)


def expected_dropped_fraction(h, w, k, gamma, fast):
    """``1 - mean((1 - gamma) ^ c)``: ``c`` counts the seed positions whose block covers each unit."""
    seeds = torch.ones(1, 1, h, w) if fast else valid_seeds(h, w, k, k, "cpu").double()[None, None]
    covering = F.conv2d(F.pad(seeds.double(), (k // 2, (k - 1) // 2, k // 2, (k - 1) // 2)),
                        torch.ones(1, 1, k, k, dtype=torch.float64))
    return float(1 - ((1 - gamma) ** covering).mean())


@pytest.mark.parametrize("fast", [False, True])
@pytest.mark.parametrize("k", [3, 4, 5])
def test_dropped_fraction_matches_its_expectation(fast, k):
    h = w = 16
    p = 0.25
    x = torch.ones(64, 8, h, w)
    out = drop_block_2d(x, p, k, fast=fast, generator=gen(4))
    dropped = float((out == 0).double().mean())
    expected = expected_dropped_fraction(h, w, k, drop_block_gamma(p, k, h, w), fast)
    # 512 maps of 256 units with blocks of up to 25: the std of the fraction is below 0.004; 0.015 is > 4 sigma
    assert abs(dropped - expected) < 0.015
    if not fast:
        assert 0.75 * p < dropped < p  # overlapping blocks: a little below the target, as the paper says
    kept = out != 0
    # normalisation by the kept count of the whole tensor
    torch.testing.assert_close(out[kept], torch.full_like(out[kept], x.numel() / float(kept.sum())))


@pytest.mark.parametrize("k, seed_at, rows", [(3, (4, 5), (3, 6)), (4, (4, 5), (2, 6)), (5, (0, 0), (0, 3))])
def test_every_seed_drops_one_contiguous_block(k, seed_at, rows):
    seeds = torch.zeros(1, 1, 10, 10, dtype=torch.bool)
    seeds[0, 0, seed_at[0], seed_at[1]] = True
    dropped = ~block_mask(seeds, k)[0, 0]
    r0, r1 = rows  # rows [seed - k // 2, seed + (k - 1) // 2], clipped at the border
    c0, c1 = max(seed_at[1] - k // 2, 0), seed_at[1] + (k - 1) // 2 + 1
    expected = torch.zeros(10, 10, dtype=torch.bool)
    expected[r0:r1, c0:c1] = True
    assert torch.equal(dropped, expected)


def test_exact_variant_keeps_seeds_where_a_whole_block_fits():
    seeds = drop_block_seeds((200, 1, 9, 7), 0.5, 4, fast=False, generator=gen(5))
    valid = valid_seeds(9, 7, 4, 4, "cpu")
    assert not (seeds & ~valid).any() and seeds.any()
    assert int(valid.sum()) == (9 - 4 + 1) * (7 - 4 + 1)
    out = drop_block_2d(torch.ones(200, 1, 9, 7), 0.5, 4, fast=False, generator=gen(5))
    # every dropped region is a union of whole 4 x 4 blocks: each dropped unit lies in some all-dropped 4 x 4 window
    windows = -F.max_pool2d(-(out == 0).double(), 4, stride=1)  # 1 where a 4 x 4 window is all dropped
    covered = F.max_pool2d(F.pad(windows, (3, 3, 3, 3)), 4, stride=1) == 1
    assert torch.equal(covered, out == 0)


def test_batchwise_shares_one_mask_and_otherwise_each_map_has_its_own():
    x = torch.ones(6, 2, 10, 10)
    shared = drop_block_2d(x, 0.3, 3, batchwise=True, generator=gen(6)) == 0
    assert shared.any() and all(torch.equal(shared[0], shared[i]) for i in range(6))
    own = drop_block_2d(x, 0.3, 3, generator=gen(6)) == 0
    assert not torch.equal(own[0], own[1])


def test_eval_and_zero_rate_return_the_input_and_same_seed_same_output():
    x = torch.randn(2, 3, 8, 8)
    assert drop_block_2d(x, 0.3, 3, training=False) is x
    assert drop_block_2d(x, 0.0, 3) is x
    assert DropBlock2d(0.3, 3).eval()(x) is x
    a, b = DropBlock2d(0.3, 3, seed=1), DropBlock2d(0.3, 3, generator=gen(1))
    first = a(x)
    assert torch.equal(first, b(x)) and torch.equal(first, drop_block_2d(x, 0.3, 3, generator=gen(1)))
    assert not torch.equal(a(x), first)  # a fresh mask at every forward
    # the fraction dropped is that of x's mask, whatever the dtype
    assert torch.equal(drop_block_2d(x.double(), 0.3, 3, generator=gen(2)) == 0,
                       drop_block_2d(x, 0.3, 3, generator=gen(2)) == 0)


def test_schedule_ramps_every_layer_to_its_own_target_and_resumes():
    model = torch.nn.Sequential(DropBlock2d(0.2, 3), torch.nn.Identity(), DropBlock2d(0.1, 5))
    schedule = DropBlockSchedule(model, ramp_steps=4)
    assert [m.drop_prob for m in (model[0], model[2])] == [0.0, 0.0]
    for _ in range(2):
        schedule(model)
    assert [m.drop_prob for m in (model[0], model[2])] == pytest.approx([0.1, 0.05])
    resumed = DropBlockSchedule(model, ramp_steps=4)
    resumed.targets = list(schedule.targets)
    resumed.load_state_dict(schedule.state_dict())
    assert model[0].drop_prob == pytest.approx(0.1)
    for _ in range(5):
        schedule.step()
    assert [m.drop_prob for m in (model[0], model[2])] == pytest.approx([0.2, 0.1])  # held at the target
    assert [scheduled_drop_prob(0.3, s, 3) for s in (0, 1, 3, 9)] == pytest.approx([0.0, 0.1, 0.3, 0.3])


def test_errors_are_one_line_naming_the_value():
    with pytest.raises(RegularkitError, match=r"feature maps N x C x H x W, got shape \(4, 8\)"):
        drop_block_2d(torch.ones(4, 8), 0.1, 3)
    with pytest.raises(RegularkitError, match=r"drop_prob must be in \[0, 1\), got 1.0"):
        DropBlock2d(1.0)
    with pytest.raises(RegularkitError, match="block_size must be >= 1, got 0"):
        drop_block_2d(torch.ones(1, 1, 4, 4), 0.1, 0)
    with pytest.raises(RegularkitError, match="fast must be true or false, got 1"):
        drop_block_2d(torch.ones(1, 1, 4, 4), 0.1, 3, fast=1)
    with pytest.raises(RegularkitError, match="no DropBlock2d layer to schedule"):
        DropBlockSchedule(torch.nn.Linear(2, 2), 10)
    with pytest.raises(RegularkitError, match="x must be a floating tensor"):
        drop_block_2d(torch.ones(1, 1, 4, 4, dtype=torch.long), 0.1, 3)
