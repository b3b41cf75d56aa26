"""study/run/regression_run.py: a run's RMSE / MAE / R² in units, and MC dropout's ±2σ coverage, against NumPy."""
import numpy as np
import pytest
import torch
from sklearn.metrics import mean_absolute_error, r2_score, root_mean_squared_error
from torch import nn

from regularkit.data.regression import RegressionTargets
from regularkit.noise import mc_predict_std
from regularkit.study import StudyConfig
from regularkit.study.data import prepare_data
from regularkit.study.run.regression_run import MC_PASSES, mc_coverage, regression_final


def test_mc_coverage_is_the_share_of_targets_inside_mean_pm_two_std():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 1))
    x, y = torch.randn(40, 2), 10 + 3 * torch.randn(40, 1)
    info = RegressionTargets(mean=(10.0,), std=(3.0,), names=("y",))
    got = mc_coverage(model, x, y, info)
    mean, std = mc_predict_std(model, x, MC_PASSES, torch.Generator().manual_seed(0))
    mu, sd = 10 + 3 * mean.numpy()[:, 0], 3 * std.numpy()[:, 0]
    assert got["mc_coverage"] == pytest.approx(np.mean(np.abs(y.numpy()[:, 0] - mu) <= 2 * sd))
    assert got["mc_test_rmse"] == pytest.approx(root_mean_squared_error(y.numpy()[:, 0], mu), rel=1e-5)
    assert mc_coverage(nn.Linear(2, 1), x, y, info) == {}  # no noise layer: nothing to sample


def test_a_runs_metrics_are_scikit_learns_in_units():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(80, 3)).astype(np.float32)
    s = prepare_data(StudyConfig(), data=(x, 5 * x[:, 0] + rng.normal(size=80))).splits
    model = nn.Linear(3, 1)
    extra, pred = regression_final(model, s)
    y = s.regression.to_units(s.y_test).numpy()[:, 0]
    p = pred.numpy()[:, 0]
    assert extra["test_rmse"] == pytest.approx(root_mean_squared_error(y, p), rel=1e-5)
    assert extra["test_mae"] == pytest.approx(mean_absolute_error(y, p), rel=1e-5)
    assert extra["test_r2"] == pytest.approx(r2_score(y, p), rel=1e-5)
    assert "mc_coverage" not in extra
