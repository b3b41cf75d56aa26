"""Test-set probabilities of every run, kept with the ledger so that any worker's report has them all.

A run's record lives in its Optuna trial (user attribute ``record``); its test
probabilities (N x K floats, the seed-ensemble column and the reliability
diagram need them) go to an Optuna artifact store, referenced from the record.
The store is a folder (``optuna.artifacts.FileSystemArtifactStore``):

* default storage (a journal in ``--out``): ``<out>/artifacts``;
* a journal path shared by several folders or processes: ``artifacts/`` next
  to the journal file, so every folder sharing the ledger shares the store;
* a database URL: ``--artifacts PATH`` (a folder every machine sees, e.g. on
  NFS), else ``<out>/artifacts`` -- then a report made on another machine has
  the records but not the probabilities of runs made here, and says so.

S3 or GCS stores (``optuna.artifacts.Boto3ArtifactStore`` / ``GCSArtifactStore``)
can be passed from Python as ``artifact_store=``.
"""
from __future__ import annotations

import io
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.artifacts import FileSystemArtifactStore, download_artifact, upload_artifact

from regularkit.errors import RegularkitError
from regularkit.search.journal import journal_path

__all__ = ["open_store", "save_probs", "load_probs", "stored_outputs", "save_outputs", "load_train_probs"]


def store_folder(out: Path, storage: str | None, artifacts: str | None) -> Path:
    """Where the artifact store of a study lives (see the module docstring)."""
    if artifacts is not None:
        return Path(artifacts).expanduser()
    if storage is not None and "://" not in storage:
        return journal_path(storage).parent / "artifacts"
    return out / "artifacts"


def open_store(out: Path, storage: str | None, artifacts: str | None):
    """The study's artifact store (the folder is created)."""
    folder = store_folder(out, storage, artifacts)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # the plan checked --artifacts; a store next to a shared journal is found here
        raise RegularkitError(f"artifact store {str(folder)!r} cannot be made: {exc.strerror or exc}") from None
    return FileSystemArtifactStore(str(folder))


def save_probs(store, trial: optuna.Trial, probs: np.ndarray, *, name: str = "test_probs.npy") -> str:
    """Upload one run's test probabilities (or, ``name``, other outputs); returns the artifact id for its record."""
    with tempfile.TemporaryDirectory(prefix="regularkit-probs-") as tmp:
        path = Path(tmp) / name
        np.save(path, np.asarray(probs, dtype=np.float32))
        return upload_artifact(artifact_store=store, file_path=str(path), study_or_trial=trial)


# --- issue 22 (distill): the baseline's training-set probabilities, the teacher of study/run/teacher.py
def save_outputs(store, trial: optuna.Trial, record: dict[str, Any]) -> None:
    """Move a run's outputs from its record to the store: ``test_probs`` (-> ``probs_artifact``) and, for the
    baseline, ``train_probs`` (-> ``train_probs_artifact``, aligned with the training rows)."""
    for field, artifact, name in (("test_probs", "probs_artifact", "test_probs.npy"),
                                  ("train_probs", "train_probs_artifact", "train_probs.npy")):
        probs = record.pop(field, None)
        if probs is not None:
            record[artifact] = save_probs(store, trial, probs.numpy(), name=name)


def load_train_probs(store, record: dict[str, Any]) -> np.ndarray | None:
    """A baseline run's training-set probabilities, or None when it has none in this store; a damaged
    artifact is an error (a teacher with a missing seed would be another teacher)."""
    artifact = record.get("train_probs_artifact")
    if artifact is None:
        return None
    probs, why = _read(store, artifact)
    if why:
        raise RegularkitError(f"the training-set probabilities of run {record.get('key', record.get('recipe'))!r} "
                              f"(artifact {artifact}) are unreadable ({why}); rerun with --fresh")
    return probs
# --- end issue 22


def load_probs(store, record: dict[str, Any]) -> np.ndarray | None:
    """A run's test probabilities, or None when its artifact is not in this store (another machine's).

    A damaged artifact (truncated, corrupt, not an N x K array of finite floats) is None too, with one
    warning line naming it: the seed-ensemble column leaves that run out, as it does an unseen one,
    instead of every rerun ending in NumPy's traceback.
    """
    artifact = record.get("probs_artifact")
    if artifact is None:
        return None
    probs, why = _read(store, artifact)
    if why:
        where = getattr(store, "_base_path", None)
        shown = str(Path(where) / artifact) if where else artifact
        print(f"regularkit: warning: test probabilities of run {record.get('key', record.get('recipe'))!r} in "
              f"{shown!r} are unreadable ({why}); the seed-ensemble column leaves the run out", file=sys.stderr)
    return probs


def _read(store, artifact: str) -> tuple[np.ndarray | None, str | None]:
    """``(array, None)``; ``(None, "")`` when the store does not hold ``artifact``; ``(None, why)`` when damaged."""
    with tempfile.TemporaryDirectory(prefix="regularkit-probs-") as tmp:
        path = Path(tmp) / "outputs.npy"
        try:
            download_artifact(artifact_store=store, file_path=str(path), artifact_id=artifact)
        except (FileNotFoundError, optuna.artifacts.exceptions.ArtifactNotFound):
            return None, ""
        try:
            probs = np.load(io.BytesIO(path.read_bytes()), allow_pickle=False)
            why = _what_is_wrong(probs)
        except (ValueError, EOFError, OSError) as exc:
            why = " ".join(str(exc).split()) or type(exc).__name__
    return (probs, None) if why is None else (None, why)


def _what_is_wrong(probs: Any) -> str | None:
    if not isinstance(probs, np.ndarray) or probs.ndim != 2 or not np.issubdtype(probs.dtype, np.floating):
        return f"expected an N x K float array, got {getattr(probs, 'dtype', type(probs).__name__)} " \
               f"of shape {getattr(probs, 'shape', None)}"
    if not np.isfinite(probs).all():
        return "non-finite values"
    return None


def stored_outputs(records, store) -> tuple[dict[str, list[np.ndarray]], int]:
    """recipe -> the stored test outputs (probabilities, or a regression's predictions) of its finished,
    non-diverged runs, and how many of those runs had none in this store (made on another machine)."""
    by_recipe: dict[str, list[np.ndarray]] = {}
    unseen = 0
    for r in records:
        if r.get("diverged"):
            continue
        out = load_probs(store, r)
        if out is None:
            unseen += 1
        else:
            by_recipe.setdefault(r["recipe"], []).append(out)
    return by_recipe, unseen

