"""The journal file of a storage path: which file, its lock, and its repair after a torn write.

A storage given as a path is Optuna's ``JournalStorage`` over a ``JournalFileBackend``:
one JSON record per line, appended under a lock.  This file holds what regularkit adds:

* :func:`journal_path`: an existing file or a name with a suffix is the journal itself;
  any other path is a folder holding ``journal.log``;
* :class:`FlockLock`: a ``flock`` the kernel releases when its holder dies (Optuna's lock
  file outlives a killed holder by a 30 s grace);
* :func:`repair_journal`: a last record torn by a kill, a full disk or ``truncate`` is cut
  back, with a copy of the file kept and one warning line (issue 23: Optuna skips a torn
  last line, but the next append joins it and every later read fails);
* :func:`check_journal_file`: an existing file that is no journal is refused, never "repaired".
"""
from __future__ import annotations

import datetime

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: Optuna's own lock file
    fcntl = None
import json
import os
import sys
from pathlib import Path

from optuna.storages.journal import JournalFileBackend

from regularkit.errors import RegularkitError

__all__ = ["FlockLock", "journal_path", "journal_backend", "repair_journal", "check_journal_file"]

#: How every record of an Optuna journal starts (``json.dumps`` of a dict whose first key is the operation).
_RECORD_START = b'{"op_code":'


def check_journal_file(path: Path, shown: str) -> None:
    """Refuse an existing file that is not an Optuna journal (it does not start like a journal record)."""
    try:
        with open(path, "rb") as f:
            start = f.read(len(_RECORD_START))
    except OSError as exc:
        raise RegularkitError(f"storage {shown!r} cannot be read: {exc.strerror or exc}") from None
    if not _RECORD_START.startswith(start):  # empty, a torn first record, or a journal
        raise RegularkitError(f"storage {shown!r} is an existing file that is not an Optuna journal (its first line "
                              "is not a journal record); name a new file, a folder, or a database URL")


def journal_path(path: str | os.PathLike) -> Path:
    """The journal file for a storage path: an existing file or a name with a suffix, else ``<folder>/journal.log``."""
    path = Path(path)
    if path.is_file() or path.suffix and not path.is_dir():
        path.parent.mkdir(parents=True, exist_ok=True)
        return path
    path.mkdir(parents=True, exist_ok=True)
    return path / "journal.log"


class FlockLock:
    """The journal's lock: an advisory ``flock`` on ``<journal>.flock``, released by the kernel when its holder dies.

    Optuna's default journal lock is a lock *file* (a symlink, or ``O_EXCL``): a process
    killed while holding it leaves the file behind, and the next process waits out a
    30 s grace period before breaking it.  ``fcntl.flock`` belongs to the open file,
    which the kernel closes when the process ends however it ends (SIGKILL included), so
    the next start proceeds at once.  Every regularkit process on a journal uses this
    lock; a plain Optuna process on the same journal file would use its own (do not mix
    them).  On NFS, Linux implements ``flock`` with byte-range locks (NFSv4, or lockd).
    It has the two methods Optuna's journal calls (``acquire`` and ``release``, the interface
    of its lock classes; that base class is not exported, so it is not subclassed here).
    """

    def __init__(self, filepath: str):
        self._path = filepath + ".flock"
        self._fd: int | None = None

    def acquire(self) -> bool:
        fd = os.open(self._path, os.O_CREAT | os.O_RDWR, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return True

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def repair_journal(path: Path) -> int | None:
    """Cut a torn journal back to its last complete record (a copy kept); the byte offset cut at, or None.

    A process killed in the middle of an append, a full disk or ``truncate`` leaves a last line
    without its end: Optuna skips it on reading, but the next append is written after it, and the
    joined line breaks every later read (``Expecting ':' delimiter``).  Under the journal's lock (no
    regularkit process is appending), every line must be a whole JSON record: a record that lacks
    only its newline gets it back; from the first broken line on, the file is cut (records after a
    broken one may refer to trials it created, so they cannot be kept safely).  The whole file is first
    copied to ``<journal>.torn-<time>``, and one warning line names the file and the offset.
    """
    if not path.is_file():
        return None
    check_journal_file(path, str(path))  # never lock, cut or copy a stranger's file
    lock = FlockLock(str(path)) if fcntl is not None else None
    if lock is not None:
        lock.acquire()
    try:
        with open(path, "rb") as f:
            data = f.read()
        offset, fixed = _complete_prefix(data)
        if fixed == data:
            return None
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        backup = path.with_name(f"{path.name}.torn-{stamp}")
        n = 1
        while backup.exists():
            n += 1
            backup = path.with_name(f"{path.name}.torn-{stamp}-{n}")
        backup.write_bytes(data)
        with open(path, "r+b") as f:  # in place: the same file (and inode) for every process sharing it
            f.seek(offset)
            f.write(fixed[offset:])
            f.truncate(len(fixed))
            f.flush()
            os.fsync(f.fileno())
    finally:
        if lock is not None:
            lock.release()
    lines = data[offset:].rstrip(b"\n").count(b"\n") + 1
    what = ("added the missing line end of its last record" if len(fixed) > len(data)
            else f"cut a torn record at byte {offset} ({len(data) - offset} bytes, {lines} line(s) dropped)")
    print(f"regularkit: warning: journal {str(path)!r}: {what}; the whole file is kept in {str(backup)!r}",
          file=sys.stderr)
    return offset


def _complete_prefix(data: bytes) -> tuple[int, bytes]:
    """(offset of the first broken line, ``data`` cut there); a last record missing only its newline is kept."""
    offset = 0
    while offset < len(data):
        end = data.find(b"\n", offset)
        line = data[offset:] if end < 0 else data[offset:end]
        try:
            ok = isinstance(json.loads(line), dict)
        except ValueError:
            ok = False
        if not ok:
            return offset, data[:offset]
        if end < 0:
            return len(data), data + b"\n"
        offset = end + 1
    return offset, data


def journal_backend(path: Path):
    return JournalFileBackend(str(path), lock_obj=FlockLock(str(path)) if fcntl is not None else None)
