"""The user's model factory: loaded from module:function or file.py:function, tried before training."""
import re
import sys

import pytest
import torch
from torch import nn

from regularkit.errors import RegularkitError
from regularkit.models import build_model
from regularkit.models.factory import call_factory, factory_digest, is_factory_spec, load_factory
from regularkit.train import ModelConfig

FACTORY = '''
import torch
from torch import nn


def build(input_shape, num_classes):
    n = 1
    for s in input_shape:
        n *= s
    return nn.Sequential(nn.Flatten(), nn.Linear(n, 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, num_classes))


def wrong_shape(input_shape, num_classes):
    return nn.Flatten()


def not_a_module(input_shape, num_classes):
    return "a string"


def raises(input_shape, num_classes):
    raise ValueError("no GPU here\\nsecond line")


NOT_CALLABLE = 3
'''


@pytest.fixture
def factory_file(tmp_path):
    path = tmp_path / "my_models.py"
    path.write_text(FACTORY)
    return path


def test_file_spec_loads_builds_and_checks(factory_file):
    build = load_factory(f"{factory_file}:build")
    model = call_factory(build, (1, 8, 8), 10, "my_models.py:build")
    assert model(torch.zeros(3, 1, 8, 8)).shape == (3, 10)
    assert load_factory(f"{factory_file}:build") is build  # loaded once, registered for pickling
    assert build.__module__ in sys.modules


def test_module_spec(tmp_path, monkeypatch, factory_file):
    monkeypatch.syspath_prepend(str(factory_file.parent))
    assert load_factory("my_models:build")((4,), 3)(torch.zeros(2, 4)).shape == (2, 3)


@pytest.mark.parametrize("spec, match", [
    ("mlp2", r"model must be one of mlp, cnn, resnet, or MODULE:FUNCTION or FILE.py:FUNCTION"),
    ("no_such_module_xyz:build", r"cannot import module 'no_such_module_xyz' for model 'no_such_module_xyz:build'"),
    ("missing.py:build", r"model factory file not found: .*missing.py"),
    ("{file}:nothing", r"has no function 'nothing'"),
    ("{file}:NOT_CALLABLE", r"must be callable build\(input_shape, num_classes\), got int"),
])
def test_bad_specs_are_one_line_errors(spec, match, factory_file):
    with pytest.raises(RegularkitError, match=match) as info:
        load_factory(spec.format(file=factory_file))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name, match", [
    ("wrong_shape", r"maps a batch of shape \(2, 1, 8, 8\) to \(2, 64\); expected logits of shape \(2, 10\)"),
    ("not_a_module", r"must return a torch.nn.Module, got str"),
    ("raises", r"raised ValueError: no GPU here$"),
])
def test_bad_factories_are_caught_before_training(name, match, factory_file):
    with pytest.raises(RegularkitError, match=match):
        call_factory(load_factory(f"{factory_file}:{name}"), (1, 8, 8), 10, name)


def test_file_syntax_error_is_one_line(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def build(:\n")
    with pytest.raises(RegularkitError, match=r"cannot load .*bad.py.* SyntaxError"):
        load_factory(f"{bad}:build")


def test_digest_follows_the_file_content(factory_file):
    before = factory_digest(f"{factory_file}:build")
    factory_file.write_text(FACTORY.replace("16", "17"))
    assert factory_digest(f"{factory_file}:build") != before


def test_build_model_from_a_factory_is_seeded_and_applies_the_knobs(factory_file):
    cfg = ModelConfig(kind="factory", factory=f"{factory_file}:build", dropout=0.4)
    a, b = build_model(cfg, (1, 8, 8), 10, seed=3), build_model(cfg, (1, 8, 8), 10, seed=3)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert [m.p for m in a.modules() if isinstance(m, nn.Dropout)] == [0.4]


def test_spec_syntax():
    assert is_factory_spec("pkg.mod:build") and is_factory_spec("dir/file.py:make_model")
    assert not is_factory_spec("mlp") and not is_factory_spec("file.py:") and not is_factory_spec(":build")


# --------------------------------------------------------------------------- models that pass a one-batch probe
# and fail in training (issue 23, item 8): each one line, before anything is trained or written
PROBED = '''
import re
import sys
import torch
from torch import nn


class Head(nn.Module):
    def __init__(self, n, k, how):
        super().__init__()
        self.lin, self.how = nn.Linear(n, k), how

    def forward(self, x):
        z = x.flatten(1)
        if self.how == "first_two":
            return self.lin(z[:2])               # a batch size fixed inside the model
        if self.how == "long":
            return self.lin(z).long()
        if self.how == "nan":
            return self.lin(z) * float("nan")
        if self.how == "inf_off_zero":
            return self.lin(z) / (z.sum(1, keepdim=True) == 0).float()   # finite on zeros only
        if self.how == "normed":
            return self.lin(z / z.norm(dim=1, keepdim=True))             # NaN on zeros only: real data is fine
        return self.lin(z)


class NoParams(nn.Module):
    def forward(self, x):
        return x.flatten(1)[:, :10]


def make(how):
    def build(shape, k):
        return Head(int(torch.tensor(shape).prod()), k, how)
    return build


first_two, long, nan, inf_off_zero, normed = (make(h) for h in ("first_two", "long", "nan", "inf_off_zero", "normed"))


def no_params(shape, k):
    return NoParams()


def frozen(shape, k):
    model = make("")(shape, k)
    model.requires_grad_(False)
    return model


def exits(shape, k):
    sys.exit(3)
'''


@pytest.fixture
def probed_file(tmp_path):
    path = tmp_path / "probed.py"
    path.write_text(PROBED)
    return path


@pytest.mark.parametrize("name, match", [
    ("first_two", r"maps a batch of shape \(3, 1, 8, 8\) to \(2, 10\); expected logits of shape \(3, 10\); "
                  r"is a batch size fixed inside the model\?$"),
    ("no_params", r"^the model from no_params\(\(1, 8, 8\), 10\) has no parameters; training would change nothing$"),
    ("frozen", r"has no trainable parameters \(all 2 have requires_grad=False\)"),
    ("long", r"returns logits of dtype torch.int64; expected floating point logits"),
    ("nan", r"returns 30 non-finite logit\(s\) \(NaN or inf\) of 30 on a batch of shape \(3, 1, 8, 8\)"),
    ("inf_off_zero", r"returns 30 non-finite logit\(s\)"),
    ("exits", r"^exits\(\(1, 8, 8\), 10\) raised SystemExit\(3\): it called sys.exit, where a factory must return "
              r"a model$"),
])
def test_the_probe_refuses_models_that_would_fail_in_training(name, match, probed_file):
    with pytest.raises(RegularkitError, match=match) as info:
        call_factory(load_factory(f"{probed_file}:{name}"), (1, 8, 8), 10, name)
    assert "\n" not in str(info.value)


def test_the_probe_accepts_a_model_whose_logits_are_nan_only_on_an_all_zero_input(probed_file):
    model = call_factory(load_factory(f"{probed_file}:normed"), (1, 8, 8), 10, "normed")
    x = torch.rand(5, 1, 8, 8, generator=torch.Generator().manual_seed(0)) + 0.1
    assert torch.isfinite(model(x)).all() and model(x).shape == (5, 10)


def test_a_sys_exit_while_loading_the_factory_is_one_line(tmp_path, monkeypatch):
    (tmp_path / "quits.py").write_text("import sys\nsys.exit('no GPU')\n")
    with pytest.raises(RegularkitError, match=r"cannot load .*quits.py.* SystemExit\('no GPU'\): it called sys.exit"):
        load_factory(f"{tmp_path / 'quits.py'}:build")
    (tmp_path / "quits_module.py").write_text("import sys\nsys.exit(4)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(RegularkitError, match=r"importing 'quits_module' for model 'quits_module:build' failed: "
                                              r"SystemExit\(4\)"):
        load_factory("quits_module:build")


@pytest.mark.parametrize("spec", ["models.txt:build", "./models.txt:build"])
def test_a_factory_file_that_is_not_python_is_refused_naming_it(spec, tmp_path, monkeypatch, factory_file):
    (tmp_path / "models.txt").write_text(FACTORY)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RegularkitError, match=rf"^model factory file must be a Python file ending in \.py, got "
                                              rf"'{tmp_path}/models.txt' \(from '{re.escape(spec)}'\)$"):
        load_factory(spec)
