"""Preprocessing fitted on train only: NumPy references, whitening properties, split guard, state_dict."""

import io
import pickle
import warnings

import numpy as np
import pytest
import torch
from _helpers.preprocess import correlated, data
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.decomposition import PCA

from regularkit.errors import RegularkitError
from regularkit.preprocess import MinMax, PCAWhiten, Rescale, Standardize, ZCAWhiten, mark_split
from regularkit.preprocess.dtype import ToDtype
from regularkit.preprocess.transforms import _covariance, _eigh_desc


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
    (lambda: mark_split(torch.rand(2), "holdout"),
     "split must be one of 'train', 'val', 'validation', 'test'; got 'holdout'"),
    (lambda: mark_split((1, 2), "test"), "cannot tag an object of type tuple with a split"),
    (lambda: Standardize().transform(torch.rand(3, 2)),
     r"Standardize is not fitted: call fit\(x_train\) before transform"),
    (lambda: ZCAWhiten().fit(torch.rand(5, 4)).transform(torch.rand(5, 3)),
     r"fitted on samples of shape \(4,\), got \(3,\)"),
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


# --------------------------------------------------------------------------- fewer samples than features
def few(n=20, d=100, seed=0):
    """N <= D correlated training samples and 500 test points from the same distribution."""
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(d, d)) / np.sqrt(d)
    return (torch.from_numpy((rng.normal(size=(m, d)) @ mix).astype(np.float32)) for m in (n, 500))


def spanned_basis(train, r):
    """NumPy's eigenvectors of the training covariance for the r largest eigenvalues, and those eigenvalues."""
    xc = train.double().numpy() - train.double().numpy().mean(0)
    vals, vecs = np.linalg.eigh(xc.T @ xc / len(xc))
    return vecs[:, ::-1][:, :r], vals[::-1][:r]


@pytest.mark.parametrize("make", [lambda: ZCAWhiten(), lambda: PCAWhiten(), lambda: PCAWhiten(eps=0.0)])
def test_whitening_fewer_samples_than_features_warns_and_stays_bounded_off_the_span(make):
    train, test = few()
    with pytest.warns(UserWarning, match=r"Whiten.fit: 20 samples of 100 features \(N <= D\): the centred training "
                                         r"set spans at most 19 directions; whitening keeps the 19 .* other 81 gain 0"):
        w = make().fit(train)
    assert w.rank_ == 19
    u, s = spanned_basis(train, 19)
    xc = (test - train.mean(0)).double().numpy()
    out = w.transform(test).double().numpy()
    # gain 1/sqrt(S_19 + eps) at most, on the 19 spanned directions: |out| <= |x - mean| / sqrt(S_19 + eps)
    bound = np.linalg.norm(xc, axis=1) / np.sqrt(s[-1] + w.eps)
    assert (np.linalg.norm(out, axis=1) <= bound * (1 + 1e-4)).all()
    assert np.abs(out).max() < 10  # every coordinate of 500 test points
    old = np.linalg.eigh(np.cov(train.double().numpy(), rowvar=False, bias=True))  # every direction, as before
    old_out = xc @ old[1] / np.sqrt(np.clip(old[0], 0, None) + 1e-6)
    assert np.abs(old_out).max() > 1e2  # what the gain 1/sqrt(eps) on unspanned directions did


def test_whitened_training_data_are_white_on_the_span_and_test_data_stay_in_it():
    train, test = few()
    u, _ = spanned_basis(train, 19)
    with pytest.warns(UserWarning, match="N <= D"):
        zca, pca = ZCAWhiten(eps=0.0).fit(train), PCAWhiten(eps=0.0).fit(train)
    z = zca.transform(train).double().numpy()
    np.testing.assert_allclose(u.T @ np.cov(z, rowvar=False, bias=True) @ u, np.eye(19), atol=1e-4)
    zt = zca.transform(test).double().numpy()
    np.testing.assert_allclose(zt - zt @ u @ u.T, 0.0, atol=1e-4)  # the component off the span is projected out
    assert pca.components_.shape == (100, 19)
    p = pca.transform(train).double().numpy()
    np.testing.assert_allclose(np.cov(p, rowvar=False, bias=True), np.eye(19), atol=1e-4)


def test_pca_whitening_agrees_with_sklearn_on_the_spanned_components():
    for n, d, r in ((2000, 6, 6), (20, 100, 19)):
        train, test = (correlated(n, d), correlated(500, d, seed=1)) if n > d else few(n, d)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore" if n <= d else "error")
            ours = PCAWhiten(eps=0.0).fit(train)
        sk = PCA(whiten=True, svd_solver="full").fit(train.double().numpy())
        for x in (train, test):
            a = ours.transform(x).double().numpy() * np.sqrt((n - 1) / n)  # sklearn's variance divides by N - 1
            b = sk.transform(x.double().numpy())
            np.testing.assert_allclose(np.abs(a), np.abs(b[:, :r]), atol=2e-3)
        if n <= d:  # sklearn keeps min(N, D) components: its N-th is rounding noise, blown up
            assert sk.n_components_ == n and np.abs(sk.transform(test.double().numpy())[:, -1]).max() > 1e3


def test_whitening_full_rank_data_is_unchanged_exactly():
    x = correlated(2000, 12).view(2000, 3, 2, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # N >> D: no warning
        zca, pca = ZCAWhiten(eps=1e-6).fit(x), PCAWhiten(eps=1e-5).fit(x)
    _, cov = _covariance(x.reshape(2000, -1))
    vals, vecs = _eigh_desc(cov)
    # the formulas before the rank rule, every direction kept
    assert torch.equal(zca.whitening_, ((vecs / (vals + 1e-6).sqrt()) @ vecs.T).float())
    assert torch.equal(pca.components_, vecs.float()) and torch.equal(pca.explained_variance_, vals.float())
    assert zca.rank_ == pca.rank_ == 12


def test_rtol_drops_small_directions_and_pca_warns_when_it_keeps_fewer_than_asked():
    x = correlated(2000, 6)
    x[:, 5] = x[:, 0] + 1e-4 * torch.randn(2000, generator=torch.Generator().manual_seed(0))  # variance ~1e-8
    assert ZCAWhiten().fit(x).rank_ == 6  # real, if small: the default rtol keeps it
    assert ZCAWhiten(rtol=1e-6).fit(x).rank_ == 5
    with pytest.warns(UserWarning, match="the training data span 5 directions, fewer than the 6 components asked "
                                         "for; keeping 5"):
        pca = PCAWhiten(rtol=1e-6).fit(x)
    assert pca.transform(x).shape == (2000, 5)


@pytest.mark.parametrize("call, match", [
    (lambda: ZCAWhiten(rtol=1.0), r"rtol must be in \[0.0, 1.0\), got 1.0"),
    (lambda: PCAWhiten(rtol=-1e-3), r"rtol must be in \[0.0, 1.0\), got -0.001"),
    (lambda: PCAWhiten().fit(torch.ones(5, 3)),
     r"PCAWhiten.fit: the 5 training samples are all equal \(zero variance\), nothing to whiten"),
    (lambda: ZCAWhiten().fit(torch.ones(1, 3)), r"ZCAWhiten.fit: the 1 training samples are all equal"),
])
def test_whitening_errors(call, match):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # N = 1 <= D also warns, before the error
        with pytest.raises(RegularkitError, match=match):
            call()


# --------------------------------------------------------------------------- modules with state (issue 24, item 4)
@pytest.mark.parametrize("make", [
    lambda: Standardize(), lambda: MinMax((-1, 1)), lambda: PCAWhiten(n_components=4), lambda: ZCAWhiten(eps=1e-3)])
def test_fitted_preprocessor_is_part_of_the_model_state_export_and_compile(make):
    """Fit once on train, then a module: buffers in state_dict, a fresh model loads them, export and compile agree."""
    x = correlated(200, 6)
    torch.manual_seed(0)
    pre = make().fit(x)
    assert isinstance(pre, torch.nn.Module) and set(dict(pre.named_buffers())) == set(pre._fitted)
    model = torch.nn.Sequential(pre, torch.nn.Linear(pre(x[:1]).shape[1], 2)).eval()
    eager = model(x)
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)  # what a Lightning checkpoint holds
    buf.seek(0)
    fresh = torch.nn.Sequential(type(pre)(), torch.nn.Linear(model[1].in_features, 2)).eval()
    fresh.load_state_dict(torch.load(buf, weights_only=True))  # unfitted, default arguments: becomes the saved one
    assert fresh[0].get_config() == pre.get_config()
    assert torch.equal(fresh(x), eager)
    assert torch.equal(torch.export.export(model, (x[:7],)).module()(x[:7]), eager[:7])
    compiled = torch.compile(model, backend="eager", fullgraph=True)  # no graph break: one graph
    torch.testing.assert_close(compiled(x), eager)
    assert all(b.dtype == torch.float64 for b in model.double()[0].buffers())  # buffers follow .to() / .double()


def test_loading_an_unfitted_state_unfits_and_old_dicts_still_load():
    x = correlated(100, 5)
    fitted = Standardize().fit(x)
    fitted.load_state_dict(Standardize().state_dict())
    with pytest.raises(RegularkitError, match="Standardize is not fitted: call fit"):
        fitted(x)
    old = {"config": Standardize().get_config(), "mean_": x.mean(0), "std_": x.std(0, correction=0),
           "feature_shape_": (5,)}  # the dict saved before preprocessors were modules
    restored = Standardize()
    restored.load_state_dict(old)
    torch.testing.assert_close(restored(x), Standardize().fit(x)(x), rtol=1e-5, atol=1e-5)


def test_uint8_images_in_one_model_with_todtype_then_standardize():
    g = torch.Generator().manual_seed(0)
    raw = torch.randint(0, 256, (64, 3, 4, 4), generator=g, dtype=torch.uint8)
    scaled = ToDtype(torch.float32)(raw)
    model = torch.nn.Sequential(ToDtype(torch.float32), Standardize().fit(scaled))
    out = model(raw)
    ref = scaled.double().numpy()
    mean, std = ref.mean(axis=(0, 2, 3), keepdims=True), ref.std(axis=(0, 2, 3), keepdims=True)
    np.testing.assert_allclose(out.numpy(), (ref - mean) / (std + 1e-6), atol=1e-5)
