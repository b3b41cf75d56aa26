"""``speedrun.data``: the size cuts of a run's splits (stratified train subset, first test images) and the
validation-size check, on small synthetic splits (no download)."""
import dataclasses

import numpy as np
import pytest
import torch

from regularkit.data.sampling import stratified_subset
from regularkit.data.splits import Splits
from regularkit.errors import RegularkitError
from regularkit.speedrun import data as D
from regularkit.speedrun.config import SpeedrunConfig


def splits(n_train=40, n_test=12):
    g = torch.Generator().manual_seed(0)
    y_train = torch.arange(n_train) % 4
    return Splits(x_train=torch.rand(n_train, 1, 4, 4, generator=g), y_train=y_train,
                  x_val=torch.rand(8, 1, 4, 4, generator=g), y_val=torch.arange(8) % 4,
                  x_test=torch.rand(n_test, 1, 4, 4, generator=g), y_test=torch.arange(n_test) % 4,
                  num_classes=4, input_shape=(1, 4, 4), train_idx=np.arange(100, 100 + n_train))


def test_cut_keeps_a_stratified_subset_of_train_and_the_first_test_images():
    s = splits()
    out = D.cut(s, train_size=20, test_size=5, seed=3)
    keep = np.sort(stratified_subset(s.y_train.numpy(), 20, seed=3))
    assert torch.equal(out.x_train, s.x_train[keep]) and torch.equal(out.y_train, s.y_train[keep])
    assert np.array_equal(out.train_idx, s.train_idx[keep])  # which dataset rows remain is recorded
    assert torch.bincount(out.y_train).tolist() == [5, 5, 5, 5]  # stratified
    assert torch.equal(out.x_test, s.x_test[:5]) and torch.equal(out.y_test, s.y_test[:5])
    assert torch.equal(out.x_val, s.x_val)  # validation untouched


def test_cut_without_sizes_or_with_larger_sizes_is_the_same_object():
    s = splits()
    assert D.cut(s) is s
    assert D.cut(s, train_size=40, test_size=100) is s
    only_test = D.cut(s, test_size=3)
    assert only_test.x_train is s.x_train and len(only_test.y_test) == 3


def test_load_splits_refuses_a_validation_size_that_leaves_no_training_image(monkeypatch):
    class Fake:
        y_train = np.arange(10) % 2

    monkeypatch.setattr(D, "load_dataset", lambda name, data_dir=None: Fake())
    cfg = dataclasses.replace(SpeedrunConfig(), val_size=10)
    with pytest.raises(RegularkitError, match=r"val_size must be between 1 and 9 \(the training images minus one\), "
                                              r"got 10"):
        D.load_splits(cfg)
