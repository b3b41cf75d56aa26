"""study/run/execute.py: one run's record says what regularized the model it trained (issue 24: the baseline is what
it says), and every split is measured by the one evaluate function."""
import numpy as np
from torch import nn

from regularkit.study import StudyConfig
from regularkit.study.pipeline import run_study

FAST = dict(epochs=1, seeds=1, batch_size=32, train_size=80)


def factory_with_dropout(input_shape, num_classes):
    return nn.Sequential(nn.Flatten(), nn.Linear(int(np.prod(input_shape)), 16), nn.ReLU(), nn.Dropout(0.2),
                         nn.Linear(16, num_classes))


def plain_factory(input_shape, num_classes):
    return nn.Sequential(nn.Flatten(), nn.Linear(int(np.prod(input_shape)), num_classes))


def test_a_factorys_own_dropout_is_recorded_and_its_baseline_says_it_is_the_model_as_built(tmp_path):
    result = run_study(StudyConfig(recipes=("baseline", "dropout", "l2"), out=str(tmp_path / "o"), **FAST),
                       model=factory_with_dropout, progress=False)
    by_recipe = {r["recipe"]: r for r in result.records}
    assert by_recipe["baseline"]["model_regularization"]["dropout"] == [0.2]   # it stays in the baseline...
    assert by_recipe["l2"]["model_regularization"]["dropout"] == [0.2]         # ...and in recipes not about it
    assert by_recipe["dropout"]["model_regularization"]["dropout"] == [0.3]    # the recipe's rate replaced it
    assert by_recipe["baseline"]["description"] == ("your model as built, with its own dropout p=0.2 "
                                                    "(no regularization added)")
    assert "your model as built, with its own dropout p=0.2" in (tmp_path / "o" / "report.html").read_text()


def test_a_plain_factory_and_a_built_in_model_keep_the_no_regularization_baseline(tmp_path):
    result = run_study(StudyConfig(recipes=("baseline",), out=str(tmp_path / "f"), **FAST), model=plain_factory,
                       progress=False)
    assert result.records[0]["description"] == "no regularization"
    assert result.records[0]["model_regularization"] == {"dropout": [], "dropconnect": [], "drop_path": [],
                                                         "normalization": 0}
    built_in = run_study(StudyConfig(recipes=("dropout",), out=str(tmp_path / "b"), **FAST), progress=False)
    assert built_in.records[0]["model_regularization"]["dropout"] == [0.3, 0.3]
