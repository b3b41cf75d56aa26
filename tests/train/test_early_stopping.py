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
