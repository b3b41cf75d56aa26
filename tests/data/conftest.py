"""Fixtures of the data tests: small fake Fashion-MNIST folders written by the tests themselves."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from regularkit.data.datasets import FASHION_MNIST_FILES
from regularkit.data.idx import write_idx


def write_fake_fashion(folder: Path, *, n_train: int = 30, n_test: int = 10, gzip: bool = True,
                       seed: int = 0, image_shape=(28, 28)) -> dict[str, np.ndarray]:
    """Write the four Fashion-MNIST IDX files with random content; return the arrays by file name."""
    rng = np.random.default_rng(seed)
    arrays = {
        FASHION_MNIST_FILES[0]: rng.integers(0, 256, (n_train, *image_shape), dtype=np.uint8),
        FASHION_MNIST_FILES[1]: (np.arange(n_train) % 10).astype(np.uint8),
        FASHION_MNIST_FILES[2]: rng.integers(0, 256, (n_test, *image_shape), dtype=np.uint8),
        FASHION_MNIST_FILES[3]: (np.arange(n_test) % 10).astype(np.uint8),
    }
    for name, arr in arrays.items():
        write_idx(folder / (name if gzip else name.removesuffix(".gz")), arr, gzip=gzip)
    return arrays


@pytest.fixture
def fake_fashion():
    return write_fake_fashion


@pytest.fixture
def no_fashion_anywhere(monkeypatch, tmp_path):
    """Point every Fashion-MNIST search location at empty folders."""
    import regularkit.data.datasets as datasets

    monkeypatch.delenv("REGULARKIT_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(datasets, "SYSTEM_DATA_DIR", tmp_path / "system")
    return tmp_path
