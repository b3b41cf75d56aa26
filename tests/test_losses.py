"""regularkit.losses: hand-computed targets, the lecture's examples, torch's own losses as references."""
import math
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from regularkit import losses
from regularkit.errors import RegularkitError
from regularkit.losses import (
    CrossEntropy,
    MultiClassHinge,
    binary_cross_entropy_with_logits,
    cross_entropy,
    kl_divergence,
    mae,
    mse,
    multiclass_hinge,
    smooth_targets,
)
from regularkit.metrics import calibration

# deck 003 "Hinge Loss - Calculation Example": one row per example (true class cat, car, frog),
# columns are the scores for cat, car, frog.
SLIDE_SCORES = torch.tensor([[3.2, 5.1, -1.7],
                             [1.3, 4.9, 2.0],
                             [2.2, 2.5, -3.1]])
SLIDE_LABELS = torch.tensor([0, 1, 2])


# ---------------------------------------------------------------- label smoothing

def test_uniform_smoothing_hand_computed():
    # (1 - 0.2) * one_hot(2) + 0.2 / 4
    t = smooth_targets(torch.tensor([2]), 4, 0.2)
    assert torch.allclose(t, torch.tensor([[0.05, 0.05, 0.85, 0.05]]))


def test_others_smoothing_hand_computed():
    # deck 003: eps / (n - 1) on the other classes, 1 - eps on the true one
    t = smooth_targets(torch.tensor([2, 0]), 4, 0.3, formula="others")
    assert torch.allclose(t, torch.tensor([[0.1, 0.1, 0.7, 0.1], [0.7, 0.1, 0.1, 0.1]]))


def test_others_equals_uniform_with_rescaled_alpha():
    y, k, eps = torch.tensor([0, 3, 1]), 5, 0.2
    assert torch.allclose(smooth_targets(y, k, eps, "others"), smooth_targets(y, k, eps * k / (k - 1), "uniform"))


def test_alpha_zero_is_one_hot():
    y = torch.tensor([1, 0, 2])
    assert torch.equal(smooth_targets(y, 3, 0.0), F.one_hot(y, 3).float())


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 6), k=st.integers(2, 7), alpha=st.floats(0.0, 1.0), formula=st.sampled_from(["uniform", "others"]),
       seed=st.integers(0, 2**16))
def test_smoothed_rows_are_distributions(n, k, alpha, formula, seed):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, k, (n,), generator=g)
    soft = torch.rand(n, k, generator=g).softmax(1)
    for target in (y, soft):
        t = smooth_targets(target, k, alpha, formula)
        assert t.shape == (n, k)
        assert (t >= 0).all()
        assert torch.allclose(t.sum(1), torch.ones(n, dtype=t.dtype), atol=1e-6)


def test_soft_targets_are_smoothed_too():
    soft = torch.tensor([[0.5, 0.5, 0.0]])  # e.g. a mixup target
    assert torch.allclose(smooth_targets(soft, 3, 0.3), torch.tensor([[0.45, 0.45, 0.1]]))
    assert torch.allclose(smooth_targets(soft, 3, 0.3, "others"), torch.tensor([[0.425, 0.425, 0.15]]))


# ---------------------------------------------------------------- cross-entropy

@pytest.mark.parametrize("alpha", [0.0, 0.1, 0.35])
def test_cross_entropy_matches_torch_label_smoothing(alpha):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(8, 5, generator=g)
    y = torch.randint(0, 5, (8,), generator=g)
    soft = torch.rand(8, 5, generator=g).softmax(1)
    assert torch.allclose(cross_entropy(logits, y, alpha), F.cross_entropy(logits, y, label_smoothing=alpha))
    assert torch.allclose(cross_entropy(logits, soft, alpha), F.cross_entropy(logits, soft, label_smoothing=alpha))
    assert torch.allclose(cross_entropy(logits, y, alpha, reduction="none"),
                          F.cross_entropy(logits, y, label_smoothing=alpha, reduction="none"))


def test_cross_entropy_others_formula_hand_computed():
    logits = torch.tensor([[2.0, 0.0, -1.0]])
    log_p = logits - math.log(math.exp(2.0) + 1.0 + math.exp(-1.0))
    t = torch.tensor([[0.1, 0.8, 0.1]])  # eps = 0.2, true class 1
    expected = -(t * log_p).sum()
    assert torch.allclose(cross_entropy(logits, torch.tensor([1]), 0.2, "others"), expected)


def test_cross_entropy_gradient_flows_and_module_matches():
    logits = torch.randn(4, 3, generator=torch.Generator().manual_seed(1), requires_grad=True)
    y = torch.tensor([0, 2, 1, 1])
    loss = CrossEntropy(label_smoothing=0.1)(logits, y)
    loss.backward()
    # d/dz of CE with targets t is softmax(z) - t, averaged over the batch
    expected = (logits.softmax(1) - smooth_targets(y, 3, 0.1)) / 4
    assert torch.allclose(logits.grad, expected.detach(), atol=1e-6)
    assert torch.equal(loss, cross_entropy(logits, y, 0.1))


# ---------------------------------------------------------------- hinge

def test_hinge_slide_values_come_with_zero_margin():
    loss = multiclass_hinge(SLIDE_SCORES, SLIDE_LABELS, margin=0.0, reduction="none")
    # cat: max(0, 5.1-3.2) + max(0, -1.7-3.2) = 1.9; car: 0; frog: (2.2+3.1) + (2.5+3.1) = 10.9
    assert torch.allclose(loss, torch.tensor([1.9, 0.0, 10.9]))


def test_hinge_textbook_values_with_unit_margin():
    loss = multiclass_hinge(SLIDE_SCORES, SLIDE_LABELS, margin=1.0, reduction="none")
    # cat: (5.1-3.2+1) + max(0, -1.7-3.2+1) = 2.9; car: max(0,-2.6) + max(0,-1.9) = 0; frog: 6.3 + 6.6 = 12.9
    assert torch.allclose(loss, torch.tensor([2.9, 0.0, 12.9]))
    assert torch.allclose(multiclass_hinge(SLIDE_SCORES, SLIDE_LABELS), torch.tensor(15.8 / 3))
    assert torch.allclose(MultiClassHinge(1.0, "sum")(SLIDE_SCORES, SLIDE_LABELS), torch.tensor(15.8))


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 6), k=st.integers(2, 6), margin=st.floats(0.0, 3.0), seed=st.integers(0, 2**16))
def test_hinge_is_k_times_torch_multi_margin(n, k, margin, seed):
    g = torch.Generator().manual_seed(seed)
    scores, y = torch.randn(n, k, generator=g), torch.randint(0, k, (n,), generator=g)
    ours = multiclass_hinge(scores, y, margin, reduction="none")
    # torch divides the same sum by the number of classes
    ref = k * F.multi_margin_loss(scores, y, margin=margin, reduction="none")
    assert torch.allclose(ours, ref, atol=1e-5)


# ---------------------------------------------------------------- binary cross-entropy

def test_bce_matches_torch_with_soft_labels():
    g = torch.Generator().manual_seed(2)
    z = 4 * torch.randn(50, generator=g, dtype=torch.float64)
    y = torch.rand(50, generator=g, dtype=torch.float64)
    assert torch.allclose(binary_cross_entropy_with_logits(z, y), F.binary_cross_entropy_with_logits(z, y))
    assert torch.allclose(binary_cross_entropy_with_logits(z, y, reduction="none"),
                          F.binary_cross_entropy_with_logits(z, y, reduction="none"), rtol=1e-12, atol=1e-12)


def test_bce_is_stable_at_large_logits():
    z = torch.tensor([1e3, -1e3, 1e3, -1e3], requires_grad=True)
    y = torch.tensor([1.0, 1.0, 0.0, 0.0])
    assert torch.isinf(torch.log(torch.sigmoid(z[1:2]))).all()  # the naive form breaks here
    loss = binary_cross_entropy_with_logits(z, y, reduction="none")
    # zeta(-z) for y = 1, zeta(z) for y = 0: correct -> 0, wrong -> |z|
    assert torch.allclose(loss, torch.tensor([0.0, 1e3, 1e3, 0.0]))
    assert torch.allclose(loss, F.binary_cross_entropy_with_logits(z, y, reduction="none"))
    loss.sum().backward()
    # the gradient sigma(z) - y stays finite (and small where the classification is right, deck 003)
    assert torch.allclose(z.grad, torch.tensor([0.0, -1.0, 1.0, 0.0]))


# ---------------------------------------------------------------- mse, mae, kl

def test_mse_mae_hand_computed_and_match_torch():
    pred, target = torch.tensor([1.0, 2.0, 4.0]), torch.tensor([1.5, 2.0, 1.0])
    assert torch.allclose(mse(pred, target), torch.tensor((0.25 + 0 + 9) / 3))
    assert torch.allclose(mae(pred, target), torch.tensor((0.5 + 0 + 3) / 3))
    assert torch.allclose(mse(pred, target, reduction="sum"), F.mse_loss(pred, target, reduction="sum"))
    assert torch.allclose(mae(pred, target, reduction="none"), F.l1_loss(pred, target, reduction="none"))


def test_kl_hand_computed_and_matches_torch():
    p, q = torch.tensor([[0.5, 0.5]]), torch.tensor([[0.9, 0.1]])
    expected = 0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1)
    assert kl_divergence(p, q.log()).item() == pytest.approx(expected, rel=1e-6)
    # asymmetric (deck 003)
    assert kl_divergence(q, p.log()).item() != pytest.approx(expected, rel=1e-3)
    g = torch.Generator().manual_seed(3)
    p, logits = torch.rand(6, 4, generator=g).softmax(1), torch.randn(6, 4, generator=g)
    ref = F.kl_div(logits.log_softmax(1), p, reduction="batchmean")
    assert torch.allclose(kl_divergence(p, logits), ref, atol=1e-6)
    # logits and log-probabilities of the same q give the same divergence
    assert torch.allclose(kl_divergence(p, logits), kl_divergence(p, logits.log_softmax(1)), atol=1e-6)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 5), k=st.integers(2, 6), seed=st.integers(0, 2**16))
def test_kl_non_negative_and_zero_iff_equal(n, k, seed):
    g = torch.Generator().manual_seed(seed)
    p = torch.randn(n, k, generator=g, dtype=torch.float64).softmax(1)
    q_logits = torch.randn(n, k, generator=g, dtype=torch.float64)
    d = kl_divergence(p, q_logits, reduction="none")
    assert (d >= -1e-12).all()
    assert torch.allclose(kl_divergence(p, p.log(), reduction="none"), torch.zeros(n, dtype=p.dtype), atol=1e-12)
    q = q_logits.softmax(1)
    differs = (p - q).abs().amax(1) > 1e-3
    assert (d[differs] > 0).all()


def test_kl_with_zero_probabilities():
    p = torch.tensor([[1.0, 0.0, 0.0]])
    logits = torch.tensor([[0.0, 0.0, 0.0]])
    assert kl_divergence(p, logits).item() == pytest.approx(math.log(3))


# ---------------------------------------------------------------- errors, pickling, re-export

@pytest.mark.parametrize("call, message", [
    (lambda: smooth_targets(torch.tensor([0]), 3, 1.5), r"alpha must be in \[0.0, 1.0\], got 1.5"),
    (lambda: cross_entropy(torch.zeros(1, 3), torch.tensor([0]), -0.1), r"label_smoothing must be in \[0.0, 1.0\], got -0.1"),
    (lambda: smooth_targets(torch.tensor([0]), 3, 0.1, "fancy"), r"formula must be one of 'uniform', 'others'; got 'fancy'"),
    (lambda: smooth_targets(torch.tensor([3]), 3, 0.1), r"class index 3 is out of range for num_classes=3"),
    (lambda: smooth_targets(torch.tensor([0]), 1, 0.1), r"num_classes must be >= 2, got 1"),
    (lambda: smooth_targets(torch.zeros(2, 4), 3, 0.1), r"num_classes=3 columns, got 4"),
    (lambda: cross_entropy(torch.zeros(3), torch.tensor([0])), r"logits must be N x K .* got shape \(3,\)"),
    (lambda: cross_entropy(torch.zeros(2, 3), torch.tensor([0])), r"y has 1 rows but logits has 2"),
    (lambda: multiclass_hinge(SLIDE_SCORES, SLIDE_LABELS, reduction="avg"), r"reduction must be one of .*; got 'avg'"),
    (lambda: multiclass_hinge(SLIDE_SCORES, SLIDE_LABELS.float()), r"integer tensor, got dtype torch.float32"),
    (lambda: multiclass_hinge(torch.zeros(3), torch.tensor([0, 1, 2])), r"scores must be N x K .* got shape \(3,\)"),
    (lambda: binary_cross_entropy_with_logits(torch.zeros(3), torch.zeros(2)), r"shape of z \(3,\), got \(2,\)"),
    (lambda: mse([1.0], torch.zeros(1)), r"pred must be a torch.Tensor, got list"),
    (lambda: kl_divergence(torch.ones(2, 3) / 3, torch.zeros(2, 4)), r"shape of p \(2, 3\), got \(2, 4\)"),
])
def test_errors_name_the_value(call, message):
    with pytest.raises(RegularkitError, match=message):
        call()


def test_modules_pickle_and_ece_is_reexported():
    for module in (CrossEntropy(0.2, "others"), MultiClassHinge(0.5)):
        clone = pickle.loads(pickle.dumps(module))
        assert torch.equal(clone(SLIDE_SCORES, SLIDE_LABELS), module(SLIDE_SCORES, SLIDE_LABELS))
    assert losses.expected_calibration_error is calibration.expected_calibration_error


# --------------------------------------------------------------------------- survivors of mutation testing
Z = torch.zeros(3, 4)
Y = torch.tensor([0, 1, 2])
BAD_LOSS_INPUTS = [
    (lambda: losses.cross_entropy([[0.0, 1.0]], Y), r"logits must be a torch.Tensor, got list"),
    (lambda: losses.cross_entropy(Z, [0, 1, 2]), r"y must be a torch.Tensor, got list"),
    (lambda: losses.multiclass_hinge(Z, [0, 1, 2]), r"y must be a torch.Tensor, got list"),
    (lambda: losses.multiclass_hinge(Z, torch.tensor([[0], [1], [2]])), r"y must be class indices of shape \(3,\), got shape \(3, 1\)"),
    (lambda: losses.multiclass_hinge(Z, torch.tensor([0, 1])), r"y must be class indices of shape \(3,\), got shape \(2,\)"),
    (lambda: losses.multiclass_hinge(Z, Y, margin="1"), r"margin must be a number, got '1'"),
    (lambda: losses.multiclass_hinge(Z, torch.tensor([0, 1, 4])), r"4"),
    (lambda: losses.binary_cross_entropy_with_logits([0.0], torch.zeros(1)), r"z must be a torch.Tensor, got list"),
    (lambda: losses.binary_cross_entropy_with_logits(torch.zeros(1), [0.0]), r"y must be a torch.Tensor, got list"),
    (lambda: losses.mse(torch.zeros(2), torch.zeros(3)), r"target must have the shape of pred \(2,\), got \(3,\)"),
    (lambda: losses.mae([0.0], torch.zeros(1)), r"pred must be a torch.Tensor, got list"),
    (lambda: losses.kl_divergence(torch.zeros(3), Z), r"p must be N x K \(one row per example\), got shape \(3,\)"),
]


@pytest.mark.parametrize("call, message", BAD_LOSS_INPUTS)
def test_each_loss_names_the_bad_argument(call, message):
    with pytest.raises(RegularkitError, match=message):
        call()


def test_integer_and_float_targets_give_the_same_binary_cross_entropy():
    """y is cast to z's dtype (float64 here): an integer target is the same target."""
    z = torch.tensor([-1.5, 0.3, 2.0], dtype=torch.float64)
    ints, floats = torch.tensor([0, 1, 1]), torch.tensor([0.0, 1.0, 1.0], dtype=torch.float64)
    got = losses.binary_cross_entropy_with_logits(z, ints, reduction="none")
    assert got.dtype == torch.float64
    torch.testing.assert_close(got, losses.binary_cross_entropy_with_logits(z, floats, reduction="none"))


def test_module_reprs_show_their_settings():
    assert repr(losses.CrossEntropy(label_smoothing=0.1)) == "CrossEntropy(label_smoothing=0.1, formula='uniform')"
    assert repr(losses.MultiClassHinge(margin=2.0)) == "MultiClassHinge(margin=2.0)"
    with pytest.raises(RegularkitError, match=r"label_smoothing must be in \[0(\.0)?, 1(\.0)?\], got 1.5"):
        losses.CrossEntropy(label_smoothing=1.5)


# --------------------------------------------------------------------------- confidence penalty (Pereyra et al. 2017)
def numpy_entropy(z: np.ndarray) -> np.ndarray:
    """``-sum p log p`` of ``softmax(z)`` row by row, in float64 NumPy."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    return -(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)).sum(axis=1)


def test_confidence_penalty_is_minus_beta_times_the_entropy_against_numpy():
    z = torch.randn(7, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 3
    h = numpy_entropy(z.numpy())
    np.testing.assert_allclose(losses.entropy(z).numpy(), h, rtol=1e-12)
    np.testing.assert_allclose(losses.confidence_penalty(z, 0.3, reduction="none").numpy(), -0.3 * h, rtol=1e-12)
    assert float(losses.confidence_penalty(z, 0.3)) == pytest.approx(-0.3 * h.mean(), rel=1e-12)
    y = torch.tensor([0, 1, 2, 3, 4, 0, 1])
    ce = F.cross_entropy(z, y, reduction="none").numpy()
    np.testing.assert_allclose(cross_entropy(z, y, confidence_penalty=0.3, reduction="none").numpy(), ce - 0.3 * h,
                               rtol=1e-12)
    module = CrossEntropy(0.1, confidence_penalty=0.3)
    smoothed = F.cross_entropy(z, y, label_smoothing=0.1).item()
    assert float(module(z, y)) == pytest.approx(smoothed - 0.3 * h.mean(), rel=1e-12)
    assert repr(module) == "CrossEntropy(label_smoothing=0.1, formula='uniform', confidence_penalty=0.3)"


def test_entropy_bounds_and_its_gradient_pushes_away_from_confidence():
    k = 6
    assert float(losses.entropy(torch.zeros(1, k))) == pytest.approx(math.log(k), rel=1e-6)  # uniform: log K
    assert float(losses.entropy(torch.tensor([[0.0, -math.inf, -math.inf]]))) == 0.0  # one-hot: 0, not nan
    z = torch.tensor([[4.0, 0.0, 0.0]], requires_grad=True)
    losses.confidence_penalty(z, 1.0).backward()
    assert z.grad[0, 0] > 0  # descending the penalty lowers the winning logit
    with pytest.raises(RegularkitError, match="beta must be >= 0, got -0.1"):
        losses.confidence_penalty(z, -0.1)
    with pytest.raises(RegularkitError, match="confidence_penalty must be >= 0, got -1"):
        CrossEntropy(confidence_penalty=-1)


def test_hinge_refuses_a_negative_margin():
    with pytest.raises(RegularkitError, match="margin must be >= 0, got -1"):
        multiclass_hinge(SLIDE_SCORES, SLIDE_LABELS, margin=-1)
    with pytest.raises(RegularkitError, match="margin must be >= 0, got -0.5"):
        MultiClassHinge(margin=-0.5)
