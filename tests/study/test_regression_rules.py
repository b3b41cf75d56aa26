"""Regression: which recipes apply (each refused one with its reason), and the fit rules R1-R4 on constructed cases."""
import pytest

from regularkit.study import StudyConfig, resolve
from regularkit.study.applicability import check_recipes
from regularkit.study.results.fit import diagnose_regression_fit
from regularkit.study.recipes import RECIPES
from regularkit.study.results.summary import RecipeSummary

REFUSED = {
    "label-smoothing": "label smoothing softens class targets",
    "cutmix": "CutMix mixes class labels by pasted area",
    "tta": "test-time augmentation averages predictions over image flips and crops",
    "class-prior-bias": "the class-prior bias sets softmax(b) to the class frequencies",
    "confidence-penalty": "the confidence penalty rewards the entropy of class probabilities",
    "rdrop": "R-Drop keeps two passes' class distributions close",
    "augmix": "AugMix's consistency is a Jensen-Shannon divergence of class distributions",
    "manifold-mixup": "Manifold MixUp here mixes one-hot class targets",
    "distill": "distillation matches the baseline's class probabilities",
}
IMAGE_ONLY = {"flip-crop", "affine", "cutout", "random-erasing", "pca-colour", "drop-path", "randaugment",
              "trivialaugment", "autoaugment", "random-resized-crop", "gaussian-blur",
              "dropblock"}  # dropblock: the base MLP has no conv maps


def test_every_recipe_applies_to_a_table_or_is_refused_with_its_reason():
    cfg = StudyConfig()
    recipes = resolve(list(RECIPES), cfg.base_recipe())
    verdict = check_recipes(recipes, cfg.base_recipe(), kind="vectors", input_shape=(10,), probe=None, flips=None,
                            data_name="diabetes", task="regression")
    for name, reason in REFUSED.items():
        assert verdict.refused[name].startswith(reason), (name, verdict.refused.get(name))
    assert set(verdict.refused) == set(REFUSED) | IMAGE_ONLY
    for name in ("l2", "l1", "elastic-net", "max-norm", "dropout", "dropconnect", "gaussian-noise", "early-stopping",
                 "ema", "swa", "snapshot-ensemble", "mixup", "seed-ensemble", "batchnorm", "sam", "asam",
                 "spectral-norm", "alpha-dropout"):
        assert name not in verdict.refused
    same = check_recipes(recipes, cfg.base_recipe(), kind="vectors", input_shape=(10,), probe=None, flips=None,
                         data_name="t")
    assert "label-smoothing" not in same.refused  # classification: as before


def base(train, test, r2, *, train_curve=(), val_curve=()):
    return RecipeSummary("baseline", "", [0, 1], task="regression",
                         stats={"train_error": (train, 0.0), "test_error": (test, 0.0), "gap": (test - train, 0.0),
                                "train_r2": (r2, 0.0)},
                         curves={"train_error": list(train_curve), "val_error": list(val_curve)})


@pytest.mark.parametrize("summary, call, reason", [
    (base(50.0, 55.0, 0.3), "under-fits", "its training R² is 0.30, below 0.5"),                      # R1
    (base(10.0, 11.0, 0.8, train_curve=[30, 20, 15, 10]), "under-fits", "still falling"),             # R2
    (base(40.0, 60.0, 0.8), "over-fits", "a gap of 20"),                                              # R3: 20 > 15
    (base(40.0, 45.0, 0.8, val_curve=[60, 45, 44, 46, 48, 50, 52, 55]), "over-fits", "rose from its minimum"),  # R4
    (base(40.0, 60.0, 0.2), "under- and over-fits", "below 0.5"),
    (base(3.96, 71.8, 0.997, train_curve=[30, 10, 6, 3.96]), "over-fits", "a gap of 67.8"),  # diabetes: memorized
    (base(40.0, 50.0, 0.8, train_curve=[41, 40, 40, 40], val_curve=[60, 50, 49, 50]), "fits",
     "training RMSE 40 (R² 0.80), test RMSE 50"),                                                    # gap 10 = 0.2 x 50
])
def test_the_regression_fit_rules(summary, call, reason):
    fit = diagnose_regression_fit(summary)
    assert fit.call == call and any(reason in r for r in fit.reasons), fit
