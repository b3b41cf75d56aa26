"""fit_stacked against fit: each seed of a group is its own sequential run, bit for bit.

The reference is ``fit(seed=s)`` on a module built the same way: same initial weights (built
from the same seed), same data order and augmentation draws (the loop's generator seeded
with s), same dropout masks (the global RNG seeded with s, which the group swaps in around
seed s's forward), same kernels.  The built-in MLP at one thread, with dropout, input noise,
a fused L2 and a smoothed loss; batch norm and DropConnect; early stopping; divergence.
"""
import copy

import pytest
import torch

from regularkit.augment import RandomGaussianNoise
from regularkit.errors import RegularkitError
from regularkit.losses import CrossEntropy
from regularkit.models.mlp import MLP
from regularkit.penalties import L2
from regularkit.train.callbacks import EarlyStopping
from regularkit.train.loop import fit
from regularkit.train.stacked import SeedRun, SeedStream, fit_stacked

SEEDS = (0, 1, 2)


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def data(n=90, seed=0):
    """Learnable classes (a fixed linear rule plus noise), so validation loss falls, then stalls."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 4, 4, generator=g)
    rule = torch.Generator().manual_seed(123)
    y = (x.flatten(1) @ torch.randn(16, 5, generator=rule) + 2 * torch.randn(n, 5, generator=g)).argmax(1)
    return x, y


def build(seed, **kw):
    torch.manual_seed(seed)
    return MLP((1, 4, 4), 5, **{"widths": (24, 16), "dropout": 0.3, "input_dropout": 0.2, **kw})


def hooks():
    return dict(loss_fn=CrossEntropy(label_smoothing=0.1), batch_transform=RandomGaussianNoise(std=0.3),
                loss_terms=[L2(1e-2, convention="half")])


def sgd(params):
    return torch.optim.SGD(params, lr=0.05, momentum=0.9)


def sequential(epochs, callbacks=lambda: [], model_kw=None, **kw):
    out = []
    for s in SEEDS:
        model = build(s, **(model_kw or {}))
        h = hooks()
        history = fit(model, data(), optimizer=sgd(model.parameters()), epochs=epochs, batch_size=16, seed=s,
                      eval_sets={"val": data(40, 9)}, loss_terms=h["loss_terms"], loss_fn=h["loss_fn"],
                      batch_transform=h["batch_transform"], callbacks=callbacks(), **kw)
        out.append((model, history))
    return out


def stacked(epochs, callbacks=lambda: [], loss_fns=None, model_kw=None, **kw):
    models = [build(s, **(model_kw or {})) for s in SEEDS]
    runs = [SeedRun(m, s, callbacks=callbacks(), **hooks()) for m, s in zip(models, SEEDS)]
    for run, fn in zip(runs, loss_fns or [None] * len(runs)):
        run.loss_fn = fn or run.loss_fn
    histories = fit_stacked(runs, data(),
                            optimizer=sgd([p for m in models for p in m.parameters()]), epochs=epochs, batch_size=16,
                            eval_sets={"val": data(40, 9)}, **kw)
    return list(zip(models, histories))


def same_numbers(a, b):
    assert {k: v for k, v in a.items() if k != "train_seconds"} == {k: v for k, v in b.items() if k != "train_seconds"}


@pytest.mark.parametrize("model_kw", [{}, {"batchnorm": True, "dropconnect": 0.2}], ids=["dropout", "bn-dropconnect"])
def test_each_seed_equals_its_sequential_run_bit_for_bit(model_kw):
    for (m_seq, h_seq), (m_st, h_st) in zip(sequential(2, model_kw=model_kw), stacked(2, model_kw=model_kw)):
        for (name, p), q in zip(m_seq.state_dict().items(), m_st.state_dict().values()):
            assert torch.equal(p, q), name  # same init, batches, masks, noise, penalty, kernels; BN's own statistics
        assert len(h_st.epochs) == 2
        for a, b in zip(h_seq.epochs, h_st.epochs):
            same_numbers(a, b)
        assert h_st.stop_reason == h_seq.stop_reason == "completed 2 epochs"
    # and the seeds differ from each other (their own init, order and masks), so the check has teeth
    runs = stacked(1)
    assert not torch.equal(runs[0][0].head.weight, runs[1][0].head.weight)


def test_the_global_rng_is_each_seeds_own_stream_and_the_callers_is_left_alone():
    torch.manual_seed(7)
    before = torch.get_rng_state()
    a, b = SeedStream(3, torch.device("cpu")), SeedStream(4, torch.device("cpu"))
    with a:
        first = torch.rand(4)
    with b:
        torch.rand(100)
    with a:
        second = torch.rand(4)
    torch.manual_seed(3)
    assert torch.equal(torch.cat([first, second]), torch.rand(8))  # seed 3's stream, untouched by seed 4's draws
    models = [build(s) for s in SEEDS]
    torch.set_rng_state(before)
    fit_stacked([SeedRun(m, s) for m, s in zip(models, SEEDS)], data(), epochs=1, batch_size=16,
                optimizer=sgd([p for m in models for p in m.parameters()]))
    assert torch.equal(torch.get_rng_state(), before)  # fit_stacked forks the global RNG, as fit does


def test_each_seed_stops_early_on_its_own_validation_loss_and_gets_its_best_weights_back():
    def es():
        return [EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)]
    seq, st = sequential(25, es), stacked(25, es)
    stops = [h.stopped_epoch for _, h in st]
    assert stops == [h.stopped_epoch for _, h in seq] and len(set(stops)) == 2  # [3, 3, 11]: their own decisions
    for (m_seq, h_seq), (m_st, h_st) in zip(seq, st):
        assert len(h_st.epochs) == len(h_seq.epochs) and h_st.stop_reason == h_seq.stop_reason
        for p, q in zip(m_seq.parameters(), m_st.parameters()):  # the restored best weights
            assert torch.equal(p, q)


def test_a_seed_that_diverges_stops_unapplied_while_the_others_train_on_as_alone():
    base = CrossEntropy(label_smoothing=0.1)
    explode = lambda logits, y: base(logits, y) * 1e6  # noqa: E731 - seed 1's loss: above max_loss at once
    before = copy.deepcopy(build(1).state_dict())
    (m0, h0), (m1, h1), (m2, h2) = stacked(2, loss_fns=[None, explode, None])
    assert h1.diverged["epoch"] == 1 and h1.diverged["step"] == 1 and h1.epochs == []
    assert h1.stop_reason.startswith("diverged: training loss") and h1.stopped_epoch == 1
    for k, v in m1.state_dict().items():
        assert torch.equal(v, before[k])  # its step was never applied, its momentum never moved it
    seq = sequential(2)
    for (m_seq, h_seq), (m_st, h_st) in ((seq[0], (m0, h0)), (seq[2], (m2, h2))):
        same_numbers(h_seq.epochs[-1], h_st.epochs[-1])


def test_no_run_and_fp16_are_refused_in_one_line():
    model = build(0)
    with pytest.raises(RegularkitError, match="at least one run, got none"):
        fit_stacked([], data(), optimizer=sgd(model.parameters()), epochs=1, batch_size=16)
    if torch.cuda.is_available():  # fp16 needs CUDA here; its loss scaler is per run
        with pytest.raises(RegularkitError, match="does not scale losses"):
            fit_stacked([SeedRun(model, 0)], data(), optimizer=sgd(model.parameters()), epochs=1, batch_size=16,
                        device="cuda", precision="fp16")
