"""Where a speed-run step spends its time: torch.profiler over one short epoch of the real run.

    .venv/bin/python bench/speedrun_profile.py [--train-size 20480] [--threads 2]

Runs :func:`regularkit.speedrun.train.train_seed` exactly as ``regularkit
speedrun`` does (the default configuration: fit with its hooks, EMA, decay,
flip + translate, per-epoch validation, the final TTA measurement), one epoch
on a stratified ``--train-size`` subset with 1 000 validation and 500 test
images (so that, as in the real run, training steps dominate: about 85 % of the
forward passes here, 95 % in the full run), under ``torch.profiler``, and prints
the operators with the most self CPU time, grouped into what they belong to
(convolutions, batch norm, activations, pooling, augmentation, optimizer and
averaging, the rest), as shares of the profiled time.  The numbers are written
to ``runs/speedrun/profile.json``; docs/speedrun.md quotes them.
"""
from __future__ import annotations

import argparse
import time

import torch
from torch.profiler import ProfilerActivity, profile

from regularkit._util.environment import environment
from regularkit._util.io import atomic_write_json
from regularkit.config import replace
from regularkit.speedrun import SpeedrunConfig
from regularkit.speedrun.data import load_splits
from regularkit.speedrun.train import train_seed

#: operator-name fragments -> the group they are counted in (first match wins)
GROUPS = [
    ("convolution", ("conv", "mkldnn_convolution")),
    ("batch norm", ("batch_norm", "native_batch_norm")),
    ("activation (GELU)", ("gelu",)),
    ("pooling", ("max_pool", "adaptive_max_pool")),
    ("optimizer, EMA, decay (foreach)", ("_foreach", "sgd", "lerp")),
    ("augmentation (flip, crop, index)", ("flip", "index", "gather", "constant_pad", "pad", "where", "roll")),
    ("bf16 casts and copies", ("to_copy", "copy_", "_to_dtype", "clone", "contiguous")),
    ("loss", ("cross_entropy", "log_softmax", "nll_loss")),
]


def group_of(name: str) -> str:
    low = name.lower()
    for group, keys in GROUPS:
        if any(k in low for k in keys):
            return group
    return "other"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train-size", type=int, default=20480)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = replace(SpeedrunConfig(), {"train_size": args.train_size, "val_size": 1000, "test_size": 500, "epochs": 1})
    splits = load_splits(cfg)
    t = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        result = train_seed(cfg, splits, 0)
    wall = time.perf_counter() - t
    events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in events)
    groups: dict[str, float] = {}
    for e in events:
        groups[group_of(e.key)] = groups.get(group_of(e.key), 0.0) + e.self_cpu_time_total
    print(f"one epoch of {args.train_size} images + 1000 validation + final TTA on 500: {wall:.1f} s wall "
          f"(test accuracy {100 * result.test_accuracy:.1f} %, not a result: one short epoch)")
    print(f"{'group':36s} {'share of self CPU time':>22s}")
    for name, us in sorted(groups.items(), key=lambda kv: -kv[1]):
        print(f"{name:36s} {100 * us / total:21.1f}%")
    print(f"\ntop {args.top} operators by self CPU time")
    top = sorted(events, key=lambda e: -e.self_cpu_time_total)[:args.top]
    for e in top:
        print(f"{e.key[:50]:50s} {100 * e.self_cpu_time_total / total:6.1f}%  calls {e.count}")
    atomic_write_json("runs/speedrun/profile.json", {
        "train_size": args.train_size, "threads": args.threads, "wall_seconds": wall,
        "groups": {k: v / total for k, v in groups.items()},
        "top": [{"op": e.key, "share": e.self_cpu_time_total / total, "calls": e.count} for e in top],
        "environment": environment()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
