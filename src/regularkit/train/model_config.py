"""The model part of a recipe: which network, and the regularization knobs built into it.

The built-in models read these fields in their ``from_config`` (:data:`regularkit.models.MODELS`);
on a user's model (``--model file.py:build``) each field's ``factory`` rule says what happens
(:mod:`regularkit.train.knobs`): applied after the build by :mod:`regularkit.models.adapt`,
refused with its reason, or refused as an architecture change the factory decides.
"""
from __future__ import annotations

from dataclasses import dataclass

from regularkit._util.checks import (
    check_bool,
    check_choice,
    check_int,
    check_int_tuple,
    check_number,
    check_rate,
    check_str,
)
from regularkit.errors import RegularkitError
from regularkit.init import INITIALIZERS
from regularkit.train.knobs import ADAPT, ARCHITECTURE, MODEL, REFUSED, knob

__all__ = ["ACTIVATIONS", "MODEL_KINDS", "ModelConfig"]

#: The hidden units a built-in model offers (deck 003 "Generalizations of ReLu"; the modules are
#: regularkit.models.mlp._ACTIVATIONS, which the MLP and the CNN share; the ResNet is ReLU only).
ACTIVATIONS = ("relu", "tanh", "sigmoid", "gelu", "leaky_relu", "prelu", "abs_relu", "softplus", "selu")
MODEL_KINDS = ("mlp", "cnn", "resnet", "factory")

# Why a user's model (--model file.py:build) cannot take a knob: the recipe is refused with this line.
_BATCHNORM = "it adds batch norm, which has to be placed inside your model: put nn.BatchNorm* in your factory"
_DROP_PATH = "it needs residual blocks with stochastic depth: put regularkit.noise.DropPath in your factory"
_DROP_BLOCK = ("it drops blocks of convolutional feature maps, placed after chosen conv stages: put "
               "regularkit.noise.DropBlock2d in your factory")
_ALPHA = ("alpha dropout belongs with SELU units and LeCun-normal weights: build them into your factory "
          "(regularkit.noise.AlphaDropout)")
# Why it means nothing on a regression task (regularkit.recipe.rules.regression_reason).
_PRIOR = "the class-prior bias sets softmax(b) to the class frequencies; a regression output has no classes"


@dataclass(frozen=True)
class ModelConfig:
    """Architecture. ``dropout`` is one rate for every hidden layer or one rate per hidden layer."""

    # the built-in models read these in from_config; on a user's model, the factory rule says what happens
    kind: str = knob("mlp", MODEL, factory=ARCHITECTURE, example="resnet")  # mlp | cnn | resnet | factory
    factory: str | None = knob(None, MODEL, factory=ARCHITECTURE,  # "module:function" or "file.py:function"
                               note="the user's build function itself (tests/recipe: a factory case)")
    widths: tuple[int, ...] = knob((256, 256), MODEL, factory=ARCHITECTURE, example=(64,))  # MLP / head widths
    channels: tuple[int, ...] = knob((32, 64), MODEL, factory=ARCHITECTURE, example=(8,),  # conv channels
                                     needs={"model.kind": "cnn"})
    activation: str = knob("relu", MODEL, factory=ARCHITECTURE, example="tanh")
    dropout: float | tuple[float, ...] = knob(0.0, MODEL, factory=ADAPT, example=0.3)
    input_dropout: float = knob(0.0, MODEL, factory=ADAPT, example=0.2)  # the cookbook's keep 0.8 is 0.2
    dropout_kind: str = knob("inverted", MODEL, factory=ADAPT, example="classic", needs={"model.dropout": 0.3},
                             refused_values=("alpha",), refusal=_ALPHA)  # inverted | classic | alpha
    batchnorm: bool = knob(False, MODEL, factory=REFUSED, refusal=_BATCHNORM, example=True)
    drop_path: float = knob(0.0, MODEL, factory=REFUSED, refusal=_DROP_PATH, example=0.2,  # resnet, last block
                            needs={"model.kind": "resnet"})
    dropconnect: float = knob(0.0, MODEL, factory=ADAPT, example=0.3)  # DropConnect on the hidden Linear layers
    init: str | None = knob(None, MODEL, factory=ADAPT, example="he_normal")  # None: torch's; a regularkit.init
    bias_init: float = knob(0.0, MODEL, factory=ADAPT, example=0.1)  # 0.1 keeps ReLU units active at the start
    output_bias: str = knob("zero", MODEL, factory=ADAPT, example="prior", classes_only=_PRIOR)  # prior: p(y)
    bottleneck: int | None = knob(None, MODEL, factory=ARCHITECTURE, example=4)  # rank r: W = U V
    drop_block: float = knob(0.0, MODEL, factory=REFUSED, refusal=_DROP_BLOCK, example=0.1,  # Ghiasi et al.
                             needs={"model.kind": "cnn"})
    drop_block_size: int = knob(3, MODEL, factory=REFUSED, refusal=_DROP_BLOCK, example=5,  # block side, pixels
                                needs={"model.kind": "cnn", "model.drop_block": 0.1})
    spectral_norm: bool = knob(False, MODEL, factory=ADAPT, example=True)  # W / sigma(W) (Miyato et al. 2018)

    def __post_init__(self):
        check_choice("model.kind", self.kind, MODEL_KINDS)
        check_str("model.factory", self.factory, allow_none=True)
        if self.kind == "factory" and self.factory is None:
            raise RegularkitError("model.kind 'factory' needs model.factory, the build function's "
                                  "'module:function' or 'file.py:function'; got none")
        check_choice("model.activation", self.activation, ACTIVATIONS)
        check_choice("model.dropout_kind", self.dropout_kind, ("inverted", "classic", "alpha"))
        check_choice("model.output_bias", self.output_bias, ("zero", "prior"))
        object.__setattr__(self, "widths", check_int_tuple("model.widths", self.widths))
        object.__setattr__(self, "channels", check_int_tuple("model.channels", self.channels))
        check_bool("model.batchnorm", self.batchnorm)
        if self.init is not None:
            check_choice("model.init", self.init, INITIALIZERS)
        rates = self.dropout if isinstance(self.dropout, tuple) else (self.dropout,)
        for r in rates:
            check_rate("dropout", r)
        if isinstance(self.dropout, tuple) and len(self.dropout) != len(self.widths):
            raise RegularkitError(
                f"dropout has {len(self.dropout)} rates but the model has {len(self.widths)} hidden layers; "
                f"got {self.dropout}")
        check_rate("input_dropout", self.input_dropout)
        check_rate("drop_path", self.drop_path)
        check_rate("dropconnect", self.dropconnect)
        check_number("bias_init", self.bias_init)
        check_rate("drop_block", self.drop_block)
        check_int("model.drop_block_size", self.drop_block_size, minimum=1)
        check_bool("model.spectral_norm", self.spectral_norm)
        if self.bottleneck is not None:
            # Read by the MLP and the CNN's dense layers; the study refuses it for the ResNet and for a
            # factory model (regularkit.recipe.rules) rather than failing the whole study here.
            check_int("model.bottleneck", self.bottleneck, minimum=1)

    def hidden_dropout(self) -> tuple[float, ...]:
        """One drop rate per hidden layer."""
        if isinstance(self.dropout, tuple):
            return self.dropout
        return (float(self.dropout),) * len(self.widths)
