"""fit's argument checks: one line naming the value, before any work."""
import pytest
import torch
from torch import nn

from regularkit.errors import RegularkitError
from regularkit.train.checks import check_data, check_labels, check_optimizer_params, check_scalar, first_forward


def test_an_optimizer_of_another_model_is_refused_a_subset_or_extra_parameters_are_not():
    model, other = nn.Linear(3, 2), nn.Linear(3, 2)
    with pytest.raises(RegularkitError, match=r"optimizer holds 2 parameter tensor\(s\), none of them the model's"):
        check_optimizer_params(model, torch.optim.SGD(other.parameters(), lr=0.1))
    check_optimizer_params(model, torch.optim.SGD([model.weight], lr=0.1))                  # frozen bias
    temperature = nn.Parameter(torch.ones(()))
    check_optimizer_params(model, torch.optim.SGD([*model.parameters(), temperature], lr=0.1))  # a learnable loss


def test_a_loss_of_more_than_one_number_is_named_with_its_shape():
    assert check_scalar("loss_fn", 0.5) == 0.5
    one = torch.ones(1)
    assert check_scalar("loss_fn", one) is one
    with pytest.raises(RegularkitError, match=r"loss_terms\[2\] returned a tensor of shape \(4, 3\); a loss must be "
                                              r"one number \(a 0-d tensor: reduce it"):
        check_scalar("loss_terms[2]", torch.ones(4, 3))


def test_first_forward_names_the_shapes_and_labels_are_checked_against_k():
    x = torch.randn(10, 7)
    with pytest.raises(RegularkitError, match=r"train: the model fails on a batch of shape \(4, 7\) \(samples of "
                                              r"shape \(7,\), dtype torch.float32\): RuntimeError: "):
        first_forward(nn.Linear(5, 2), x[:4], x, "train")
    with pytest.raises(RegularkitError, match=r"val: y holds class index 3, out of range for the model's 3 outputs"):
        check_labels("val", torch.tensor([0, 3]), torch.zeros(2, 3))
    with pytest.raises(RegularkitError, match=r"val: soft targets y have 4 columns but the model gives 3 outputs"):
        check_labels("val", torch.zeros(2, 4), torch.zeros(2, 3))


@pytest.mark.parametrize("data, msg", [
    ((torch.zeros(3, 2), torch.zeros(3)), r"y must be class indices \(N,\) of an integer dtype .* \(cast class "
                                          r"indices with y.long\(\)\)"),
    ((torch.full((2, 2), float("nan")), torch.zeros(2).long()), r"x holds 4 non-finite values"),
    ((torch.zeros(0, 2), torch.zeros(0).long()), r"x and y are empty \(0 rows\)"),
])
def test_bad_data(data, msg):
    with pytest.raises(RegularkitError, match=msg):
        check_data("train", data)
