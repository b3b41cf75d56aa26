"""`regularkit search`: a recipe's fields searched on validation; the test set looked at once."""

import pytest

from regularkit.cli import main
from regularkit.study.tune.objective import RecipeObjective

SPACE = '[space]\n"optim.lr" = {log_uniform = [1e-2, 1e-1]}\n"model.dropout" = {uniform = [0.0, 0.5]}\n'
FAST = ["--epochs", "2", "--train-size", "60", "--threads", "1"]


def test_search_then_one_final_test(tmp_path, capsys):
    space = tmp_path / "space.toml"
    space.write_text(SPACE)
    out = tmp_path / "s"
    argv = ["search", "--space", str(space), "--trials", "3", "--out", str(out), *FAST]
    assert main(argv + ["--final-test"]) == 0
    text = capsys.readouterr().out
    assert "(3 / 3)" in text and "test error of the chosen configuration" in text
    assert (out / "summary.json").exists() and (out / "history.png").exists()
    # The test set is used once: a second look is refused with a one-line error and exit code 2.
    assert main(argv + ["--final-test"]) == 2
    assert "final_test already ran" in capsys.readouterr().err


def test_unknown_field_in_space_is_named(tmp_path, capsys):
    space = tmp_path / "space.toml"
    space.write_text('[space]\n"reg.l3" = {log_uniform = [1e-5, 1e-1]}\n')
    code = main(["search", "--space", str(space), "--trials", "1", "--out", str(tmp_path / "s"), *FAST])
    assert code == 2
    assert "unknown field 'l3'" in capsys.readouterr().err


class NoTest:
    """Splits that fail loudly if anything reads the test split."""

    def __init__(self, inner):
        self._inner = inner

    def __getattr__(self, name):
        if name in ("test", "x_test", "y_test"):
            raise AssertionError(f"a search trial read splits.{name}")
        return getattr(self._inner, name)


def test_objective_pickles_and_never_touches_the_test_split():
    import pickle

    from regularkit.config import to_dict
    from regularkit.study import StudyConfig
    obj = RecipeObjective(to_dict(StudyConfig(epochs=2, train_size=60)), recipe="dropout")
    clone = pickle.loads(pickle.dumps(obj))
    guarded = NoTest(clone.splits())
    clone.splits = lambda: guarded
    reported = []
    value = clone({"optim.lr": 0.05}, lambda step, v: reported.append((step, v)) or False)
    assert 0.0 <= value <= 1.0 and [s for s, _ in reported] == [1, 2]
    with pytest.raises(AssertionError, match="read splits.test"):
        clone.test_error({"optim.lr": 0.05})  # the guard itself works


def test_pruning_stops_the_run():
    from regularkit.config import to_dict
    from regularkit.study import StudyConfig
    obj = RecipeObjective(to_dict(StudyConfig(epochs=5, train_size=60)))
    steps = []
    obj({}, lambda step, v: steps.append(step) or step >= 2)
    assert steps == [1, 2]
