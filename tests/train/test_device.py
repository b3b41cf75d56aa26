"""Precision by capability: ``native_bf16`` and ``resolve_precision`` decide from checked features, both ways.

The CPU's flags, the machine name, the environment and the CUDA queries are replaced
(monkeypatch), so every branch is tested on any machine; one test reads this
machine's own ``/proc/cpuinfo`` against the kernel's flag list.
"""
import contextlib
from pathlib import Path

import pytest
import torch

from regularkit.errors import RegularkitError
from regularkit.train import device as D

ZEN4 = frozenset({"fpu", "avx", "avx2", "avx512f", "avx512bw", "avx512_bf16"})
SKYLAKE_X = frozenset({"fpu", "avx", "avx2", "avx512f", "avx512bw"})      # AVX-512 without bf16
HASWELL = frozenset({"fpu", "avx", "avx2"})
SAPPHIRE = frozenset({"fpu", "avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16"})


@pytest.fixture
def cpu(monkeypatch):
    """Make the CPU look like ``flags`` on an x86_64 Linux with oneDNN and no ISA cap."""
    def set_flags(flags, machine="x86_64"):
        monkeypatch.setattr(D, "cpu_flags", lambda: flags)
        monkeypatch.setattr(D, "cpu_model", lambda: "Test CPU 9000")
        monkeypatch.setattr(D.platform, "machine", lambda: machine)
        monkeypatch.setattr(D.torch.backends.mkldnn, "is_available", lambda: True)
        monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
        monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    return set_flags


@pytest.mark.parametrize("flags, label", [(SAPPHIRE, "AMX"), (ZEN4, "AVX-512 BF16"), (SKYLAKE_X, "AVX-512"),
                                          (HASWELL, "AVX2")])
def test_capability_label_is_the_highest_level_present(flags, label):
    assert D.cpu_capability(flags) == label


def test_capability_without_flags_is_torchs_word():
    assert D.cpu_capability(frozenset()) == torch.backends.cpu.get_cpu_capability()


@pytest.mark.parametrize("flags, native", [(ZEN4, True), (SAPPHIRE, True), (SKYLAKE_X, False), (HASWELL, False)])
def test_cpu_bf16_is_native_only_with_avx512_bf16_or_amx(cpu, flags, native):
    cpu(flags)
    assert D.native_bf16("cpu")[0] is native
    precision, reason = D.resolve_precision("auto", "cpu")
    assert precision == ("bf16" if native else "fp32")
    expected = "has native bf16 matmuls" if native else "has no native bf16 matmuls"
    assert reason == f"{precision}: this CPU (Test CPU 9000, {D.cpu_capability(flags)}) {expected}" + (
        "" if native else " (bf16 would be emulated)")


@pytest.mark.parametrize("cap, native", [("AVX2", False), ("avx512_core", False), ("AVX512_CORE_BF16", True),
                                         ("ALL", True), ("avx512_core_amx", True)])
def test_onednn_isa_cap_below_bf16_means_fp32(cpu, monkeypatch, cap, native):
    cpu(ZEN4)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", cap)
    precision, reason = D.resolve_precision("auto", "cpu")
    assert precision == ("bf16" if native else "fp32")
    assert (f"ONEDNN_MAX_CPU_ISA={cap} keeps oneDNN from them" in reason) is not native


def test_no_onednn_or_no_flags_or_arm_means_fp32(cpu, monkeypatch):
    cpu(ZEN4)
    monkeypatch.setattr(D.torch.backends.mkldnn, "is_available", lambda: False)
    assert D.resolve_precision("auto", "cpu") == (
        "fp32", "fp32: this CPU (Test CPU 9000, AVX-512 BF16) has bf16 instructions, but this torch has no oneDNN "
                "to use them")
    cpu(frozenset())                       # macOS / Windows: no /proc/cpuinfo
    precision, reason = D.resolve_precision("auto", "cpu")
    assert precision == "fp32" and "feature flags cannot be read" in reason
    cpu(frozenset({"fp", "asimd", "bf16"}), machine="aarch64")     # Graviton 3: bf16 present, not measured
    precision, reason = D.resolve_precision("auto", "cpu")
    assert precision == "fp32" and "bf16 speed on Arm CPUs is not measured here" in reason


def test_a_mode_asked_for_is_kept_and_emulated_bf16_is_named(cpu):
    cpu(HASWELL)
    assert D.resolve_precision("fp32", "cpu") == ("fp32", "fp32: asked for")
    assert D.resolve_precision("fp16", "cpu") == ("fp16", "fp16: asked for")
    precision, reason = D.resolve_precision("bf16", "cpu")
    assert precision == "bf16" and reason.endswith("(bf16 would be emulated): expect it slower than fp32")
    cpu(ZEN4)
    assert D.resolve_precision("bf16", "cpu") == ("bf16", "bf16: asked for")


@pytest.mark.parametrize("capability, native", [((7, 5), False), ((8, 0), True), ((9, 0), True)])
def test_cuda_bf16_needs_compute_capability_8(monkeypatch, capability, native):
    monkeypatch.setattr(D.torch.version, "hip", None)
    monkeypatch.setattr(D.torch.cuda, "get_device_name", lambda device: "Test GPU")
    monkeypatch.setattr(D.torch.cuda, "get_device_capability", lambda device: capability)
    precision, reason = D.resolve_precision("auto", torch.device("cuda"))
    assert precision == ("bf16" if native else "fp32")
    assert f"Test GPU (compute capability {capability[0]}.{capability[1]}) has" in reason


@pytest.mark.parametrize("supported", [True, False])
def test_rocm_asks_torch_without_emulation(monkeypatch, supported):
    asked = {}
    monkeypatch.setattr(D.torch.version, "hip", "6.2")
    monkeypatch.setattr(D.torch.cuda, "get_device_name", lambda device: "Test MI")
    monkeypatch.setattr(D.torch.cuda, "device", lambda device: contextlib.nullcontext())
    monkeypatch.setattr(D.torch.cuda, "is_bf16_supported", lambda including_emulation: asked.setdefault(
        "emulation", including_emulation) is False and supported)
    assert D.native_bf16(torch.device("cuda")) == (supported, f"Test MI {'has' if supported else 'has no'} native bf16")
    assert asked == {"emulation": False}


def test_mps_is_not_assumed_native():
    assert D.resolve_precision("auto", torch.device("mps")) == (
        "fp32", "fp32: mps: native bf16 is not checked on this device, so it is not assumed")


def test_bad_precision_and_auto_in_precision_are_one_line_errors():
    with pytest.raises(RegularkitError, match=r"precision must be one of 'auto', 'fp32', 'bf16', 'fp16'; got 'fp8'"):
        D.resolve_precision("fp8", "cpu")
    with pytest.raises(RegularkitError, match=r"precision 'auto' is chosen per device: pass what "):
        D.Precision("auto", "cpu")
    with pytest.raises(RegularkitError, match=r"precision must be one of 'fp32', 'bf16', 'fp16'; got 'fp8'"):
        D.Precision("fp8", "cpu")
    assert D.PRECISIONS == ("auto", *D.MODES)


@pytest.mark.skipif(not Path("/proc/cpuinfo").is_file(), reason="Linux only")
def test_flags_are_this_machines_proc_cpuinfo():
    line = next(line for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.split(":")[0].strip() in ("flags", "Features"))
    assert D.cpu_flags() == frozenset(line.split(":", 1)[1].split())
