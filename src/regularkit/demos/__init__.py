"""The lectures' demonstrations, measured: one registry, :data:`DEMOS`, used by ``regularkit demo NAME``.

Each demo has a pure, seeded data function and a function that writes its
figures (atomically) and returns their paths:

========================  ==========================================  ===========================
name                      what it shows                               module
========================  ==========================================  ===========================
``bias-variance``         under- vs over-fitting as capacity grows    :mod:`.bias_variance`
``l1-vs-l2``              why L1 zeroes weights and L2 shrinks them   :mod:`.l1_vs_l2`
``mc-dropout``            Monte Carlo dropout vs weight scaling       :mod:`.mc_dropout`
``transfer``              the 2 x 2 transfer-learning table           :mod:`.transfer`
========================  ==========================================  ===========================
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from regularkit.demos.bias_variance import BiasVariance, bias_variance_curve, bias_variance_demo
from regularkit.demos.l1_vs_l2 import L1_L2_GEOMETRY, Paths, l1_vs_l2_demo, regularization_paths
from regularkit.demos.mc_dropout import mc_dropout_demo, mc_dropout_table
from regularkit.demos.transfer import transfer_demo

__all__ = ["DEMOS", "Demo", "BiasVariance", "bias_variance_curve", "bias_variance_demo", "L1_L2_GEOMETRY",
           "Paths", "l1_vs_l2_demo", "regularization_paths", "mc_dropout_demo", "mc_dropout_table", "transfer_demo"]


@dataclass(frozen=True)
class Demo:
    """A demo: ``run(out_dir, seed=..., **options) -> paths``, a one-line summary, the options it takes."""

    run: Callable[..., list]
    summary: str
    options: tuple[str, ...] = ()


#: The one registry of demos (CLI name -> Demo).
DEMOS: dict[str, Demo] = {
    "bias-variance": Demo(bias_variance_demo, "train and test error of polynomials of growing degree"),
    "l1-vs-l2": Demo(l1_vs_l2_demo, "the L1 diamond and the L2 disc; lasso and ridge paths"),
    "mc-dropout": Demo(mc_dropout_demo, "Monte Carlo over k dropout masks vs weight scaling"),
    "transfer": Demo(transfer_demo, "the lecture's 2 x 2 transfer table on Fashion-MNIST and digits",
                     options=("quick", "data_dir", "threads")),
}
