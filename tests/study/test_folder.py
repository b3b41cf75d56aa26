"""The study folder: where results may go, one configuration per folder, --fresh, stale temporaries."""
import os
import time

import pytest

from regularkit._util.io import atomic_write_text
from regularkit.config import to_toml
from regularkit.errors import RegularkitError
from regularkit.study import StudyConfig
from regularkit.study.folder import (
    STALE_TEMP_S,
    check_folder,
    check_same_configuration,
    differing_settings,
    move_aside,
    remove_stale_temps,
    stored_config,
)


def test_check_folder_refuses_files_and_paths_below_files_and_blank_names(tmp_path):
    f = tmp_path / "f"
    f.write_text("x")
    with pytest.raises(RegularkitError, match=r"out '.*f' is an existing file, not a folder"):
        check_folder(str(f))
    with pytest.raises(RegularkitError, match=r"is below '.*f', which is a file"):
        check_folder(str(f / "sub" / "out"))
    with pytest.raises(RegularkitError, match=r"out must name a folder, got ' '"):
        check_folder(" ")
    assert check_folder(str(tmp_path / "new" / "deeper")) == tmp_path / "new" / "deeper"  # created later
    assert not (tmp_path / "new").exists()  # checking writes nothing


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root may write anywhere")
def test_check_folder_refuses_a_folder_without_write_permission(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    with pytest.raises(RegularkitError, match="is not writable"):
        check_folder(str(ro / "out"))


def test_one_configuration_per_folder(tmp_path):
    cfg = StudyConfig(out=str(tmp_path), epochs=3)
    atomic_write_text(tmp_path / "study.toml", to_toml(cfg))
    assert stored_config(tmp_path) == cfg
    check_same_configuration(tmp_path, cfg)  # the same settings: resume
    check_same_configuration(tmp_path, StudyConfig(out=str(tmp_path), epochs=3, workers=2))  # how, not what
    other = StudyConfig(out=str(tmp_path), epochs=4, lr=0.1)
    assert differing_settings(cfg, other) == {"epochs": (3, 4), "lr": (cfg.lr, 0.1)}
    with pytest.raises(RegularkitError, match=r"holds a study with other settings \(epochs 3 -> 4, lr .* -> 0.1\)"):
        check_same_configuration(tmp_path, other)


def test_a_study_toml_this_version_cannot_read_is_named(tmp_path):
    (tmp_path / "study.toml").write_text('epochs = "three"\n')
    with pytest.raises(RegularkitError, match=r"holds a study.toml this version cannot read .*--fresh"):
        stored_config(tmp_path)
    assert stored_config(tmp_path / "none") is None


def test_move_aside_keeps_everything_under_a_new_name_and_never_overwrites(tmp_path):
    out = tmp_path / "study"
    assert move_aside(out) is None  # nothing there
    out.mkdir()
    assert move_aside(out) is None  # empty: nothing to keep
    names = []
    for i in range(3):
        out.mkdir(exist_ok=True)
        (out / "r.csv").write_text(str(i))
        names.append(move_aside(out))
    assert len(set(names)) == 3 and all(n.name.startswith("study.old-") for n in names)
    assert sorted((n / "r.csv").read_text() for n in names) == ["0", "1", "2"] and not out.exists()


def test_stale_temporaries_go_and_fresh_ones_stay(tmp_path):
    (tmp_path / "runs").mkdir()
    old = tmp_path / "runs" / ".seed0.json.abc.tmp"
    fresh = tmp_path / ".results.csv.def.tmp"  # a live worker may be writing this one
    kept = tmp_path / "results.csv"
    for p in (old, fresh, kept):
        p.write_text("x")
    then = time.time() - STALE_TEMP_S - 1
    os.utime(old, (then, then))
    os.utime(kept, (then, then))
    assert remove_stale_temps(tmp_path) == 1
    assert not old.exists() and fresh.exists() and kept.exists()
    assert remove_stale_temps(tmp_path, older_than=-1) == 1 and not fresh.exists()
