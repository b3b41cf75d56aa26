"""k-fold refits preprocessing inside each fold; the test set is looked at once, by final_test only."""
import numpy as np
import pytest
import torch

from regularkit.errors import RegularkitError
from regularkit.search import LogUniform, SearchSpace, final_test, final_test_record, kfold_evaluate, run_search

N, K = 60, 5
X = np.arange(N, dtype=float).reshape(-1, 1)        # row i holds i: every fit tells which rows it saw
Y = np.array([0] * 30 + [1] * 20 + [2] * 10)


class RecordingScaler:
    """A standardizer that logs every call (the preprocess_factory product)."""

    log: list = []
    made = 0

    def __init__(self):
        RecordingScaler.made += 1
        self.serial = RecordingScaler.made  # not id(): ids of collected objects get reused

    def fit(self, x):
        self.mean_ = float(np.mean(x))
        RecordingScaler.log.append(("fit", self.serial, sorted(int(v) for v in np.ravel(x))))
        return self

    def transform(self, x):
        RecordingScaler.log.append(("transform", self.serial, sorted(int(v) for v in np.ravel(x))))
        return np.asarray(x) - self.mean_


@pytest.fixture(autouse=True)
def _clear_log():
    RecordingScaler.log = []


def test_one_fit_per_fold_on_exactly_its_training_rows():
    seen = []

    def fit_and_score(x_tr, y_tr, x_va, y_va):
        seen.append((x_tr, x_va))
        return float(len(x_va))

    result = kfold_evaluate(fit_and_score, X, Y, k=K, seed=0, preprocess_factory=RecordingScaler)
    fits = [entry for entry in RecordingScaler.log if entry[0] == "fit"]
    assert len(fits) == K and len({obj for _, obj, _ in fits}) == K          # a fresh object each fold
    for (train_idx, val_idx), (_, obj, rows) in zip(result.folds, fits):
        assert rows == sorted(train_idx.tolist())                               # fitted on train rows only
        assert not set(rows) & set(val_idx.tolist())
        transforms = [r for kind, o, r in RecordingScaler.log if kind == "transform" and o == obj]
        assert transforms == [rows, sorted(val_idx.tolist())]                   # applied to train, then val
    # The validation part was shifted by the training mean of its own fold, not the global mean.
    for (train_idx, val_idx), (_, x_va) in zip(result.folds, seen):
        np.testing.assert_allclose(np.ravel(x_va), X[val_idx, 0] - X[train_idx, 0].mean())
    all_val = np.sort(np.concatenate([v for _, v in result.folds]))
    np.testing.assert_array_equal(all_val, np.arange(N))                        # each row validated once


def test_folds_are_stratified_and_scores_summarised():
    result = kfold_evaluate(lambda a, b, c, y_va: float(np.mean(y_va == 2)), X, Y, k=K, seed=3)
    for _, val_idx in result.folds:
        assert np.bincount(Y[val_idx], minlength=3).tolist() == [6, 4, 2]      # 30/20/10 split five ways
    assert result.scores == pytest.approx([2 / 12] * K)
    assert result.mean == pytest.approx(np.mean(result.scores)) and result.std == pytest.approx(0.0)
    assert str(result) == "0.166667 ± 0.000000 (5 folds)"


def test_seed_changes_the_folds_and_torch_tensors_work():
    a = kfold_evaluate(lambda *args: 0.0, X, Y, k=3, seed=0)
    b = kfold_evaluate(lambda *args: 0.0, X, Y, k=3, seed=1)
    assert any(not np.array_equal(fa[1], fb[1]) for fa, fb in zip(a.folds, b.folds))
    got = []
    kfold_evaluate(lambda x_tr, y_tr, x_va, y_va: got.append((type(x_tr), type(y_va))) or 0.0,
                   torch.as_tensor(X), torch.as_tensor(Y), k=3)
    assert got == [(torch.Tensor, torch.Tensor)] * 3


@pytest.mark.parametrize("kwargs, match", [
    (dict(k=1), r"k must be >= 2, got 1"),
    (dict(k=11), r"needs at least k=11 samples of every class; class 2 has 10"),
    (dict(y=Y[:-1]), r"x and y must have the same length, got 60 and 59"),
])
def test_bad_kfold_arguments_are_named(kwargs, match):
    args = {"y": Y, **kwargs}
    with pytest.raises(RegularkitError, match=match):
        kfold_evaluate(lambda *a: 0.0, X, args.pop("y"), **args)


class Guarded:
    """Wraps the test set and records every access to it."""

    def __init__(self, data):
        self._data = data
        self.accesses = 0

    def __getitem__(self, idx):
        self.accesses += 1
        return self._data[idx]

    def __len__(self):
        self.accesses += 1
        return len(self._data)

    def __array__(self, dtype=None, copy=None):
        self.accesses += 1
        return np.asarray(self._data, dtype=dtype)


def test_search_with_kfold_never_touches_test_and_final_test_looks_once(tmp_path):
    x_test, y_test = Guarded(X[:10]), Guarded(Y[:10])

    def fit_and_score(x_tr, y_tr, x_va, y_va, lr=1.0):
        return float(abs(np.log10(lr) + 2))

    def objective(params, report):
        return kfold_evaluate(lambda *a: fit_and_score(*a, lr=params["lr"]), X, Y, k=3,
                              preprocess_factory=RecordingScaler).mean

    result = run_search(objective, SearchSpace(lr=LogUniform(1e-4, 1e0)), n_trials=6, log=None)
    assert x_test.accesses == 0 and y_test.accesses == 0

    def evaluate(config):
        return float(np.mean(np.asarray(y_test) == 0)) + 0 * config["lr"]

    lines = []
    value = final_test(result, evaluate, log=lines.append)
    assert y_test.accesses == 1 and value == 1.0
    assert lines == [f"test: 1.000000 for {result.best_config}"]
    with pytest.raises(RegularkitError, match=r"final_test already ran for study 'search' at .* \(test value "
                                              r"1.000000\); the test set is used once; to look again, call "
                                              r"final_test\(\.\.\., force=True\) from Python"):
        final_test(result, evaluate)
    assert y_test.accesses == 1                                               # refused before looking
    final_test(result, evaluate, force=True, log=None)
    record = final_test_record(result)
    assert [r["forced"] for r in record] == [False, True] and record[0]["params"] == result.best_config
    from regularkit.search import search_report
    import json
    report = search_report(result, tmp_path / "report")  # the report shows the looks, numbered trials from 1
    page = report.paths["html"].read_text()
    assert "look 1 at" in page and "test objective 1.0000" in page and "look 2 at" in page and ", forced" in page
    assert json.loads(report.paths["summary"].read_text())["final_test"][0]["value"] == 1.0
    assert "<tr><td>1</td>" in page and "<tr><td>0</td>" not in page


def test_a_crashed_final_test_still_counts_as_a_look(tmp_path):
    result = run_search(lambda p, r: 0.5, SearchSpace(lr=LogUniform(1e-4, 1e0)), n_trials=2,
                        storage=tmp_path / "j", log=None)

    def broken(config):
        raise RuntimeError("GPU fell over")

    with pytest.raises(RuntimeError, match="GPU fell over"):
        final_test(result, broken)
    # Another process opening the same stored study is refused too.
    import optuna

    from regularkit.search import open_storage

    study = optuna.load_study(study_name="search", storage=open_storage(tmp_path / "j"))
    with pytest.raises(RegularkitError, match=r"it did not finish"):
        final_test(study, lambda config: 0.0)
