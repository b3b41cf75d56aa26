"""The speed run's step time on this CPU: fp32 against bf16 (and what ``auto`` picks), or every speed switch.

    .venv/bin/python bench/speedrun_speed.py [--threads 2] [--repeats 15] [--steps 4]
    ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 .venv/bin/python bench/speedrun_speed.py --steps 2
    .venv/bin/python bench/speedrun_speed.py --switches [--repeats 3] [--no-compile]

Default (``--precision`` comparison): the run's network (``channels_last``, batch 512, real
Fashion-MNIST batches) trained ``--steps`` SGD steps per measurement in fp32 and in bf16 autocast,
the two interleaved for ``--repeats`` rounds after one warm-up round each; the median seconds per
step, times the 108 steps of an epoch, is the epoch estimate (the bare steps: ``fit``'s batch
gathering, augmentation, EMA and validation add about 12 %, see ``speedrun/budget.py``).  The
row of ``auto`` is the precision :func:`regularkit.train.device.resolve_precision` picks here, and
why.  The second command makes this CPU behave as an AVX2-only one for oneDNN and ATen (no
AVX-512, so bf16 is emulated): the row the issue's AVX2 machine stands for, measured on this one.

``--switches``: precision x channels_last x torch.compile, the probe of
:func:`regularkit.speedrun.budget.seconds_per_step` (the first version of this script; its table
is in docs/speedrun.md).

Every row records the CPU model, its capability (``/proc/cpuinfo``), torch's dispatch level
(``torch.backends.cpu.get_cpu_capability()``), the oneDNN ISA cap if set, the threads and the
1-minute load average.  Results: ``runs/speedrun/speed.json`` (``--json`` to change).
"""
from __future__ import annotations

import argparse
import itertools
import math
import os
import statistics
import time

import torch
import torch.nn.functional as F

from regularkit._util.environment import cpu_model, environment
from regularkit._util.io import atomic_write_json
from regularkit.speedrun import SpeedrunConfig
from regularkit.speedrun.budget import seconds_per_step
from regularkit.speedrun.data import load_splits
from regularkit.speedrun.model import SpeedrunNet
from regularkit.train.device import Precision, cpu_capability, resolve_precision


def where() -> dict:
    return {"cpu": cpu_model(), "capability": cpu_capability(),
            "torch_capability": torch.backends.cpu.get_cpu_capability(),
            "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA"), "threads": torch.get_num_threads()}


def compare_precisions(splits, repeats: int, steps: int) -> list[dict]:
    """Median seconds per training step in fp32 and bf16, interleaved, same initial weights and batches."""
    cfg = SpeedrunConfig(precision="fp32")
    models, optimizers = {}, {}
    for name in ("fp32", "bf16"):
        torch.manual_seed(0)
        model = SpeedrunNet(splits.input_shape, splits.num_classes, widths=cfg.widths, patch=cfg.patch)
        model.whiten.requires_grad_(False)
        models[name] = model.to(memory_format=torch.channels_last)
        optimizers[name] = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-3, momentum=0.9)
    g = torch.Generator().manual_seed(0)
    n = len(splits.y_train)
    batches = [torch.randint(0, n, (cfg.batch_size,), generator=g) for _ in range(steps)]
    xs = [splits.x_train[i].contiguous(memory_format=torch.channels_last) for i in batches]
    ys = [splits.y_train[i] for i in batches]
    samples: dict[str, list[float]] = {"fp32": [], "bf16": []}
    for rep in range(repeats + 1):
        for name in ("fp32", "bf16") if rep % 2 == 0 else ("bf16", "fp32"):
            amp, model, opt = Precision(name, "cpu"), models[name], optimizers[name]
            t0 = time.perf_counter()
            for x, y in zip(xs, ys):
                with amp.autocast():
                    loss = F.cross_entropy(model(x), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            if rep:                                    # round 0 warms both up (allocation, kernel choice)
                samples[name].append((time.perf_counter() - t0) / steps)
        if rep:
            print(f"round {rep}: " + "  ".join(f"{k} {v[-1]:.3f} s per step" for k, v in samples.items()), flush=True)
    per_epoch = math.ceil(len(splits.y_train) / cfg.batch_size)
    auto, reason = resolve_precision("auto", "cpu")
    rows = []
    for name in ("fp32", "bf16"):
        step = statistics.median(samples[name])
        rows.append({"precision": name, "step_seconds": step, "epoch_seconds": step * per_epoch,
                     "samples": samples[name], "auto_picks": name == auto})
    rows.append({"precision": "auto", "picks": auto, "reason": reason,
                 "step_seconds": next(r["step_seconds"] for r in rows if r["precision"] == auto)})
    return rows


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


def compare_switches(splits, repeats: int, compile_: bool) -> list[dict]:
    x_eval = splits.x_val[:3072]
    rows = []
    for precision, channels_last, compiled in itertools.product(("fp32", "bf16"), (False, True),
                                                                 (False, True) if compile_ else (False,)):
        cfg = SpeedrunConfig(precision=precision, channels_last=channels_last, compile=compiled)
        t0 = time.perf_counter()
        step = min(seconds_per_step(cfg, splits) for _ in range(repeats))
        first = time.perf_counter() - t0
        ev = eval_seconds(cfg, x_eval)
        row = {"precision": precision, "channels_last": channels_last, "compile": compiled,
               "train_step_seconds": step, "epoch_seconds": step * -(-len(splits.y_train) // cfg.batch_size),
               "eval_3072_seconds": ev, "probe_seconds": first, "load": os.getloadavg()[0]}
        rows.append(row)
        print(f"{precision} channels_last={channels_last!s:5} compile={compiled!s:5}  step {step * 1000:6.0f} ms  "
              f"epoch ~{row['epoch_seconds']:5.1f} s  eval(3072) {ev * 1000:5.0f} ms  probe {first:5.1f} s  "
              f"load {row['load']:.1f}", flush=True)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=None, help="rounds (default 15; --switches: 3)")
    parser.add_argument("--steps", type=int, default=4, help="training steps per measurement")
    parser.add_argument("--switches", action="store_true", help="precision x channels_last x compile instead")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--json", default="runs/speedrun/speed.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    splits = load_splits(SpeedrunConfig())
    load_start = os.getloadavg()[0]
    if args.switches:
        rows = compare_switches(splits, args.repeats or 3, args.compile)
    else:
        rows = compare_precisions(splits, args.repeats or 15, args.steps)
    info = {**where(), "load_average_start_end": [load_start, os.getloadavg()[0]]}
    print(f"\nCPU {info['cpu']} ({info['capability']}; torch dispatch {info['torch_capability']}; "
          f"ONEDNN_MAX_CPU_ISA={info['onednn_max_cpu_isa']}), {args.threads} threads, load {load_start:.1f} -> "
          f"{os.getloadavg()[0]:.1f}")
    if not args.switches:
        print("\n| CPU (capability, oneDNN cap) | precision | s per training step (median) | epoch (108 steps) |")
        print("|---|---|---|---|")
        for r in rows[:2]:
            print(f"| {info['cpu']} ({info['capability']}, {info['onednn_max_cpu_isa'] or 'no cap'}) | {r['precision']}"
                  f"{' (auto)' if r['auto_picks'] else ''} | {r['step_seconds']:.3f} | {r['epoch_seconds']:.1f} s |")
        print(f"\nauto: {rows[2]['reason']}")
    atomic_write_json(args.json, {"threads": args.threads, "rows": rows, "machine": info,
                                  "environment": environment()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
