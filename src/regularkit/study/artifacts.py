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
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.artifacts import FileSystemArtifactStore, download_artifact, upload_artifact

from regularkit.search.storage import journal_path

__all__ = ["open_store", "save_probs", "load_probs"]


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
    folder.mkdir(parents=True, exist_ok=True)
    return FileSystemArtifactStore(str(folder))


def save_probs(store, trial: optuna.Trial, probs: np.ndarray) -> str:
    """Upload one run's test probabilities; returns the artifact id to keep in its record."""
    with tempfile.TemporaryDirectory(prefix="regularkit-probs-") as tmp:
        path = Path(tmp) / "test_probs.npy"
        np.save(path, np.asarray(probs, dtype=np.float32))
        return upload_artifact(artifact_store=store, file_path=str(path), study_or_trial=trial)


def load_probs(store, record: dict[str, Any]) -> np.ndarray | None:
    """A run's test probabilities, or None when its artifact is not in this store (another machine's)."""
    artifact = record.get("probs_artifact")
    if artifact is None:
        return None
    with tempfile.TemporaryDirectory(prefix="regularkit-probs-") as tmp:
        path = Path(tmp) / "test_probs.npy"
        try:
            download_artifact(artifact_store=store, file_path=str(path), artifact_id=artifact)
        except (FileNotFoundError, optuna.artifacts.exceptions.ArtifactNotFound):
            return None
        return np.load(io.BytesIO(path.read_bytes()))
