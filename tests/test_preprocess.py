"""Preprocessing fitted on train only: NumPy references, whitening properties, split guard, state_dict."""
import io
import pickle

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import TensorDataset

from regularkit.errors import RegularkitError
from regularkit.preprocess import MinMax, PCAWhiten, Rescale, Standardize, ZCAWhiten, mark_split, split_of


def data(n=50, shape=(3, 4, 4), seed=0):
    rng = np.random.default_rng(seed)
    return torch.from_numpy((rng.normal(size=(n,) + shape) * rng.uniform(0.5, 3, size=shape) + 2).astype(np.float32))


def correlated(n=2000, d=6, seed=0):
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(d, d))
    return torch.from_numpy((rng.normal(size=(n, d)) @ mix + rng.normal(size=d)).astype(np.float32))


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), per=st.sampled_from(["channel", "feature"]))
def test_standardize_featurewise_matches_numpy(seed, per):
    x = data(seed=seed)
    axes = (0, 2, 3) if per == "channel" else (0,)
    xn = x.double().numpy()
    mean, std = xn.mean(axis=axes, keepdims=True), xn.std(axis=axes, keepdims=True)
    out = Standardize(per=per).fit(x).transform(x)
    np.testing.assert_allclose(out.numpy(), (xn - mean) / (std + 1e-6), atol=1e-5)


def test_standardize_samplewise_and_flags():
    x = data()
    out = Standardize("samplewise").transform(x)  # no fit needed
    xn = x.double().numpy().reshape(50, -1)
    ref = (xn - xn.mean(1, keepdims=True)) / (xn.std(1, keepdims=True) + 1e-6)
    np.testing.assert_allclose(out.reshape(50, -1).numpy(), ref, atol=1e-5)
    centred = Standardize(with_std=False).fit_transform(x)
    torch.testing.assert_close(centred.mean((0, 2, 3)), torch.zeros(3), atol=1e-5, rtol=0)
    flat = torch.rand(30, 5)
    a = Standardize(per="channel").fit_transform(flat)
    b = Standardize(per="feature").fit_transform(flat)
    torch.testing.assert_close(a, b)  # N x D: per column either way


def test_minmax_and_rescale():
    x = data()
    out = MinMax((-1, 1)).fit(x).transform(x)
    torch.testing.assert_close(out.amin((0, 2, 3)), -torch.ones(3))
    torch.testing.assert_close(out.amax((0, 2, 3)), torch.ones(3))
    const = torch.ones(5, 2)
    torch.testing.assert_close(MinMax().fit_transform(const), torch.zeros(5, 2))
    u8 = torch.randint(0, 256, (4, 1, 3, 3), dtype=torch.uint8)
    torch.testing.assert_close(Rescale(1 / 255).transform(u8), u8.float() / 255)


def test_pca_whitening_decorrelates_with_unit_variance_and_sorted_components():
    x = correlated()
    pca = PCAWhiten(eps=0.0).fit(x)
    out = pca.transform(x).double().numpy()
    np.testing.assert_allclose(np.cov(out, rowvar=False, bias=True), np.eye(6), atol=1e-3)
    assert (np.diff(pca.explained_variance_.numpy()) <= 0).all()
    xn = x.double().numpy() - x.double().numpy().mean(0)
    u, s, _ = np.linalg.svd(xn.T @ xn / len(xn))  # the cookbook's recipe
    np.testing.assert_allclose(pca.explained_variance_.numpy(), s, rtol=1e-4)
    ref = xn @ u / np.sqrt(s)
    np.testing.assert_allclose(np.abs(out), np.abs(ref), atol=1e-3)  # components up to sign
    assert PCAWhiten(n_components=2).fit(x).transform(x).shape == (2000, 2)


def test_zca_whitened_training_data_has_identity_covariance_and_keeps_shape():
    x = correlated(d=12).view(2000, 3, 2, 2)
    zca = ZCAWhiten(eps=1e-6).fit(x)
    out = zca.transform(x)
    assert out.shape == x.shape
    cov = np.cov(out.reshape(2000, -1).double().numpy(), rowvar=False, bias=True)
    np.testing.assert_allclose(cov, np.eye(12), atol=1e-3)
    w = zca.whitening_.double()
    torch.testing.assert_close(w, w.T)  # ZCA: symmetric, stays in pixel space


def test_whitening_applies_train_statistics_to_other_data():
    train, other = correlated(seed=1), correlated(seed=2)
    zca = ZCAWhiten().fit(train)
    manual = (other - zca.mean_) @ zca.whitening_
    torch.testing.assert_close(zca.transform(other), manual)


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


@pytest.mark.parametrize("call, match", [
    (lambda: mark_split(torch.rand(2), "holdout"), "split must be one of 'train', 'val', 'validation', 'test'; got 'holdout'"),
    (lambda: mark_split((1, 2), "test"), "cannot tag an object of type tuple with a split"),
    (lambda: Standardize().transform(torch.rand(3, 2)), r"Standardize is not fitted: call fit\(x_train\) before transform"),
    (lambda: ZCAWhiten().fit(torch.rand(5, 4)).transform(torch.rand(5, 3)), r"fitted on samples of shape \(4,\), got \(3,\)"),
    (lambda: Standardize(mode="global"), "mode must be one of 'featurewise', 'samplewise'; got 'global'"),
    (lambda: MinMax((1, 0)), r"feature_range must have low < high, got \(1, 0\)"),
    (lambda: PCAWhiten(n_components=5).fit(torch.rand(10, 3)), "n_components must be <= the 3 features, got 5"),
    (lambda: Standardize().fit([1, 2]), "expected a torch.Tensor, a NumPy array or a TensorDataset, got list"),
    (lambda: Standardize().fit(torch.rand(5)), r"needs a batch N x ... with N >= 1, got shape \(5,\)"),
])
def test_errors(call, match):
    with pytest.raises(RegularkitError, match=match):
        call()


@pytest.mark.parametrize("make", [
    lambda: Standardize(), lambda: MinMax((0, 2)), lambda: Rescale(0.5),
    lambda: PCAWhiten(n_components=3), lambda: ZCAWhiten(eps=1e-4)])
def test_state_dict_round_trip_through_torch_save_and_pickle(make):
    x = correlated(200, 6).view(200, 6, 1, 1)
    fitted = make().fit(x)
    buf = io.BytesIO()
    torch.save(fitted.state_dict(), buf)
    buf.seek(0)
    restored = type(fitted)(**fitted.get_config()) if isinstance(fitted, Rescale) else type(fitted)()
    restored.load_state_dict(torch.load(buf, weights_only=False))
    assert restored.get_config() == fitted.get_config()
    torch.testing.assert_close(restored.transform(x), fitted.transform(x))
    torch.testing.assert_close(pickle.loads(pickle.dumps(fitted)).transform(x), fitted.transform(x))
