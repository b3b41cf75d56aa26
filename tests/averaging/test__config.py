"""``averaging._config.AveragerConfig``: the config is the constructor arguments after the model (Keras' habit).

On a toy averager (every branch: a renamed attribute, a device kept as its name) and on ``EMA``
(the one whose ``buffers`` argument is stored as ``buffer_mode``), through JSON and back.
"""
import json

import pytest
import torch
from torch import nn

from regularkit.averaging import EMA
from regularkit.averaging._config import AveragerConfig
from regularkit.errors import RegularkitError


class Toy(AveragerConfig):
    _config_attributes = {"mode": "mode_"}

    def __init__(self, model, rate=0.5, *, mode="copy", device=None):
        self.model, self.rate, self.mode_ = model, rate, mode
        self.device = None if device is None else torch.device(device)


def test_config_is_every_argument_after_the_model_renamed_and_jsonable():
    toy = Toy(nn.Linear(2, 2), 0.25, mode="average", device="cpu")
    assert toy.get_config() == {"rate": 0.25, "mode": "average", "device": "cpu"}  # device as its name
    assert json.loads(json.dumps(toy.get_config())) == toy.get_config()
    model = nn.Linear(2, 2)
    again = Toy.from_config(toy.get_config(), model)
    assert again.model is model and again.get_config() == toy.get_config()
    assert again.device == torch.device("cpu")


def test_ema_round_trips_through_json_with_its_buffer_mode():
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    ema = EMA(model, 0.9, warmup=True, buffers="average")
    config = json.loads(json.dumps(ema.get_config()))
    assert config == {"decay": 0.9, "warmup": True, "buffers": "average", "device": None}
    again = EMA.from_config(config, model)
    assert again.get_config() == config and again.buffer_mode == "average"


def test_from_config_refuses_what_is_not_a_dict():
    with pytest.raises(RegularkitError, match=r"config must be a dict of constructor arguments, got \[0.9\]"):
        Toy.from_config([0.9], nn.Linear(2, 2))
