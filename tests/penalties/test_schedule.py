"""Scheduled strengths: the step counter, its unit ("step" | "epoch"), fit advancing it, ScheduleState saving it."""
import io
import pickle

import pytest
import torch
from torch import nn

from regularkit import penalties as P
from regularkit.errors import RegularkitError
from regularkit.penalties.schedule import ScheduleState
from regularkit.train import fit


class Recorder:
    """A schedule that records the step it is read at (picklable: a module-level class)."""

    def __init__(self):
        self.seen = []

    def __call__(self, step):
        self.seen.append(step)
        return 0.01


def tiny():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3))


def data(n=96):
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 5, generator=g), torch.randint(0, 3, (n,), generator=g)


@pytest.mark.parametrize("unit, expected", [("step", list(range(9))), ("epoch", [0, 0, 0, 1, 1, 1, 2, 2, 2])])
@pytest.mark.parametrize("kind", ["l2", "activity"])
def test_fit_advances_a_penalty_per_step_or_per_epoch(unit, expected, kind):
    model, schedule = tiny(), Recorder()
    if kind == "l2":
        pen = P.L2(schedule, schedule_unit=unit)
    else:  # read once per training forward of the hooked module
        pen = P.ActivityPenalty(model[1], l1=schedule, schedule_unit=unit)
    fit(model, data(), optimizer=torch.optim.SGD(model.parameters(), lr=0.1), epochs=3, batch_size=32,
        loss_terms=[pen], eval_sets={"train": data()})  # 3 steps per epoch; evaluation reads nothing
    assert schedule.seen == expected
    assert pen.step_count == (9 if unit == "step" else 3)


def test_by_hand_the_counter_moves_only_on_step():
    pen = P.L1(Recorder(), schedule_unit="epoch")
    lin = nn.Linear(2, 2)
    pen(lin)
    pen(lin)
    pen.step()
    pen(lin)
    assert pen.strength.seen == [0, 0, 1]
    clone = pickle.loads(pickle.dumps(pen))
    assert clone.schedule_unit == "epoch" and clone.state_dict() == {"step_count": 1}


@pytest.mark.parametrize("unit", ["steps", "Epoch", None, 1])
def test_schedule_unit_is_validated(unit):
    with pytest.raises(RegularkitError, match=r"schedule_unit must be one of 'step', 'epoch'; got "):
        P.L2(0.1, schedule_unit=unit)


def test_schedule_unit_is_in_the_config():
    act = P.ActivityPenalty(nn.ReLU(), l2=0.1, schedule_unit="epoch")
    assert act.get_config()["schedule_unit"] == "epoch"
    assert "schedule_unit='epoch'" in repr(act)
    assert P.ActivityPenalty.from_config(act.get_config()).schedule_unit == "epoch"
    assert P.L2(0.1).get_config()["schedule_unit"] == "step"


def halves(step):
    """A module-level schedule: 0.1, 0.05, 0.025, ..."""
    return 0.1 * 0.5 ** step


def test_schedule_state_puts_the_counters_in_the_models_state_dict():
    """A Lightning-style save/load: torch.save(model.state_dict()) -> a new model -> load -> the same next strength."""
    model = tiny()
    l2, l1 = P.L2(halves), P.L1(halves, schedule_unit="epoch")
    model.schedules = ScheduleState([l2, l1])
    for _ in range(3):
        l2.step()
    l1.step()
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    assert state["schedules._extra_state"] == {"step_count": [3, 1]}
    fresh = tiny()
    new_l2, new_l1 = P.L2(halves), P.L1(halves, schedule_unit="epoch")
    fresh.schedules = ScheduleState([new_l2, new_l1])
    fresh.load_state_dict(state)
    assert (new_l2.step_count, new_l1.step_count) == (3, 1)
    assert new_l2(fresh).item() == pytest.approx(l2(model).item())  # the strength the saved run reads next
    assert new_l2(fresh).item() == pytest.approx(0.0125 / 2 * sum(p.square().sum().item() for p in
                                                                  (fresh[0].weight, fresh[2].weight)))
    assert list(fresh.schedules.parameters()) == [] and "L2(step_count=3)" in repr(fresh.schedules)


@pytest.mark.parametrize("call, match", [
    (lambda: ScheduleState([]), r"terms must be a non-empty list of regularkit penalties, got \[\]"),
    (lambda: ScheduleState([lambda m: 0]), r"terms must be a non-empty list of regularkit penalties"),
    (lambda: ScheduleState([P.L2()]).set_extra_state({"step_count": [1, 2]}), r"ScheduleState holds 1 penalties"),
    (lambda: P.L2().load_state_dict({"steps": 3}), r"a penalty's state must be a dict with 'step_count', got"),
    (lambda: P.L2().load_state_dict({"step_count": -1}), r"step_count must be >= 0, got -1"),
])
def test_schedule_state_errors_name_the_value(call, match):
    with pytest.raises(RegularkitError, match=match):
        call()
