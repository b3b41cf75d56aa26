"""Arrays, tensors, lists and torch Datasets as a Dataset: the npz rules, a recorded seeded split, strict labels."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import IterableDataset, TensorDataset

from regularkit.data.arrays import from_arrays, from_torch
from regularkit.data.datasets import limit_train_set
from regularkit.errors import RegularkitError

RNG = np.random.default_rng(0)
X = RNG.random((20, 4))
Y = np.arange(20) % 2


def test_given_test_set_kept_as_is():
    ds = from_arrays(X[:12], Y[:12], X[12:], Y[12:], name="mine", classes=["no", "yes"])
    assert ds.name == "mine" and ds.kind == "vectors" and ds.layout == "vectors" and ds.classes == ("no", "yes")
    assert np.array_equal(ds.x_test, X[12:].astype(np.float32)) and np.array_equal(ds.y_train, Y[:12])
    assert ds.sources == {"loader": "arrays", "split": "given"} and ds.num_classes == 2
    assert from_arrays(X, Y, X, Y, num_classes=5).num_classes == 5  # classes beyond the labels seen


def test_seeded_stratified_split_is_recorded_and_kept_in_step_by_limit_train():
    ds = from_arrays(X, Y, test_fraction=0.25, seed=3)
    src = ds.sources
    assert src["split"] == "seeded" and src["seed"] == 3 and src["test_fraction"] == 0.25
    assert sorted(src["train_indices"] + src["test_indices"]) == list(range(20))
    assert np.array_equal(ds.x_train, X[src["train_indices"]].astype(np.float32))
    assert np.array_equal(ds.y_test, Y[src["test_indices"]])
    assert sorted(np.bincount(ds.y_test).tolist()) == [2, 3]  # stratified: 5 test samples of 10 + 10
    assert from_arrays(X, Y, test_fraction=0.25, seed=3).sources["test_indices"] == src["test_indices"]
    assert any(from_arrays(X, Y, test_fraction=0.25, seed=s).sources["test_indices"] != src["test_indices"]
               for s in range(4, 8))
    small = limit_train_set(ds, 6, seed=1)
    assert len(small.sources["train_indices"]) == 6 and small.sources["limit_train"] == {"size": 6, "seed": 1}
    assert np.array_equal(small.x_train, X[small.sources["train_indices"]].astype(np.float32))
    assert small.sources["test_indices"] == src["test_indices"] and "limit_train" not in ds.sources


def test_layouts_uint8_scaling_and_channels_last():
    img = RNG.integers(0, 256, (6, 5, 5), dtype=np.uint8)
    y = np.arange(6) % 2
    grey = from_arrays(img, y, img, y)
    assert grey.kind == "images" and grey.input_shape == (1, 5, 5)
    assert np.array_equal(grey.x_train[:, 0], img / np.float32(255))
    seq = from_arrays(img, y, img, y, layout="sequences")
    assert seq.kind == "sequences" and seq.input_shape == (5, 5) and np.array_equal(seq.x_train, img / np.float32(255))
    nhwc = RNG.random((6, 8, 7, 3))
    ds = from_arrays(nhwc, y, nhwc, y)
    assert ds.input_shape == (3, 8, 7) and ds.x_train[2, 1, 5, 4] == np.float32(nhwc[2, 5, 4, 1])


def test_tensors_and_lists():
    xt = torch.arange(40, dtype=torch.int32).reshape(10, 4)
    yt = torch.arange(10) % 2
    ds = from_arrays(xt, yt, xt[:4], yt[:4])
    assert np.array_equal(ds.x_train, xt.numpy().astype(np.float32)) and ds.y_train.dtype == np.int64
    half = from_arrays(xt.to(torch.bfloat16), yt, xt[:4].half(), yt[:4])
    assert half.x_train.dtype == np.float32 and np.array_equal(half.x_train, xt.float().numpy())
    u8 = torch.full((10, 2, 5, 5), 255, dtype=torch.uint8)
    assert from_arrays(u8, yt, u8, yt).x_train.max() == 1.0
    listed = from_arrays([[0.5, 1.0], [2.0, 3.0], [1, 1], [0, 0]], [0, 1, 0, 1], [[1.0, 1.0]], [1])
    assert listed.x_test.tolist() == [[1.0, 1.0]] and listed.num_classes == 2


@settings(max_examples=25, deadline=None)
@given(n=st.integers(2, 6), shape=st.sampled_from([(3,), (4, 4), (2, 5, 5)]),
       dtype=st.sampled_from([np.uint8, np.int16, np.float32, np.float64]))
def test_shapes_and_dtypes_follow_the_npz_rules(n, shape, dtype):
    x = (np.arange(n * int(np.prod(shape))) % 200).reshape(n, *shape).astype(dtype)
    y = np.arange(n) % 2
    ds = from_arrays(x, y, x, y)
    expected = x.astype(np.float32) / np.float32(255) if dtype == np.uint8 else x.astype(np.float32)
    if len(shape) == 2:
        expected = expected[:, None]
    assert ds.x_train.dtype == np.float32 and np.array_equal(ds.x_train, expected)
    assert ds.kind == {1: "vectors", 2: "images", 3: "images"}[len(shape)]


@pytest.mark.parametrize("args, kwargs, message", [
    ((X, Y.astype(float)), {}, r"^arrays: y_train must hold integer labels, got dtype float64 \(whole numbers, "
                               r"but labels need an integer dtype: cast with \.astype\(np\.int64\)\)$"),
    ((X, Y + 0.5), {}, r"^arrays: y_train must hold integer labels, got dtype float64$"),
    ((X, np.array(["a", "b"] * 10)), {}, r"got dtype <U1 \(map names to indices 0\.\.k-1 and pass the names"),
    ((X, Y), dict(num_classes=1), r"^num_classes must be >= 2, got 1$"),
    ((X, Y), dict(num_classes=True), r"^num_classes must be an integer, got True$"),
    ((X, Y * 3), dict(num_classes=3), r"^arrays: label 3 is out of range for num_classes=3$"),
    ((X[:10], Y[:10], X[10:], np.full(10, 2)), {}, r"^arrays: y_test holds label 2, never seen in y_train$"),
    ((X[:10], Y[:10], X[10:], np.full(10, 2)), dict(classes=["a", "b", "c"]), r"label 2 \('c'\), never seen"),
    ((X, np.zeros(20, int)), {}, r"^arrays: y_train holds a single class \(0\); a classifier needs at least 2$"),
    ((np.where(X > 0.9, np.nan, X), Y), {}, r"^arrays: x_train holds \d+ non-finite values \(NaN or inf\)$"),
    (([[1.0, 2.0], [1.0]], [0, 1]), {}, r"^arrays: x_train is a ragged list \(its items differ in shape\)$"),
    ((X, Y, X), {}, r"^arrays: give x_test and y_test together, or neither \(got only x_test\)$"),
    ((X.reshape(20, 2, 2), Y), dict(layout="vectors"), r"^arrays: layout 'vectors' needs x_train of shape N×D, "
                                                       r"got shape \(20, 2, 2\)$"),
    (({"x": 1}, Y), {}, r"^arrays: x_train must be a NumPy array, a torch tensor or a list, got dict$"),
    ((X, Y), dict(name=""), r"^name must be a non-empty string, got ''$"),
    ((X, Y), dict(seed="1"), r"^seed must be an integer, got '1'$"),
    ((X, Y), dict(classes="ab"), r"^arrays: classes must be a list or tuple of strings, got 'ab'$"),
    ((X, Y), dict(flips=("horizontal",)), r"^arrays: flips \('horizontal',\) describe images or sequences"),
    ((X[:2], Y[:2]), {}, r"cannot stratify: class 0 has only 1 sample"),
    ((X, Y), dict(test_fraction=0.95), r"cannot stratify: the training part would hold 1 samples"),
])
def test_errors(args, kwargs, message):
    with pytest.raises(RegularkitError, match=message):
        from_arrays(*args, **kwargs)


class Squares(torch.utils.data.Dataset):
    """A custom map-style dataset: NumPy samples, Python int labels."""

    def __init__(self, n: int, label=lambda i: i % 3):
        self.n, self.label = n, label

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i):
        return np.full((2, 2), i, np.float64), self.label(i)


def test_from_torch_tensor_dataset_and_custom_dataset():
    xt, yt = torch.rand(12, 1, 4, 4), torch.arange(12) % 3
    ds = from_torch(TensorDataset(xt, yt), TensorDataset(xt[:3], yt[:3]), name="t", flips=["horizontal"])
    assert ds.kind == "images" and np.array_equal(ds.x_train, xt.numpy()) and ds.y_test.tolist() == [0, 1, 2]
    assert ds.flips == ("horizontal",) and ds.sources == {"loader": "arrays", "split": "given"}
    sq = from_torch(Squares(15), test_fraction=0.2, seed=1, layout="sequences")
    assert sq.kind == "sequences" and sq.input_shape == (2, 2) and sq.num_classes == 3
    idx = sq.sources["train_indices"]
    assert np.array_equal(sq.x_train[:, 0, 0], np.array(idx, np.float32)) and sq.y_train.tolist() == [
        i % 3 for i in idx]
    assert from_torch(Squares(15)).kind == "images"  # 2-D samples: N×H×W grey images by default


class Stream(IterableDataset):
    def __iter__(self):
        yield torch.zeros(2), 0


@pytest.mark.parametrize("train, message", [
    (Squares(6, label=lambda i: float(i % 2)), r"^torch: train\[0\] has label 0\.0, a float; labels must be integers$"),
    (Squares(6, label=lambda i: True), r"train\[0\] has label True, bool; labels must be integers$"),
    (Squares(6, label=lambda i: torch.tensor([1])), r"train\[0\] has label tensor\(\[1\]\), Tensor"),
    (TensorDataset(torch.zeros(4, 2)), r"^torch: train\[0\] must be an \(x, y\) pair, got tuple of length 1$"),
    ([(torch.zeros(2), 0), (torch.zeros(3), 1)], r"train\[1\] has x of shape \(3,\) but train\[0\] has \(2,\)$"),
    ([("pixels", 0)], r"train\[0\] has x of type str; expected a tensor or an array \(for PIL images"),
    (Stream(), r"^torch: train must be a map-style torch Dataset \(with __len__ and __getitem__\), got Stream$"),
    ([], r"^torch: train is empty$"),
])
def test_from_torch_errors(train, message):
    with pytest.raises(RegularkitError, match=message):
        from_torch(train)


@pytest.mark.parametrize("labels, first_gap", [([0, 1, 2, 50000], 3), ([1, 2, 3], 0), ([0, 2], 1)])
def test_labels_with_a_gap_are_refused_unless_num_classes_is_given(labels, first_gap):
    """{0..8, 50000} used to make a 50,001-class model without a word (issue 23)."""
    y = np.array(labels * 5)
    x = RNG.random((len(y), 3))
    top = max(labels)
    with pytest.raises(RegularkitError, match=rf"^arrays: labels must be 0\.\.k-1, got {len(labels)} distinct labels "
                                              rf"from {min(labels)} to {top} \(label {first_gap} has no sample\); "
                                              rf"remap them to 0\.\.{len(labels) - 1}"):
        from_arrays(x, y)
    assert from_arrays(x, y, num_classes=top + 1).num_classes == top + 1  # kept on purpose: said by the caller
    remapped = np.unique(y, return_inverse=True)[1]  # the remedy the message names
    assert from_arrays(x, remapped).num_classes == len(labels)


def test_a_test_label_beyond_the_training_ones_is_part_of_the_gap_check():
    with pytest.raises(RegularkitError, match=r"got 3 distinct labels from 0 to 7 \(label 2 has no sample\)"):
        from_arrays(X, Y, X[:4], np.array([0, 1, 7, 7]))
