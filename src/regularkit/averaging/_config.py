"""Configs of the averagers: the constructor arguments except the model (Keras' ``get_config`` / ``from_config``).

The model (``EMA``'s, ``SWA``'s and ``SnapshotEnsemble``'s ``model``, ``Ensemble``'s
``models``) is not config: it is an object with weights, given again to
``from_config(config, model)``.  What remains is numbers and names (a
``device`` is kept as its name), so a config can go to JSON; the state reached
by training (averages, counts, snapshots) is in ``state_dict()``, not here.
"""
from __future__ import annotations

import inspect
from typing import Any

import torch

from regularkit.errors import RegularkitError


class AveragerConfig:
    """Mixin: ``get_config()`` reads every constructor argument after the model from the attribute of that name
    (or of the name ``_config_attributes`` maps it to, where the argument's name is taken: ``EMA``'s
    ``buffers`` mode is ``buffer_mode``, since an ``nn.Module``'s ``buffers`` is its method)."""

    _config_attributes: dict[str, str] = {}

    def get_config(self) -> dict[str, Any]:
        names = list(inspect.signature(type(self).__init__).parameters)[2:]  # skip self and the model
        config = {}
        for name in names:
            value = getattr(self, self._config_attributes.get(name, name))
            config[name] = str(value) if isinstance(value, torch.device) else value
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any], model):
        """A new averager of ``model`` (``models`` for an ensemble) with the settings of ``config``."""
        if not isinstance(config, dict):
            raise RegularkitError(f"config must be a dict of constructor arguments, got {config!r}")
        return cls(model, **config)
