"""ImageDataGenerator: Keras' argument names and semantics, fit / standardize / flow."""
import numpy as np
import pytest
import torch

from regularkit.augment import ImageDataGenerator
from regularkit.errors import RegularkitError
from regularkit.preprocess import mark_split


def gen(seed):
    return torch.Generator().manual_seed(seed)


def images(n=12, h=6, w=5, c=3, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, size=(n, h, w, c)).astype(np.float32)


def test_default_generator_is_identity_and_keeps_channels_last():
    x = images()
    y = np.arange(12)
    batches = list(ImageDataGenerator().flow(x, y, batch_size=5, shuffle=False))
    assert [len(b[0]) for b in batches] == [5, 5, 2]
    xb = torch.cat([b[0] for b in batches])
    assert xb.shape == (12, 6, 5, 3)
    np.testing.assert_array_equal(xb.numpy(), x)
    np.testing.assert_array_equal(torch.cat([b[1] for b in batches]).numpy(), y)


def test_flow_shuffles_reproducibly_and_keeps_pairs_aligned():
    x = images(10)
    y = np.arange(10)
    flow = ImageDataGenerator().flow(x, y, batch_size=4, seed=3)
    assert len(flow) == 3
    first = [(xb.clone(), yb.clone()) for xb, yb in flow]
    again = [(xb, yb) for xb, yb in ImageDataGenerator().flow(x, y, batch_size=4, seed=3)]
    for (a, ya), (b, yb) in zip(first, again):
        assert torch.equal(a, b) and torch.equal(ya, yb)
    order = torch.cat([yb for _, yb in first])
    assert sorted(order.tolist()) == list(range(10)) and order.tolist() != list(range(10))
    for xb, yb in first:
        np.testing.assert_array_equal(xb.numpy(), x[yb.numpy()])
    second_epoch = torch.cat([yb for _, yb in flow])
    assert second_epoch.tolist() != order.tolist()  # a new shuffle each epoch
    only_x = next(iter(ImageDataGenerator().flow(x, batch_size=4)))
    assert isinstance(only_x, torch.Tensor)


def test_featurewise_fit_matches_keras_numpy_formulas():
    x = images(20)
    dg = ImageDataGenerator(featurewise_center=True, featurewise_std_normalization=True, rescale=1 / 255)
    dg.fit(x)
    xs = x * (1 / 255)
    mean, std = xs.mean(axis=(0, 1, 2)), xs.std(axis=(0, 1, 2))  # Keras: per channel over N, rows, cols
    out = next(iter(dg.flow(x, batch_size=20, shuffle=False)))
    np.testing.assert_allclose(out.numpy(), (xs - mean) / (std + 1e-6), atol=1e-5)


def test_samplewise_matches_keras():
    x = images(4)
    dg = ImageDataGenerator(samplewise_center=True, samplewise_std_normalization=True)
    out = next(iter(dg.flow(x, batch_size=4, shuffle=False))).numpy()
    ref = [(s - s.mean()) / (s.std() + 1e-6) for s in x]
    np.testing.assert_allclose(out, np.stack(ref), atol=1e-5)


def test_zca_whitened_training_data_has_identity_covariance():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(600, 2, 3, 3)).astype(np.float32)
    x = base + 0.8 * base[:, :1]  # correlated channels
    dg = ImageDataGenerator(zca_whitening=True, zca_epsilon=1e-6, data_format="channels_first").fit(x)
    out = next(iter(dg.flow(x, batch_size=600, shuffle=False))).reshape(600, -1).double().numpy()
    np.testing.assert_allclose(np.cov(out, rowvar=False, bias=True), np.eye(18), atol=2e-3)


def test_statistics_before_fit_raise_and_fit_refuses_test_data():
    x = images(4)
    with pytest.raises(RegularkitError, match=r"featurewise normalisation needs statistics: call fit\(x_train\)"):
        next(iter(ImageDataGenerator(featurewise_center=True).flow(x)))
    with pytest.raises(RegularkitError, match=r"zca_whitening needs statistics"):
        next(iter(ImageDataGenerator(zca_whitening=True).flow(x)))
    with pytest.raises(RegularkitError, match="ImageDataGenerator.fit refuses the 'validation' split"):
        ImageDataGenerator(featurewise_center=True).fit(x, split="validation")
    with pytest.raises(RegularkitError, match="refuses data marked as the 'test' split"):
        ImageDataGenerator(featurewise_center=True).fit(mark_split(images(4, seed=1), "test"))


def _matrix(**kwargs):
    dg = ImageDataGenerator(data_format="channels_first", **kwargs)
    return dg.make_params(torch.empty(500, 1, 8, 8), gen(0))["matrix"].double()


def test_rotation_range_is_degrees():
    m = _matrix(rotation_range=30)
    angle = torch.rad2deg(torch.atan2(m[:, 1, 0], m[:, 0, 0])).abs()
    assert angle.max() <= 30 + 1e-4 and angle.max() > 25
    torch.testing.assert_close(torch.linalg.det(m[:, :, :2]), torch.ones(500, dtype=torch.float64))


def test_shear_range_is_degrees_keras_2():
    m = _matrix(shear_range=45)
    # Keras' shear matrix [[1, -sin s], [0, cos s]] in (row, col); sin of at most 45 degrees
    off = m[:, 1, 0].abs()  # row_in depends on col_out through -sin(s)
    assert off.max() <= np.sin(np.pi / 4) + 1e-6 and off.max() > 0.6


def test_zoom_range_keeps_keras_meaning():
    """zoom 2 samples twice the extent: the picture shrinks to a quarter of the area."""
    dg = ImageDataGenerator(zoom_range=(2.0, 2.0), fill_mode="constant", cval=0.0, data_format="channels_first")
    out = dg(torch.ones(2, 1, 16, 16), generator=gen(0))
    assert abs(float(out.mean()) - 0.25) < 0.03
    zooms = _matrix(zoom_range=0.2)
    assert zooms[:, 0, 0].min() >= 0.8 - 1e-6 and zooms[:, 0, 0].max() <= 1.2 + 1e-6
    assert not torch.allclose(zooms[:, 0, 0], zooms[:, 1, 1])  # independent zoom per axis


def test_shift_ranges_follow_keras_int_float_and_list_rules():
    x = torch.empty(2000, 1, 10, 20)
    def shifts(**kw):
        return ImageDataGenerator(data_format="channels_first", **kw).make_params(x, gen(0))["matrix"][:, :, 2]
    ints = shifts(width_shift_range=3)[:, 0]
    assert set(ints.round().tolist()) == {-2.0, -1.0, 0.0, 1.0, 2.0}
    frac = shifts(width_shift_range=0.1)[:, 0]
    assert frac.abs().max() <= 2.0 + 1e-5 and frac.abs().max() > 1.8  # 0.1 * width 20
    listed = shifts(height_shift_range=[4, 6])[:, 1]
    assert set(listed.round().abs().tolist()) == {4.0, 6.0}


def test_flips_and_channel_shift():
    x = torch.rand(64, 3, 4, 4)
    dg = ImageDataGenerator(horizontal_flip=True, channel_shift_range=0.2, data_format="channels_first")
    params = dg.make_params(x, gen(0))
    out, _ = dg.apply(x, None, params)
    assert 15 < int(params["hflip"].sum()) < 49
    assert (out.amin((1, 2, 3)) >= x.amin((1, 2, 3)) - 1e-6).all()  # clipped to the sample's range


def test_preprocessing_function_sees_one_image_in_data_format():
    shapes = []
    def fn(img):
        shapes.append(img.shape)
        return img * 2
    x = images(3)
    out = next(iter(ImageDataGenerator(preprocessing_function=fn).flow(x, batch_size=3, shuffle=False)))
    assert shapes == [(6, 5, 3)] * 3
    np.testing.assert_allclose(out.numpy(), 2 * x)


@pytest.mark.parametrize("kwargs, match", [
    ({"fill_mode": "mirror"}, "fill_mode must be one of .*; got 'mirror'"),
    ({"data_format": "NHWC"}, "data_format must be one of 'channels_first', 'channels_last'; got 'NHWC'"),
    ({"zoom_range": 1.5}, r"zoom_range must be in \[0, 1\) as one number, got 1.5"),
    ({"zoom_range": (1.2, 0.8)}, r"zoom_range must be a number or a pair 0 < low <= high"),
    ({"rotation_range": -1}, "rotation_range must be >= 0, got -1"),
    ({"width_shift_range": -0.2}, r"width_shift_range must be a number >= 0 or a 1-D sequence, got -0.2"),
    ({"preprocessing_function": 3}, "preprocessing_function must be callable, got 3"),
])
def test_argument_errors(kwargs, match):
    with pytest.raises(RegularkitError, match=match):
        ImageDataGenerator(**kwargs)


def test_flow_errors():
    with pytest.raises(RegularkitError, match="x and y must have the same length, got 4 and 3"):
        ImageDataGenerator().flow(images(4), np.arange(3))
    with pytest.raises(RegularkitError,
                       match=r"expected a batch of images \(4-D, channels_last\), got shape \(4, 6, 5\)"):
        ImageDataGenerator().flow(images(4)[..., 0])
    with pytest.raises(RegularkitError, match="batch_size must be >= 1, got 0"):
        ImageDataGenerator().flow(images(4), batch_size=0)


def test_fitted_statistics_travel_in_state_dict():
    x = images(120)
    kw = dict(featurewise_center=True, featurewise_std_normalization=True, zca_whitening=True, zca_epsilon=1e-2,
              data_format="channels_last")
    fitted = ImageDataGenerator(**kw).fit(x)
    state = fitted.state_dict()
    fresh = ImageDataGenerator(**kw)
    batch = torch.from_numpy(x[:4]).permute(0, 3, 1, 2)
    with pytest.raises(RegularkitError, match="featurewise normalisation needs statistics"):
        fresh.standardize(batch)
    fresh.load_state_dict(state)
    assert torch.equal(fresh.standardize(batch), fitted.standardize(batch))


def test_integer_images_come_out_float32_as_keras_casts_them():
    x8 = torch.from_numpy(images(4)).round().to(torch.uint8).permute(0, 3, 1, 2)
    dg = ImageDataGenerator(rotation_range=30, rescale=1 / 255)
    out = dg(x8, generator=gen(0))
    assert out.dtype == torch.float32 and not dg.keeps_integer_dtype
    assert torch.equal(out, dg(x8.float(), generator=gen(0))) and float(out.max()) <= 1.0
