"""ToDtype (torchvision v2's rule) and Rescaling (Keras' layer) against NumPy restatements; in-model use."""
import numpy as np
import pytest
import torch
from torch import nn

from regularkit.errors import RegularkitError
from regularkit.preprocess.dtype import Rescaling, ToDtype, rescale, to_dtype
from regularkit.preprocess.transforms import Rescale


def pixels(seed=0, shape=(4, 3, 5, 5)):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, shape, generator=g, dtype=torch.uint8)


def test_uint8_to_float_is_torchvisions_multiply_by_one_over_255():
    x = pixels()
    out = ToDtype(torch.float32)(x)
    ref = x.numpy().astype(np.float32) * np.float32(1.0 / 255)  # to_dtype_image: image.to(dtype).mul_(1 / max)
    assert out.dtype == torch.float32 and np.array_equal(out.numpy(), ref)
    assert out.min() >= 0 and out.max() <= 1
    assert ToDtype(torch.float64)(torch.tensor([0, 255], dtype=torch.uint8)).tolist() == [0.0, 1.0]


def test_float_to_uint8_puts_each_1_over_256_bin_on_one_integer():
    x = torch.linspace(0, 1, 1001)
    out = ToDtype(torch.uint8)(x)
    ref = np.floor(x.numpy().astype(np.float64) * (255 + 1 - 1e-3)).astype(np.uint8)
    assert out.dtype == torch.uint8 and np.array_equal(out.numpy(), ref)
    assert out[0] == 0 and out[-1] == 255
    back = ToDtype(torch.float32)(ToDtype(torch.uint8)(ToDtype(torch.float32)(pixels())))
    assert torch.equal(ToDtype(torch.uint8)(back), pixels())  # uint8 -> float -> uint8 is exact


def test_float_to_float_and_no_scale_are_plain_casts():
    x = torch.rand(5) * 300
    assert torch.equal(to_dtype(x, torch.float64), x.double())
    assert torch.equal(to_dtype(x, torch.int16, scale=False), x.to(torch.int16))
    assert to_dtype(x, torch.float32) is x


def test_rescaling_is_keras_x_times_scale_plus_offset():
    x = pixels()
    out = Rescaling(1 / 127.5, offset=-1.0)(x)
    ref = x.numpy().astype(np.float32) * np.float32(1 / 127.5) + np.float32(-1.0)
    assert out.dtype == torch.float32
    np.testing.assert_allclose(out.numpy(), ref, rtol=0, atol=1e-6)
    assert out.min() >= -1 and out.max() <= 1
    assert Rescaling(2.0)(torch.ones(2, dtype=torch.float64)).dtype == torch.float64  # floats keep their dtype
    assert torch.equal(Rescale(1 / 255).transform(x.float()), rescale(x.float(), 1 / 255))  # one kernel for both


def test_in_the_model_export_and_compile_take_uint8():
    torch.manual_seed(0)
    model = nn.Sequential(ToDtype(torch.float32), nn.Flatten(), nn.Linear(75, 2)).eval()
    x = pixels()
    eager = model(x)
    exported = torch.export.export(model, (x,))
    assert torch.equal(exported.module()(x), eager)
    compiled = torch.compile(model, backend="eager", fullgraph=True)
    assert torch.equal(compiled(x), eager)


@pytest.mark.parametrize("call, match", [
    (lambda: ToDtype("float32"), r"dtype must be a real torch dtype \(torch.float32, torch.uint8, ...\), "
                                 r"got 'float32'"),
    (lambda: ToDtype(torch.bool), r"dtype must be a real torch dtype .*got torch.bool"),
    (lambda: ToDtype(torch.float32, scale="yes"), r"scale must be true or false, got 'yes'"),
    (lambda: to_dtype(torch.rand(2), torch.int32), r"cannot scale torch.float32 to torch.int32"),
    (lambda: to_dtype(pixels(), torch.int16), r"scale=True converts between integer and floating dtypes, got "
                                              r"torch.uint8 to torch.int16"),
    (lambda: Rescaling("2"), r"scale must be a number, got '2'"),
    (lambda: Rescaling(1.0, offset=float("nan")), r"offset must be"),
])
def test_errors_name_the_value(call, match):
    with pytest.raises(RegularkitError, match=match):
        call()
