"""Overhead of ``regularkit.train.fit`` against a bare hand-written PyTorch loop.

Same MLP (784-256-256-10), same data (10 000 Fashion-MNIST-sized random
examples), same optimizer, same shuffling; one epoch per measurement, no
evaluation.  The two variants are interleaved and each is timed REPEATS times;
we report medians and the ratio fit / bare.  Threads are fixed.

    python bench/loop_overhead.py [--repeats 21] [--threads 1]
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

from regularkit.train import fit


def make_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                         nn.Linear(256, 10))


def bare_epoch(model, opt, x, y, batch_size, generator):
    model.train()
    order = torch.randperm(x.shape[0], generator=generator)
    for i in range(0, x.shape[0], batch_size):
        idx = order[i:i + batch_size]
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=21)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--batch-size", type=int, default=64)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(args.n, 1, 28, 28, generator=g)
    y = torch.randint(0, 10, (args.n,), generator=g)
    times = {"bare": [], "fit": []}
    m_bare, m_fit = make_model(), make_model()
    o_bare = torch.optim.SGD(m_bare.parameters(), lr=0.01, momentum=0.9)
    o_fit = torch.optim.SGD(m_fit.parameters(), lr=0.01, momentum=0.9)
    gen = torch.Generator().manual_seed(1)
    # warm-up both
    bare_epoch(m_bare, o_bare, x, y, args.batch_size, gen)
    fit(m_fit, (x, y), optimizer=o_fit, epochs=1, batch_size=args.batch_size)
    for r in range(args.repeats):
        order = ("bare", "fit") if r % 2 == 0 else ("fit", "bare")  # interleave, alternate who goes first
        for name in order:
            t0 = time.perf_counter()
            if name == "bare":
                bare_epoch(m_bare, o_bare, x, y, args.batch_size, gen)
            else:
                fit(m_fit, (x, y), optimizer=o_fit, epochs=1, batch_size=args.batch_size, seed=r)
            times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    ratios = [f / b for f, b in zip(times["fit"], times["bare"])]
    result = {
        "bare_median_s": round(med["bare"], 4), "fit_median_s": round(med["fit"], 4),
        "ratio_of_medians": round(med["fit"] / med["bare"], 4),
        "median_of_paired_ratios": round(statistics.median(ratios), 4),
        "repeats": args.repeats, "threads": args.threads, "n": args.n, "batch_size": args.batch_size,
        "torch": torch.__version__, "python": platform.python_version(), "machine": platform.platform(),
        "cpu": platform.machine(),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
