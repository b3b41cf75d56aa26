"""run_speedrun / run_one: precision and threads resolved for the machine at hand (both ways), the plan line,
the budget's record."""
import pytest

from regularkit.speedrun import run as run_module
from regularkit.speedrun.config import SpeedrunConfig
from regularkit._util import threads as T
from regularkit.speedrun.run import plan_line, resolve, run_speedrun
from regularkit.train import device as D

ZEN4 = frozenset({"avx2", "avx512f", "avx512_bf16"})
HASWELL = frozenset({"avx2"})


@pytest.fixture
def cpu(monkeypatch):
    def set_flags(flags):
        monkeypatch.setattr(D, "cpu_flags", lambda: flags)
        monkeypatch.setattr(D, "cpu_model", lambda: "Test CPU")
        monkeypatch.setattr(D.platform, "machine", lambda: "x86_64")
        monkeypatch.setattr(D.torch.backends.mkldnn, "is_available", lambda: True)
        monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
        monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    return set_flags


@pytest.mark.parametrize("flags, used", [(HASWELL, "fp32"), (ZEN4, "bf16")])
def test_auto_is_bf16_only_on_a_cpu_with_native_bf16(cpu, flags, used):
    cpu(flags)
    resolved, reasons = resolve(SpeedrunConfig(threads=2))
    assert resolved.precision == used and resolved == SpeedrunConfig(precision=used, threads=2)
    assert reasons == {"precision": D.resolve_precision("auto", "cpu")[1], "threads": "2 threads: asked for"}
    assert reasons["precision"].startswith(f"{used}: this CPU (Test CPU, ")
    assert resolve(SpeedrunConfig(precision="fp32"))[0].precision == "fp32"   # asked for: kept on any CPU


@pytest.mark.parametrize("busy, threads", [(0.0, 2), (1.0, 1)])
def test_threads_by_the_rule_leave_a_busy_core_alone(monkeypatch, busy, threads):
    monkeypatch.setattr(T, "usable_cores", lambda: 2)
    monkeypatch.setattr(run_module, "busy_cores", lambda: busy)
    resolved, reasons = resolve(SpeedrunConfig(precision="fp32"))
    assert resolved.threads == threads                  # the speed run's step is ~42 GFLOP: work for every core
    assert reasons["threads"].startswith(f"{threads} thread")
    assert (", 1.0 busy with other processes" in reasons["threads"]) is (busy == 1.0)


def test_plan_line_says_precision_threads_why_and_length(cpu, monkeypatch):
    cpu(HASWELL)
    monkeypatch.setattr(T, "usable_cores", lambda: 2)
    monkeypatch.setattr(run_module, "busy_cores", lambda: 0.0)
    cfg = SpeedrunConfig()
    assert plan_line(cfg, resolve(cfg)[1]) == (
        "speedrun fashion-mnist, full, 1 seed: fp32: this CPU (Test CPU, AVX2) has no native bf16 matmuls (bf16 "
        "would be emulated); 2 threads per worker: 2 cores, 1 worker (a step is 42,104.0 MFLOP); the epochs that "
        "fit in 600 s per seed (a timed probe)")
    cfg = SpeedrunConfig(epochs=3, seeds=2, without=("ema",))
    assert plan_line(cfg, {"precision": "fp32: asked for", "threads": "1 thread: asked for"}) == (
        "speedrun fashion-mnist, without ema, 2 seeds: fp32: asked for; 1 thread: asked for; 3 epochs")


def test_budget_run_prints_the_plan_and_records_precision_and_epochs(cpu, monkeypatch, capsys, tiny_cfg, splits):
    cpu(HASWELL)
    monkeypatch.setattr(run_module, "seconds_per_step", lambda cfg, splits: 0.01)   # a fixed probe
    cfg = SpeedrunConfig(**{**tiny_cfg.__dict__, "epochs": None, "budget": 0.9, "precision": "auto"})
    record = run_speedrun(cfg, splits=splits, write=False)
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("speedrun fashion-mnist, full, 1 seed: fp32: this CPU (Test CPU, AVX2) has no native")
    assert err[0].endswith("; 1 thread: asked for; the epochs that fit in 0.9 s per seed (a timed probe)")
    chosen = record["epochs_chosen"][0]
    # (0.9 s x 0.95 - elapsed - final) // (16 steps x 0.01 s x 1.12) = (0.855 - ~0 - 0.24) // 0.1792 = 3, where
    # final = 6 TTA views x 384 images x 0.01 s / 32 per image / 3 = 0.24 s
    assert chosen == {"epochs": 3, "budget_seconds": 0.9, "probe_seconds_per_step": 0.01}
    assert err[1] == "seed 0: 0.010 s per training step (fp32) -> 3 epochs fit in 0.9 s"
    assert record["results"][0]["epochs"] == 3 and err[-1].startswith("seed 0  epoch  3/3")
    assert record["precision"] == {"asked": "auto", "used": "fp32",
                                   "reason": "fp32: this CPU (Test CPU, AVX2) has no native bf16 matmuls "
                                             "(bf16 would be emulated)"}
    assert record["threads"] == {"asked": 1, "used": 1, "reason": "1 thread: asked for"}
    assert record["config"]["precision"] == "auto" and record["config"]["budget"] == 0.9
