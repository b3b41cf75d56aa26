"""Parameter selection: the rank rule against timm's, no_weight_decay(), frozen weights, the module-type rule."""
import pytest
import torch
from _helpers.penalties import (
    LSTM_WEIGHTS,
    VIT_MODULE_WEIGHTS,
    VIT_WEIGHTS,
    SkippingViT,
    TinyViT,
    lstm_model,
    make_model,
    timm_decayed,
)
from torch import nn

from regularkit import penalties as P
from regularkit._util.params import names_to_types, no_weight_decay_names, types_to_names
from regularkit.errors import RegularkitError


def names(model, *args, **kwargs):
    return [n for n, _ in P.select_parameters(model, *args, **kwargs)]


def test_default_selection_is_conv_and_linear_weights_on_a_cnn():
    assert names(make_model()) == ["0.weight", "4.weight", "7.weight"]  # no bias, no BatchNorm/LayerNorm weight


@pytest.mark.parametrize("build, expected", [(TinyViT, VIT_WEIGHTS), (lstm_model, LSTM_WEIGHTS)],
                         ids=["vit", "lstm"])
def test_default_selection_is_timms_decay_set(build, expected):
    model = build()
    got = names(model)
    assert set(got) == timm_decayed(model) == expected
    assert len(got) == len(expected)  # each once
    assert got == [n for n, _ in model.named_parameters() if n in expected]  # in named_parameters() order


def test_module_type_rule_is_still_available():
    # The rule before: Linear/Conv weights only -- 8 of the ViT's 12 (no in_proj_weight, no tokens), and only
    # the head of the recurrent model (no Embedding, no LSTM/GRU matrices).
    assert set(names(TinyViT(), P.DEFAULT_MODULES)) == VIT_MODULE_WEIGHTS and len(VIT_MODULE_WEIGHTS) == 8
    assert names(lstm_model(), P.DEFAULT_MODULES) == ["head.weight"]
    assert names(lstm_model(), (nn.Embedding, nn.Linear)) == ["embed.weight", "head.weight"]


@pytest.mark.parametrize("skip, dropped", [
    ({"class_token", "encoder.pos_embedding", "dist_token"}, {"class_token", "encoder.pos_embedding"}),
    ({"*pos_embedding", "encoder.layers.?.linear1.weight"},
     {"encoder.pos_embedding", "encoder.layers.0.linear1.weight", "encoder.layers.1.linear1.weight"}),
    ({"pos_embedding", "Class_Token"}, set()),  # exact names, case-sensitive: no endswith, no case folding
])
def test_no_weight_decay_names_are_never_selected(skip, dropped):
    model = SkippingViT(skip)
    assert set(names(model)) == timm_decayed(model) == VIT_WEIGHTS - dropped
    # the module-type rule honours it too; "all" is every parameter
    assert set(names(model, P.DEFAULT_MODULES)) == VIT_MODULE_WEIGHTS - dropped
    assert names(model, "all") == [n for n, _ in model.named_parameters()]


def test_no_weight_decay_of_a_wrapped_model_is_honoured_unlike_timm():
    # On purpose: timm reads only the given model's no_weight_decay(); a backbone inside a bigger model
    # would have its class token decayed there.  Names are relative to the module that returns them.
    wrapped = nn.Sequential(SkippingViT({"class_token", "encoder.pos_embedding"}), nn.Linear(3, 2))
    assert set(no_weight_decay_names(wrapped)) == {"0.class_token", "0.encoder.pos_embedding"}
    ours = set(names(wrapped))
    assert ours == {f"0.{n}" for n in VIT_WEIGHTS - {"class_token", "encoder.pos_embedding"}} | {"1.weight"}
    assert timm_decayed(wrapped) - ours == {"0.class_token", "0.encoder.pos_embedding"}


def test_rank_rule_edges():
    class Odd(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = nn.MultiheadAttention(4, 2, add_bias_kv=True)  # bias_k, bias_v: (1, 1, 4)
            self.table = nn.Module()
            self.table.bias = nn.Parameter(torch.zeros(3, 4))  # a 2-D "bias": timm's endswith('.bias') drops it
            self.scale = nn.Parameter(torch.ones(()))  # 0-d
            self.frozen = nn.Linear(4, 4).requires_grad_(False)

    model = Odd()
    got = set(names(model))
    assert got == timm_decayed(model) == {"attn.in_proj_weight", "attn.bias_k", "attn.bias_v", "attn.out_proj.weight"}
    # frozen weights: skipped by default (timm skips them in its groups), kept with trainable_only=False
    assert set(names(model, trainable_only=False)) == got | {"frozen.weight"}
    assert "frozen.bias" in names(model, "all", trainable_only=False) and "frozen.bias" not in names(model, "all")


def test_selection_by_type_and_pattern():
    model = make_model()
    assert names(model, nn.Linear) == ["4.weight", "7.weight"]
    assert names(model, pattern=r"^7\.") == ["7.weight"]
    assert names(model, "all", r"bias$") == ["0.bias", "1.bias", "4.bias", "5.bias", "7.bias"]
    assert names(model, None, r"bias$") == []  # the default rule never picks a bias
    assert len(P.select_parameters(model, "all")) == len(list(model.parameters()))


def test_tied_weights_counted_once():
    a, b = nn.Linear(3, 3), nn.Linear(3, 3)
    b.weight = a.weight
    model = nn.Sequential(a, b)
    assert names(model) == ["0.weight"] and names(model, P.DEFAULT_MODULES) == ["0.weight"]
    assert P.L2(1.0, convention="sum")(model).item() == pytest.approx(a.weight.square().sum().item())


def test_config_names_round_trip():
    for modules in (None, "all", P.DEFAULT_MODULES, (nn.Embedding, nn.LSTM)):
        stored = types_to_names(modules)
        assert stored is None or stored == "all" or all(isinstance(n, str) for n in stored)
        assert names_to_types(stored) == modules
    assert types_to_names((nn.Linear,)) == ["Linear"] and names_to_types("Linear") == (nn.Linear,)


@pytest.mark.parametrize("kwargs, match", [
    ({"modules": "Linear"}, r"modules must be None, 'all' or a tuple of nn.Module types, got 'Linear'"),
    ({"modules": (int,)}, r"modules must be None, 'all' or a tuple of nn.Module types, got \(<class 'int'>,\)"),
    ({"pattern": "("}, r"pattern is not a valid regular expression: '\('"),
    ({"pattern": 3}, r"pattern must be a regular expression string, got 3"),
])
def test_selection_errors(kwargs, match):
    with pytest.raises(RegularkitError, match=match):
        P.select_parameters(make_model(), **kwargs)
    with pytest.raises(RegularkitError, match=match):
        P.L2(0.1, **kwargs)


def test_select_errors_on_the_model():
    with pytest.raises(RegularkitError, match="model must be a torch.nn.Module, got Tensor"):
        P.select_parameters(torch.zeros(3))
    with pytest.raises(RegularkitError, match=r"trainable_only must be True or False, got 1"):
        P.select_parameters(make_model(), trainable_only=1)
    with pytest.raises(RegularkitError, match=r"BadSkip.no_weight_decay\(\) must return a collection of "
                                              r"parameter names, got 'class_token'"):
        P.select_parameters(BadSkip())
    with pytest.raises(RegularkitError, match=r"modules names an unknown torch.nn module type 'Dense'"):
        names_to_types(["Dense"])


class BadSkip(SkippingViT):
    """no_weight_decay() returning one string, not a collection of names (a common slip)."""

    def __init__(self):
        super().__init__(set())

    def no_weight_decay(self):
        return "class_token"


def test_empty_selection_is_a_zero_loss_term():
    model = nn.Sequential(nn.BatchNorm1d(3))
    value = P.L2(0.1)(model)
    assert value.shape == () and value.item() == 0.0
