"""Penalties: NumPy formulas, worked examples, analytic gradients, selection, schedules, Keras parity."""

import copy
import json
import pickle

import numpy as np
import pytest
import torch
from _helpers.penalties import (
    LSTM_WEIGHTS,
    VIT_MODULE_WEIGHTS,
    VIT_WEIGHTS,
    SkippingViT,
    TinyViT,
    grads,
    lstm_model,
    make_model,
    negative_after_two,
    schedule,
    selected_weights,
    timm_decayed,
)
from torch import nn

from regularkit import penalties as P
from regularkit.config import replace
from regularkit.data.datasets import Dataset
from regularkit.data.splits import make_splits
from regularkit.errors import RegularkitError
from regularkit.study import StudyConfig, resolve
from regularkit.study.assemble import assemble
from regularkit.study.recipes import RECIPES


def test_worked_example():
    lin = nn.Linear(2, 2)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, -2.0], [3.0, 0.0]]))  # sum w^2 = 14, sum |w| = 6
        lin.bias.fill_(100.0)  # must not count
    assert P.L2(0.5)(lin).item() == pytest.approx(3.5)  # the one convention: lam/2 ||w||^2
    assert P.L2(0.5, convention="sum")(lin).item() == pytest.approx(7.0)
    assert P.L2(0.5, n=7)(lin).item() == pytest.approx(0.5)
    assert P.L2(0.5, convention="sum", n=7)(lin).item() == pytest.approx(1.0)
    assert P.L1(0.5)(lin).item() == pytest.approx(3.0)
    assert P.ElasticNet(0.5, 0.5)(lin).item() == pytest.approx(6.5)
    assert P.ElasticNet(0.5, 0.5, convention="sum")(lin).item() == pytest.approx(10.0)
    assert P.ElasticNet.from_beta(0.5, 2.0)(lin).item() == pytest.approx(0.5 * (2 * 14 + 6))
    assert P.Lp(3, 1.0)(lin).item() == pytest.approx(1 + 8 + 27)
    assert P.Lp(3, 2.0, root=True)(lin).item() == pytest.approx(2 * 36 ** (1 / 3))


def test_gradients_are_the_analytic_ones():
    model = make_model()
    with torch.no_grad():
        model[7].weight[0, :2] = 0.0  # sign(0) = 0: L1's subgradient choice
    lam = 0.3
    for penalty, expected in [
        (P.L2(lam), lambda w: lam * w),
        (P.L2(lam, convention="sum"), lambda w: 2 * lam * w),
        (P.L2(lam, n=10), lambda w: lam * w / 10),
        (P.L1(lam), lambda w: lam * torch.sign(w)),
        (P.ElasticNet(lam, 2 * lam), lambda w: lam * torch.sign(w) + 2 * lam * w),
        (P.ElasticNet(lam, 2 * lam, convention="sum"), lambda w: lam * torch.sign(w) + 4 * lam * w),
        (P.Lp(3.0, lam), lambda w: 3 * lam * w.abs() ** 2 * torch.sign(w)),
    ]:
        grads(penalty, model)
        for w in selected_weights(model):
            torch.testing.assert_close(w.grad, expected(w.detach()), rtol=1e-5, atol=1e-7)
        # biases and normalisation parameters get no gradient at all
        assert model[0].bias.grad is None and model[1].weight.grad is None and model[5].weight.grad is None


def test_default_l2_equals_torch_coupled_weight_decay_with_momentum():
    # The one convention: L2(lam) in the loss == torch's SGD/Adam(weight_decay=lam) on the same params.
    # (No BatchNorm here: it zeroes the conv bias gradient up to round-off, which Adam then amplifies.)
    def small():
        torch.manual_seed(0)
        return nn.Sequential(nn.Conv1d(2, 3, 3), nn.Tanh(), nn.Flatten(), nn.Linear(12, 4))

    for opt_cls, kw in [(torch.optim.SGD, {"lr": 0.1, "momentum": 0.9}), (torch.optim.Adam, {"lr": 0.01})]:
        a, b = small(), small()
        x = torch.randn(8, 2, 6, generator=torch.Generator().manual_seed(1))
        opt_a = opt_cls(P.decay_param_groups(a, 0.0), **kw)
        opt_b = opt_cls(P.decay_param_groups(b, 0.05), **kw)
        pen = P.L2(0.05)
        for _ in range(5):
            for model, opt, extra in ((a, opt_a, pen), (b, opt_b, None)):
                opt.zero_grad()
                loss = model(x).square().mean() + (extra(model) if extra else 0.0)
                loss.backward()
                opt.step()
        for pa, pb in zip(a.parameters(), b.parameters()):
            torch.testing.assert_close(pa, pb, rtol=1e-5, atol=1e-6)


def test_schedule_follows_step_and_state_dict():
    lin = nn.Linear(3, 2)
    pen = P.L2(schedule)
    base = lin.weight.square().sum().item() / 2  # lam/2 ||w||^2
    assert pen(lin).item() == pytest.approx(0.1 * base)
    pen.step()
    pen.step()
    assert pen.step_count == 2 and pen(lin).item() == pytest.approx(0.3 * base)
    other = P.L2(schedule)
    other.load_state_dict(pen.state_dict())
    assert other(lin).item() == pytest.approx(0.3 * base)


def test_schedule_returning_a_negative_strength_is_an_error():
    pen = P.L1(negative_after_two)
    lin = nn.Linear(2, 2)
    pen(lin)
    pen.step()
    pen.step()
    with pytest.raises(RegularkitError, match=r"strength at step 2 must be >= 0, got -1.0"):
        pen(lin)


@pytest.mark.parametrize("build, match", [
    (lambda: P.L2(-1.0), r"strength must be >= 0, got -1.0"),
    (lambda: P.L2("a"), r"strength must be a number, got 'a'"),
    (lambda: P.L2(0.1, convention="mean"), r"convention must be one of 'sum', 'half'; got 'mean'"),
    (lambda: P.L1(0.1, n=0), r"n must be >= 1, got 0"),
    (lambda: P.ElasticNet(0.1, -2), r"l2 must be >= 0, got -2"),
    (lambda: P.ElasticNet.from_beta(0.1, -1.0), r"beta must be >= 0, got -1.0"),
    (lambda: P.Lp(0.5, 0.1), r"p must be >= 1, got 0.5"),
    (lambda: P.elastic_net_penalty([], convention="x"), r"convention must be one of 'sum', 'half'; got 'x'"),
    (lambda: P.L2(0.1, schedule_unit="batch"), r"schedule_unit must be one of 'step', 'epoch'; got 'batch'"),
])
def test_constructor_errors(build, match):
    with pytest.raises(RegularkitError, match=match):
        build()


def test_penalties_pickle():
    model = make_model()
    for pen in [P.L2(0.1, convention="half", n=3), P.L1(schedule), P.ElasticNet(0.1, 0.2, pattern="^4"),
                P.Lp(3, 0.1, root=True, modules=(nn.Linear,))]:
        pen.step()
        clone = pickle.loads(pickle.dumps(pen))
        assert clone.step_count == 1 and repr(clone) == repr(pen)
        assert clone(model).item() == pen(model).item()


def test_decay_param_groups_partition_and_adamw_decay():
    model = make_model()
    model[7].bias.requires_grad_(False)
    groups = P.decay_param_groups(model, 0.1)
    decay, no_decay = ({id(p) for p in g["params"]} for g in groups)
    assert decay == {id(w) for w in selected_weights(model)}
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert decay | no_decay == trainable and not decay & no_decay
    assert groups[0]["weight_decay"] == 0.1 and groups[1]["weight_decay"] == 0.0
    # With zero data gradient AdamW's update is pure decay: w <- w (1 - lr * wd); biases untouched.
    before = copy.deepcopy(model)
    opt = torch.optim.AdamW(groups, lr=0.5)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    for (name, p), q in zip(model.named_parameters(), before.parameters()):
        factor = 1 - 0.5 * 0.1 if id(p) in decay else 1.0
        torch.testing.assert_close(p, q * factor, msg=name)
    with pytest.raises(RegularkitError, match=r"weight_decay must be >= 0, got -0.1"):
        P.decay_param_groups(model, -0.1)


@pytest.mark.parametrize("build, expected", [(TinyViT, VIT_WEIGHTS), (lstm_model, LSTM_WEIGHTS)], ids=["vit", "lstm"])
def test_every_penalty_covers_attention_embedding_and_recurrent_weights(build, expected):
    model = build()
    arrays = {n: p.detach().double().numpy() for n, p in model.named_parameters()}
    chosen = [arrays[n] for n in sorted(timm_decayed(model))]
    assert set(timm_decayed(model)) == expected
    sq, ab = sum(np.sum(w ** 2) for w in chosen), sum(np.sum(np.abs(w)) for w in chosen)
    assert P.L2(0.3)(model).item() == pytest.approx(0.3 * sq / 2, rel=1e-5)  # lam/2 ||w||^2
    assert P.L1(0.3)(model).item() == pytest.approx(0.3 * ab, rel=1e-5)
    assert P.ElasticNet(0.1, 0.2)(model).item() == pytest.approx(0.1 * ab + 0.2 * sq / 2, rel=1e-5)
    assert P.Lp(3, 0.5)(model).item() == pytest.approx(0.5 * sum(np.sum(np.abs(w) ** 3) for w in chosen), rel=1e-5)
    grads(P.L2(0.3), model)
    for n, p in model.named_parameters():  # exactly the weights get a gradient, lam * w
        if n in expected:
            torch.testing.assert_close(p.grad, 0.3 * p.detach())
        else:
            assert p.grad is None, n


def test_old_module_type_rule_and_no_weight_decay_on_penalties():
    model = SkippingViT({"class_token"})
    params = dict(model.named_parameters())
    old = P.L2(2.0, modules=P.DEFAULT_MODULES)(model).item()  # 2/2 sum w^2
    assert old == pytest.approx(sum(params[n].square().sum().item() for n in VIT_MODULE_WEIGHTS), rel=1e-6)
    new = P.L2(2.0)(model).item()
    assert new == pytest.approx(sum(params[n].square().sum().item() for n in VIT_WEIGHTS - {"class_token"}), rel=1e-6)
    everything = P.L2(2.0, modules="all")(model).item()
    assert everything == pytest.approx(sum(p.square().sum().item() for p in params.values()), rel=1e-6)


def test_frozen_weights_are_not_penalized():
    model = make_model()
    model[0].requires_grad_(False)  # a frozen conv: a penalty on it would be a constant
    expected = sum(w.square().sum().item() for w in selected_weights(model)[1:])
    assert P.L2(1.0, convention="sum")(model).item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("modules", [None, "all", P.DEFAULT_MODULES, (nn.Embedding, nn.LSTM)])
def test_config_json_round_trip_of_every_selection(modules):
    pen = P.L2(0.1, convention="half", modules=modules, pattern="^(embed|lstm|head)", schedule_unit="epoch")
    config = json.loads(json.dumps(pen.get_config()))
    assert config["modules"] == (modules if modules is None or modules == "all" else [t.__name__ for t in modules])
    assert config["schedule_unit"] == "epoch"
    clone = P.L2.from_config(config)
    assert clone == pen and repr(clone) == repr(pen) and clone.schedule_unit == "epoch"
    model = lstm_model()
    assert clone(model).item() == pen(model).item()
    assert P.get({"class_name": "l2", "config": config}) == pen


def test_a_config_saved_with_the_old_default_keeps_the_old_rule():
    # Configs written before the rank rule list the module types: they still select Linear/Conv weights only.
    old = {"strength": 1.0, "convention": "sum", "n": None, "pattern": None,
           "modules": ["Linear", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"]}
    pen = P.L2.from_config(old)
    assert pen.modules == P.DEFAULT_MODULES and pen.schedule_unit == "step"
    model = lstm_model()
    assert pen(model).item() == pytest.approx(model["head"].weight.square().sum().item(), rel=1e-6)


@pytest.mark.parametrize("build", [TinyViT, lstm_model], ids=["vit", "lstm"])
def test_decay_groups_are_timms_groups(build):
    model = build()
    groups = P.decay_param_groups(model, 0.05)
    named = {id(p): n for n, p in model.named_parameters()}
    decay, no_decay = ({named[id(p)] for p in g["params"]} for g in groups)
    assert decay == timm_decayed(model)
    assert no_decay == {n for n in named.values()} - decay
    old = {named[id(p)] for p in P.decay_param_groups(model, 0.05, modules=P.DEFAULT_MODULES)[0]["params"]}
    assert old < decay  # the module-type split decays a strict subset


# --------------------------------------------------------------------------- survivors of mutation testing
@pytest.mark.parametrize("make, message", [
    (lambda: P.L2(fused="yes"), r"fused must be True or False, got 'yes'"),
    (lambda: P.L1(fused=1), r"fused must be True or False, got 1"),
    (lambda: P.L2(pattern=3), r"pattern must be a regular expression string, got 3"),
    (lambda: P.L2(pattern="("), r"pattern is not a valid regular expression: .\(."),
    (lambda: P.Lp(p=0.5), r"p must be >= 1, got 0.5"),
    (lambda: P.Lp(root="true"), r"root must be True or False, got 'true'"),
    (lambda: P.ElasticNet.from_beta(-1.0, 0.5), r"strength must be >= 0, got -1.0"),
])
def test_bad_settings_are_refused_naming_the_value(make, message):
    with pytest.raises(RegularkitError, match=message):
        make()


def test_lp_accepts_p_one_as_l1():
    w = torch.tensor([[1.0, -2.0], [0.5, 0.0]])
    model = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(w)
    assert P.Lp(p=1.0, strength=0.1)(model).item() == pytest.approx(P.L1(0.1)(model).item())


def test_the_fused_flag_is_part_of_equality_and_the_config():
    assert P.L2(1e-3) != P.L2(1e-3, fused=False) and P.L2(1e-3) == P.L2(1e-3)
    assert P.L2(1e-3, fused=False).get_config()["fused"] is False
    assert P.L2.from_config(P.L2(1e-3, fused=False).get_config()) == P.L2(1e-3, fused=False)


def test_repr_lists_strengths_first_and_the_selection_last_by_type_name():
    assert repr(P.L2(1e-3)) == ("L2(strength=0.001, convention='half', n=None, pattern=None, schedule_unit='step', "
                              "fused=True, modules=None)")
    assert repr(P.L1(0.5, modules=(nn.Linear, nn.Conv2d))).endswith("fused=True, modules=(Linear, Conv2d))")


def test_the_study_reg_l2_is_the_library_default_l2():
    """One L2 convention: a tuned ``reg.l2`` pasted into ``L2(best)`` is the same penalty (issue 24, item 3)."""
    ds = Dataset("toy", np.random.default_rng(0).random((40, 6), dtype=np.float32), np.arange(40) % 2,
                 np.random.default_rng(1).random((8, 6), dtype=np.float32), np.arange(8) % 2, num_classes=2)
    base = StudyConfig(epochs=1, batch_size=8).base_recipe()
    parts = assemble(replace(resolve(["l2"], base)[0], {"reg.l2": 0.03}), make_splits(ds, val_fraction=0.25, seed=0),
                     seed=0)
    (term,) = [t for t in parts.loss_terms if isinstance(t, P.L2)]
    assert term == P.L2(0.03)
    assert term(parts.model).item() == pytest.approx(
        0.015 * sum(p.square().sum().item() for p in parts.model.parameters() if p.dim() >= 2), rel=1e-6)
    assert "(lambda/2)" in RECIPES["l2"][0]  # what `regularkit recipes` prints
