"""EarlyStopping driven by fixed loss lists (Keras/Lightning style tables)."""
import math

import pytest
import torch
from torch import nn

from regularkit.errors import RegularkitError
from regularkit.train import EarlyStopping, TrainState, fit


def drive(es: EarlyStopping, values, model=None):
    """Feed values epoch by epoch; return (stop_epoch or None, reasons)."""
    model = model or nn.Linear(1, 1)
    state = TrainState(model=model)
    es.on_train_begin(state)
    for epoch, v in enumerate(values, start=1):
        state.epoch, state.metrics = epoch, {"val_loss": v}
        with torch.no_grad():
            model.weight.fill_(float(epoch))  # weights remember the epoch they come from
        d = es.on_epoch_end(state)
        if d.stop:
            es.on_train_end(state)
            return epoch, d.reason
    es.on_train_end(state)
    return None, ""


# (losses, patience, min_delta, expected stop epoch, expected restored epoch)
TABLE = [
    ([1.0, 0.9, 0.8, 0.7, 0.6], 2, 0.0, None, 5),
    ([1.0, 0.9, 0.95, 0.96], 2, 0.0, 4, 2),
    ([1.0, 1.1, 1.2, 1.3, 1.4], 3, 0.0, 4, 1),
    ([1.0, 0.5, 0.6, 0.4, 0.45, 0.46, 0.47], 3, 0.0, 7, 4),
    ([1.0, 0.99, 0.98, 0.97], 2, 0.05, 3, 1),   # improvements smaller than min_delta do not count
    ([1.0, 2.0], 0, 0.0, 2, 1),                 # patience 0: stop at the first non-improvement
]


@pytest.mark.parametrize("losses,patience,min_delta,stop,restored", TABLE)
def test_stop_and_restore_table(losses, patience, min_delta, stop, restored):
    es = EarlyStopping(patience=patience, min_delta=min_delta)
    model = nn.Linear(1, 1)
    got_stop, _ = drive(es, losses, model)
    assert got_stop == stop
    assert es.restored_epoch == restored
    assert model.weight.item() == restored  # the weights of the restored epoch are back


def test_mode_max_is_explicit():
    es = EarlyStopping(monitor="val_loss", mode="max", patience=1)
    stop, _ = drive(es, [0.1, 0.5, 0.4])
    assert stop == 3 and es.best == 0.5 and es.best_epoch == 2


def test_start_from_epoch_skips_warmup():
    es = EarlyStopping(patience=1, start_from_epoch=3)
    # Epochs 1-3 are not monitored, even though they are the best values.
    stop, _ = drive(es, [0.1, 0.2, 0.3, 1.0, 1.1])
    assert stop == 5 and es.best_epoch == 4


def test_baseline_must_be_beaten():
    es = EarlyStopping(patience=2, baseline=0.5)
    stop, reason = drive(es, [0.9, 0.8, 0.7])
    assert stop == 2 and "baseline" in reason
    es2 = EarlyStopping(patience=2, baseline=0.5)
    stop2, _ = drive(es2, [0.9, 0.4, 0.3, 0.35, 0.36])
    assert stop2 == 5 and es2.best_epoch == 3


def test_decision_returns_reason():
    es = EarlyStopping(patience=1)
    es.on_train_begin(TrainState(model=nn.Linear(1, 1)))
    d1 = es.decide(1, 1.0)
    d2 = es.decide(2, 2.0)
    assert not d1.stop and "improved" in d1.reason
    assert d2.stop and "did not improve for 1 epochs" in d2.reason


def test_nan_stops():
    es = EarlyStopping(patience=5)
    stop, reason = drive(es, [1.0, math.nan])
    assert stop == 2 and "NaN" in reason


def test_state_dict_resume_continues_exactly():
    losses = [1.0, 0.8, 0.85, 0.9, 0.7, 0.75, 0.76, 0.77]
    whole = EarlyStopping(patience=2)
    stop_whole, _ = drive(whole, losses)
    first = EarlyStopping(patience=2)
    model = nn.Linear(1, 1)
    state = TrainState(model=model)
    first.on_train_begin(state)
    for epoch, v in enumerate(losses[:3], 1):
        state.epoch, state.metrics = epoch, {"val_loss": v}
        first.on_epoch_end(state)
    resumed = EarlyStopping(patience=2)
    resumed.load_state_dict(first.state_dict())
    stop = None
    for epoch, v in enumerate(losses[3:], 4):
        state.epoch, state.metrics = epoch, {"val_loss": v}
        if resumed.on_epoch_end(state).stop:
            stop = epoch
            break
    assert stop == stop_whole
    assert resumed.best_epoch == whole.best_epoch


def test_missing_monitor_names_the_metrics():
    es = EarlyStopping(monitor="val_acc")
    state = TrainState(model=nn.Linear(1, 1), epoch=1, metrics={"val_loss": 1.0})
    es.on_train_begin(state)
    with pytest.raises(RegularkitError, match="'val_acc'.*val_loss"):
        es.on_epoch_end(state)


@pytest.mark.parametrize("kwargs,msg", [
    ({"mode": "auto"}, "mode must be one of 'min', 'max'; got 'auto'"),
    ({"patience": -1}, "patience must be >= 0, got -1"),
    ({"min_delta": -0.1}, "min_delta must be >= 0, got -0.1"),
])
def test_bad_arguments(kwargs, msg):
    with pytest.raises(RegularkitError, match=msg.replace("(", r"\(").replace(")", r"\)")):
        EarlyStopping(**kwargs)


def test_restores_best_weights_when_training_is_interrupted():
    """Ctrl-C in the middle of epoch 4: the best epoch's weights are still restored."""
    torch.manual_seed(0)
    x, y = torch.randn(64, 4), torch.randint(0, 2, (64,))
    model = nn.Linear(4, 2)
    es = EarlyStopping(monitor="val_loss", patience=100)
    snapshots = {}
    calls = {"n": 0}

    def interrupt_in_epoch_4(m):
        calls["n"] += 1
        if calls["n"] == 3 * 4 + 1:  # 4 batches per epoch, first step of epoch 4
            raise KeyboardInterrupt

    def remember(metrics):
        snapshots[metrics["epoch"]] = (metrics["val_loss"], model.weight.detach().clone())

    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    with pytest.raises(KeyboardInterrupt):
        fit(model, (x, y), optimizer=opt, epochs=10, batch_size=16, eval_sets={"val": (x, y)},
            after_step=[interrupt_in_epoch_4], callbacks=[es], on_epoch=remember)
    best_epoch = min(snapshots, key=lambda e: snapshots[e][0])
    assert es.restored_epoch == best_epoch
    assert torch.equal(model.weight, snapshots[best_epoch][1])


# --------------------------------------------------------------------------- what the table above leaves open
def test_a_plateau_is_not_an_improvement():
    """``current < best - min_delta``: an equal value does not reset the wait (Keras' ``np.less``)."""
    es = EarlyStopping(patience=2)
    stop, reason = drive(es, [1.0, 1.0, 1.0, 1.0])
    assert stop == 3 and es.stopped_epoch == 3
    assert es.best_epoch == 1 and es.restored_epoch == 1
    assert reason == "val_loss did not improve for 2 epochs (best 1 at epoch 1)"


@pytest.mark.parametrize("losses,patience,min_delta,stop,restored", TABLE)
def test_stopped_epoch_is_the_epoch_of_the_stop_decision(losses, patience, min_delta, stop, restored):
    es = EarlyStopping(patience=patience, min_delta=min_delta)
    got, _ = drive(es, losses)
    assert es.stopped_epoch == got == stop  # None when training ran to its last epoch


def test_mode_max_with_min_delta():
    """``current > best + min_delta``: a rise of exactly ``min_delta`` is not an improvement; the reference
    stays the best value, so small rises add up until one clears it."""
    es = EarlyStopping(monitor="val_loss", mode="max", patience=2, min_delta=0.05)
    stop, _ = drive(es, [0.5, 0.55, 0.62, 0.63, 0.66])
    assert (stop, es.stopped_epoch, es.best, es.best_epoch, es.restored_epoch) == (5, 5, 0.62, 3, 3)
    # the same values with mode="min": only the first epoch is ever an improvement
    low = EarlyStopping(mode="min", patience=2, min_delta=0.05)
    assert drive(low, [0.5, 0.55, 0.62, 0.63, 0.66])[0] == 3 and low.best_epoch == 1


def test_one_instance_used_in_two_fits_starts_fresh():
    es = EarlyStopping(patience=1, start_from_epoch=2)
    assert drive(es, [1.0, 1.0, 0.5, 0.9]) == (4, "val_loss did not improve for 1 epochs (best 0.5 at epoch 3)")
    assert (es.best_epoch, es.stopped_epoch, es.restored_epoch) == (3, 4, 3)
    model = nn.Linear(1, 1)
    # second fit: two epochs, both in the warm-up, so nothing is monitored and nothing restored
    assert drive(es, [0.1, 0.2], model) == (None, "")
    assert (es.best, es.best_epoch, es.wait, es.stopped_epoch, es.restored_epoch) == (None, None, 0, None, None)
    assert model.weight.item() == 2.0  # the last epoch's weights, not the first fit's best
    fresh = EarlyStopping(patience=1, start_from_epoch=2)
    drive(fresh, [0.1, 0.2])
    assert fresh.state_dict() == es.state_dict()


def test_a_new_instance_has_the_state_of_a_train_begin():
    es = EarlyStopping()
    assert (es.best, es.best_epoch, es.wait, es.stopped_epoch, es.restored_epoch) == (None, None, 0, None, None)
    assert es.state_dict() == {"best": None, "best_epoch": None, "wait": 0, "stopped_epoch": None,
                               "best_state": None}


def test_nothing_monitored_leaves_the_weights_as_they_are():
    es = EarlyStopping(patience=1, start_from_epoch=5)
    model = nn.Linear(1, 1)
    assert drive(es, [3.0, 2.0, 1.0], model) == (None, "")
    assert es.restored_epoch is None and model.weight.item() == 3.0


def test_without_restore_best_weights_the_last_weights_stay():
    es = EarlyStopping(patience=1, restore_best_weights=False)
    model = nn.Linear(1, 1)
    assert drive(es, [1.0, 0.5, 0.7], model)[0] == 3
    assert es.best_epoch == 2 and es.restored_epoch is None and model.weight.item() == 3.0
    assert es.state_dict()["best_state"] is None  # no copy of the weights is even kept


def test_resumed_instance_restores_the_best_weights_seen_before_the_checkpoint():
    model = nn.Linear(1, 1)
    first = EarlyStopping(patience=3)
    state = TrainState(model=model)
    first.on_train_begin(state)
    for epoch, v in enumerate([1.0, 0.2, 0.5], 1):  # the best epoch (2) is before the checkpoint
        state.epoch, state.metrics = epoch, {"val_loss": v}
        with torch.no_grad():
            model.weight.fill_(float(epoch))
        first.on_epoch_end(state)
    checkpoint = first.state_dict()
    resumed = EarlyStopping(patience=3)
    resumed.load_state_dict(checkpoint)
    for epoch, v in enumerate([0.6, 0.7], 4):
        state.epoch, state.metrics = epoch, {"val_loss": v}
        with torch.no_grad():
            model.weight.fill_(float(epoch))
        decision = resumed.on_epoch_end(state)
    assert decision.stop and resumed.stopped_epoch == 5
    resumed.on_train_end(state)
    assert resumed.restored_epoch == 2 and model.weight.item() == 2.0
    with torch.no_grad():  # the checkpoint is a copy: later changes to it do not reach the resumed instance
        checkpoint["best_state"]["weight"].fill_(-1.0)
    resumed.on_train_end(state)
    assert model.weight.item() == 2.0


def test_the_base_callback_does_nothing_and_decisions_are_values():
    from dataclasses import FrozenInstanceError

    from regularkit.train.callbacks import Callback, Decision

    class Quiet(Callback):  # a user's callback without an __init__ of its own
        pass

    base, state = Quiet(), TrainState(model=nn.Linear(1, 1))
    assert (base.on_train_begin(state), base.on_epoch_end(state), base.on_train_end(state)) == (None, None, None)
    assert base.state_dict() == {} and base.load_state_dict({}) is None
    assert base.get_config() == {} and type(Quiet.from_config({})) is Quiet  # was: AttributeError 'args'
    assert (state.epoch, state.metrics, state.history) == (0, {}, [])
    decision = Decision(True, "why")
    with pytest.raises(FrozenInstanceError):
        decision.stop = False
    assert Decision(False).reason == "" and decision == Decision(True, "why")


def test_from_config_refuses_a_config_that_is_not_a_dict():
    with pytest.raises(RegularkitError, match=r"config must be a dict of constructor arguments, got \[5\]"):
        EarlyStopping.from_config([5])
    assert EarlyStopping.from_config({"patience": 2}).patience == 2
