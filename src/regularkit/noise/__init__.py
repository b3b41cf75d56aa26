"""Noise as a regularizer: dropout, DropConnect, drop-path, Gaussian noise, Monte Carlo averaging.

Every technique is a pure function (``generator=`` for reproducible noise)
plus a thin ``nn.Module`` (``seed=`` or ``generator=``), train-only or with an
explicit test-time rule.  ``p`` is always the DROP probability.

=========================  ==========================================  ======================
function                   module                                      paper
=========================  ==========================================  ======================
``dropout``                ``Dropout``                                 Srivastava et al. 2014
``drop_connect``           ``DropConnect``, ``DropConnectLinear``,     Wan et al. 2013
                           ``DropConnectConv2d``
``drop_path``              ``DropPath``                                Huang et al. 2016
``gaussian_noise``         ``GaussianNoise``                           Bishop 1995
``gaussian_dropout``       ``GaussianDropout``                         Srivastava et al. 2014
``mc_predict``             (works on any model)                        Gal & Ghahramani 2016
``drop_block_2d``          ``DropBlock2d``, ``DropBlockSchedule``      Ghiasi et al. 2018
``alpha_dropout``          ``AlphaDropout``                            Klambauer et al. 2017
=========================  ==========================================  ======================

Every module round-trips through ``get_config()`` / ``from_config()`` (see
:mod:`~regularkit.noise.stochastic`: ``seed`` is config, a generator object is
not).  :data:`REGISTRY` names every module (Keras-style snake case of the
class name); :func:`get` builds one from a name or a ``{"class_name", "config"}`` dict.
"""
from __future__ import annotations

from regularkit._util.registry import build
from regularkit.noise.alpha_dropout import AlphaDropout, alpha_dropout, alpha_dropout_constants
from regularkit.noise.dropconnect import (
    DropConnect,
    DropConnectConv2d,
    DropConnectLinear,
    drop_connect,
    drop_connect_conv2d,
    drop_connect_linear,
    drop_connect_moment_matching,
)
from regularkit.noise.dropblock import DropBlock2d, DropBlockSchedule, drop_block_2d, scheduled_drop_prob
from regularkit.noise.dropout import Dropout, apply_dropout, dropout, dropout_mask, resolve_noise_shape
from regularkit.noise.droppath import DropPath, drop_path, linear_drop_path_rates
from regularkit.noise.gaussian import GaussianDropout, GaussianNoise, gaussian_dropout, gaussian_noise
from regularkit.noise.mc import (
    compare_mc_to_weight_scaling,
    is_noise_layer,
    mc_mode,
    mc_predict,
    mc_predict_std,
    weight_scaling_predict,
)
from regularkit.noise.stochastic import Stochastic, use_generator

__all__ = [
    "Dropout", "DropConnect", "DropConnectConv2d", "DropConnectLinear", "DropPath", "GaussianDropout",
    "GaussianNoise", "Stochastic", "apply_dropout", "compare_mc_to_weight_scaling", "drop_connect",
    "drop_connect_conv2d", "drop_connect_linear", "drop_connect_moment_matching", "drop_path", "dropout",
    "dropout_mask", "gaussian_dropout", "gaussian_noise", "is_noise_layer", "linear_drop_path_rates", "mc_mode",
    "mc_predict", "mc_predict_std", "resolve_noise_shape", "use_generator", "weight_scaling_predict", "REGISTRY", "get",
    "AlphaDropout", "alpha_dropout", "alpha_dropout_constants", "DropBlock2d", "DropBlockSchedule", "drop_block_2d",
    "scheduled_drop_prob",
]

#: The one registry of noise modules (Keras-style names), used by :func:`get`, configs and the conformance suite.
REGISTRY: dict[str, type[Stochastic]] = {
    "dropout": Dropout, "drop_connect": DropConnect, "drop_connect_linear": DropConnectLinear,
    "drop_connect_conv2d": DropConnectConv2d, "drop_path": DropPath, "gaussian_noise": GaussianNoise,
    "gaussian_dropout": GaussianDropout, "drop_block2d": DropBlock2d, "alpha_dropout": AlphaDropout,
}


def get(identifier) -> Stochastic:
    """A noise module from a name (``"dropout"``: default arguments), ``{"class_name": ..., "config": {...}}``,
    or a module (returned as is)."""
    return build(REGISTRY, identifier, family="noise layer", base=Stochastic)


