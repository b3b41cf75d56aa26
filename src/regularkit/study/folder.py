"""The study folder: usable before anything is written, one configuration per folder, a clean start.

Checks made before any file is written (a refused command leaves ``--out``
byte-identical):

* the path is usable: not an existing file, not below a file, writable (the
  nearest existing folder on the way to it);
* a folder that already holds a study (``study.toml``) holds the same
  configuration: every setting that changes the numbers
  (:data:`~regularkit.study.config.NUMBER_SETTINGS`) must match, or the
  command is refused with one line naming the settings that differ.  Recipes
  and seeds may change: runs are per recipe and seed, and the table shows the
  ones asked for.  ``fresh=True`` (``--fresh``) moves the old study aside to
  ``<out>.old-<time>`` (nothing is deleted) and starts a new one.

Leftover temporary files of interrupted atomic writes (``.<name>.*.tmp``) are
removed when a study starts, once older than :data:`STALE_TEMP_S` (a live worker
sharing the folder may be in the middle of a write: those are seconds old).
"""
from __future__ import annotations

import datetime
import os
import time
from pathlib import Path
from typing import Any

from regularkit.config import from_dict, load_toml
from regularkit.errors import RegularkitError
from regularkit.study.config import StudyConfig

STALE_TEMP_S = 30.0

__all__ = ["STALE_TEMP_S", "check_folder", "check_same_configuration", "stored_config", "differing_settings", "move_aside", "remove_stale_temps"]


def _nearest_existing(path: Path) -> Path:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def check_folder(out: str) -> Path:
    """``out`` as a path the study can write to, or a one-line error naming it."""
    if not out or not str(out).strip():
        raise RegularkitError(f"out must name a folder, got {out!r}")
    path = Path(out).expanduser()
    if path.exists() and not path.is_dir():
        raise RegularkitError(f"out {str(path)!r} is an existing file, not a folder")
    existing = _nearest_existing(path.absolute())
    if not existing.is_dir():
        raise RegularkitError(f"out {str(path)!r} is below {str(existing)!r}, which is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise RegularkitError(f"out {str(path)!r} is not writable (no write permission on {str(existing)!r})")
    return path


def stored_config(out: Path) -> StudyConfig | None:
    """The configuration of the study already in ``out`` (None when there is none)."""
    toml = out / "study.toml"
    if not toml.is_file():
        return None
    try:
        return from_dict(StudyConfig, load_toml(toml), where=str(toml))
    except RegularkitError as exc:
        raise RegularkitError(f"{str(out)!r} holds a study.toml this version cannot read ({exc}); "
                              "use another --out or --fresh") from None


def differing_settings(old: StudyConfig, new: StudyConfig) -> dict[str, tuple[Any, Any]]:
    """Number-changing settings whose values differ: name -> (stored, asked)."""
    a, b = old.number_settings(), new.number_settings()
    return {k: (a[k], b[k]) for k in a if a[k] != b[k]}


def check_same_configuration(out: Path, cfg: StudyConfig) -> None:
    """Refuse a folder that holds a study with other number-changing settings."""
    old = stored_config(out)
    if old is None:
        return
    diff = differing_settings(old, cfg)
    if diff:
        shown = ", ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in list(diff.items())[:4])
        more = f" (+{len(diff) - 4} more)" if len(diff) > 4 else ""
        raise RegularkitError(f"{str(out)!r} holds a study with other settings ({shown}{more}); its results "
                              "would be mixed with these: use another --out, or --fresh to move it aside")


def move_aside(out: Path) -> Path | None:
    """Rename an existing, non-empty ``out`` to ``<out>.old-<YYYYmmdd-HHMMSS>``; returns the new name."""
    if not out.is_dir() or not any(out.iterdir()):
        return None
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    target = out.with_name(f"{out.name}.old-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = out.with_name(f"{out.name}.old-{stamp}-{n}")
    out.rename(target)
    return target


def remove_stale_temps(out: Path, *, older_than: float | None = None) -> int:
    """Delete temporary files left by interrupted atomic writes (``.<name>.<random>.tmp``); how many."""
    older_than = STALE_TEMP_S if older_than is None else older_than
    now, n = time.time(), 0
    for p in out.rglob(".*.tmp"):
        if p.is_file() and now - p.stat().st_mtime > older_than:
            try:
                p.unlink()
                n += 1
            except OSError:
                pass
    return n
