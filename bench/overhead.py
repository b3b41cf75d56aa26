"""What regularization costs per training step (issue 15): penalties, projections, EMA against the bare step.

Every variant trains its own copy of the same model on the same random data (batch 128,
1x28x28 inputs, 10 classes) with plain SGD, through what users run:
``regularkit.train.fit`` with the hooks switched on (``loss_terms=[L2(...)]``,
``after_step=[Projector(...), ema.update]``), against a bare hand-written loop and
against ``fit`` with nothing.  One measurement is ``--steps`` optimizer steps (one
``fit`` epoch).  A clock read after every step (the last after-step hook; after
``opt.step()`` in the bare loop) gives the time per step in steady state, wall and
this thread's CPU time (which a busy shared machine disturbs less); the wall time of
the whole call over ``--steps`` also counts what ``fit`` does once per call (its input
checks: one ``isfinite`` pass over the data, the first step's checks).  On a busy machine
the ratios of a model whose step is long (the CNN) cannot resolve a few per cent, so the
CPU time spent inside the regularization hooks themselves (fused ``add_grad_``, the
projector, the EMA update) is also measured, per step and as a share of the bare step.  The variants
are interleaved within each repeat (the order rotates), so a burst of noise on a
shared machine hits all of them; ratios are paired (same repeat) and then the median
is taken over ``--repeats``.

Variants:
  bare         hand-written loop: zero_grad, forward, cross-entropy, backward, SGD step
  fit          regularkit.train.fit, no hooks
  torch_wd     fit, torch SGD(weight_decay=lam) on decay_param_groups (the same gradient as L2(lam))
  l2           fit, loss_terms=[L2(lam)]            (fused: gradient added after backward)
  l2_autograd  fit, loss_terms=[L2(lam, fused=False)] (the penalty in the autograd graph)
  l1           fit, loss_terms=[L1(1e-5)]            (fused)
  maxnorm      fit, after_step=[Projector(MaxNorm(3))]
  ema          fit, after_step=[EMA(model, 0.995).update]
  all          fit, L2 + MaxNorm + EMA together

    python bench/overhead.py [--repeats 21] [--steps 20] [--threads 1] [--models mlp,cnn] [--json out.json]
    python bench/overhead.py --profile all --models mlp     # torch.profiler's operator table, then exit
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from regularkit import constraints, penalties
from regularkit._util.environment import cpu_model, git_revision
from regularkit.averaging import EMA
from regularkit.models.cnn import CNN
from regularkit.train import fit

LAM, L1_STRENGTH, MAX_NORM, DECAY, LR, BATCH = 5e-4, 1e-5, 3.0, 0.995, 0.01, 128
METRICS = ("step", "cpu", "call")  # steady-state wall, steady-state CPU, whole call (wall)
VARIANTS = ("bare", "fit", "torch_wd", "l2", "l2_autograd", "l1", "maxnorm", "ema", "all")


def build(kind: str) -> nn.Module:
    torch.manual_seed(0)
    if kind == "mlp":  # the reference MLP of the issue
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(),
                             nn.Linear(1024, 10))
    return CNN((1, 28, 28), 10)  # conv 32 -> pool -> conv 64 -> pool -> Linear 128 -> 10


class Variant:
    """One model, its optimizer and its hooks; ``run(x, y, seed)`` trains one epoch over ``x``."""

    def __init__(self, name: str, kind: str):
        self.name = name
        self.model = build(kind)
        wd = LAM if name == "torch_wd" else 0.0
        self.opt = torch.optim.SGD(penalties.decay_param_groups(self.model, wd), lr=LR)
        self.loss_terms, self.after_step, self.spent = [], [], [0.0]
        if name in ("l2", "all"):
            self.loss_terms.append(Timed(penalties.L2(LAM), self.spent))
        if name == "l2_autograd":  # in the graph: its cost is in forward and backward, not timed apart
            self.loss_terms.append(penalties.L2(LAM, fused=False))
        if name == "l1":
            self.loss_terms.append(Timed(penalties.L1(L1_STRENGTH), self.spent))
        if name in ("maxnorm", "all"):
            self.after_step.append(Timed(constraints.Projector(constraints.MaxNorm(MAX_NORM)), self.spent))
        if name in ("ema", "all"):
            self.ema = EMA(self.model, DECAY)
            self.after_step.append(Timed(self.ema.update, self.spent))

    def run(self, x: torch.Tensor, y: torch.Tensor, seed: int) -> dict[str, float]:
        """Train one epoch; ``{"step": wall s, "cpu": CPU s}`` per step in steady state, ``"call"``: whole call."""
        clock = Clock()
        self.spent[0] = 0.0
        t0 = time.perf_counter()
        if self.name == "bare":
            bare_epoch(self.model, self.opt, x, y, torch.Generator().manual_seed(seed), clock)
        else:
            fit(self.model, (x, y), optimizer=self.opt, epochs=1, batch_size=BATCH, seed=seed,
                loss_terms=self.loss_terms, after_step=[*self.after_step, clock])
        steps = len(clock.wall)
        return {"step": (clock.wall[-1] - clock.wall[0]) / (steps - 1),
                "cpu": (clock.cpu[-1] - clock.cpu[0]) / (steps - 1),
                "call": (time.perf_counter() - t0) / steps, "hooks": self.spent[0] / steps}


class Timed:
    """A fused loss term or an after-step hook that adds the CPU time of its calls to ``spent[0]``."""

    def __init__(self, inner, spent: list):
        self.inner, self.spent = inner, spent

    def __getattr__(self, name):  # fused, step, schedule_unit: the wrapped object's
        return getattr(self.inner, name)

    def _timed(self, fn, model):
        t0 = time.thread_time()
        out = fn(model)
        self.spent[0] += time.thread_time() - t0
        return out

    def __call__(self, model):
        return self._timed(self.inner, model)

    def add_grad_(self, model):
        return self._timed(self.inner.add_grad_, model)


class Clock:
    """An after-step hook that reads the wall clock and this thread's CPU clock."""

    def __init__(self):
        self.wall, self.cpu = [], []

    def __call__(self, model=None) -> None:
        self.wall.append(time.perf_counter())
        self.cpu.append(time.thread_time())


def bare_epoch(model, opt, x, y, generator, clock) -> None:
    model.train()
    order = torch.randperm(x.shape[0], generator=generator)
    for i in range(0, x.shape[0], BATCH):
        idx = order[i:i + BATCH]
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        clock()


def machine(threads: int) -> dict:
    return {"platform": platform.platform(), "cpu": cpu_model(), "cores": os.cpu_count(),
            "python": platform.python_version(), "torch": torch.__version__, "threads": threads,
            "load_average": os.getloadavg(), "git": git_revision()}


def measure(kind: str, variants, repeats: int, steps: int) -> dict:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(steps * BATCH, 1, 28, 28, generator=g)
    y = torch.randint(0, 10, (steps * BATCH,), generator=g)
    runners = [Variant(v, kind) for v in variants]
    for r in runners:  # warm-up: allocator, first-step checks, EMA copies
        r.run(x, y, seed=0)
    times = {r.name: [] for r in runners}
    for rep in range(repeats):
        k = rep % len(runners)
        for r in runners[k:] + runners[:k]:  # rotate who goes first
            times[r.name].append(r.run(x, y, seed=rep + 1))
    out = {}
    for name, ts in times.items():
        row = {f"{m}_ms": 1e3 * statistics.median(t[m] for t in ts) for m in METRICS}
        row["hooks_ms"] = 1e3 * statistics.median(t["hooks"] for t in ts)
        if "bare" in times:  # the hooks' CPU time over the bare step's, paired
            row["hooks_share"] = statistics.median(t["hooks"] / b["cpu"] for t, b in zip(ts, times["bare"]))
        for ref in ("bare", "fit"):
            for m in METRICS:
                if ref in times:
                    row[f"{m}_x_{ref}"] = statistics.median(t[m] / b[m] for t, b in zip(ts, times[ref]))
        out[name] = row
    return out


def table(kind: str, rows: dict) -> str:
    head = ["variant", "ms/step", "x bare", "x fit", "CPU x bare", "CPU x fit", "call x bare", "call x fit",
            "hooks ms", "hooks/bare"]
    keys = ["step_ms", "step_x_bare", "step_x_fit", "cpu_x_bare", "cpu_x_fit", "call_x_bare", "call_x_fit",
            "hooks_ms", "hooks_share"]
    lines = [f"\n{kind}: medians over repeats of the time per step and of the paired ratios",
             " ".join(f"{h:>11}" for h in head)]
    for name, row in rows.items():
        lines.append(f"{name:>11} " + " ".join(f"{row.get(k, float('nan')):11.3f}" for k in keys))
    return "\n".join(lines)


def profile(kind: str, variant: str, steps: int) -> None:
    """torch.profiler's table of operators (self CPU time) over one epoch of ``variant``, after a warm-up."""
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(steps * BATCH, 1, 28, 28, generator=g), torch.randint(0, 10, (steps * BATCH,), generator=g)
    r = Variant(variant, kind)
    r.run(x, y, seed=0)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        r.run(x, y, seed=1)
    print(f"{kind}, {variant}: {steps} steps")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=21)
    ap.add_argument("--steps", type=int, default=20, help="optimizer steps per measurement")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--models", default="mlp,cnn")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--json", default=None, help="write the results here")
    ap.add_argument("--profile", default=None, metavar="VARIANT",
                    help="print torch.profiler's operator table for one variant and exit")
    args = ap.parse_args()
    if args.steps < 2:
        ap.error(f"--steps must be >= 2 (the time per step is measured between steps), got {args.steps}")
    if args.repeats < 15 and args.profile is None and os.environ.get("OVERHEAD_QUICK") != "1":
        ap.error(f"--repeats must be >= 15 for a median worth reading, got {args.repeats} (OVERHEAD_QUICK=1 "
                 "allows fewer for a smoke run)")
    torch.set_num_threads(args.threads)
    models = [m for m in args.models.split(",") if m]
    variants = [v for v in args.variants.split(",") if v]
    unknown = [v for v in variants if v not in VARIANTS] + [m for m in models if m not in ("mlp", "cnn")]
    if unknown:
        ap.error(f"unknown variant or model {unknown[0]!r}; variants: {', '.join(VARIANTS)}; models: mlp, cnn")
    if args.profile:
        for kind in models:
            profile(kind, args.profile, args.steps)
        return
    t0 = time.perf_counter()
    result = {"machine": machine(args.threads), "repeats": args.repeats, "steps": args.steps, "batch": BATCH,
              "settings": {"l2": LAM, "l1": L1_STRENGTH, "max_norm": MAX_NORM, "ema_decay": DECAY, "lr": LR},
              "models": {}}
    for kind in models:
        result["models"][kind] = measure(kind, variants, args.repeats, args.steps)
        print(table(kind, result["models"][kind]), flush=True)
    result["seconds"] = time.perf_counter() - t0
    result["machine"]["load_average_end"] = os.getloadavg()
    print(f"\n{result['seconds']:.0f} s; {result['machine']['cpu']}, torch {torch.__version__}, "
          f"{args.threads} thread(s); load average {result['machine']['load_average']}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
