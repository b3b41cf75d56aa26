"""Memory checks made before any work: what this machine has available, and the one refusal for what will not fit.

A study, an image folder or a model that cannot fit should fail in one line
before anything is loaded, not after minutes of swapping (issue 23: an image
folder resized to 100000 x 100000 grew to 4.1 GB in 60 s before it was killed).
Estimates count the arrays the work will hold (bytes per element times
elements), not Python's overhead, and are compared with :data:`MEMORY_SHARE`
of the memory available now (``MemAvailable`` in ``/proc/meminfo``: free plus
reclaimable page cache; the physical memory where /proc is absent).
"""
from __future__ import annotations

import os

from regularkit.errors import RegularkitError

__all__ = ["MEMORY_SHARE", "available_memory", "check_fits", "gib"]

#: Work whose estimate needs more than this share of the available memory is refused.
MEMORY_SHARE = 0.5


def available_memory() -> int:
    """Bytes of memory available to a new allocation now (Linux ``MemAvailable``; else the physical size)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


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
