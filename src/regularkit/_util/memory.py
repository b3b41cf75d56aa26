"""Memory checks made before any work: what this machine has available, and the one refusal for what will not fit.

A study, an image folder or a model that cannot fit should fail in one line
before anything is loaded, not after minutes of swapping (issue 23: an image
folder resized to 100000 x 100000 grew to 4.1 GB in 60 s before it was killed).
Estimates count the arrays the work will hold (bytes per element times
elements), not Python's overhead, and are compared with :data:`MEMORY_SHARE`
of the memory available now: the least of ``MemAvailable`` in ``/proc/meminfo``
(free plus reclaimable page cache; the physical memory where /proc is absent),
what this process's address-space limit (``ulimit -v``, ``RLIMIT_AS``) leaves
above its current virtual size, and what its cgroup's ``memory.max`` leaves above
``memory.current`` (a container's limit: ``MemAvailable`` sees the whole host).
A caller that can choose another way asks the same question before refusing (the
study streams data that would not fit: :mod:`regularkit.study.data`).
"""
from __future__ import annotations

import os
import resource
from pathlib import Path

from regularkit.errors import RegularkitError

__all__ = ["MEMORY_SHARE", "available_memory", "check_fits", "gib"]

#: Work whose estimate needs more than this share of the available memory is refused.
MEMORY_SHARE = 0.5


def _meminfo() -> int:
    """``MemAvailable`` of ``/proc/meminfo`` in bytes; the physical memory where it is absent."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def _address_space_left() -> int | None:
    """What ``RLIMIT_AS`` leaves above this process's virtual size (``VmSize``); None without a limit."""
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    try:
        with open("/proc/self/status") as f:
            size = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
    except (OSError, ValueError, IndexError, StopIteration):
        size = 0
    return max(soft - size, 0)


def _cgroup_left(proc: Path = Path("/proc/self/cgroup"), mount: Path = Path("/sys/fs/cgroup")) -> int | None:
    """What the cgroup (v2) ``memory.max`` leaves above ``memory.current``; None without a limit."""
    try:
        line = next(x for x in proc.read_text().splitlines() if x.startswith("0::"))
        folder = mount / line[3:].lstrip("/")
        limit = (folder / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return max(int(limit) - int((folder / "memory.current").read_text()), 0)
    except (OSError, ValueError, StopIteration):
        return None


def available_memory() -> int:
    """Bytes a new allocation can have now: the least of MemAvailable, the RLIMIT_AS and the cgroup headroom."""
    return min(v for v in (_meminfo(), _address_space_left(), _cgroup_left()) if v is not None)


def gib(nbytes: float) -> str:
    """``nbytes`` in GiB for a message: ``'4.1 GiB'`` (small sizes keep two significant digits)."""
    value = nbytes / 2**30
    return f"{value:.1f} GiB" if value >= 0.1 else f"{value:.2g} GiB"


def check_fits(nbytes: float, what: str, hint: str) -> None:
    """Refuse, in one line naming ``what`` and the sizes, work estimated at ``nbytes`` that will not fit."""
    available = available_memory()
    if nbytes > MEMORY_SHARE * available:
        raise RegularkitError(f"{what} needs {gib(nbytes)}, more than {MEMORY_SHARE:.0%} of the "
                              f"{gib(available)} available; {hint}")

