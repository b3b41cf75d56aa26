"""study/task.py: the task decided once from the target (auto both ways), the plan line, the run key, --loss."""
import numpy as np
import pytest
import torch

from regularkit.errors import RegularkitError
from regularkit.study import StudyConfig
from regularkit.study.data import prepare_data, split_record
from regularkit.study.plan import make_plan
from regularkit.study.task import task_identity, task_note


def _csv(tmp_path, fractional=True):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 3))
    y = x @ [1.0, 2.0, -1.0] + (0.37 if fractional else 0) * rng.normal(size=60)
    y = y if fractional else np.round(y).astype(int) % 3
    path = tmp_path / ("r.csv" if fractional else "c.csv")
    path.write_text("a,b,c,y\n" + "".join(f"{a},{b},{c},{t}\n" for (a, b, c), t in zip(x, y)))
    return str(path)


def test_auto_picks_regression_for_a_float_target_and_says_so(tmp_path):
    cfg = StudyConfig(data=_csv(tmp_path), target="y", out=str(tmp_path / "o"))
    data = prepare_data(cfg)
    s = data.splits
    assert s.task == "regression" and s.num_classes == 1 and s.y_train.dtype == torch.float32
    assert task_note(cfg, s).startswith("regression of 'y' (auto: a floating-point target), loss mse")
    assert "1 target(s) y (regression)" in data.description
    record = split_record(data)
    assert record["task"] == "regression" and record["target_mean"][0] == pytest.approx(s.regression.mean[0])
    assert task_identity(s) == {"task": {"kind": "regression", "targets": ["y"], "loss": "mse"}}


def test_auto_keeps_integer_targets_as_classes_unless_told(tmp_path):
    path = _csv(tmp_path, fractional=False)
    s = prepare_data(StudyConfig(data=path, target="y")).splits
    assert s.task == "classification" and task_identity(s) == {} and s.num_classes == 3
    forced = prepare_data(StudyConfig(data=path, target="y", task="regression", loss="huber")).splits
    assert forced.task == "regression" and forced.regression.loss == "huber"


def test_arrays_from_python_and_the_run_key(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(50, 4)).astype(np.float32)
    cfg = StudyConfig(recipes=("baseline",), seeds=1, epochs=1, out=str(tmp_path / "o"))
    plan = make_plan(cfg, data=(x, x.sum(1)))
    assert plan.data.splits.task == "regression" and plan.identity["task"]["loss"] == "mse"
    classes = make_plan(cfg, data=(x, (x.sum(1) > 0).astype(np.int64)))
    assert "task" not in classes.identity  # a classification run key is what it was


def test_a_regression_loss_on_classes_is_refused():
    with pytest.raises(RegularkitError, match=r"^loss 'mae' is a regression loss; a classification study trains"):
        StudyConfig(task="classification", loss="mae")
    with pytest.raises(RegularkitError, match=r"loss 'mae' is a regression loss and digits's target holds class"):
        prepare_data(StudyConfig(loss="mae"))
    with pytest.raises(RegularkitError, match=r"^task must be one of"):
        StudyConfig(task="ranking")


def test_torch_datasets_with_float_targets_are_a_regression():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 3, generator=g)
    train = torch.utils.data.TensorDataset(x, x.sum(1))
    test = torch.utils.data.TensorDataset(x[:10], x[:10].sum(1))
    s = prepare_data(StudyConfig(), data=(train, test)).splits
    assert s.task == "regression" and len(s.y_test) == 10 and s.num_classes == 1
    np.testing.assert_allclose(s.regression.to_units(s.y_test).numpy()[:, 0], x[:10].sum(1).numpy(), rtol=1e-5,
                               atol=1e-5)
    labels = torch.utils.data.TensorDataset(x, (x[:, 0] > 0).long())
    assert prepare_data(StudyConfig(), data=labels).splits.task == "classification"
