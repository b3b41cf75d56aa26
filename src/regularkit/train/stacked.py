"""``fit_stacked``: the seeds of one recipe trained together as one model, each as its own ``fit`` would.

The seeds of a study's recipe share the data, the architecture and the schedule; only the
initial weights, the data order, the augmentation draws and the dropout masks differ.  Here
the S seeds' modules are one model: per batch one autograd graph holding every seed's
forward, one ``backward()`` of the sum of their losses (the seeds share no parameter, so each
gradient is its own seed's), one optimizer step over every seed's parameters (a multi-tensor
update), one pass of the loop's bookkeeping.  Per batch, for every seed ``s`` still training::

    idx_s = randperm(n, generator=g_s)[i:i + B]          # seed s's data order (fit's generator)
    x_s, y_s = batch_transform_s(x[idx_s], y[idx_s], g_s)
    logits_s = model_s(x_s)   with torch's global RNG set to seed s's own stream r_s
    loss = sum_s [loss_fn_s(logits_s, y_s) + graph terms_s(model_s)]
    backward; objective_s = loss_s + fused penalties_s (add_grad_ on model_s)
    seed s diverged (objective_s not finite or > max_loss): its gradient is dropped, it stops
    optimizer.step()                                     # a parameter whose grad is None is skipped
    after_step_s(model_s); scheduled terms_s.step()

Per epoch: the per-epoch terms, ``scheduler.step()`` (one schedule: every seed has the same
learning rate at every epoch), each seed measured by the one measuring function on its own
model (or its ``eval_model``), then its callbacks decide on its own metrics; a seed that stops
leaves the group and its ``on_train_end`` runs (early stopping restores its best weights).

Randomness: ``g_s = Generator().manual_seed(s)`` is ``fit``'s generator; ``r_s`` starts as
``torch.manual_seed(s)`` leaves the global RNG (CPU, and the CUDA device trained on), which is
what ``fit(seed=s)`` does, and is swapped in around seed s's forward (a copy of a few KB), so
every layer drawing from the global RNG (dropout, DropConnect, noise layers) draws seed s's
numbers, and a seed's numbers never depend on the others in the group.

Why not ``torch.func.stack_module_state`` + ``vmap`` (or grouped ``bmm`` layers): measured on
this project's CPUs (docs/benchmarks.md, "Vectorized seeds"), the default study's MLP step is
compute-bound, and a batched product and its backward ran no faster than S plain ones (slower,
with the copies that stack the weights each step); what S seeds can share is the loop's
per-step overhead, the backward call and the optimizer step.  Keeping each seed's module and
kernels also keeps its numbers: a seed trained here equals its sequential ``fit`` bit for bit
(tests/train/test_stacked.py), and any module works, batch norm (its own statistics) included.

Timings: ``train_seconds`` and ``History.seconds`` are each seed's share of the group's time
(an epoch's wall time divided by the seeds it trained).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import torch
from torch import nn

from regularkit.errors import RegularkitError
from regularkit.train.callbacks import Callback, TrainState
from regularkit.train.checks import check_data, check_scalar
from regularkit.train.device import Precision
from regularkit.train.loop import MAX_LOSS, History, _evaluate, default_loss
from regularkit.train.step import is_fused

__all__ = ["SeedRun", "SeedStream", "fit_stacked"]


@dataclass
class SeedRun:
    """One seed's part of a group: its module, its seed, and the hooks its own ``fit`` would get."""

    model: nn.Module
    seed: int
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = default_loss
    batch_transform: Callable | None = None
    loss_terms: Sequence = ()
    after_step: Sequence[Callable[[nn.Module], None]] = ()
    callbacks: Sequence[Callback] = ()
    eval_model: Callable[[], nn.Module] | None = None
    on_epoch: Callable[[dict[str, float]], None] | None = None
    history: History = field(default_factory=History)


class SeedStream:
    """Torch's global RNG as ``torch.manual_seed(seed)`` leaves it, kept aside between uses.

    ``with stream:`` sets the global RNG (CPU, and ``device`` when it is CUDA) to this stream's
    state and keeps the state it ends in; call it inside ``torch.random.fork_rng`` so the
    caller's RNG is left as it was.
    """

    def __init__(self, seed: int, device: torch.device):
        self.cuda = device if device.type == "cuda" else None
        torch.manual_seed(seed)
        self.cpu_state = torch.get_rng_state()
        self.cuda_state = torch.cuda.get_rng_state(self.cuda) if self.cuda is not None else None

    def __enter__(self) -> "SeedStream":
        torch.set_rng_state(self.cpu_state)
        if self.cuda is not None:
            torch.cuda.set_rng_state(self.cuda_state, self.cuda)
        return self

    def __exit__(self, *exc) -> None:
        self.cpu_state = torch.get_rng_state()
        if self.cuda is not None:
            self.cuda_state = torch.cuda.get_rng_state(self.cuda)


class _Seed:
    """The loop's state of one seed."""

    def __init__(self, run: SeedRun, device: torch.device):
        self.run, self.history = run, run.history
        self.order_gen = torch.Generator().manual_seed(run.seed)
        self.stream = SeedStream(run.seed, device)
        self.state = TrainState(model=run.model, history=self.history.epochs)
        self.fused = [t for t in run.loss_terms if is_fused(t)]
        self.graph = [t for t in run.loss_terms if not is_fused(t)]
        self.per_step = _scheduled(run.loss_terms, "step")
        self.per_epoch = _scheduled(run.loss_terms, "epoch")
        self.params = list(run.model.parameters())
        self.order: torch.Tensor | None = None
        self.running = torch.zeros((), device=device)
        self.ended = False

    def end(self) -> None:
        if not self.ended:
            self.ended = True
            for cb in self.run.callbacks:
                cb.on_train_end(self.state)


def _scheduled(terms, unit: str) -> list:
    return [t for t in terms if callable(getattr(t, "step", None)) and getattr(t, "schedule_unit", "step") == unit]


def fit_stacked(runs: Sequence[SeedRun], train: tuple[torch.Tensor, torch.Tensor], *,
                optimizer: torch.optim.Optimizer, epochs: int, batch_size: int, scheduler=None,
                eval_sets: Mapping[str, tuple[torch.Tensor, torch.Tensor]] | None = None,
                device: torch.device | str = "cpu", precision: str = "fp32", channels_last: bool = False,
                max_loss: float = MAX_LOSS) -> list[History]:
    """Train ``runs`` together (see the module docstring); one History per run, in order.

    ``optimizer`` holds every run's parameters with one set of hyperparameters (SGD and AdamW
    update each element from its own gradient and state, so one step is each seed's step);
    ``scheduler`` steps it once per epoch.
    """
    if not runs:
        raise RegularkitError("fit_stacked needs at least one run, got none")
    device = torch.device(device)
    amp = Precision(precision, device.type)
    if amp.scaler() is not None:
        raise RegularkitError("fit_stacked does not scale losses (fp16); use fp32 or bf16, or fit each seed")
    x, y = (t.to(device) for t in check_data("train", train))
    eval_sets = {k: tuple(t.to(device) for t in check_data(k, v)) for k, v in (eval_sets or {}).items()}
    for run in runs:
        run.model.to(device, memory_format=torch.channels_last) if channels_last else run.model.to(device)
    n, t_start = int(x.shape[0]), time.perf_counter()
    with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
        seeds = [_Seed(run, device) for run in runs]
        live = list(range(len(seeds)))
        for sd in seeds:
            for cb in sd.run.callbacks:
                cb.on_train_begin(sd.state)
        try:
            for epoch in range(1, epochs + 1):
                if not live:
                    break
                t0, trained = time.perf_counter(), list(live)
                for s in live:
                    seeds[s].run.model.train()
                    seeds[s].order = torch.randperm(n, generator=seeds[s].order_gen).to(device)
                    seeds[s].running = torch.zeros((), device=device)
                for i_step, i in enumerate(range(0, n, batch_size), start=1):
                    _step(seeds, live, x, y, i, batch_size, optimizer, amp, max_loss, epoch, i_step, channels_last)
                    if not live:
                        break
                for s in [s for s in trained if s not in live]:  # diverged in this epoch: stopped, no metrics
                    seeds[s].end()
                for s in live:
                    for term in seeds[s].per_epoch:
                        term.step()
                lr = optimizer.param_groups[0]["lr"]
                if scheduler is not None:
                    scheduler.step()
                for s in list(live):
                    _epoch_end(seeds[s], epoch, lr, n, eval_sets, device, amp)
                    if seeds[s].history.stopped_epoch is not None:
                        live.remove(s)
                        seeds[s].end()
                share = (time.perf_counter() - t0) / len(trained)
                for s in trained:
                    seeds[s].history.seconds += share
                    if seeds[s].history.epochs and seeds[s].history.epochs[-1]["epoch"] == epoch:
                        seeds[s].history.epochs[-1]["train_seconds"] = share
            for s in live:
                seeds[s].history.stop_reason = f"completed {epochs} epochs"
        finally:
            for sd in seeds:
                sd.end()
            if not any(sd.history.seconds for sd in seeds):  # interrupted in the first epoch
                for sd in seeds:
                    sd.history.seconds = (time.perf_counter() - t_start) / len(seeds)
    return [sd.history for sd in seeds]


def _epoch_end(sd: _Seed, epoch: int, lr: float, n: int, eval_sets, device, amp: Precision) -> None:
    """One seed's epoch metrics (the one measuring function on its model), its callbacks' decisions."""
    metrics = {"epoch": epoch, "lr": lr, "train_objective": float(sd.running) / max(n, 1), "train_seconds": 0.0}
    target = sd.run.eval_model() if sd.run.eval_model is not None else sd.run.model
    for name, (ex, ey) in eval_sets.items():
        metrics[f"{name}_loss"], metrics[f"{name}_error"] = _evaluate(target, ex, ey, device=device, precision=amp,
                                                                      name=name)
    sd.history.epochs.append(metrics)
    sd.state.epoch, sd.state.metrics = epoch, metrics
    if sd.run.on_epoch is not None:
        sd.run.on_epoch(metrics)
    decisions = [d for cb in sd.run.callbacks if (d := cb.on_epoch_end(sd.state)) is not None]
    stops = [d.reason for d in decisions if d.stop]
    if stops:
        sd.history.stop_reason, sd.history.stopped_epoch = "; ".join(stops), epoch


def _step(seeds: list[_Seed], live: list[int], x, y, i: int, batch_size: int, optimizer, amp: Precision,
          max_loss: float, epoch: int, i_step: int, channels_last: bool) -> None:
    """One batch of every live seed; removes the seeds that diverged at it (their step not applied)."""
    losses, sizes = [], []
    for s in live:
        sd = seeds[s]
        idx = sd.order[i:i + batch_size]
        xb, yb = x[idx], y[idx]
        if sd.run.batch_transform is not None:
            xb, yb = sd.run.batch_transform(xb, yb, sd.order_gen)
        if channels_last and xb.dim() == 4:
            xb = xb.contiguous(memory_format=torch.channels_last)
        with amp.autocast(), sd.stream:
            loss = check_scalar("loss_fn", sd.run.loss_fn(sd.run.model(xb), yb))
            for k, term in enumerate(sd.graph):
                loss = loss + check_scalar(f"loss_terms[{k}] ({type(term).__name__})", term(sd.run.model))
        losses.append(loss)
        sizes.append(idx.shape[0])
    optimizer.zero_grad(set_to_none=True)
    (torch.stack(losses).sum() if len(losses) > 1 else losses[0]).backward()
    diverged = []
    for k, s in enumerate(live):
        sd = seeds[s]
        objective = losses[k].detach()
        for term in sd.fused:
            objective = objective + term.add_grad_(sd.run.model)
        value = float(objective)
        if not math.isfinite(value) or value > max_loss:
            diverged.append(s)
            for p in sd.params:
                p.grad = None
            sd.history.diverged = {"epoch": epoch, "step": i_step, "value": value}
            sd.history.stop_reason = (f"diverged: training loss {value:.4g} at epoch {epoch}, step {i_step} "
                                      f"(not finite or above {max_loss:g})")
            sd.history.stopped_epoch = epoch
        else:
            sd.running += objective * sizes[k]
    optimizer.step()
    for s in diverged:
        live.remove(s)
    for s in live:
        sd = seeds[s]
        for fn in sd.run.after_step:
            fn(sd.run.model)
        for term in sd.per_step:
            term.step()
