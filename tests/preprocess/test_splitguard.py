"""Preprocessing fitted on train only: NumPy references, whitening properties, split guard, state_dict."""



import numpy as np
import pytest
import torch
from _helpers.preprocess import data
from torch.utils.data import TensorDataset

from regularkit.errors import RegularkitError
from regularkit.preprocess import MinMax, PCAWhiten, Rescale, Standardize, ZCAWhiten, mark_split, split_of


@pytest.mark.parametrize("split", ["val", "validation", "test"])
@pytest.mark.parametrize("cls", [Standardize, MinMax, Rescale, PCAWhiten, ZCAWhiten])
def test_fit_refuses_held_out_split_argument(cls, split):
    obj = cls(1.0) if cls is Rescale else cls()
    with pytest.raises(RegularkitError, match=f"{cls.__name__}.fit refuses the '{split}' split"):
        obj.fit(data(), split=split)


def test_mark_split_catches_views_but_not_sibling_slices():
    x_all = data(100)
    x_test = mark_split(x_all[80:], "test")
    assert split_of(x_test) == "test" and split_of(x_test[:5]) == "test"
    assert split_of(x_test.view(20, -1)) == "test"
    assert split_of(x_all[:80]) is None  # the training part of the same buffer is fine
    Standardize().fit(x_all[:80])
    for bad in (x_test, x_test[3:7], x_test.transpose(0, 1)):
        with pytest.raises(RegularkitError, match="Standardize.fit refuses data marked as the 'test' split"):
            Standardize().fit(bad)
    assert split_of(x_test.clone()) is None  # copies are new memory: the guard is light, not a sandbox


def test_mark_split_on_numpy_and_datasets_and_tag_lifetime():
    arr = mark_split(np.random.default_rng(0).normal(size=(10, 3)).astype(np.float32), "val")
    with pytest.raises(RegularkitError, match="refuses data marked as the 'val' split"):
        ZCAWhiten().fit(arr[2:])
    ds = mark_split(TensorDataset(data(10), torch.zeros(10)), "test")
    assert ds.regularkit_split == "test"
    with pytest.raises(RegularkitError, match="refuses data marked as the 'test' split"):
        MinMax().fit(ds)
    train_ds = mark_split(TensorDataset(data(10)), "train")
    MinMax().fit(train_ds)
    t = mark_split(torch.rand(5, 2), "test")
    ptr = t.data_ptr()
    del t
    fresh = torch.rand(5, 2)
    assert fresh.data_ptr() != ptr or split_of(fresh) is None  # a dead tag never sticks to new memory
