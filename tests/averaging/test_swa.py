"""SWA: the equal-weight average, BatchNorm recalibration against the data's statistics, the lr schedule."""
import math
import pickle
from types import SimpleNamespace

import pytest
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, update_bn

from regularkit.averaging import SWA, recalibrate_bn, swa_anneal_lr
from regularkit.averaging.swa import swa_average_
from regularkit.errors import RegularkitError
from regularkit.transfer import freeze


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))


def _perturb(model, g):
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g))
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def test_averages_epochs_from_start_epoch_with_equal_weights():
    model, g = _model(), torch.Generator().manual_seed(1)
    swa = SWA(model, start_epoch=4)
    seen = []
    for epoch in range(1, 7):
        weights = _perturb(model, g)
        if epoch >= 4:
            seen.append(weights)
        swa.on_epoch_end(SimpleNamespace(epoch=epoch, model=model))
    assert swa.n_averaged == 3
    for name, p in swa.module.named_parameters():
        assert torch.allclose(p, sum(w[name] for w in seen) / 3, atol=1e-6), name


def _data(n=64, seed=3):
    g = torch.Generator().manual_seed(seed)
    return 2.0 + 3.0 * torch.randn(n, 3, generator=g)


def test_finalize_sets_bn_stats_to_those_of_the_data():
    model, g = _model(), torch.Generator().manual_seed(1)
    swa = SWA(model, start_epoch=1)
    for _ in range(3):
        _perturb(model, g)
        swa.update(model)
    bn = swa.module[1]
    assert torch.equal(bn.running_mean, torch.zeros(4))  # untouched until finalize
    x = _data()
    out = swa.finalize([(x, torch.zeros(len(x)))])
    assert out is swa.module and not out.training
    h = swa.module[0](x)  # the averaged first layer's activations: what BN sees
    assert torch.allclose(bn.running_mean, h.mean(0), atol=1e-5)
    assert torch.allclose(bn.running_var, h.var(0, unbiased=True), atol=1e-4)


def test_equal_batches_average_their_statistics_like_torch_update_bn():
    x = _data(60)
    ours, ref = _model(), _model()
    batches = [x[i:i + 20] for i in range(0, 60, 20)]
    recalibrate_bn(ours, batches)
    update_bn(batches, ref)
    bn = ours[1]
    h = ours[0](x).detach()
    assert torch.allclose(bn.running_mean, h.mean(0), atol=1e-5)  # equal batch sizes: the data mean
    batch_vars = torch.stack([ours[0](b).detach().var(0) for b in batches])
    assert torch.allclose(bn.running_var, batch_vars.mean(0), atol=1e-4)
    assert torch.allclose(bn.running_var, ref[1].running_var) and torch.allclose(bn.running_mean, ref[1].running_mean)
    assert ours.training  # mode restored


def test_recalibration_leaves_frozen_bn_alone():
    model = _model()
    with torch.no_grad():
        model[1].running_mean.fill_(0.5)
    freeze(model[:2], bn="eval")
    recalibrate_bn(model, _data())
    assert torch.equal(model[1].running_mean, torch.full((4,), 0.5))


def test_anneal_lr_closed_form():
    assert swa_anneal_lr(1, 0.1, 0.02, 2, "cos") == pytest.approx(0.06)      # t = 1/2: midpoint
    assert swa_anneal_lr(1, 0.1, 0.02, 3, "cos") == pytest.approx(0.02 + 0.08 * (1 + math.cos(math.pi / 3)) / 2)
    assert swa_anneal_lr(1, 0.1, 0.02, 3, "linear") == pytest.approx(0.1 - 0.08 / 3)
    assert swa_anneal_lr(5, 0.1, 0.02, 3, "linear") == pytest.approx(0.02)
    assert swa_anneal_lr(0, 0.1, 0.02, 0) == 0.02


def _epoch_lrs(scheduler, optimizer, epochs):
    lrs = []
    for _ in range(epochs):
        lrs.append(optimizer.param_groups[0]["lr"])  # the lr this epoch trains at
        optimizer.step()
        scheduler.step()
    return lrs


def test_scheduler_reaches_swa_lr_at_start_epoch():
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    swa = SWA(model, start_epoch=5, lr=0.02, anneal_epochs=2)
    lrs = _epoch_lrs(swa.scheduler(opt), opt, 7)
    assert lrs == pytest.approx([0.1, 0.1, 0.1, 0.06, 0.02, 0.02, 0.02])


def test_scheduler_follows_base_until_the_anneal():
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.8)
    base = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    swa = SWA(model, start_epoch=4, lr=0.05, anneal_epochs=1, anneal_strategy="linear")
    sched = swa.scheduler(opt, base)
    lrs = _epoch_lrs(sched, opt, 6)
    assert lrs == pytest.approx([0.8, 0.4, 0.2, 0.05, 0.05, 0.05])
    resumed = SWA(model, start_epoch=4, lr=0.05, anneal_epochs=1).scheduler(opt, base)
    resumed.load_state_dict(pickle.loads(pickle.dumps(sched.state_dict())))
    assert resumed.epochs_done == 6 and resumed.anneal_from == sched.anneal_from


def test_start_epoch_one_trains_at_swa_lr_from_the_first_epoch():
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    SWA(model, start_epoch=1, lr=0.03).scheduler(opt)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.03)


def test_state_dict_and_pickle_round_trip():
    model, g = _model(), torch.Generator().manual_seed(1)
    swa = SWA(model, start_epoch=1)
    for _ in range(2):
        _perturb(model, g)
        swa.update(model)
    swa.finalize(_data())
    resumed = SWA(_model(), start_epoch=1)
    resumed.load_state_dict(swa.state_dict())
    clone = pickle.loads(pickle.dumps(swa))
    x = _data(5, seed=9)
    for other in (resumed, clone):
        assert other.n_averaged == 2
        assert torch.equal(other.module.eval()(x), swa.module(x))


def test_failed_recalibration_keeps_the_old_statistics():
    model = _model()
    with torch.no_grad():
        model[1].running_var.fill_(7.0)
    with pytest.raises(RuntimeError):
        recalibrate_bn(model, [torch.zeros(4, 3), torch.zeros(4, 5)])  # the second batch has the wrong width
    assert torch.equal(model[1].running_var, torch.full((4,), 7.0))
    assert model[1].momentum == 0.1


def test_a_wrapped_model_is_averaged_as_the_bare_model():
    model, g = _model(), torch.Generator().manual_seed(1)
    wrapped = nn.DataParallel(model)  # what DDP is to unwrapping: the model in .module
    swa, reference = SWA(wrapped, start_epoch=1), SWA(model, start_epoch=1)
    assert type(swa.module) is nn.Sequential and swa.module.state_dict().keys() == model.state_dict().keys()
    for live in (wrapped, model, wrapped):
        _perturb(model, g)
        swa.update(live)
        reference.update(model)
    assert swa.n_averaged == 3
    for k, v in reference.module.state_dict().items():
        assert torch.equal(swa.module.state_dict()[k], v), k


@pytest.mark.parametrize("call, message", [
    (lambda: SWA(_model(), start_epoch=0), r"start_epoch must be >= 1, got 0"),
    (lambda: SWA(_model(), start_epoch=3, lr=-1.0), r"lr must be > 0, got -1.0"),
    (lambda: SWA(_model(), start_epoch=3, anneal_epochs=3), r"anneal_epochs must be <= start_epoch - 1 = 2 .* got 3"),
    (lambda: SWA(_model(), start_epoch=3, anneal_strategy="step"),
     r"anneal_strategy must be one of 'cos', 'linear'; got 'step'"),
    (lambda: SWA(_model(), start_epoch=3).finalize(_data()), r"averaged no weights yet .* got n_averaged=0"),
    (lambda: SWA(_model(), start_epoch=3).scheduler(torch.optim.SGD(_model().parameters(), lr=0.1)), r"got lr=None"),
    (lambda: recalibrate_bn(_model(), []), r"at least one batch, got an empty iterable"),
    (lambda: SWA(nn.Sequential(nn.DataParallel(_model())), start_epoch=1),
     r"cannot copy a model with a wrapper inside it: submodule '0' is a DataParallel"),
    (lambda: SWA("model", start_epoch=1), r"model must be a torch.nn.Module, got str"),
])
def test_errors_name_the_value(call, message):
    with pytest.raises(RegularkitError, match=message):
        call()


def test_foreach_average_is_torchs_per_parameter_average_bit_for_bit():
    """``swa_average_`` (three foreach ops) against ``AveragedModel``'s own CPU loop with ``get_swa_avg_fn()``."""
    model, g = _model(), torch.Generator().manual_seed(5)
    swa = SWA(model, start_epoch=1)
    reference = AveragedModel(model, use_buffers=False)  # no multi_avg_fn: the per-parameter loop on the CPU
    for _ in range(6):
        _perturb(model, g)
        swa.update(model)
        reference.update_parameters(model)
        for (name, a), b in zip(swa.module.named_parameters(), reference.module.parameters()):
            assert torch.equal(a, b), name
    assert swa.averaged.multi_avg_fn is swa_average_ and swa.n_averaged == 6
    ints = [torch.tensor([4, 10])]
    swa_average_(ints, [torch.tensor([8, 20])], torch.tensor(1))  # integers: torch's formula, cast back
    assert ints[0].tolist() == [6, 15]
