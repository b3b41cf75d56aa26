"""Content digests: what a study's run key hashes so that changed data is never mistaken for old data.

A file's digest is the SHA-256 of its bytes.  Hashing a large file on every start
costs seconds, so the digest is cached in a small JSON file
(``$REGULARKIT_DATA/digests.json``, else ``~/.cache/regularkit/digests.json``),
and the cache is trusted only when nothing can have written the file since it
was hashed:

* the key is the file's whole ``stat`` identity: absolute path, size,
  modification time, **status-change time (ctime)**, inode and device.  The
  mtime alone is not enough: ``touch -d``, ``cp -p``, ``tar``, ``rsync -t`` and
  reproducible builds set it back on purpose, and a same-sized replacement
  then looks unchanged (issue 23).  The ctime cannot be set from user space:
  every write, rename-over, ``utime`` or ``chmod`` moves it to *now*, and
  ``cp``/``mv`` onto the name give a new inode or a new ctime;
* an entry is trusted only when the file's ctime is older than the moment it was
  hashed by more than :data:`RACY_S`.  File times are coarse (a kernel tick;
  a whole second or two on some filesystems), so a write in the same tick as
  the hash would keep every stat field; such a "racy" entry (git's name for
  it) is hashed again on every use until the file has been quiet long enough.

We chose this over "always hash small files, sample-hash large ones": a sampled
hash misses an edit between the samples, and a size limit only moves the
problem.  What the cache still trusts is the kernel's ctime (root changing the
clock, or a filesystem that does not keep ctime, can defeat it); tests replace
a file's content with one of the same size and restore its mtime with
``os.utime``: the digest changes.

A folder's digest hashes its files' relative paths and digests, in sorted
order (the cache is read and written once per folder).  Arrays are hashed
directly (BLAKE2b over dtype, shape and bytes).
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Iterable

import numpy as np

from regularkit._util.io import atomic_write_json

__all__ = ["file_digest", "tree_digest", "path_digest", "arrays_digest", "cache_path", "RACY_S"]

_CHUNK = 1 << 20

#: An entry hashed less than this long after the file's last change is not trusted (file times are coarse).
RACY_S = 2.0


def cache_path() -> Path:
    """Where file digests are cached."""
    root = os.environ.get("REGULARKIT_DATA")
    base = Path(root) if root else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "regularkit"
    return base / "digests.json"


def _load_cache() -> dict:
    try:
        cache = json.loads(cache_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return cache if isinstance(cache, dict) else {}


def _save_cache(cache: dict) -> None:
    try:
        atomic_write_json(cache_path(), cache)
    except OSError:
        pass  # a read-only home: the digests are still right, only not cached


def _identity(stat: os.stat_result) -> dict:
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "ctime_ns": stat.st_ctime_ns,
            "inode": stat.st_ino, "device": stat.st_dev}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _digest(path: Path, cache: dict) -> tuple[str, bool]:
    """(digest of ``path``, whether ``cache`` changed); see the module docstring for when the cache is trusted."""
    stat = path.stat()
    ident = _identity(stat)
    entry = cache.get(str(path))
    if (isinstance(entry, dict) and {k: entry.get(k) for k in ident} == ident and isinstance(entry.get("sha256"), str)
            and stat.st_ctime_ns < entry.get("hashed_ns", 0) - RACY_S * 1e9):
        return entry["sha256"], False
    hashed_ns = time.time_ns()
    digest = _sha256(path)
    if _identity(path.stat()) != ident:  # written while we read it: right for no version, so not cached
        return digest, False
    cache[str(path)] = {**ident, "hashed_ns": hashed_ns, "sha256": digest}
    return digest, True


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 of the file's bytes (hex), from the cache only when nothing can have written it since."""
    cache = _load_cache()
    digest, changed = _digest(Path(path).resolve(), cache)
    if changed:
        _save_cache(cache)
    return digest


def tree_digest(folder: str | os.PathLike) -> str:
    """SHA-256 over every file below ``folder``: relative paths and file digests, sorted."""
    folder = Path(folder).resolve()
    cache, changed = _load_cache(), False
    h = hashlib.sha256()
    for p in sorted(q for q in folder.rglob("*") if q.is_file()):
        digest, new = _digest(p.resolve(), cache)
        changed |= new
        h.update(str(p.relative_to(folder)).encode())
        h.update(digest.encode())
    if changed:
        _save_cache(cache)
    return h.hexdigest()


def path_digest(path: str | os.PathLike) -> str:
    """:func:`file_digest` of a file or :func:`tree_digest` of a folder."""
    return tree_digest(path) if Path(path).is_dir() else file_digest(path)


def arrays_digest(arrays: Iterable[np.ndarray], *extra: str) -> str:
    """BLAKE2b over each array's dtype, shape and bytes, then ``extra`` strings."""
    h = hashlib.blake2b(digest_size=16)
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(memoryview(a).cast("B"))
    for e in extra:
        h.update(e.encode())
    return h.hexdigest()
