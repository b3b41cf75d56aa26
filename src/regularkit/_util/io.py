"""Atomic file writes (a temporary file in the same folder, then ``os.replace``) and figures.

A crash or Ctrl-C in the middle of a write leaves the previous file intact
(or no file), never a half-written one, because ``os.replace`` is atomic on
POSIX and Windows when source and target are on the same filesystem.  Only a
SIGKILL leaves the temporary file itself; its name carries the writer's host and
pid, so the next start removes it at once (``study/folder.py``).

Figures are made by :func:`figure`: a matplotlib ``Figure`` on its own Agg
canvas, never pyplot, so there is no global backend switch, no figure
registry to leak into, no display needed, and it is safe in threads.  Every
plot in regularkit starts there and ends in :func:`atomic_savefig`.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import tempfile
from pathlib import Path
from typing import Any, Callable


def _umask() -> int:
    """The process's umask (read by setting it and putting it back: there is no getter)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: Permissions of the files we write: what ``open()`` would give (0666 minus the umask), not the
#: 0600 of ``tempfile.mkstemp``, so results can be shared like any other file of the user's.
FILE_MODE = 0o666 & ~_umask()


def _host_tag() -> str:
    """8 hex digits naming this machine (a folder on NFS may hold temporaries of several)."""
    return hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]


#: ``.<name>.<host>-<pid>.<random>.tmp``: who writes a temporary file is in its name.
_TEMP = re.compile(r"^\..+\.(?P<host>[0-9a-f]{8})-(?P<pid>[0-9]+)\.[^.]+\.tmp$")


def temp_writer_alive(path: str | os.PathLike) -> bool | None:
    """Whether the process writing temporary file ``path`` still runs: True / False on this machine, None when
    the name does not say (written on another machine, or by an older version)."""
    m = _TEMP.match(Path(path).name)
    if m is None or m["host"] != _host_tag():
        return None
    try:
        os.kill(int(m["pid"]), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # another user's process: it exists (or a pid no process has)
        return True
    return True


def atomic_write(path: str | os.PathLike, write: Callable[[Any], None], *, binary: bool = True) -> Path:
    """Call ``write(fileobj)`` on a temp file next to ``path``, then rename it over ``path``.

    The temp file is ``.<name>.<host>-<pid>.<random>.tmp``, so a later start can tell one left by a
    killed process (:func:`temp_writer_alive` is False) from one a live process is writing.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{_host_tag()}-{os.getpid()}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as f:
            write(f)
            f.flush()
            os.fchmod(f.fileno(), FILE_MODE)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        # KeyboardInterrupt included: never leave the temp file behind.
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write(path, lambda f: f.write(text), binary=False)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return atomic_write(path, lambda f: f.write(data))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def figure(width: float = 6.0, height: float = 4.0, **kwargs):
    """A matplotlib ``Figure`` of ``width`` x ``height`` inches on an Agg canvas (constrained layout by default)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    kwargs.setdefault("layout", "constrained")
    fig = Figure(figsize=(width, height), **kwargs)
    FigureCanvasAgg(fig)  # attaches itself: savefig renders with Agg, whatever pyplot's backend is
    return fig


def atomic_savefig(fig, path: str | os.PathLike, **kwargs) -> Path:
    """Save a matplotlib figure atomically (format from the suffix of ``path``)."""
    fmt = Path(path).suffix.lstrip(".") or "png"
    return atomic_write(path, lambda f: fig.savefig(f, format=fmt, **kwargs))


def _json_default(obj: Any):
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")
