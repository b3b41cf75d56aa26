"""One place for the smoothing formula: both lecture formulas, used by the losses and by the mixing ops."""
import pytest
import torch
import torch.nn.functional as F

from regularkit.errors import RegularkitError
from regularkit.targets import smooth, smooth_targets, soft_targets_for, to_soft_targets


def test_uniform_formula_is_torch_and_keras_label_smoothing():
    logits, y = torch.randn(6, 4, generator=torch.Generator().manual_seed(0)), torch.tensor([0, 1, 2, 3, 0, 1])
    t = smooth_targets(y, 4, 0.2)
    assert torch.allclose(t[0], torch.tensor([0.85, 0.05, 0.05, 0.05]))  # (1 - a) y + a / K
    ours = -(t * F.log_softmax(logits, 1)).sum(1).mean()
    assert torch.allclose(ours, F.cross_entropy(logits, y, label_smoothing=0.2))


def test_others_formula_keeps_one_minus_eps_and_coincides_at_the_matching_strength():
    t = smooth_targets(torch.tensor([2]), 5, 0.1, "others")
    assert torch.allclose(t, torch.tensor([[0.025, 0.025, 0.9, 0.025, 0.025]]))
    a = 0.3
    assert torch.allclose(smooth_targets(torch.tensor([1, 3]), 5, a * 4 / 5, "others"),
                          smooth_targets(torch.tensor([1, 3]), 5, a, "uniform"))


def test_mixing_rule_smooths_indices_once_and_passes_soft_targets():
    y = torch.tensor([0, 2])
    soft = to_soft_targets(y, 3, 0.3)
    assert torch.allclose(soft, smooth(F.one_hot(y, 3).float(), 0.3))
    assert torch.equal(soft_targets_for(soft, 3, 0.3), soft)  # already smoothed: never twice
    assert torch.allclose(soft_targets_for(y, 3, 0.3), soft)
    assert torch.allclose(soft.sum(1), torch.ones(2))


def test_errors_name_the_value():
    with pytest.raises(RegularkitError, match="class index 3 is out of range for num_classes=3"):
        smooth_targets(torch.tensor([3]), 3, 0.1)
    with pytest.raises(RegularkitError, match=r"formula must be one of 'uniform', 'others'; got 'other'"):
        smooth_targets(torch.tensor([0]), 3, 0.1, "other")
