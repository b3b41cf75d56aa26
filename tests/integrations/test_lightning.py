"""regularkit.integrations.lightning under a real Trainer: the same weights as ``train.fit``, and exact resumes.

The reference is :func:`regularkit.train.fit` with the same recipe (a scheduled L2 on the
fused path, an epoch-scheduled L1, max-norm after every step, EMA, SWA from epoch 2), the
same initial weights and the same data order (fit shuffles with ``randperm`` from a
generator seeded with ``seed``; :class:`FitOrder` replays that order in a DataLoader).
Lightning is installed by the ``test`` extra, so these tests run in CI; the importorskip
below is only a guard for a hand-made environment.
"""
import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Sampler, TensorDataset

L = pytest.importorskip("lightning.pytorch")

from regularkit import penalties as P  # noqa: E402
from regularkit.averaging import EMA, SWA  # noqa: E402
from regularkit.constraints import MaxNorm, Projector  # noqa: E402
from regularkit.errors import RegularkitError  # noqa: E402
from regularkit.integrations.lightning import (  # noqa: E402
    ConstraintCallback,
    EMACallback,
    PenaltyCallback,
    ScheduleCallback,
    SWACallback,
)
from regularkit.noise import Dropout  # noqa: E402
from regularkit.train import fit  # noqa: E402

N, BATCH, LR, SEED = 40, 16, 0.1, 3

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # Lightning's advice on workers and loggers


def data():
    g = torch.Generator().manual_seed(0)
    return torch.randn(N, 6, generator=g) * 2, torch.randint(0, 3, (N,), generator=g)


def net(init: int = 0) -> nn.Module:
    """A seeded dropout too: its stream must continue across a resume (it is in the module's state_dict)."""
    torch.manual_seed(init)
    return nn.Sequential(nn.Linear(6, 12), nn.ReLU(), Dropout(0.3, seed=7), nn.Linear(12, 3))


def recipe():
    """Fresh penalties: L2 whose strength follows the step, L1 whose strength follows the epoch."""
    return [P.L2(lambda s: 1e-2 * (1 + s % 3)), P.L1(lambda e: 1e-3 * (e + 1), schedule_unit="epoch")]


class FitOrder(Sampler):
    """Epoch ``e`` yields the ``(e + 1)``-th ``randperm`` of ``Generator().manual_seed(seed)``: fit's order."""

    def __init__(self, n: int, seed: int):
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:  # Lightning calls it before each epoch, also after a resume
        self.epoch = epoch

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed)
        for _ in range(self.epoch + 1):
            order = torch.randperm(self.n, generator=g)
        return iter(order.tolist())

    def __len__(self) -> int:
        return self.n


class Tiny(L.LightningModule):
    def __init__(self, init: int = 0, validate: bool = False):
        super().__init__()
        self.net = net(init)
        self.validate = validate

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", F.cross_entropy(self(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=LR, momentum=0.9)

    def train_dataloader(self):
        return DataLoader(TensorDataset(*data()), batch_size=BATCH, sampler=FitOrder(N, SEED))

    def val_dataloader(self):
        return DataLoader(TensorDataset(*data()), batch_size=BATCH) if self.validate else []


def callbacks(terms, **kwargs):
    return [PenaltyCallback(terms, **kwargs), ConstraintCallback(MaxNorm(0.8)), EMACallback(0.9), SWACallback(2)]


def trainer(epochs: int, tmp_path=None, **kwargs) -> L.Trainer:
    return L.Trainer(max_epochs=epochs, accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                     enable_model_summary=False, use_distributed_sampler=False, num_sanity_val_steps=0,
                     enable_checkpointing=tmp_path is not None, default_root_dir=tmp_path, **kwargs)


def plain_fit(epochs: int):
    model, terms = net(), recipe()
    ema, swa = EMA(model, 0.9), SWA(model, 2)
    fit(model, data(), optimizer=torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9), epochs=epochs,
        batch_size=BATCH, loss_terms=terms, after_step=[Projector(MaxNorm(0.8)), ema.update], callbacks=[swa],
        seed=SEED)
    return model, ema, swa, terms


def assert_same(a: dict, b: dict, atol: float = 1e-6):
    """Every tensor of ``a`` equals the one of ``b`` whose name ends like it (``net.0.weight`` ~ ``0.weight``)."""
    a = {k: v for k, v in a.items() if isinstance(v, torch.Tensor)}
    assert a
    for name, value in a.items():
        match = [v for k, v in b.items() if k.endswith(name.split("net.", 1)[-1]) and isinstance(v, torch.Tensor)]
        assert len(match) == 1, name
        torch.testing.assert_close(value, match[0], atol=atol, rtol=0, msg=name)


def test_same_weights_as_plain_fit_with_the_same_recipe_and_seed():
    epochs = 3
    ref_model, ref_ema, ref_swa, ref_terms = plain_fit(epochs)
    module, terms = Tiny(), recipe()
    cbs = callbacks(terms, log_name="penalty")
    fitted = trainer(epochs, callbacks=cbs)
    fitted.fit(module)
    assert_same(module.net.state_dict(), ref_model.state_dict())
    assert_same(cbs[2].ema.module.net.state_dict(), ref_ema.module.state_dict())
    assert_same(cbs[3].swa.module.net.state_dict(), ref_swa.module.state_dict())
    steps = epochs * math.ceil(N / BATCH)
    assert [t.step_count for t in terms] == [t.step_count for t in ref_terms] == [steps, epochs]
    assert cbs[2].ema.num_updates == ref_ema.num_updates == steps
    assert cbs[3].swa.n_averaged == ref_swa.n_averaged == epochs - 1
    # the penalties' value at the last step is kept and logged under log_name
    assert float(cbs[0].last_value) > 0
    assert float(fitted.callback_metrics["penalty_step"]) == pytest.approx(float(cbs[0].last_value))
    # max-norm held after every step, as the reference's: incoming norms of each unit <= 0.8
    assert module.net[0].weight.norm(dim=1).max() <= 0.8 + 1e-6
    # the penalties changed the weights: without them training lands elsewhere
    bare = Tiny()
    trainer(epochs).fit(bare)
    assert (bare.net[0].weight - module.net[0].weight).abs().max() > 1e-3


@pytest.mark.parametrize("validate", [False, True], ids=["checkpoint_at_epoch_end", "checkpoint_after_validation"])
def test_resume_from_a_lightning_checkpoint_continues_exactly(tmp_path, validate):
    epochs = 4
    whole, whole_terms = Tiny(validate=validate), recipe()
    whole_cbs = callbacks(whole_terms)
    saver = L.callbacks.ModelCheckpoint(dirpath=tmp_path, save_top_k=-1, every_n_epochs=1)
    trainer(epochs, tmp_path, callbacks=[*whole_cbs, saver]).fit(whole)
    ckpt = next(tmp_path.glob("epoch=1-*.ckpt"))  # after two of the four epochs
    saved = torch.load(ckpt, weights_only=False)["callbacks"]
    assert saved[whole_cbs[0].state_key]["terms"][1] == {"step_count": 2}  # the epoch schedule's counter is saved
    resumed, resumed_terms = Tiny(init=1, validate=validate), recipe()  # other initial weights: all must come back
    resumed_cbs = callbacks(resumed_terms)
    trainer(epochs, tmp_path / "resumed", callbacks=resumed_cbs).fit(resumed, ckpt_path=ckpt)
    assert_same(resumed.net.state_dict(), whole.net.state_dict(), atol=0)
    assert_same(resumed_cbs[2].ema.state_dict(), whole_cbs[2].ema.state_dict(), atol=0)
    assert_same(resumed_cbs[3].swa.averaged.state_dict(), whole_cbs[3].swa.averaged.state_dict(), atol=0)
    assert [t.step_count for t in resumed_terms] == [t.step_count for t in whole_terms] == [12, 4]
    assert resumed_cbs[2].ema.num_updates == whole_cbs[2].ema.num_updates == 12


def test_pytorch_lightning_trainer_accepts_the_same_callbacks():
    pl = pytest.importorskip("pytorch_lightning")  # installed with lightning (its dependency)
    cbs = [PenaltyCallback([P.L2()]), ConstraintCallback(MaxNorm(1.0)), EMACallback(), SWACallback(1)]
    assert all(isinstance(cb, pl.Callback) and isinstance(cb, L.Callback) for cb in cbs)
    trainer = pl.Trainer(callbacks=cbs, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False)  # the Trainer checks every callback's type here
    assert all(cb in trainer.callbacks for cb in cbs)


def test_schedule_callback_steps_terms_in_the_loss_and_two_instances_need_names():
    act = P.ActivityPenalty(nn.ReLU(), l2=lambda s: 0.1 * s)
    a, b = ScheduleCallback([act]), ScheduleCallback([P.L2()], name="second")
    assert a.state_key != b.state_key
    a.after_step(None)
    a.after_step(None)
    assert act.step_count == 2
    fresh = P.ActivityPenalty(nn.ReLU(), l2=lambda s: 0.1 * s)
    ScheduleCallback([fresh]).load_state_dict(a.state_dict())
    assert fresh.step_count == 2


@pytest.mark.parametrize("call, match", [
    (lambda: PenaltyCallback([P.L2(fused=False)]), r"terms\[0\] is not a fused penalty .*add it to the loss"),
    (lambda: PenaltyCallback([P.ActivityPenalty(nn.ReLU(), l1=0.1)]), r"terms\[0\] is not a fused penalty"),
    (lambda: PenaltyCallback([]), r"terms must hold at least one penalty, got an empty list"),
    (lambda: ScheduleCallback([lambda m: 0.0]), r"terms\[0\] must be a regularkit penalty"),
    (lambda: ScheduleCallback([P.L2()]).load_state_dict({"terms": []}), r"must hold 1 penalties' states"),
    (lambda: EMACallback(decay=1.5), r"decay must be"),
    (lambda: SWACallback(0), r"start_epoch must be >= 1, got 0"),
    (lambda: ConstraintCallback("max_norm"), r"spec must be a constraint"),
])
def test_errors_name_the_value(call, match):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(RegularkitError, match=match):
            call()
