"""Test probabilities kept by the ledger: saved and read back exactly; a damaged artifact is left out with one
line, never a traceback on every rerun; a store that cannot be made is named."""
import io
import re

import numpy as np
import pytest
import torch

from regularkit.errors import RegularkitError
from regularkit.study.run import ledger
from regularkit.study.run.artifacts import (
    load_probs,
    load_train_probs,
    open_store,
    save_outputs,
    save_probs,
    store_folder,
)


@pytest.fixture
def saved(tmp_path):
    """(store, record, artifact file) of one run's probabilities."""
    study = ledger.open_study(tmp_path, "s")
    store = open_store(tmp_path, None, None)
    trial = study.ask()
    probs = np.random.default_rng(0).dirichlet(np.ones(3), size=5).astype(np.float32)
    record = {"key": "baseline/seed0/abc", "probs_artifact": save_probs(store, trial, probs)}
    return store, record, tmp_path / "artifacts" / record["probs_artifact"], probs


def test_probabilities_round_trip_exactly_and_a_missing_artifact_is_none(saved, capsys):
    store, record, path, probs = saved
    np.testing.assert_array_equal(load_probs(store, record), probs)
    assert load_probs(store, {"key": "k"}) is None  # a run made without probabilities
    path.unlink()
    assert load_probs(store, record) is None and capsys.readouterr().err == ""  # another machine's store: silent


def npy(array):
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


@pytest.mark.parametrize("damage, why", [
    (lambda whole: whole[:50], r"EOF: reading array header"),                                 # truncated
    (lambda whole: b"garbage\n", r"pickled \(object\) data"),              # not a .npy: never unpickled
    (lambda whole: npy(np.zeros(5, np.float32)), r"expected an N x K float array, got float32 of shape \(5,\)"),
    (lambda whole: npy(np.array([[1, 2]])), r"expected an N x K float array, got int64"),
    (lambda whole: npy(np.full((2, 2), np.nan, np.float32)), r"non-finite values"),
    (lambda whole: npy(np.array([{"a": 1}], dtype=object)), r"allow_pickle=False"),               # never unpickled
])
def test_a_damaged_artifact_is_left_out_with_one_line_naming_it(saved, capsys, damage, why):
    store, record, path, _ = saved
    path.write_bytes(damage(path.read_bytes()))
    assert load_probs(store, record) is None
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("regularkit: warning: test probabilities of run "
                                                   "'baseline/seed0/abc' in ")
    assert f"{str(path)!r}" in err and "the seed-ensemble column leaves the run out" in err
    assert re.search(why, err), err


def test_a_store_that_cannot_be_made_is_named_in_one_line(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(RegularkitError, match=r"^artifact store '.*afile/sub' cannot be made: "):
        open_store(tmp_path, None, str(tmp_path / "afile" / "sub"))
    assert store_folder(tmp_path, str(tmp_path / "j" / "ledger.journal"), None) == tmp_path / "j" / "artifacts"
    assert store_folder(tmp_path, "postgresql://u@h/db", None) == tmp_path / "artifacts"


# --- issue 22 (distill): the baseline's training-set probabilities
def test_save_outputs_moves_test_and_train_probabilities_to_the_store(tmp_path):
    study = ledger.open_study(tmp_path, "s")
    store = open_store(tmp_path, None, None)
    rng = np.random.default_rng(1)
    test, train = (rng.dirichlet(np.ones(4), size=n).astype(np.float32) for n in (6, 9))
    record = {"key": "baseline/seed0/abc", "test_probs": torch.from_numpy(test), "train_probs": torch.from_numpy(train)}
    save_outputs(store, study.ask(), record)
    assert set(record) == {"key", "probs_artifact", "train_probs_artifact"}  # no tensor left in the record
    np.testing.assert_array_equal(load_probs(store, record), test)
    np.testing.assert_array_equal(load_train_probs(store, record), train)
    other = {"key": "l2/seed0/def", "test_probs": torch.from_numpy(test)}
    save_outputs(store, study.ask(), other)
    assert "train_probs_artifact" not in other and load_train_probs(store, other) is None
    (tmp_path / "artifacts" / record["train_probs_artifact"]).write_bytes(b"garbage\n")
    with pytest.raises(RegularkitError, match=r"training-set probabilities of run 'baseline/seed0/abc' .* "
                                              r"are unreadable .*; rerun with --fresh"):
        load_train_probs(store, record)
