"""Snapshot ensembles: Huang et al.'s schedule, exactly M snapshots at the cycle minima, the ensemble."""
import math
import pickle
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from regularkit.averaging import CyclicCosineLR, Ensemble, SnapshotEnsemble, snapshot_lr
from regularkit.errors import RegularkitError


def test_schedule_hand_computed():
    # T = 12, M = 3: cycles of ceil(12 / 3) = 4 steps
    expected = [0.1, 0.05 * (math.cos(math.pi / 4) + 1), 0.05, 0.05 * (math.cos(3 * math.pi / 4) + 1)]
    assert [snapshot_lr(t, 12, 3, 0.1) for t in range(1, 13)] == pytest.approx(expected * 3)
    # T = 10, M = 3: ceil(10 / 3) = 4, so t = 9 restarts at lr_max
    assert snapshot_lr(9, 10, 3, 0.1) == pytest.approx(0.1)


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))


def test_collects_exactly_m_snapshots_at_the_cycle_minima():
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=123.0)  # overwritten by the schedule
    snap = SnapshotEnsemble(model, cycles=3, epochs_per_cycle=2, lr_max=0.1, steps_per_epoch=2)
    sched = snap.scheduler(opt)
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(16, 4, generator=g), torch.randint(0, 3, (16,), generator=g)
    lrs, taken, weights_then = [], [], []
    for step in range(snap.total_steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        sched.step()
        if snap.step(model):
            taken.append(step)
            weights_then.append({k: v.clone() for k, v in model.state_dict().items()})
    assert lrs == pytest.approx([snap.lr_at(s) for s in range(12)])
    assert taken == [3, 7, 11] and len(snap.snapshots) == 3
    for c, step in enumerate(taken):
        cycle = lrs[4 * c: 4 * c + 4]
        assert lrs[step] == min(cycle) and lrs[4 * c] == pytest.approx(0.1)  # minimum, then restart
        for k, v in weights_then[c].items():
            assert torch.equal(snap.snapshots[c][k], v)
    with pytest.raises(RegularkitError, match=r"schedule is over: 3 snapshots .* total_steps=12; got step 13"):
        snap.step(model)


def test_ensemble_of_snapshots_averages_their_probabilities():
    model = _model()
    snap = SnapshotEnsemble(model, cycles=2, epochs_per_cycle=1, lr_max=0.1)
    for _ in range(2):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(1.0)
        snap.on_epoch_end(SimpleNamespace(epoch=0, model=model))  # per-epoch schedule: the callback steps
    ens = snap.ensemble()
    assert isinstance(ens, Ensemble) and len(ens) == 2 and not ens.training
    x = torch.randn(5, 4)
    members = []
    for sd in snap.snapshots:
        m = _model()
        m.load_state_dict(sd)
        members.append(m(x).softmax(1))
    assert torch.allclose(ens(x), (members[0] + members[1]) / 2, atol=1e-6)


def test_scheduler_keeps_group_ratios_and_round_trips():
    model = _model()
    opt = torch.optim.SGD([{"params": model[0].parameters(), "lr": 0.01},
                           {"params": model[2].parameters(), "lr": 0.1}], lr=0.1)
    sched = CyclicCosineLR(opt, lr_max=1.0, cycle_length=4)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.1, 1.0])
    opt.step()
    sched.step()
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.1 * 0.5 * (1 + math.cos(math.pi / 4)),
                                                                  0.5 * (1 + math.cos(math.pi / 4))])
    state = pickle.loads(pickle.dumps(sched.state_dict()))
    other = CyclicCosineLR(opt, lr_max=1.0, cycle_length=4)
    other.load_state_dict(state)
    assert other.last_epoch == 1


def test_state_dict_and_pickle_round_trip():
    model = _model()
    snap = SnapshotEnsemble(model, cycles=2, epochs_per_cycle=2, lr_max=0.1)
    for _ in range(3):
        snap.step(model)
    resumed = SnapshotEnsemble(_model(), cycles=2, epochs_per_cycle=2, lr_max=0.1)
    resumed.load_state_dict(snap.state_dict())
    clone = pickle.loads(pickle.dumps(snap))
    for other in (resumed, clone):
        assert other.steps_done == 3 and len(other.snapshots) == 1
        assert other.step(model) is True and len(other.snapshots) == 2


def test_snapshots_of_a_wrapped_model_are_the_bare_models_state():
    model = _model()
    wrapped = nn.DataParallel(model)  # what DDP is to unwrapping: the model in .module
    snap = SnapshotEnsemble(wrapped, cycles=2, epochs_per_cycle=1, lr_max=0.1)
    snap.step(wrapped)
    with torch.no_grad():
        model[0].weight.add_(1.0)
    snap.step(wrapped)
    assert [sd.keys() for sd in snap.snapshots] == [model.state_dict().keys()] * 2  # no 'module.' prefix
    assert torch.equal(snap.snapshots[1]["0.weight"], model[0].weight)
    ens = snap.ensemble()
    assert all(type(m) is nn.Sequential for m in ens.members)
    x = torch.randn(3, 4)
    with torch.no_grad():
        assert torch.equal(ens.members[1](x), model(x))  # the last snapshot is the live model's state


@pytest.mark.parametrize("call, message", [
    (lambda: SnapshotEnsemble(_model(), cycles=0, epochs_per_cycle=2, lr_max=0.1), r"cycles must be >= 1, got 0"),
    (lambda: SnapshotEnsemble(_model(), cycles=2, epochs_per_cycle=2, lr_max=0.0), r"lr_max must be > 0, got 0.0"),
    (lambda: SnapshotEnsemble(_model(), 2, 3, 0.1).ensemble(), r"first is taken at step 3, got steps_done=0"),
    (lambda: snapshot_lr(0, 10, 2, 0.1), r"t must be >= 1, got 0"),
    (lambda: SnapshotEnsemble(nn.Sequential(nn.DataParallel(_model())), 2, 1, 0.1),
     r"cannot copy a model with a wrapper inside it: submodule '0' is a DataParallel"),
])
def test_errors_name_the_value(call, message):
    with pytest.raises(RegularkitError, match=message):
        call()
