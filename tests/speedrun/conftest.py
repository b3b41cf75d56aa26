"""Tiny synthetic splits (10 classes of 28 x 28 templates plus noise) and a fast config for the speed-run tests."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from regularkit.data.splits import Splits
from regularkit.speedrun.config import SpeedrunConfig


def make_splits(n_train: int = 512, n_val: int = 128, n_test: int = 256, seed: int = 0) -> Splits:
    g = torch.Generator().manual_seed(seed)
    templates = (F.avg_pool2d(torch.rand(10, 1, 28, 28, generator=g), 5, 1, 2) > 0.5).float()  # blobs

    def draw(n):
        y = torch.arange(n) % 10
        x = (templates[y] + 0.3 * torch.rand(n, 1, 28, 28, generator=g)).clamp(0, 1)
        return x.float(), y.long()

    (xt, yt), (xv, yv), (xs, ys) = draw(n_train), draw(n_val), draw(n_test)
    return Splits(x_train=xt, y_train=yt, x_val=xv, y_val=yv, x_test=xs, y_test=ys, num_classes=10,
                  input_shape=(1, 28, 28), name="synthetic", train_idx=np.arange(n_train), val_idx=np.arange(n_val),
                  kind="images", flips=("horizontal",), fill="constant")


@pytest.fixture(name="make_splits")
def make_splits_fixture():
    return make_splits


@pytest.fixture(scope="session")
def splits() -> Splits:
    return make_splits()


@pytest.fixture
def tiny_cfg(tmp_path) -> SpeedrunConfig:
    """Two epochs of 16 steps on a narrow network, one thread, fp32: correctness in a second or two, not speed.

    (Batch norm's running statistics need a few dozen steps before eval mode predicts well.  fp32, not the
    default ``auto``: ``train_seed`` takes a resolved precision, and the numbers must not depend on the CPU.)"""
    return SpeedrunConfig(epochs=2, batch_size=32, widths=(8, 16, 16), threads=1, precision="fp32",
                          out=str(tmp_path / "out"))
