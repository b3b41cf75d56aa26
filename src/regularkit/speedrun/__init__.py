"""The toolbox composed for time to accuracy: ``regularkit speedrun fashion-mnist``.

airbench (Keller Jordan, 2024) shows that a handful of the lectures'
techniques, composed, train a small network to 94% on CIFAR-10 in seconds on a
GPU.  This package composes the same toolbox from regularkit's own pieces for a
2-core CPU and Fashion-MNIST: a first layer initialised as patch PCA whitening
(:mod:`~regularkit.speedrun.whitening`), a network that downsamples early with
batch norm (:mod:`~regularkit.speedrun.model`), label smoothing, random flips
and translations, an EMA of the weights, flip/translate TTA, decoupled weight
decay and a per-step one-cycle schedule (:mod:`~regularkit.speedrun.train`).
Every technique can be removed (``SpeedrunConfig(without=...)``, the CLI's
``--without``) for the ablation table in ``docs/speedrun.md``.

Rooms: ``config`` (the frozen config, technique names), ``data`` (splits in
memory), ``whitening``, ``model``, ``augmentation`` (training batch transform,
test views), ``train`` (one seed through :func:`regularkit.train.fit`),
``budget`` (epochs from a wall-clock budget), ``report`` (progress, table,
JSON, curve), ``run`` (every seed of one configuration).
"""
from regularkit.speedrun.config import TECHNIQUES, UNREGULARIZED, SpeedrunConfig, expand_without
from regularkit.speedrun.model import SpeedrunNet
from regularkit.speedrun.run import run_one, run_speedrun
from regularkit.speedrun.train import RunResult, train_seed
from regularkit.speedrun.whitening import WhiteningConv, whitening_filters

__all__ = ["SpeedrunConfig", "TECHNIQUES", "UNREGULARIZED", "expand_without", "SpeedrunNet", "run_one",
           "run_speedrun", "RunResult", "train_seed", "WhiteningConv", "whitening_filters"]
