"""Training: configs, the loop, callbacks (``REGISTRY``: the callbacks by name), optimizers."""
from regularkit.train.callbacks import REGISTRY, Callback, Decision, EarlyStopping, TrainState
from regularkit.train.config import EarlyStoppingConfig, ModelConfig, OptimConfig, Recipe, RegConfig
from regularkit.train.loop import History, evaluate, fit
from regularkit.train.optim import make_optimizer, make_scheduler, param_groups

__all__ = ["REGISTRY", "Callback", "Decision", "EarlyStopping", "TrainState", "EarlyStoppingConfig", "ModelConfig",
           "OptimConfig", "Recipe", "RegConfig", "History", "evaluate", "fit", "make_optimizer",
           "make_scheduler", "param_groups"]
