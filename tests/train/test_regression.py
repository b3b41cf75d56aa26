"""The regression losses against torch's formulas, and evaluate's RMSE in units against NumPy / scikit-learn."""
import numpy as np
import pytest
import torch
from sklearn.metrics import mean_squared_error, root_mean_squared_error
from torch import nn

from regularkit.train.loop import evaluate
from regularkit.train.regression import measure, regression_loss


def test_the_losses_are_the_lectures_formulas():
    torch.manual_seed(0)
    p, z = torch.randn(50, 2) * 2, torch.randn(50, 2)
    d = p - z
    assert torch.allclose(regression_loss("mse")(p, z), d.square().mean())
    assert torch.allclose(regression_loss("mae")(p, z), d.abs().mean())
    huber = torch.where(d.abs() <= 1, 0.5 * d.square(), d.abs() - 0.5).mean()
    assert torch.allclose(regression_loss("huber")(p, z), huber)
    assert torch.allclose(regression_loss("huber")(p, z), torch.nn.functional.smooth_l1_loss(p, z, beta=1.0))


class Fixed(nn.Module):
    def __init__(self, out):
        super().__init__()
        self.out = out
        self.w = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return self.out[: x.shape[0]] if x.shape[0] == len(self.out) else self.out[x[:, 0].long()]


def test_evaluate_gives_mse_on_standardized_targets_and_rmse_in_units():
    rng = np.random.default_rng(1)
    z, zhat = rng.normal(size=(40, 2)), rng.normal(size=(40, 2))
    std, mean = np.array([10.0, 0.5]), np.array([100.0, -3.0])
    x = torch.arange(40, dtype=torch.float32)[:, None]
    model = Fixed(torch.tensor(zhat, dtype=torch.float32))
    loss, error = evaluate(model, x, torch.tensor(z, dtype=torch.float32), target_scale=torch.tensor(std),
                           batch_size=7)
    assert loss == pytest.approx(mean_squared_error(z, zhat), rel=1e-5)
    assert error == pytest.approx(root_mean_squared_error(z * std + mean, zhat * std + mean), rel=1e-5)
    assert measure(model, x, torch.tensor(z, dtype=torch.float32), std)[1] == pytest.approx(error)
