"""The one set of random helpers: where a draw happens, its dtype, and reproducibility."""
import numpy as np
import pytest
import torch

from regularkit._util import rng
from regularkit.errors import RegularkitError


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_same_generator_state_same_numbers_and_float32():
    for draw in (rng.rand, rng.randn):
        a, b = draw((3, 4), device="cpu", generator=gen(1)), draw((3, 4), device="cpu", generator=gen(1))
        assert torch.equal(a, b) and a.dtype == torch.float32 and a.shape == (3, 4)
        assert not torch.equal(a, draw((3, 4), device="cpu", generator=gen(2)))


def test_draws_equal_torch_own_draws_from_the_same_generator():
    # "draw on the generator's device": for a CPU generator this is exactly torch.rand / torch.randn
    assert torch.equal(rng.rand(5, device="cpu", generator=gen(3)), torch.rand(5, generator=gen(3)))
    assert torch.equal(rng.randn(5, device="cpu", generator=gen(3)), torch.randn(5, generator=gen(3)))


def test_no_generator_uses_the_global_rng():
    torch.manual_seed(7)
    a = rng.rand(4, device="cpu", generator=None)
    torch.manual_seed(7)
    assert torch.equal(a, torch.rand(4))


def test_keep_mask_fraction_and_beta_reproducible():
    mask = rng.keep_mask((200_000,), 0.3, device="cpu", generator=gen(0))
    assert mask.dtype == torch.bool and abs(mask.float().mean().item() - 0.3) < 0.005  # ~5 sigma
    a = rng.beta(1000, 0.4, device="cpu", generator=gen(5))
    assert torch.equal(a, rng.beta(1000, 0.4, device="cpu", generator=gen(5)))
    # Beta(a, a) has mean 1/2 and variance 1 / (4 (2a + 1))
    assert a.mean().item() == pytest.approx(0.5, abs=0.03)
    assert a.var().item() == pytest.approx(1 / (4 * 1.8), rel=0.1)
    state = np.random.get_state()[1].copy()
    rng.beta(10, 0.4, device="cpu", generator=gen(5))
    assert np.array_equal(np.random.get_state()[1], state)  # NumPy's global RNG untouched


def test_same_device_and_check_generator():
    assert rng.same_device("cuda", "cuda:0") and not rng.same_device("cpu", "cuda")
    assert rng.draw_device("cpu", gen()) == torch.device("cpu")
    with pytest.raises(RegularkitError, match=r"generator must be a torch.Generator or None, got 3"):
        rng.check_generator(3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cpu_generator_drives_cuda_draws():
    a = rng.rand(4, device="cuda", generator=gen(1))
    assert a.device.type == "cuda" and torch.equal(a.cpu(), torch.rand(4, generator=gen(1)))
