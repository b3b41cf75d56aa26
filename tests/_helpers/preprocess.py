"""Shared by the preprocessing tests: image-like and correlated data."""
import numpy as np
import torch


def data(n=50, shape=(3, 4, 4), seed=0):
    rng = np.random.default_rng(seed)
    return torch.from_numpy((rng.normal(size=(n,) + shape) * rng.uniform(0.5, 3, size=shape) + 2).astype(np.float32))


def correlated(n=2000, d=6, seed=0):
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(d, d))
    return torch.from_numpy((rng.normal(size=(n, d)) @ mix + rng.normal(size=d)).astype(np.float32))

