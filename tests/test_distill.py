"""Knowledge distillation (Hinton et al. 2015): the loss against NumPy, the T^2 factor, teacher probabilities,
the peers' forms (torch's KLDivLoss tutorial, the Keras Distiller example), errors."""
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from regularkit.distill import (
    DistillationLoss,
    PackedDistillationLoss,
    distillation_loss,
    pack_targets,
    soften,
    unpack_targets,
)
from regularkit.errors import RegularkitError


def numpy_softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def numpy_kd(s, t, y, temperature, alpha):
    """``alpha T^2 KL(softmax(t/T) || softmax(s/T)) + (1 - alpha) CE(s, y)`` per row, float64 NumPy."""
    pt, ps = numpy_softmax(t / temperature), numpy_softmax(s / temperature)
    kl = (pt * (np.log(pt) - np.log(ps))).sum(axis=1)
    ce = -np.log(numpy_softmax(s)[np.arange(len(y)), y])
    return alpha * temperature ** 2 * kl + (1 - alpha) * ce


def data(seed=0, n=9, k=5):
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(n, k, generator=g, dtype=torch.float64) * 2
    t = torch.randn(n, k, generator=g, dtype=torch.float64) * 3
    return s, t, torch.randint(0, k, (n,), generator=g)


@pytest.mark.parametrize("temperature, alpha", [(1.0, 0.5), (4.0, 0.9), (10.0, 0.0), (2.5, 1.0)])
def test_loss_is_the_papers_formula_against_numpy(temperature, alpha):
    s, t, y = data()
    expected = numpy_kd(s.numpy(), t.numpy(), y.numpy(), temperature, alpha)
    got = distillation_loss(s, t, y, temperature=temperature, alpha=alpha, reduction="none")
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12)
    assert float(distillation_loss(s, t, y, temperature=temperature, alpha=alpha)) == pytest.approx(
        expected.mean(), rel=1e-12)
    assert float(DistillationLoss(temperature, alpha, reduction="sum")(s, t, y)) == pytest.approx(
        expected.sum(), rel=1e-12)


def test_t_squared_keeps_the_soft_gradient_scale():
    """Hinton et al. Sec. 2.1: d(soft)/ds = T (softmax(s/T) - softmax(t/T)) / N once multiplied by T^2, which
    tends to (s - t) / (K N) for zero-mean logits: its size no longer depends on T (without T^2 it falls as 1/T^2)."""
    s, t, _ = data(1)
    norms = []
    for temperature in (2.0, 50.0, 100.0):
        s_ = s.clone().requires_grad_(True)
        distillation_loss(s_, t, temperature=temperature, alpha=1.0).backward()
        exact = temperature * (numpy_softmax(s.numpy() / temperature) - numpy_softmax(t.numpy() / temperature))
        np.testing.assert_allclose(s_.grad.numpy(), exact / s.shape[0], rtol=1e-10, atol=1e-14)
        norms.append(float(s_.grad.norm()))
    assert norms[2] / norms[1] == pytest.approx(1.0, abs=0.05)
    centred = (s - s.mean(1, keepdim=True)) - (t - t.mean(1, keepdim=True))
    assert norms[2] == pytest.approx(float(centred.norm()) / (s.shape[1] * s.shape[0]), rel=0.1)


def test_matches_torchs_tutorial_form_and_the_keras_distiller_with_alpha_swapped():
    s, t, y = data(2)
    temperature = 3.0
    soft = F.kl_div(F.log_softmax(s / temperature, 1), F.softmax(t / temperature, 1),
                    reduction="batchmean") * temperature ** 2
    assert float(distillation_loss(s, t, temperature=temperature, alpha=1.0)) == pytest.approx(float(soft), rel=1e-12)
    # KLDivLoss's default reduction="mean" divides by N * K: K times too small
    with warnings.catch_warnings():  # torch warns that "mean" divides by K too: the point made here
        warnings.simplefilter("ignore", UserWarning)
        mean_form = F.kl_div(F.log_softmax(s / temperature, 1), F.softmax(t / temperature, 1)) * temperature ** 2
    assert float(mean_form) * s.shape[1] == pytest.approx(float(soft), rel=1e-12)
    # Keras' Distiller: alpha * student_loss + (1 - alpha) * distillation_loss, so its alpha = 1 - ours
    keras_alpha = 0.1
    keras = keras_alpha * F.cross_entropy(s, y) + (1 - keras_alpha) * soft
    assert float(distillation_loss(s, t, y, temperature=temperature, alpha=1 - keras_alpha)) == pytest.approx(
        float(keras), rel=1e-12)


def test_teacher_probabilities_are_softened_like_their_logits_and_get_no_gradient():
    s, t, y = data(3)
    probs = F.softmax(t, 1)
    for temperature in (1.0, 3.0):
        torch.testing.assert_close(soften(probs, temperature, teacher_probs=True), F.softmax(t / temperature, 1))
        torch.testing.assert_close(distillation_loss(s, probs, y, temperature=temperature, teacher_probs=True),
                                   distillation_loss(s, t, y, temperature=temperature))
    zero = torch.tensor([[0.0, 0.25, 0.75]], dtype=torch.float64)  # a zero probability stays zero
    assert torch.isfinite(distillation_loss(torch.zeros(1, 3, dtype=torch.float64), zero, temperature=2.0, alpha=1.0))
    teacher = t.clone().requires_grad_(True)
    distillation_loss(s.clone().requires_grad_(True), teacher, y).backward()
    assert teacher.grad is None
    # a student equal to the teacher has zero soft loss
    assert float(distillation_loss(t, t, temperature=5.0, alpha=1.0)) == pytest.approx(0.0, abs=1e-12)


def test_errors_name_the_value():
    s, t, y = data()
    with pytest.raises(RegularkitError, match="temperature must be > 0, got 0"):
        distillation_loss(s, t, y, temperature=0)
    with pytest.raises(RegularkitError, match=r"alpha must be in \[0.0, 1.0\], got 1.5"):
        DistillationLoss(alpha=1.5)
    with pytest.raises(RegularkitError, match="needs the labels y"):
        distillation_loss(s, t, alpha=0.5)
    with pytest.raises(RegularkitError, match=r"teacher must have the student's shape \(9, 5\), got \(9, 4\)"):
        distillation_loss(s, t[:, :4], y)
    with pytest.raises(RegularkitError, match="teacher probabilities must be >= 0"):
        soften(-torch.ones(2, 3), 2.0, teacher_probs=True)


# --- the teacher's rows packed with the labels (what fit shuffles together)
def test_packed_targets_round_trip_and_their_argmax_is_the_label():
    g = torch.Generator().manual_seed(3)
    teacher = torch.softmax(torch.randn(50, 7, generator=g) * 4, 1)
    y = torch.randint(0, 7, (50,), generator=g)
    teacher[0] = F.one_hot(torch.tensor(3), 7).float()  # a teacher sure of a wrong class: the label still wins
    y[0] = 5
    packed = pack_targets(y, teacher)
    assert packed.dtype == torch.float32 and packed.shape == (50, 7)
    assert torch.equal(packed.argmax(1), y)
    y2, t2 = unpack_targets(packed)
    assert torch.equal(y2, y)
    torch.testing.assert_close(t2, teacher, atol=3e-7, rtol=0)
    perm = torch.randperm(50, generator=g)  # rows shuffled together stay together
    y3, t3 = unpack_targets(packed[perm])
    assert torch.equal(y3, y[perm]) and torch.allclose(t3, teacher[perm], atol=3e-7)


def test_packed_loss_is_the_distillation_loss_on_teacher_probabilities():
    s, t, y = data(2)
    probs = torch.softmax(t, 1).float()
    loss = PackedDistillationLoss(temperature=3.0, alpha=0.7)
    got = loss(s.float(), pack_targets(y, probs))
    expected = numpy_kd(s.numpy(), np.log(probs.double().numpy()), y.numpy(), 3.0, 0.7).mean()
    assert float(got) == pytest.approx(expected, rel=1e-5)
    assert loss.get_config() == {"temperature": 3.0, "alpha": 0.7}


def test_packed_targets_errors_name_the_value():
    with pytest.raises(RegularkitError, match=r"teacher_probs must be probabilities in \[0, 1\], got values in"):
        pack_targets(torch.tensor([0, 1]), torch.tensor([[2.0, -1.0], [0.5, 0.5]]))
    with pytest.raises(RegularkitError, match=r"y must be 2 class indices, one per teacher row, got \(3,\)"):
        pack_targets(torch.tensor([0, 1, 1]), torch.full((2, 2), 0.5))
    with pytest.raises(RegularkitError, match=r"distillation needs the packed targets N x K .* got \(4,\)"):
        PackedDistillationLoss()(torch.zeros(4, 3), torch.zeros(4, dtype=torch.long))
