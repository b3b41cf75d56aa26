"""The study folder: usable before anything is written, one configuration per folder, a clean start.

Checks made before any file is written (a refused command leaves ``--out``
byte-identical):

* the path is usable: not an existing file, not below a file, names within the
  filesystem's limit (with room for ``--fresh``'s ``.old-<time>``), writable (an
  empty folder is created and removed in the nearest existing folder on the way:
  ``os.access`` says yes to root on ``/proc``); where the study writes a file
  (:data:`FILES`) there is no folder, and the reverse (:data:`FOLDERS`);
* a folder that already holds a study (``study.toml``) holds the same
  configuration: every setting that changes the numbers
  (:data:`~regularkit.study.config.NUMBER_SETTINGS`) must match, or the
  command is refused with one line naming the settings that differ.  Recipes
  and seeds may change: runs are per recipe and seed, and the table shows the
  ones asked for.  ``fresh=True`` (``--fresh``) moves the old study aside to
  ``<out>.old-<time>`` (nothing is deleted) and starts a new one.

Leftover temporary files of interrupted atomic writes (``.<name>.<host>-<pid>.*.tmp``)
are removed when a study starts: at once when their writer is dead, else once older
than :data:`STALE_TEMP_S` (a live worker sharing the folder may be in the middle of a
write: those are seconds old).
"""
from __future__ import annotations

import datetime
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from regularkit._util.io import temp_writer_alive
from regularkit.config import from_dict, load_toml
from regularkit.errors import RegularkitError
from regularkit.study.config import StudyConfig

STALE_TEMP_S = 30.0
#: The longest suffix :func:`move_aside` adds to the folder's name (``.old-YYYYmmdd-HHMMSS-NN``).
ASIDE_SUFFIX = ".old-20260101-000000-99"

__all__ = ["STALE_TEMP_S", "FILES", "FOLDERS", "check_folder", "check_same_configuration", "stored_config",
           "differing_settings", "move_aside", "remove_stale_temps"]


def _nearest_existing(path: Path) -> Path:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _check_names(path: Path, name: str) -> None:
    """Each part of ``path`` within the filesystem's name limit (``--fresh`` adds ``.old-<time>`` to the last)."""
    limit = 255
    try:
        limit = os.pathconf(_nearest_existing(path.absolute()), "PC_NAME_MAX")
    except (OSError, ValueError):
        pass
    for i, part in enumerate(path.parts):
        room = limit - len(ASIDE_SUFFIX) if i == len(path.parts) - 1 else limit
        if len(part.encode()) > room:
            raise RegularkitError(f"{name} {str(path)[:60]!r}... has a name of {len(part.encode())} bytes; the "
                                  f"filesystem takes {limit}" + (f", and --fresh adds {len(ASIDE_SUFFIX)}: use at "
                                                                f"most {room}" if room < limit else ""))


def _probe_write(existing: Path, path: Path, name: str) -> None:
    """Create and remove an empty folder in ``existing``: the one sure test (root passes ``os.access`` on /proc)."""
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".regularkit-probe-", dir=existing))
    except OSError as exc:
        raise RegularkitError(f"{name} {str(path)!r} cannot be written: {exc.strerror or exc} in "
                              f"{str(existing)!r}") from None


#: What a study writes in its folder: a file of these names (and a folder of ``FOLDERS``) must be one, or absent.
FILES = ("study.toml", "environment.json", "data.json", "results.csv", "report.html", "verdict.json", "tuning.json",
         "forest.png", "learning_curves.png", "test_curves.png", "gap.png", "reliability.png", "ledger.journal")
FOLDERS = ("runs", "artifacts")


def check_folder(out: str, *, name: str = "out", outputs: bool = True) -> Path:
    """``out`` as a path the study can write to, or a one-line error naming it (``name``: the option's name).

    ``outputs``: also refuse a folder where a file the study writes is a folder (or the reverse).
    """
    if not isinstance(out, (str, os.PathLike)) or not str(out).strip():
        raise RegularkitError(f"{name} must name a folder, got {out!r}")
    path = Path(out).expanduser()
    _check_names(path, name)
    try:
        if path.exists() and not path.is_dir():
            raise RegularkitError(f"{name} {str(path)!r} is an existing file, not a folder")
        existing = _nearest_existing(path.absolute())
        if not existing.is_dir():
            raise RegularkitError(f"{name} {str(path)!r} is below {str(existing)!r}, which is a file")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise RegularkitError(f"{name} {str(path)!r} is not writable (no write permission on {str(existing)!r})")
        _probe_write(existing, path, name)
        if outputs and path.is_dir():
            for f in FILES:
                if (path / f).is_dir():
                    raise RegularkitError(f"{name} {str(path)!r} holds a folder {f!r} where the study writes a file; "
                                          "move it away, or use another --out")
            for f in FOLDERS:
                if (path / f).exists() and not (path / f).is_dir():
                    raise RegularkitError(f"{name} {str(path)!r} holds a file {f!r} where the study keeps a folder; "
                                          "move it away, or use another --out")
            for run in (path / "runs").glob("*/seed*.json"):
                if run.is_dir():
                    raise RegularkitError(f"{name} {str(path)!r} holds a folder {str(run.relative_to(path))!r} "
                                          "where the study writes a run's record; move it away, or use another --out")
    except OSError as exc:  # a name the system refuses, a loop of links, a vanished mount
        raise RegularkitError(f"{name} {str(path)!r} cannot be used: {exc.strerror or exc}") from None
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
    target = out.with_name(f"{out.name}.old-{stamp}")  # fits: check_folder left room for ASIDE_SUFFIX
    n = 1
    while target.exists():
        n += 1
        target = out.with_name(f"{out.name}.old-{stamp}-{n}")
    out.rename(target)
    return target


def remove_stale_temps(out: Path, *, older_than: float | None = None) -> int:
    """Delete temporary files left by interrupted atomic writes (``.<name>.<host>-<pid>.<random>.tmp``); how many.

    One whose writer (named in it) is dead on this machine goes at once; one of a live writer, of
    another machine or of an older version goes once older than ``older_than`` (:data:`STALE_TEMP_S`).
    """
    older_than = STALE_TEMP_S if older_than is None else older_than
    now, n = time.time(), 0
    for p in out.rglob(".*.tmp"):
        try:
            if p.is_file() and (temp_writer_alive(p) is False or now - p.stat().st_mtime > older_than):
                p.unlink()
                n += 1
        except OSError:
            pass
    return n
