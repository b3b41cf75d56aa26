"""Preprocessing fitted on train only: NumPy references, whitening properties, split guard, state_dict."""

import io
import pickle

import numpy as np
import pytest
import torch
from _helpers.preprocess import correlated, data
from hypothesis import given, settings
from hypothesis import strategies as st

from regularkit.errors import RegularkitError
from regularkit.preprocess import MinMax, PCAWhiten, Rescale, Standardize, ZCAWhiten, mark_split


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
