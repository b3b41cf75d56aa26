"""Which speed switches help the speed run on this CPU: precision x channels_last x torch.compile.

    .venv/bin/python bench/speedrun_speed.py [--threads 2] [--repeats 3]

For each combination: the median wall seconds of a training step (batch 512,
the run's network, real Fashion-MNIST batches; :func:`regularkit.speedrun.budget.seconds_per_step`,
which skips the first steps), the same for an evaluation forward pass of 3072
images (six TTA views of 512), and the one-off cost of the first steps (compilation).
The 1-minute load average is printed with each row: on a shared machine a
second process on the two cores doubles every number, so compare rows measured
at the same load.  Results are written to ``runs/speedrun/speed.json``.
"""
from __future__ import annotations

import argparse
import itertools
import os
import time

import torch

from regularkit._util.environment import environment
from regularkit._util.io import atomic_write_json
from regularkit.speedrun import SpeedrunConfig
from regularkit.speedrun.budget import seconds_per_step
from regularkit.speedrun.data import load_splits
from regularkit.speedrun.model import SpeedrunNet
from regularkit.train.device import Precision


def eval_seconds(cfg: SpeedrunConfig, x: torch.Tensor) -> float:
    model = SpeedrunNet((1, 28, 28), 10, widths=cfg.widths, patch=cfg.patch).eval()
    memory = torch.channels_last if cfg.channels_last else torch.contiguous_format
    model = model.to(memory_format=memory)
    x = x.contiguous(memory_format=memory)
    run = torch.compile(model) if cfg.compile else model
    times = []
    with torch.no_grad(), Precision(cfg.precision, "cpu").autocast():
        for i in range(5):
            t = time.perf_counter()
            run(x)
            if i >= 2:
                times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    base = SpeedrunConfig()
    splits = load_splits(base)
    x_eval = splits.x_val[:3072]
    rows = []
    compile_options = (False, True) if args.compile else (False,)
    for precision, channels_last, compiled in itertools.product(("fp32", "bf16"), (False, True), compile_options):
        cfg = SpeedrunConfig(precision=precision, channels_last=channels_last, compile=compiled)
        t0 = time.perf_counter()
        step = min(seconds_per_step(cfg, splits) for _ in range(args.repeats))
        first = time.perf_counter() - t0
        ev = eval_seconds(cfg, x_eval)
        row = {"precision": precision, "channels_last": channels_last, "compile": compiled,
               "train_step_seconds": step, "epoch_seconds": step * -(-len(splits.y_train) // cfg.batch_size),
               "eval_3072_seconds": ev, "probe_seconds": first, "load": os.getloadavg()[0]}
        rows.append(row)
        print(f"{precision} channels_last={channels_last!s:5} compile={compiled!s:5}  step {step * 1000:6.0f} ms  "
              f"epoch ~{row['epoch_seconds']:5.1f} s  eval(3072) {ev * 1000:5.0f} ms  probe {first:5.1f} s  "
              f"load {row['load']:.1f}", flush=True)
    atomic_write_json("runs/speedrun/speed.json", {"threads": args.threads, "rows": rows, "environment": environment()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
