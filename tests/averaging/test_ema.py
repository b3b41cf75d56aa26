"""EMA: the closed-form weighted sum, warm-up, buffers, state_dict and pickling; an nn.Module in its owner's
state_dict (and Lightning's checkpoints); timm's ModelEmaV3 restated; DDP / compile wrappers peeled."""
import copy
import importlib
import io
import pickle

import pytest
import torch
from torch import nn

from regularkit.averaging import EMA, ema_decay, ema_update_
from regularkit.errors import RegularkitError


def _set_weights(model: nn.Module, g: torch.Generator) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype))
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_slide_defaults():
    ema = EMA(nn.Linear(2, 2))
    assert ema.decay == 0.995 and ema.current_decay() == 0.995  # w_test = 0.995 w_test + 0.005 w


def test_after_n_steps_equals_closed_form():
    torch.manual_seed(0)
    d, n = 0.9, 7
    model = nn.Linear(3, 2).double()
    g = torch.Generator().manual_seed(1)
    history = [_set_weights(model, g)]          # w_0: the copy taken at construction
    ema = EMA(model, decay=d)
    for _ in range(n):
        history.append(_set_weights(model, g))  # w_k, as after an optimizer step
        ema.update(model)
    for name, avg in ema.module.state_dict().items():
        # w_n = d^n w_0 + sum_k (1 - d) d^(n - k) w_k
        expected = d ** n * history[0][name] + sum((1 - d) * d ** (n - k) * history[k][name] for k in range(1, n + 1))
        assert torch.allclose(avg, expected, rtol=1e-12, atol=1e-12), name
    assert ema.num_updates == n


def test_warmup_decay_schedule():
    assert ema_decay(0, 0.995, warmup=True) == pytest.approx(0.1)        # (1 + 0) / (10 + 0)
    assert ema_decay(1, 0.995, warmup=True) == pytest.approx(2 / 11)
    assert ema_decay(1789, 0.995, warmup=True) < 0.995
    assert ema_decay(1790, 0.995, warmup=True) == pytest.approx(0.995)   # (10 d - 1) / (1 - d)
    assert ema_decay(10**6, 0.995, warmup=True) == 0.995
    assert ema_decay(0, 0.995, warmup=False) == 0.995


def test_warmup_forgets_the_initial_weights_fast():
    model = nn.Linear(2, 1, bias=False).double()
    with torch.no_grad():
        model.weight.fill_(0.0)
    ema = EMA(model, decay=0.99, warmup=True)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema.update(model)  # decay 0.1: 0.1 * 0 + 0.9 * 1
    assert torch.allclose(ema.module.weight, torch.full((1, 2), 0.9, dtype=torch.float64))
    ema.update(model)  # decay 2/11
    assert torch.allclose(ema.module.weight, torch.full((1, 2), 1 - 0.1 * 2 / 11, dtype=torch.float64))


def _bn_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))


@pytest.mark.parametrize("mode", ["copy", "average"])
def test_buffers_are_handled_explicitly(mode):
    model = _bn_model()
    ema = EMA(model, decay=0.8, buffers=mode)
    bn = model[1]
    with torch.no_grad():
        bn.running_mean.fill_(1.0)
        bn.running_var.fill_(3.0)
        bn.num_batches_tracked.fill_(5)
    ema.update(model)
    avg_bn = ema.module[1]
    if mode == "copy":
        assert torch.equal(avg_bn.running_mean, bn.running_mean)
        assert torch.equal(avg_bn.running_var, bn.running_var)
    else:  # 0.8 * initial (0 mean, 1 var) + 0.2 * live
        assert torch.allclose(avg_bn.running_mean, torch.full((4,), 0.2))
        assert torch.allclose(avg_bn.running_var, torch.full((4,), 0.8 + 0.6))
    assert avg_bn.num_batches_tracked.item() == 5  # an integer buffer is always copied


def test_average_is_an_eval_copy_that_training_does_not_touch():
    model = _bn_model()
    ema = EMA(model, decay=0.5)
    assert not ema.module.training
    assert all(not p.requires_grad for p in ema.module.parameters())
    before = copy.deepcopy(ema.module.state_dict())
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    x = torch.randn(8, 3, generator=torch.Generator().manual_seed(0))
    model(x).square().mean().backward()
    opt.step()
    for k, v in ema.module.state_dict().items():
        assert torch.equal(v, before[k])  # nothing shared with the live model
    ema.update(model)
    w = model[0].weight.detach()
    assert torch.allclose(ema.module[0].weight, 0.5 * before["0.weight"] + 0.5 * w)


def test_state_dict_round_trip_continues_exactly():
    model = _bn_model()
    g = torch.Generator().manual_seed(2)
    ema = EMA(model, decay=0.9, warmup=True)
    for _ in range(3):
        _set_weights(model, g)
        ema.update(model)
    resumed = EMA(_bn_model(), decay=0.9, warmup=True)
    resumed.load_state_dict(ema.state_dict())
    assert resumed.num_updates == 3
    _set_weights(model, g)
    ema.update(model)
    resumed.update(model)
    for (k, a), b in zip(ema.module.state_dict().items(), resumed.module.state_dict().values()):
        assert torch.equal(a, b), k


def test_pickle_round_trip():
    model = _bn_model()
    ema = EMA(model, decay=0.7, buffers="average")
    ema.update(model)
    clone = pickle.loads(pickle.dumps(ema))
    assert clone.num_updates == 1 and clone.decay == 0.7 and clone.buffer_mode == "average"
    x = torch.randn(5, 3)
    assert torch.equal(clone.module(x), ema.module(x))


def test_device_argument_keeps_the_copy_there():
    ema = EMA(nn.Linear(2, 2), device="cpu")
    assert ema.module.weight.device.type == "cpu"


# --------------------------------------------------------------------------- an nn.Module inside its owner
class Owner(nn.Module):
    """What a LightningModule is to its EMA: the live net and its average are both submodules."""

    def __init__(self):
        super().__init__()
        self.net = _bn_model()
        self.ema = EMA(self.net, decay=0.8, warmup=True, buffers="average")


def _step(owner: Owner, g: torch.Generator) -> None:
    _set_weights(owner.net, g)
    owner.ema.update(owner.net)


def test_the_average_is_in_its_owners_state_dict_and_a_checkpoint_resumes_exactly():
    owner, g = Owner(), torch.Generator().manual_seed(3)
    for _ in range(3):
        _step(owner, g)
    state = owner.state_dict()
    ema_keys = {k for k in state if k.startswith("ema.")}
    assert ema_keys == {f"ema.module.{k}" for k in owner.net.state_dict()} | {"ema._extra_state"}
    saved = io.BytesIO()
    torch.save(state, saved)
    saved.seek(0)
    resumed = Owner()
    resumed.load_state_dict(torch.load(saved, weights_only=True))  # what a checkpoint holds and restores
    assert resumed.ema.num_updates == 3  # so the warm-up goes on at t = 3, not 0
    for o in (owner, resumed):
        _step(o, torch.Generator().manual_seed(4))
    for (k, a), b in zip(owner.ema.state_dict().items(), resumed.ema.state_dict().values()):
        assert a == b if k == "_extra_state" else torch.equal(a, b), k


def test_follows_its_owner_to_a_dtype_stays_frozen_and_in_eval_mode():
    owner = Owner().to(torch.float64)
    assert all(t.dtype == torch.float64 for t in owner.ema.module.state_dict().values() if t.is_floating_point())
    owner.train()
    assert owner.net.training and owner.ema.training
    assert not any(m.training for m in owner.ema.module.modules())  # owner.train() does not reach the average
    assert all(not p.requires_grad for p in owner.ema.parameters())
    x = torch.randn(5, 3, dtype=torch.float64)
    assert torch.equal(owner.ema(x), owner.ema.module(x))
    owner.ema.module.train()  # changing the average's mode is explicit
    assert owner.ema.module[1].training


def test_loads_the_state_dict_of_earlier_versions():
    model, g = _bn_model(), torch.Generator().manual_seed(5)
    ema = EMA(model, decay=0.9, warmup=True)
    _set_weights(model, g)
    ema.update(model)
    legacy = {"module": ema.module.state_dict(), "num_updates": 1, "decay": 0.9, "warmup": True, "buffers": "copy"}
    resumed = EMA(_bn_model(), decay=0.9, warmup=True)
    resumed.load_state_dict(legacy)
    assert resumed.num_updates == 1
    for k, v in ema.module.state_dict().items():
        assert torch.equal(resumed.module.state_dict()[k], v), k


# --------------------------------------------------------------------------- timm's ModelEmaV3, restated
def timm_v3_decay(step, decay, *, min_decay=0.0, update_after_step=0, use_warmup=False, warmup_gamma=1.0,
                  warmup_power=2 / 3):
    """ModelEmaV3.get_decay: no step -> ``decay``; else ``s = max(0, step - update_after_step - 1)``: 0 (a
    copy) while ``s == 0``, then ``decay``, or with warm-up ``1 - (1 + s / gamma)^-power`` clamped to
    ``[min_decay, decay]``."""
    if step is None:
        return decay
    s = max(0, step - update_after_step - 1)
    if s == 0:
        return 0.0
    return max(min(1 - (1 + s / warmup_gamma) ** -warmup_power, decay), min_decay) if use_warmup else decay


@torch.no_grad()
def timm_v3_update_(averaged, model, decay, *, exclude_buffers=False):
    """ModelEmaV3.update: tensors paired by position; every floating entry of the state dict moves ``1 - decay``
    of the way to the model's, others are copied; ``exclude_buffers``: parameters move, buffers are copied."""
    if exclude_buffers:
        pairs = [(a, m, True) for a, m in zip(averaged.parameters(), model.parameters())]
        pairs += [(a, m, False) for a, m in zip(averaged.buffers(), model.buffers())]
    else:
        pairs = [(a, m, a.is_floating_point()) for a, m in zip(averaged.state_dict().values(),
                                                                 model.state_dict().values())]
    for a, m, move in pairs:
        a.lerp_(m, 1 - decay) if move else a.copy_(m)


@pytest.mark.parametrize("buffers, exclude_buffers", [("average", False), ("copy", True)])
def test_constant_decay_is_timm_model_ema_v3(buffers, exclude_buffers):
    model, g = _bn_model().double(), torch.Generator().manual_seed(6)
    ema, timm = EMA(model, decay=0.9, buffers=buffers), copy.deepcopy(model).eval()
    for _ in range(4):
        _set_weights(model, g)
        with torch.no_grad():
            model.train()(torch.randn(8, 3, generator=g, dtype=torch.float64))  # BatchNorm statistics move too
        ema.update(model)
        timm_v3_update_(timm, model, timm_v3_decay(None, 0.9), exclude_buffers=exclude_buffers)
    for (k, a), b in zip(ema.module.state_dict().items(), timm.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12, msg=k)


def test_warmup_differs_from_timm_on_purpose():
    """timm, driven by the optimizer step (1, 2, ...), copies the model at the first update; TensorFlow's
    warm-up (ours) keeps a tenth of the construction copy and then rises faster at first."""
    model, g = _bn_model().double(), torch.Generator().manual_seed(7)
    w0 = _set_weights(model, g)
    ema, timm = EMA(model, decay=0.999, warmup=True), copy.deepcopy(model)
    w1 = _set_weights(model, g)
    ema.update(model)
    timm_v3_update_(timm, model, timm_v3_decay(1, 0.999, use_warmup=True), exclude_buffers=True)
    assert torch.allclose(ema.module[0].weight, 0.1 * w0["0.weight"] + 0.9 * w1["0.weight"])
    assert torch.equal(timm[0].weight, model[0].weight)
    assert ema.current_decay() == pytest.approx(2 / 11)                    # ours at the 2nd update
    assert timm_v3_decay(2, 0.999, use_warmup=True) == pytest.approx(1 - 2 ** (-2 / 3))
    # both reach the nominal decay, at very different updates: ours at (10 d - 1) / (1 - d) = 8990
    assert ema_decay(8990, 0.999, warmup=True) == pytest.approx(0.999)
    assert timm_v3_decay(8991, 0.999, use_warmup=True) < 0.999 - 1e-3


# --------------------------------------------------------------------------- wrapped models
def test_a_wrapped_model_is_averaged_as_the_bare_model():
    model, g = _bn_model(), torch.Generator().manual_seed(8)
    wrapped = nn.DataParallel(model)  # what DDP is to unwrapping: the model in .module
    ema, reference = EMA(wrapped, decay=0.5), EMA(model, decay=0.5)
    assert ema.module.state_dict().keys() == model.state_dict().keys()  # no 'module.' prefix: a bare copy
    assert type(ema.module) is nn.Sequential
    for live in (wrapped, model):
        _set_weights(model, g)
        ema.update(live)
        reference.update(model)
    for k, v in reference.module.state_dict().items():
        assert torch.equal(ema.module.state_dict()[k], v), k
    ema_update_(nn.DataParallel(ema.module), wrapped, 0.0)  # the pure function peels either side
    ema_update_(ema.module, wrapped, 0.0)
    assert torch.equal(ema.module[0].weight, model[0].weight)


def _lightning():
    for name in ("lightning.pytorch", "pytorch_lightning"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    pytest.skip("neither lightning nor pytorch_lightning is installed: the Lightning example of docs/averaging.md")


def test_lightning_checkpoints_hold_the_average(tmp_path):
    L = _lightning()

    class LitModel(L.LightningModule):  # the example of docs/averaging.md
        def __init__(self):
            super().__init__()
            self.net = _bn_model()
            self.ema = EMA(self.net, decay=0.9)

        def training_step(self, batch, batch_idx):
            x, y = batch
            return nn.functional.cross_entropy(self.net(x), y)

        def on_train_batch_end(self, outputs, batch, batch_idx):
            self.ema.update(self.net)

        def configure_optimizers(self):
            return torch.optim.SGD(self.net.parameters(), lr=0.1)

    g = torch.Generator().manual_seed(0)
    data = torch.utils.data.TensorDataset(torch.randn(32, 3, generator=g), torch.randint(0, 4, (32,), generator=g))
    lit = LitModel()
    start = copy.deepcopy(lit.ema.module.state_dict())
    trainer = L.Trainer(max_steps=4, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(lit, torch.utils.data.DataLoader(data, batch_size=8))
    assert lit.ema.num_updates == 4 and not lit.ema.module.training
    assert not torch.equal(lit.ema.module[0].weight, start["0.weight"])
    path = tmp_path / "ema.ckpt"
    trainer.save_checkpoint(path)
    assert torch.load(path, weights_only=False)["state_dict"]["ema._extra_state"] == {"num_updates": 4}
    restored = LitModel.load_from_checkpoint(path)
    assert restored.ema.num_updates == 4
    for k, v in lit.ema.module.state_dict().items():
        assert torch.equal(restored.ema.module.state_dict()[k], v), k


@pytest.mark.parametrize("call, message", [
    (lambda: EMA(nn.Linear(2, 2), decay=1.5), r"decay must be in \[0.0, 1.0\], got 1.5"),
    (lambda: EMA(nn.Linear(2, 2), buffers="mean"), r"buffers must be one of 'copy', 'average'; got 'mean'"),
    (lambda: EMA(nn.Linear(2, 2), warmup="yes"), r"warmup must be True or False, got 'yes'"),
    (lambda: EMA("model"), r"model must be a torch.nn.Module, got str"),
    (lambda: EMA(nn.Linear(2, 2)).update(nn.Linear(2, 2, bias=False)), r"parameter 'bias' is in one but not the other"),
    (lambda: ema_update_(nn.Linear(2, 2), nn.Linear(2, 2), -0.1), r"decay must be in \[0.0, 1.0\], got -0.1"),
    (lambda: EMA(nn.Sequential(nn.DataParallel(nn.Linear(2, 2)))),
     r"cannot copy a model with a wrapper inside it: submodule '0' is a DataParallel"),
    (lambda: EMA(nn.Linear(2, 2)).load_state_dict({**EMA(nn.Linear(2, 2)).state_dict(), "_extra_state": 3}),
     r"EMA extra state must be a dict with 'num_updates', got 3"),
    (lambda: EMA(nn.Linear(2, 2)).train("yes"), r"mode must be True or False, got 'yes'"),
])
def test_errors_name_the_value(call, message):
    with pytest.raises(RegularkitError, match=message):
        call()


def _old_ema_update(averaged, model, decay, buffers):
    """``ema_update_`` before issue 15: a loop over the tensors, one ``lerp_`` / ``copy_`` each (the reference)."""
    with torch.no_grad():
        live = dict(model.named_parameters())
        for name, avg in averaged.named_parameters():
            avg.lerp_(live[name].detach().to(device=avg.device, dtype=avg.dtype), 1.0 - decay)
        live = dict(model.named_buffers())
        for name, avg in averaged.named_buffers():
            b = live[name].detach().to(avg.device)
            if buffers == "average" and avg.dtype.is_floating_point:
                avg.lerp_(b.to(avg.dtype), 1.0 - decay)
            else:
                avg.copy_(b)


@pytest.mark.parametrize("buffers", ["copy", "average"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["same-dtype", "float64-average"])
def test_foreach_update_is_the_per_tensor_loop_bit_for_bit(buffers, dtype):
    model = _bn_model()
    ema = EMA(model, decay=0.9, buffers=buffers)
    ema.module.to(dtype)  # a float64 average of a float32 model: each live tensor is cast, as before
    reference = copy.deepcopy(ema.module)
    g = torch.Generator().manual_seed(4)
    x = torch.randn(16, 3, generator=g)
    for step in range(5):
        _set_weights(model, g)
        model(x)  # training mode: the running statistics move, num_batches_tracked counts
        ema.update(model)
        _old_ema_update(reference, model, 0.9, buffers)
        for (name, a), b in zip(ema.module.state_dict().items(), reference.state_dict().values()):
            assert a.dtype == b.dtype and torch.equal(a, b), (step, name)
    assert ema.module[1].num_batches_tracked.item() == 5
