"""The ridge (linear) row of a regression study: scikit-learn's RidgeCV choice on the study's own splits."""
import numpy as np
import pytest
from sklearn.linear_model import Ridge, RidgeCV
from sklearn.metrics import r2_score, root_mean_squared_error
from sklearn.model_selection import PredefinedSplit

from regularkit.analysis import RIDGE_ALPHAS
from regularkit.study import StudyConfig
from regularkit.study.data import prepare_data
from regularkit.study.results.ridge_row import RIDGE, ridge_sentence, ridge_summary
from regularkit.study.results.summary import RecipeSummary


def test_the_ridge_row_is_ridgecv_on_the_studys_splits():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 6)).astype(np.float32)
    y = 50 + 10 * (x @ rng.normal(size=6)) + 5 * rng.normal(size=120)
    s = prepare_data(StudyConfig(), data=(x, y)).splits
    row = ridge_summary(s)
    units = {k: s.regression.to_units(t).numpy().ravel().astype(np.float64)
             for k, t in (("train", s.y_train), ("val", s.y_val), ("test", s.y_test))}
    xs = {k: t.numpy().astype(np.float64) for k, t in (("train", s.x_train), ("val", s.x_val), ("test", s.x_test))}
    fold = np.r_[-np.ones(len(units["train"])), np.zeros(len(units["val"]))]
    cv = RidgeCV(alphas=RIDGE_ALPHAS, cv=PredefinedSplit(fold), scoring="neg_mean_squared_error").fit(
        np.vstack([xs["train"], xs["val"]]), np.r_[units["train"], units["val"]])
    assert row.strength["value"] == pytest.approx(cv.alpha_)
    ref = Ridge(alpha=cv.alpha_).fit(xs["train"], units["train"])  # fitted on the training rows, like the networks
    pred = ref.predict(xs["test"])
    assert row.stats["test_error"][0] == pytest.approx(root_mean_squared_error(units["test"], pred), rel=1e-6)
    assert row.stats["test_r2"][0] == pytest.approx(r2_score(units["test"], pred), rel=1e-6)
    assert row.recipe == RIDGE and row.stats["test_error"][1] == 0.0 and row.deltas == {}


def test_the_verdict_says_when_ridge_beats_every_network():
    ridge = RecipeSummary(RIDGE, "", [0], stats={"test_error": (50.0, 0.0)})
    nets = [RecipeSummary(n, "", [0, 1], stats={"test_error": (v, 1.0)}) for n, v in (("baseline", 55), ("l2", 52))]
    assert ridge_sentence(ridge, nets).startswith("The linear ridge model (test RMSE 50) beats every network, the "
                                                   "best of which (l2) reaches 52")
    nets[1].stats["test_error"] = (48.0, 1.0)
    assert ridge_sentence(ridge, nets).startswith("The best network (l2, test RMSE 48) does better")
