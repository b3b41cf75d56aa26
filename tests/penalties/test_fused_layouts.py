"""The fused L1 / Lp / elastic-net gradients on weights that are not contiguous (issue 21, item 8).

Mutation testing found this path unpinned: ``fused._inner`` takes a BLAS dot product of
``view(-1)``s only when both tensors are contiguous, and a product and a sum otherwise
(channels_last convolutions, transposed or sliced weights). Reference: autograd of the plain
penalty (``penalties.functional``) on the very same tensors, in float64 (to 1e-12), value and
gradient; and the layout of ``.grad`` that the optimizer then reads follows the weight's, as
autograd's does.
"""
import pytest
import torch
from torch import nn

from regularkit.penalties.functional import elastic_net_penalty, lp_penalty
from regularkit.penalties.fused import elastic_net_add_grad_, lp_add_grad_


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def channels_last_conv():
    conv = nn.Conv2d(3, 5, 3).double().to(memory_format=torch.channels_last)
    with torch.no_grad():
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=_gen(1), dtype=torch.float64))
    return conv.weight


def transposed():
    return nn.Parameter(torch.randn(7, 4, generator=_gen(2), dtype=torch.float64).t())  # 4 x 7, strides (1, 4)


def sliced():
    return nn.Parameter(torch.randn(6, 10, generator=_gen(3), dtype=torch.float64)[:, ::2])  # every other column


def column_block():
    """Columns 1..5 of 6 x 10: not viewable as one row (``view(-1)`` raises), and not dense, so the direction
    ``sign(w)`` torch computes for it is contiguous while ``w`` is not: the mixed pair of ``_inner``."""
    return nn.Parameter(torch.randn(6, 10, generator=_gen(6), dtype=torch.float64)[:, 1:6])


LAYOUTS = {"channels_last": channels_last_conv, "transposed": transposed, "sliced": sliced,
           "column_block": column_block}

KERNELS = {
    "l1": (lambda ps: elastic_net_add_grad_(ps, l1=0.3), lambda ps: elastic_net_penalty(ps, l1=0.3)),
    "elastic_half": (lambda ps: elastic_net_add_grad_(ps, l1=0.2, l2=0.4, convention="half", n=5),
                     lambda ps: elastic_net_penalty(ps, l1=0.2, l2=0.4, convention="half", n=5)),
    "lp_1": (lambda ps: lp_add_grad_(ps, 1.0, 0.3), lambda ps: lp_penalty(ps, 1.0, 0.3)),
    "lp_1.5": (lambda ps: lp_add_grad_(ps, 1.5, 0.3), lambda ps: lp_penalty(ps, 1.5, 0.3)),
    "lp_3_root": (lambda ps: lp_add_grad_(ps, 3.0, 0.3, root=True, n=4),
                  lambda ps: lp_penalty(ps, 3.0, 0.3, root=True, n=4)),
}


@pytest.mark.parametrize("kernel", sorted(KERNELS))
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_fused_gradient_on_a_non_contiguous_weight_equals_autograd(layout, kernel):
    fused, plain = KERNELS[kernel]
    w = LAYOUTS[layout]()
    other = nn.Parameter(torch.randn(3, 3, generator=_gen(4), dtype=torch.float64))  # a contiguous neighbour
    assert not w.is_contiguous() and other.is_contiguous()
    params = [w, other]
    value = fused(params)
    got = [p.grad.clone() for p in params]
    for p in params:
        p.grad = None
    expected_value = plain(params)
    expected_value.backward()
    torch.testing.assert_close(value, expected_value.detach(), rtol=1e-12, atol=1e-12)
    for g, p in zip(got, params):
        torch.testing.assert_close(g, p.grad, rtol=1e-12, atol=1e-12)
        assert g.stride() == p.grad.stride()  # the gradient has the weight's layout, as autograd gives it


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_an_existing_gradient_is_added_to_in_place_whatever_its_layout(layout):
    """After backward the data loss's gradient is there: the fused term adds to it (not replaces it)."""
    w = LAYOUTS[layout]()
    data_grad = torch.randn(w.shape, generator=_gen(5), dtype=torch.float64)
    w.grad = data_grad.clone()  # contiguous, while the weight is not
    before = w.grad
    lp_add_grad_([w], 1.5, 0.2)
    assert w.grad is before
    reference = w.detach().clone().requires_grad_()
    lp_penalty([reference], 1.5, 0.2).backward()
    torch.testing.assert_close(w.grad, data_grad + reference.grad, rtol=1e-12, atol=1e-12)


def test_the_column_block_is_the_mixed_case():
    w = column_block()
    assert torch.sign(w).is_contiguous() and not w.is_contiguous()
    with pytest.raises(RuntimeError):
        w.view(-1)


def test_the_value_on_a_non_contiguous_weight_is_the_contiguous_copys():
    """|w| summed through the non-contiguous branch equals the dot product of a contiguous copy, bit for bit
    close: a wrong pairing of elements (a view of the storage instead of the tensor) would differ."""
    w = sliced()
    copy = nn.Parameter(w.detach().contiguous())
    a = elastic_net_add_grad_([w], l1=1.0)
    b = elastic_net_add_grad_([copy], l1=1.0)
    torch.testing.assert_close(a, b, rtol=1e-14, atol=0)
    torch.testing.assert_close(a, w.detach().abs().sum(), rtol=1e-14, atol=0)
    assert w.untyped_storage().nbytes() > w.numel() * w.element_size()  # the storage holds the skipped columns
