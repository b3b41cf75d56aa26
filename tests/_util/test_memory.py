"""Available memory: the least of MemAvailable, the address-space limit and the cgroup's; the one refusal."""
import subprocess
import sys
import textwrap

import pytest

from regularkit._util import memory
from regularkit.errors import RegularkitError


def test_the_address_space_limit_bounds_the_available_memory():
    """``ulimit -v``: MemAvailable sees the machine, the process can only grow to its limit."""
    code = textwrap.dedent("""
        import resource
        from regularkit._util import memory
        size = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmSize"))
        resource.setrlimit(resource.RLIMIT_AS, (size + 200 * 2**20, resource.RLIM_INFINITY))
        print(memory.available_memory(), memory._meminfo())
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True).stdout
    available, meminfo = map(int, out.split())
    assert 190 * 2**20 <= available <= 200 * 2**20 <= meminfo  # the rest of the script's growth is a few MiB


def test_the_cgroup_limit_bounds_the_available_memory(tmp_path):
    proc, folder = tmp_path / "cgroup", tmp_path / "fs" / "user.slice" / "job"
    folder.mkdir(parents=True)
    proc.write_text("0::/user.slice/job\n")
    (folder / "memory.max").write_text("1000000\n")
    (folder / "memory.current").write_text("250000\n")
    assert memory._cgroup_left(proc, tmp_path / "fs") == 750000
    (folder / "memory.max").write_text("max\n")
    assert memory._cgroup_left(proc, tmp_path / "fs") is None
    proc.write_text("4:memory:/job\n")  # cgroup v1 only: no v2 line, no limit read
    assert memory._cgroup_left(proc, tmp_path / "fs") is None


def test_check_fits_refuses_beyond_the_share_of_what_is_available(monkeypatch):
    monkeypatch.setattr(memory, "available_memory", lambda: 2 * 2**30)
    memory.check_fits(2**30, "x", "y")
    with pytest.raises(RegularkitError, match=r"^the thing needs 1\.0 GiB, more than 50% of the 2\.0 GiB available; "
                                              r"use less$"):
        memory.check_fits(2**30 + 1, "the thing", "use less")
