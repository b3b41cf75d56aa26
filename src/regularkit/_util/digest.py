"""Content digests: what a study's run key hashes so that changed data is never mistaken for old data.

A file's digest is the SHA-256 of its bytes, computed once and cached by
(absolute path, size, modification time in ns) in a small JSON file
(``$REGULARKIT_DATA/digests.json``, else ``~/.cache/regularkit/digests.json``):
an edit changes the size or the time, so it is hashed again.  A folder's digest
hashes its files' relative paths and digests, in sorted order.  Arrays are
hashed directly (BLAKE2b over dtype, shape and bytes).
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Iterable

import numpy as np

from regularkit._util.io import atomic_write_json

__all__ = ["file_digest", "tree_digest", "path_digest", "arrays_digest", "cache_path"]

_CHUNK = 1 << 20


def cache_path() -> Path:
    """Where file digests are cached."""
    root = os.environ.get("REGULARKIT_DATA")
    base = Path(root) if root else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "regularkit"
    return base / "digests.json"


def _load_cache() -> dict:
    try:
        return json.loads(cache_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 of the file's bytes (hex), from the cache when size and mtime are unchanged."""
    path = Path(path).resolve()
    stat = path.stat()
    cache = _load_cache()
    entry = cache.get(str(path))
    if entry and entry.get("size") == stat.st_size and entry.get("mtime_ns") == stat.st_mtime_ns:
        return entry["sha256"]
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    cache[str(path)] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": h.hexdigest()}
    try:
        atomic_write_json(cache_path(), cache)
    except OSError:
        pass  # a read-only home: the digest is still right, only not cached
    return h.hexdigest()


def tree_digest(folder: str | os.PathLike) -> str:
    """SHA-256 over every file below ``folder``: relative paths and file digests, sorted."""
    folder = Path(folder).resolve()
    h = hashlib.sha256()
    for p in sorted(q for q in folder.rglob("*") if q.is_file()):
        h.update(str(p.relative_to(folder)).encode())
        h.update(file_digest(p).encode())
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
