"""Training: configs, the loop, the training steps, callbacks (``REGISTRY``: the callbacks by name), optimizers."""
from regularkit.train.callbacks import REGISTRY, Callback, Decision, EarlyStopping, TrainState
from regularkit.train.config import EarlyStoppingConfig, ModelConfig, OptimConfig, Recipe, RegConfig
from regularkit.train.loop import History, evaluate, fit
from regularkit.train.optim import decoupled_weight_decay, make_optimizer, make_scheduler, param_groups
from regularkit.train.rdrop import RDrop
from regularkit.train.sam import SAM
from regularkit.train.step import StandardStep, StepContext, StepOutput

__all__ = ["REGISTRY", "Callback", "Decision", "EarlyStopping", "TrainState", "EarlyStoppingConfig", "ModelConfig",
           "OptimConfig", "Recipe", "RegConfig", "History", "evaluate", "fit", "decoupled_weight_decay",
           "make_optimizer", "make_scheduler", "param_groups", "RDrop", "SAM", "StandardStep", "StepContext",
           "StepOutput"]
