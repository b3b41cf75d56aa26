"""Two gloo processes on CPU (world_size 2): per-rank noise and augmentation streams, averaging a DDP model.

The test starts this file twice as a script (``python tests/test_ddp.py RANK WORLD OUT``) with
``MASTER_ADDR=127.0.0.1`` and a free port; each rank writes what it saw to ``OUT`` and the test
compares the ranks.  What must hold:

* ``Dropout(p, seed=0)`` masks differ across ranks, each rank is reproducible, and rank 0 draws
  what a single process draws (``seed`` is rank 0's seed; rank r uses ``rank_seed(seed)``);
* augmentation parameters drawn with ``rank_generator(seed)`` differ across ranks;
* after a few DDP steps on different data and different dropout masks the weights are equal on
  both ranks (DDP averages the gradients), the loss went down, and so the EMA, SWA and snapshot
  copies of the DDP-wrapped model are equal too, with the bare model's keys;
* TTA and Ensemble of the DDP-wrapped model run on rank 0 alone: through the bare model, so no
  collective waits for rank 1 (DDP's own forward would broadcast BatchNorm buffers).
"""
import os
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import torch
from torch import nn

STEPS = 5


def _model() -> nn.Module:
    from regularkit.noise import Dropout

    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(4, 16), nn.BatchNorm1d(16), nn.ReLU(), Dropout(0.3, seed=1),
                         nn.Linear(16, 2))


def _masks(seed: int) -> torch.Tensor:
    from regularkit.noise import Dropout

    layer, x = Dropout(0.5, seed=seed).train(), torch.ones(1000)
    return torch.stack([layer(x) != 0 for _ in range(2)])


def _flips(generator: torch.Generator) -> torch.Tensor:
    from regularkit.augment import HorizontalFlip

    return HorizontalFlip(0.5).make_params(torch.zeros(64, 1, 2, 2), generator)["flip"]


def _worker(rank: int, world: int, out: str) -> None:
    import torch.distributed as dist
    import torch.nn.functional as F
    from torch.nn.parallel import DistributedDataParallel as DDP

    from regularkit._util.distributed import rank_generator
    from regularkit.averaging import EMA, SWA, Ensemble, SnapshotEnsemble
    from regularkit.tta import TTA

    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world, timeout=timedelta(seconds=20))
    seen = {"masks": _masks(0), "masks_again": _masks(0), "flips": _flips(rank_generator(0))}

    model = _model()
    ddp = DDP(model)
    ema, swa = EMA(ddp, decay=0.5), SWA(ddp, start_epoch=1)
    snap = SnapshotEnsemble(ddp, cycles=1, epochs_per_cycle=STEPS, lr_max=0.1)
    opt = torch.optim.SGD(ddp.parameters(), lr=0.2)
    g = torch.Generator().manual_seed(100 + rank)  # each rank its own shard of the data
    x = torch.randn(64, 4, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).long()

    def loss_now() -> float:
        with torch.no_grad():
            return F.cross_entropy(model.eval()(x), y).item()

    seen["loss_before"], seen["initial"] = loss_now(), {k: v.clone() for k, v in model.state_dict().items()}
    ddp.train()
    for _ in range(STEPS):
        opt.zero_grad()
        F.cross_entropy(ddp(x), y).backward()
        opt.step()
        ema.update(ddp)
        swa.update(ddp)
        snap.step(ddp)
    seen["loss_after"] = loss_now()
    seen["weights"], seen["ema"] = model.state_dict(), ema.state_dict()
    seen["swa"], seen["snapshot"] = swa.module.state_dict(), snap.snapshots[0]
    if rank == 0:  # evaluation on one rank only: a collective here would wait for rank 1 until the timeout
        with torch.no_grad():
            images = x[:8, :, None, None]  # N x 4 x 1 x 1: what TTA takes, flattened by the model
            seen["tta"], seen["bare_tta"] = TTA(ddp, "flips")(images), TTA(model, "flips")(images)
            seen["ensemble"] = Ensemble([ddp]).eval()(x[:8])
    dist.barrier()
    dist.destroy_process_group()
    torch.save(seen, out)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_two_ranks(tmp_path: Path) -> list[dict]:
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()), "OMP_NUM_THREADS": "1"}
    outs = [tmp_path / f"rank{r}.pt" for r in range(2)]
    procs = [subprocess.Popen([sys.executable, __file__, str(r), "2", str(outs[r])], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for r in range(2)]
    logs = []
    try:
        for p in procs:
            logs.append(p.communicate(timeout=90)[0])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert [p.returncode for p in procs] == [0, 0], "\n".join(logs)
    return [torch.load(o, weights_only=False) for o in outs]


def test_two_gloo_ranks(tmp_path):
    r0, r1 = _run_two_ranks(tmp_path)

    # seeded dropout: one stream per rank, each reproducible, rank 0 = a single process
    assert torch.equal(r0["masks"], _masks(0))
    for r in (r0, r1):
        assert torch.equal(r["masks"], r["masks_again"])
        assert not torch.equal(r["masks"][0], r["masks"][1])
    assert not torch.equal(r0["masks"], r1["masks"])

    # augmentation with rank_generator(seed): rank 0 = Generator().manual_seed(seed), rank 1 differs
    assert torch.equal(r0["flips"], _flips(torch.Generator().manual_seed(0)))
    assert not torch.equal(r0["flips"], r1["flips"])

    # DDP: different data and masks per rank, equal parameters after every step (BatchNorm's running
    # statistics are each rank's own until DDP broadcasts rank 0's at the next forward), the loss went down
    for r in (r0, r1):
        assert r["loss_after"] < r["loss_before"] - 0.05, (r["loss_before"], r["loss_after"])
    params = [name for name, _ in _model().named_parameters()]
    for key in params:
        assert torch.equal(r0["weights"][key], r1["weights"][key]), key
        assert not torch.equal(r0["weights"][key], r0["initial"][key]), key
    assert not torch.equal(r0["weights"]["2.running_mean"], r1["weights"]["2.running_mean"])

    # the averages of the DDP-wrapped model: the bare model's keys, equal parameters on both ranks
    assert set(r0["ema"]) == {f"module.{k}" for k in _model().state_dict()} | {"_extra_state"}
    assert r0["ema"]["_extra_state"] == r1["ema"]["_extra_state"] == {"num_updates": STEPS}
    for name, prefix in (("ema", "module."), ("swa", ""), ("snapshot", "")):
        for key in params:
            assert torch.equal(r0[name][prefix + key], r1[name][prefix + key]), (name, key)
    assert not torch.equal(r0["ema"]["module.1.weight"], r0["weights"]["1.weight"])
    assert torch.equal(r0["snapshot"]["1.weight"], r0["weights"]["1.weight"])  # the last step's weights

    # evaluation on rank 0 alone went through the bare model
    assert torch.equal(r0["tta"], r0["bare_tta"]) and r0["ensemble"].shape == (8, 2)


if __name__ == "__main__":
    _worker(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
