"""How recipe fields map onto the loop's hook points."""
import numpy as np
import pytest
import torch

from regularkit.data.datasets import Dataset
from regularkit.data.splits import make_splits
from regularkit.errors import RegularkitError
from regularkit.study import StudyConfig, resolve
from regularkit.recipe.assemble import assemble, build_batch_transform, smoothing_site
from regularkit.study.run.execute import run_recipe


def image_splits(n=60, k=3, shape=(1, 8, 8)):
    rng = np.random.default_rng(0)
    ds = Dataset("toy", rng.random((n, *shape), dtype=np.float32), np.arange(n) % k,
                 rng.random((12, *shape), dtype=np.float32), np.arange(12) % k, num_classes=k)
    return make_splits(ds, val_fraction=0.25, seed=0)


def recipe(name, **over):
    base = StudyConfig(epochs=2, batch_size=16).base_recipe()
    from regularkit.config import replace
    return replace(resolve([name], base)[0], over) if over else resolve([name], base)[0]


def test_mixing_with_label_smoothing_smooths_once_inside_the_mix():
    s = image_splits()
    r = recipe("mixup", **{"reg.label_smoothing": 0.3})
    assert smoothing_site(r) == "mix" and smoothing_site(recipe("label-smoothing")) == "loss"
    assert smoothing_site(recipe("mixup")) is None
    transform = build_batch_transform(r, s)
    x, y = s.train
    g = torch.Generator().manual_seed(0)
    _, soft = transform(x[:9], y[:9], g)  # odd batch
    assert soft.shape == (9, 3)
    assert torch.allclose(soft.sum(1), torch.ones(9))
    assert soft.min() >= 0.1 - 1e-6  # smoothed: every class keeps at least alpha/K = 0.1
    parts = assemble(r, s, seed=0)
    logits = torch.randn(4, 3)
    t = torch.full((4, 3), 1 / 3)
    # the training loss is plain cross-entropy on the (already smoothed) soft targets
    assert torch.allclose(parts.loss_fn(logits, t), torch.nn.functional.cross_entropy(logits, t))


def test_label_smoothing_without_mixing_is_in_the_loss():
    s = image_splits()
    parts = assemble(recipe("label-smoothing"), s, seed=0)
    logits, y = torch.randn(5, 3), torch.tensor([0, 1, 2, 0, 1])
    expected = torch.nn.functional.cross_entropy(logits, y, label_smoothing=0.1)
    assert torch.allclose(parts.loss_fn(logits, y), expected, atol=1e-6)


def test_augmentation_on_vectors_is_a_clear_error():
    rng = np.random.default_rng(0)
    ds = Dataset("vec", rng.random((40, 6), dtype=np.float32), np.arange(40) % 2,
                 rng.random((8, 6), dtype=np.float32), np.arange(8) % 2, num_classes=2)
    s = make_splits(ds, val_fraction=0.25, seed=0)
    with pytest.raises(RegularkitError, match=r"augment.cutout needs images C x H x W, got input shape \(6,\)"):
        build_batch_transform(recipe("cutout"), s)


def test_max_norm_holds_after_training_and_penalties_are_added():
    s = image_splits()
    r = recipe("dropout+max-norm", **{"model.widths": [32, 32, 32], "optim.lr": 0.5})
    parts = assemble(r, s, seed=0)
    assert len(parts.after_step) == 1
    rec = run_recipe(r, s, seed=0)
    assert rec["final"]["gap"] == pytest.approx(rec["final"]["test_error"] - rec["final"]["train_error"])
    assert len(assemble(recipe("elastic-net"), s, seed=0).loss_terms) == 2


def test_tta_and_averaging_records():
    s = image_splits()
    rec = run_recipe(recipe("tta"), s, seed=0)
    assert 0.0 <= rec["extra"]["tta_test_error"] <= 1.0
    snap = run_recipe(recipe("snapshot-ensemble", **{"optim.epochs": 5}), s, seed=0)
    assert snap["extra"]["epochs_run"] == 5
    with pytest.raises(RegularkitError, match="snapshot_cycles must be <= epochs"):
        assemble(recipe("snapshot-ensemble", **{"optim.epochs": 3}), s, seed=0)
    swa = run_recipe(recipe("swa", **{"optim.epochs": 4}), s, seed=0)
    assert swa["final"]["test_error"] <= 1.0
    ema = run_recipe(recipe("ema"), s, seed=0)
    assert ema["test_probs"].shape == (12, 3)


def test_same_seed_same_record():
    s = image_splits()
    a = run_recipe(recipe("mixup"), s, seed=1)
    b = run_recipe(recipe("mixup"), s, seed=1)
    assert a["final"] == b["final"]
    assert torch.equal(a["test_probs"], b["test_probs"])
