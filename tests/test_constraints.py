"""Constraints: the Keras formulas (incl. Keras' (in, out) layout), per-unit axes, projection in training."""
import pickle
import re

import numpy as np
import pytest
import scipy.linalg
import torch
from _helpers.penalties import LSTM_WEIGHTS, VIT_MODULE_WEIGHTS, SkippingViT, TinyViT, lstm_model, timm_decayed
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from regularkit import constraints as C
from regularkit.errors import RegularkitError
from regularkit.penalties import DEFAULT_MODULES

EPS = 1e-7


def randn(*shape, seed=0, scale=1.0):
    return scale * torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def keras_max_norm(kernel, m, axis):
    """Keras / the lecture's Theano code: norms over ``axis``, w * clip(norms, 0, m) / (eps + norms)."""
    norms = np.sqrt(np.sum(np.square(kernel), axis=axis, keepdims=True))
    return kernel * (np.clip(norms, 0, m) / (EPS + norms))


def keras_min_max_norm(kernel, lo, hi, rate, axis):
    norms = np.sqrt(np.sum(np.square(kernel), axis=axis, keepdims=True))
    desired = rate * np.clip(norms, lo, hi) + (1 - rate) * norms
    return kernel * (desired / (EPS + norms))


def unit_norms(w):
    return w.reshape(w.shape[0], -1).norm(dim=1)


# torch layout -> Keras layout (permutation of the torch weight) and the Keras axis of the incoming weights
KERAS_LAYOUTS = {
    "Linear": ((5, 7), (1, 0), 0),                       # Dense kernel (in, out), axis=0
    "Conv1d": ((5, 3, 4), (2, 1, 0), (0, 1)),            # Conv1D kernel (k, in, out)
    "Conv2d": ((5, 3, 2, 4), (2, 3, 1, 0), (0, 1, 2)),   # Conv2D kernel (kh, kw, in, out)
}


@pytest.mark.parametrize("layer", KERAS_LAYOUTS)
def test_max_norm_matches_keras_on_keras_layout(layer):
    shape, perm, axis = KERAS_LAYOUTS[layer]
    w = randn(*shape, scale=1.5)
    kernel = w.permute(*perm).numpy()  # the same weights as Keras would store them
    expected = keras_max_norm(kernel, 2.0, axis)
    got = C.MaxNorm(2.0)(w).permute(*perm).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    lo_hi = keras_min_max_norm(kernel, 1.0, 2.0, 0.5, axis)
    np.testing.assert_allclose(C.MinMaxNorm(1.0, 2.0, 0.5)(w).permute(*perm).numpy(), lo_hi, rtol=1e-12)
    unit = kernel / (EPS + np.sqrt(np.sum(np.square(kernel), axis=axis, keepdims=True)))
    np.testing.assert_allclose(C.UnitNorm()(w).permute(*perm).numpy(), unit, rtol=1e-12)


def test_slide_axis0_on_a_torch_weight_would_be_per_input():
    # The lecture's Theano sum(axis=0) assumes (in, out); on torch's (out, in) it is a different constraint.
    w = randn(3, 6, scale=2.0)
    per_unit = C.max_norm(w, 1.0)
    per_input = torch.from_numpy(keras_max_norm(w.numpy(), 1.0, 0))
    assert torch.allclose(unit_norms(per_unit).max(), torch.tensor(1.0, dtype=torch.float64))
    assert not torch.allclose(per_unit, per_input)


def test_max_norm_worked_example():
    w = torch.tensor([[3.0, 4.0], [0.3, 0.4], [0.0, 0.0]], dtype=torch.float64)  # norms 5, 0.5, 0
    out = C.MaxNorm(2.0)(w)
    torch.testing.assert_close(out[0], torch.tensor([1.2, 1.6], dtype=torch.float64), rtol=1e-6, atol=0)
    torch.testing.assert_close(out[1], w[1] * 0.5 / (0.5 + 1e-7))  # short rows kept (up to the guard)
    assert torch.equal(out[2], w[2])  # the 1e-7 guard keeps a zero row at zero, no NaN


@pytest.mark.parametrize("layer", [nn.Linear(20, 10), nn.Conv1d(4, 6, 3), nn.Conv2d(3, 8, 3), nn.Conv3d(2, 4, 2)])
def test_project_caps_each_output_unit(layer):
    with torch.no_grad():
        layer.weight.mul_(10.0)
        layer.weight[0].mul_(1e-3)  # one short unit: must be left alone
    before = layer.weight.detach().clone()
    C.project(layer, C.MaxNorm(1.5))
    norms = unit_norms(layer.weight.detach())
    assert norms.max() <= 1.5 + 1e-6
    assert torch.allclose(norms[1:], torch.full_like(norms[1:], 1.5), rtol=1e-5)
    short = before[0].norm()
    torch.testing.assert_close(layer.weight[0].detach(), before[0] * short / (EPS + short))  # only the guard
    # directions are kept: each unit is only rescaled
    cos = nn.functional.cosine_similarity(layer.weight.detach().flatten(1), before.flatten(1), dim=1)
    assert torch.allclose(cos, torch.ones_like(cos), atol=1e-6)


def test_project_conv_transpose_uses_dim1_as_output_units():
    layer = nn.ConvTranspose2d(3, 5, 2)  # weight (in=3, out=5, 2, 2)
    with torch.no_grad():
        layer.weight.mul_(20.0)
    C.project(layer, C.MaxNorm(1.0))
    per_out = layer.weight.detach().transpose(0, 1).reshape(5, -1).norm(dim=1)
    assert torch.allclose(per_out, torch.ones(5), rtol=1e-5)
    grouped = nn.ConvTranspose2d(4, 4, 2, groups=2)
    with pytest.raises(RegularkitError, match=r"cannot project weight: ConvTranspose with groups=2"):
        C.project(grouped, C.MaxNorm(1.0))


def test_non_neg_bias_sign_and_min_max_norm():
    w = randn(4, 5)
    assert C.NonNeg()(w).min() >= 0 and torch.equal(C.NonNeg()(w)[w > 0], w[w > 0])
    assert torch.equal(C.BiasSign()(w), w.clamp(min=0))
    assert torch.equal(C.BiasSign("non_positive")(w), w.clamp(max=0))
    norms = unit_norms(C.MinMaxNorm(0.5, 0.8)(w * 3))
    assert norms.min() >= 0.5 - 1e-6 and norms.max() <= 0.8 + 1e-6
    # a bias is 1-D: one number per unit, its per-unit norm is |b_i|
    b = torch.tensor([-3.0, 0.5, 2.0], dtype=torch.float64)
    expected = torch.tensor([-1.0, 0.5, 1.0], dtype=torch.float64)
    torch.testing.assert_close(C.MaxNorm(1.0)(b), expected, rtol=1e-6, atol=0)


@pytest.mark.parametrize("shape", [(4, 4), (3, 7), (7, 3), (6, 2, 3, 3)])
def test_orthonormal(shape):
    w = randn(*shape)
    q = C.Orthonormal()(w)
    mat = q.reshape(shape[0], -1)
    eye_rows = mat @ mat.T if mat.shape[0] <= mat.shape[1] else mat.T @ mat
    torch.testing.assert_close(eye_rows, torch.eye(eye_rows.shape[0], dtype=torch.float64), atol=1e-10, rtol=0)
    u, _ = scipy.linalg.polar(w.reshape(shape[0], -1).numpy())  # orthogonal polar factor: the nearest one
    np.testing.assert_allclose(mat.numpy(), u, atol=1e-10)
    torch.testing.assert_close(C.Orthonormal()(q), q, atol=1e-10, rtol=0)


CONSTRAINTS = [C.MaxNorm(1.0), C.UnitNorm(), C.NonNeg(), C.MinMaxNorm(0.5, 1.5), C.BiasSign(), C.Orthonormal()]


@settings(max_examples=20, deadline=None)
@given(shape=st.lists(st.integers(1, 5), min_size=2, max_size=4), seed=st.integers(0, 1000),
       scale=st.floats(0.1, 10.0))
def test_constraints_are_projections_on_any_shape(shape, seed, scale):
    w = randn(*shape, seed=seed, scale=scale)
    # Projecting twice changes nothing -- up to the 1e-7 guard, which rescales a unit of norm n by
    # n / (n + 1e-7): a relative 1e-7 / n, on the input (n) and on the once-projected unit (n ~ 1).
    tol = 10 * EPS * (1.0 + 1.0 / unit_norms(w).min().clamp(min=1e-3).item())
    for c in CONSTRAINTS:
        once = c(w)
        assert once.shape == w.shape and torch.isfinite(once).all()
        torch.testing.assert_close(c(once), once, atol=tol, rtol=tol)


@pytest.mark.parametrize("project_after_step", [True, False])
def test_max_norm_holds_after_every_step_of_training(project_after_step):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 3))
    x = torch.randn(64, 10)
    y = torch.randint(0, 3, (64,))
    opt = torch.optim.SGD(model.parameters(), lr=5.0)  # large: weights grow fast unless projected
    projector = C.Projector(C.MaxNorm(2.0))
    worst = 0.0
    for _ in range(30):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        if project_after_step:
            assert projector(model) == ["0.weight", "2.weight"]
        worst = max(worst, max(unit_norms(m.weight.detach()).max().item() for m in (model[0], model[2])))
        if project_after_step:
            assert worst <= 2.0 + 1e-6
    if not project_after_step:
        assert worst > 2.0  # the control: without projection the cap is exceeded


def test_project_spec_forms():
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Conv1d(1, 2, 2), nn.Linear(3, 2))
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(10.0)
    names = C.project(model, {nn.Conv1d: C.MaxNorm(1.0), r"bias$": C.BiasSign(), model[3]: C.UnitNorm(),
                              model[0].weight: C.NonNeg()})
    assert names == ["2.weight", "0.bias", "2.bias", "3.bias", "3.weight", "0.weight"]
    assert unit_norms(model[2].weight.detach()).max() <= 1.0 + 1e-6
    assert all(m.bias.min() >= 0 for m in (model[0], model[2], model[3]))
    assert torch.allclose(unit_norms(model[3].weight.detach()), torch.ones(2), atol=1e-6)
    assert model[0].weight.min() >= 0
    assert C.project(model, {(nn.Linear, nn.Conv1d): C.MaxNorm(1.0)}) == ["0.weight", "2.weight", "3.weight"]


def test_tied_weight_projected_once():
    a, b = nn.Linear(3, 3), nn.Linear(3, 3)
    b.weight = a.weight
    assert C.project(nn.Sequential(a, b), C.MaxNorm(1.0)) == ["0.weight"]


@pytest.mark.parametrize("build", [TinyViT, lambda: SkippingViT({"class_token"}), lstm_model],
                         ids=["vit", "skip", "lstm"])
def test_default_target_is_every_weight_the_penalties_select(build):
    model = build()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(50.0)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    names = C.project(model, C.MaxNorm(1.0))
    assert set(names) == timm_decayed(model) and len(names) == len(set(names))
    for n, p in model.named_parameters():
        if n in names:  # per output unit (row), over every other dim
            assert unit_norms(p.detach()).max() <= 1.0 + 1e-5, n
        else:  # biases, norms, no_weight_decay() names: untouched
            assert torch.equal(p.detach(), before[n]), n


def test_old_default_and_frozen_weights():
    model = TinyViT()
    assert set(C.project(model, {DEFAULT_MODULES: C.MaxNorm(1.0)})) == VIT_MODULE_WEIGHTS
    lm = lstm_model()
    lm["embed"].requires_grad_(False)  # frozen: the default leaves it where it was frozen
    assert set(C.project(lm, C.MaxNorm(1.0))) == LSTM_WEIGHTS - {"embed.weight"}
    assert C.project(lm, {lm["embed"]: C.MaxNorm(1.0)}) == ["embed.weight"]  # named explicitly: projected
    with pytest.raises(RegularkitError, match=r"spec MaxNorm\(max_value=1.0\) applies to every trainable weight "
                                              r"\(ndim >= 2\), but Sequential has none"):
        C.project(nn.Sequential(nn.LayerNorm(3)), C.MaxNorm(1.0))


def test_max_norm_on_an_embedding_is_torchs_embedding_max_norm():
    # torch's nn.Embedding(max_norm=m) renormalises each looked-up row with norm > m to m (embedding_renorm_:
    # scale m / (norm + 1e-7)); MaxNorm after the step does the same to every row (short rows: only the guard).
    emb = nn.Embedding(6, 4)
    with torch.no_grad():
        emb.weight.mul_(torch.tensor([0.1, 2.0, 5.0, 0.3, 9.0, 1.0]).unsqueeze(1))
    ref = nn.Embedding(6, 4, max_norm=1.0)
    ref.weight.data.copy_(emb.weight.data)
    ref(torch.arange(6))  # the lookup renormalises the rows in place
    C.project(emb, C.MaxNorm(1.0))
    torch.testing.assert_close(emb.weight.detach(), ref.weight.detach(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("spec, match", [
    ({}, r"spec must be a constraint or a non-empty dict \{selector: constraint\}, got \{\}"),
    (3.0, r"spec must be a constraint or a non-empty dict"),
    ({nn.Conv2d: C.MaxNorm(1.0)}, r"spec key <class 'torch.nn.modules.conv.Conv2d'> selects no parameter"),
    ({r"^fc\.": C.MaxNorm(1.0)}, re.escape("spec key '^fc\\\\.' selects no parameter of the model")),
    ({"(": C.MaxNorm(1.0)}, r"pattern is not a valid regular expression: '\('"),
    ({3: C.MaxNorm(1.0)}, r"spec key must be a module type, a name pattern, a module or a parameter, got 3"),
    ({nn.Linear: 2.0}, r"constraint for <class 'torch.nn.modules.linear.Linear'> must be callable"),
    ({nn.Parameter(torch.zeros(2)): C.NonNeg()}, r"selects no parameter of the model"),
])
def test_project_errors(spec, match):
    with pytest.raises(RegularkitError, match=match):
        C.project(nn.Sequential(nn.Linear(2, 2)), spec)


@pytest.mark.parametrize("build, match", [
    (lambda: C.MaxNorm(-1.0), r"max_value must be > 0, got -1.0"),
    (lambda: C.MaxNorm("big"), r"max_value must be a number, got 'big'"),
    (lambda: C.MinMaxNorm(2.0, 1.0), r"min_value must be <= max_value, got min_value=2.0, max_value=1.0"),
    (lambda: C.MinMaxNorm(0.0, 1.0, rate=0.0), r"rate must be in \(0.0, 1.0\], got 0.0"),
    (lambda: C.BiasSign("positive"), r"sign must be one of 'non_negative', 'non_positive'; got 'positive'"),
    (lambda: C.Orthonormal()(torch.ones(3)), r"orthonormal needs a weight with >= 2 dims, got shape \(3,\)"),
    (lambda: C.get("maxnorm"), r"constraint must be one of 'max_norm', .*; got 'maxnorm'"),
    (lambda: C.get(3), r"cannot build a constraint from 3"),
    (lambda: C.Projector(3), r"spec must be a constraint or a dict \{selector: constraint\}, got 3"),
])
def test_constraint_errors(build, match):
    with pytest.raises(RegularkitError, match=match):
        build()


def test_configs_registry_and_pickling():
    for c in CONSTRAINTS + [C.MinMaxNorm(0.2, 3.0, 0.5), C.BiasSign("non_positive")]:
        assert type(c).from_config(c.get_config()) == c
        assert pickle.loads(pickle.dumps(c)) == c
        name = next(k for k, v in C.REGISTRY.items() if v is type(c))
        assert C.get({"class_name": name, "config": c.get_config()}) == c
    assert C.get("max_norm") == C.MaxNorm(2.0) and C.get(C.UnitNorm()) == C.UnitNorm()
    projector = pickle.loads(pickle.dumps(C.Projector({nn.Linear: C.MaxNorm(3.0), "bias$": C.NonNeg()})))
    layer = nn.Linear(3, 2)
    with torch.no_grad():
        layer.weight.mul_(100.0)
    projector(layer)
    assert unit_norms(layer.weight.detach()).max() <= 3.0 + 1e-6 and layer.bias.min() >= 0


@pytest.mark.parametrize("shape", [(4, 4), (3, 7), (7, 3)])
def test_orthonormal_on_float32_weights_is_the_float64_projection_rounded(shape):
    """A float32 weight is projected in float64 and rounded once: the float64 result to the last bit, and
    orthonormal to float32 precision (an SVD in float32 would be off by a few ulps)."""
    w = randn(*shape, seed=3).float()
    q = C.Orthonormal()(w)
    assert q.dtype == torch.float32 and q.shape == w.shape
    assert torch.equal(q, C.orthonormal(w.double()).float())
    mat = q.double()
    eye = mat @ mat.T if shape[0] <= shape[1] else mat.T @ mat
    torch.testing.assert_close(eye, torch.eye(min(shape), dtype=torch.float64), atol=1e-6, rtol=0)


def test_constraints_are_frozen_values_whose_configs_hold_plain_floats():
    """Frozen dataclasses (equal when their settings are, hashable, immutable); numbers given as NumPy or 0-d
    tensors are stored as the floats the validation returns, so configs are JSON."""
    import json
    from dataclasses import FrozenInstanceError
    for c in CONSTRAINTS:
        assert hash(c) == hash(type(c)(**c.get_config())) and len({c, type(c)(**c.get_config())}) == 1
        with pytest.raises(FrozenInstanceError):
            c.extra = 1
    with pytest.raises(FrozenInstanceError):
        C.MaxNorm(1.0).max_value = 5.0
    c = C.MinMaxNorm(np.float32(0.5), torch.tensor(2.0), np.float64(0.25))
    assert json.loads(json.dumps(c.get_config())) == {"min_value": 0.5, "max_value": 2.0, "rate": 0.25}
    assert all(type(v) is float for v in c.get_config().values())
    assert type(C.MaxNorm(np.int64(3)).max_value) is float and C.MaxNorm(np.int64(3)) == C.MaxNorm(3.0)


def test_min_max_norm_with_equal_bounds_fixes_every_norm():
    w = randn(5, 4, scale=3.0)
    fixed = C.MinMaxNorm(1.5, 1.5)(w)  # min_value == max_value is allowed: a fixed norm
    torch.testing.assert_close(unit_norms(fixed), torch.full((5,), 1.5, dtype=torch.float64), rtol=1e-6, atol=0)
    half = C.MinMaxNorm(1.5, 1.5, rate=0.5)(w)  # half of the way from each norm to 1.5
    torch.testing.assert_close(unit_norms(half), (unit_norms(w) + 1.5) / 2 * unit_norms(w) / (EPS + unit_norms(w)))


def test_project_finds_conv_transpose_weights_inside_containers_and_projects_shared_ones_once():
    model = nn.Sequential(nn.Sequential(nn.ConvTranspose2d(3, 5, 2)), nn.Linear(4, 4), nn.Linear(4, 4))
    model[2].weight = model[1].weight  # tied
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(20.0)
    assert C.project(model, {nn.ConvTranspose2d: C.MaxNorm(1.0)}) == ["0.0.weight"]
    per_out = model[0][0].weight.detach().transpose(0, 1).reshape(5, -1).norm(dim=1)
    torch.testing.assert_close(per_out, torch.ones(5), rtol=1e-5, atol=0)  # dim 1 is the output unit
    calls = []

    def counting(w):
        calls.append(tuple(w.shape))
        return w * 0.5

    before = model[1].weight.detach().clone()
    assert C.project(model, {(nn.Linear,): counting}) == ["1.weight"]  # the tied weight once, under its first name
    assert calls == [(4, 4)] and torch.equal(model[1].weight.detach(), before * 0.5)


def test_the_base_constraint_is_abstract_and_a_projector_shows_its_spec():
    with pytest.raises(NotImplementedError):
        C.Constraint()(torch.ones(2, 2))
    assert repr(C.Projector(C.MaxNorm(3.0))) == "Projector(MaxNorm(max_value=3.0))"


# --------------------------------------------------------------------------- in place, over all weights (issue 15)
def old_unit_norms(w):
    """The per-unit norm before issue 15: a squared copy, summed, square-rooted."""
    return w.square().sum(dim=tuple(range(1, w.dim())), keepdim=True).sqrt() if w.dim() > 1 else w.abs()


OLD_KERNELS = {  # the kernels as they were written before, on the old norms
    "MaxNorm": lambda w: w * (old_unit_norms(w).clamp(0.0, 1.0) / (EPS + old_unit_norms(w))),
    "UnitNorm": lambda w: w / (EPS + old_unit_norms(w)),
    "MinMaxNorm": lambda w: w * ((old_unit_norms(w).clamp(0.5, 1.5)) / (EPS + old_unit_norms(w))),
    "NonNeg": lambda w: w.clamp(min=0.0),
    "BiasSign": lambda w: w.clamp(min=0.0),
}
SHAPES = [(7,), (6, 5), (4, 3, 3), (5, 3, 2, 2)]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_in_place_projection_is_the_constraint_bit_for_bit_and_the_old_formula(shape, dtype):
    for c in CONSTRAINTS:
        if isinstance(c, C.Orthonormal) and len(shape) < 2:
            continue
        ws = [randn(*shape, seed=s, scale=s + 0.5).to(dtype) for s in range(3)]
        expected = [c(w) for w in ws]
        c.project_(ws)
        for got, want in zip(ws, expected):
            assert torch.equal(got, want), type(c).__name__
        old = OLD_KERNELS.get(type(c).__name__)
        if old is not None:  # the norms come from vector_norm now: equal to rounding
            w = randn(*shape, seed=9, scale=2.0).to(dtype)
            tol = 1e-6 if dtype == torch.float32 else 1e-14
            torch.testing.assert_close(c(w), old(w), rtol=tol, atol=tol)
    torch.testing.assert_close(C.unit_norms(randn(6, 5)), old_unit_norms(randn(6, 5)), rtol=1e-15, atol=0)


def test_max_norm_writes_nothing_when_every_factor_is_exactly_one():
    # float32 rows of norm in [2, 3]: 1e-7 + n rounds to n (half an ulp of 2 is 1.2e-7), the factor is 1
    w = randn(4, 8, seed=1).float()
    w = w / C.unit_norms(w) * torch.tensor([[2.01], [2.2], [2.5], [2.9]])
    assert torch.equal(C.MaxNorm(3.0)(w), w)
    version = w._version
    C.MaxNorm(3.0).project_([w])
    assert w._version == version  # not written at all
    # a unit below 2 is shrunk by the 1e-7 guard (Keras' formula, kept), one above the bound is capped:
    for row_norm in (0.5, 1.8, 4.0):
        v = w.clone()
        v[0] *= row_norm / 2.01
        expected = C.MaxNorm(3.0)(v)
        assert not torch.equal(expected, v)
        C.MaxNorm(3.0).project_([v])
        assert torch.equal(v, expected)


def test_project_equals_the_per_parameter_loop_for_every_spec_form():
    """The old ``project``: ``p.copy_(constraint(p))`` per resolved entry, in order (ConvTranspose transposed)."""
    def build():
        torch.manual_seed(0)
        m = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Conv1d(1, 3, 2), nn.ConvTranspose1d(3, 2, 2), nn.Linear(3, 2))
        with torch.no_grad():
            for p in m.parameters():
                p.mul_(5.0)
        return m

    soft = C.MinMaxNorm(0.5, 1.0, rate=0.5)  # not idempotent: applying it twice shows up
    specs = [C.MaxNorm(1.0), C.NonNeg(), {nn.Linear: soft, r"weight$": soft, r"bias$": C.BiasSign("non_positive")},
             {(nn.ConvTranspose1d, nn.Conv1d): C.UnitNorm(), nn.Linear: C.Orthonormal()}]
    for spec in specs:
        model, reference = build(), build()
        names = C.project(model, spec)
        with torch.no_grad():
            for name, p, mod, c in C._resolve(reference, spec):
                if isinstance(mod, nn.ConvTranspose1d) and name.endswith("weight"):
                    p.copy_(c(p.transpose(0, 1)).transpose(0, 1))
                else:
                    p.copy_(c(p))
        assert names == [name for name, *_ in C._resolve(reference, spec)]
        for (name, p), q in zip(model.named_parameters(), reference.parameters()):
            assert torch.equal(p, q), (spec, name)


def test_a_weight_named_twice_for_one_constraint_is_projected_twice_in_order():
    """Entries apply in order, each as ``w.copy_(constraint(w))``: a weight selected again for the same
    constraint is projected a second time after the first, never twice within one in-place pass."""
    model = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(5.0)
    soft = C.MinMaxNorm(0.5, 1.0, rate=0.5)  # half way to the bounds: projecting twice differs from once
    w0, w1 = model[0].weight.detach().clone(), model[1].weight.detach().clone()
    names = C.project(model, {"bias$": C.NonNeg(), nn.Linear: soft, model[0].weight: soft})
    assert names == ["0.bias", "1.bias", "0.weight", "1.weight", "0.weight"]
    assert torch.equal(model[0].weight.detach(), soft(soft(w0))) and torch.equal(model[1].weight.detach(), soft(w1))
    assert not torch.equal(soft(soft(w0)), soft(w0))
