"""The study folder: where results may go, one configuration per folder, --fresh, stale temporaries."""
import os
import subprocess
import sys
import time

import pytest

from regularkit._util.io import _host_tag, atomic_write_text
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


# --- issue 23: names the filesystem refuses, unwritable mounts, outputs replaced by folders, temps of dead writers ---
def test_a_name_longer_than_the_filesystem_takes_is_refused_in_one_line(tmp_path):
    with pytest.raises(RegularkitError, match=r"^out '.*'\.\.\. has a name of 300 bytes; the filesystem takes 255, "
                                              r"and --fresh adds 23: use at most 232$"):
        check_folder(str(tmp_path / ("a" * 300)))
    with pytest.raises(RegularkitError, match=r"has a name of 256 bytes; the filesystem takes 255$"):
        check_folder(str(tmp_path / ("b" * 256) / "out"))
    long = tmp_path / ("c" * 232)
    assert check_folder(str(long)) == long
    long.mkdir()
    (long / "r.csv").write_text("x")
    assert move_aside(long).name.startswith("c" * 232 + ".old-")  # the room left for --fresh is enough


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc")
def test_a_folder_the_system_will_not_create_is_refused_even_for_root():
    """``os.access`` says yes to root on /proc; creating a folder there fails."""
    with pytest.raises(RegularkitError, match=r"^out '/proc/x' cannot be written: .* in '/proc'$"):
        check_folder("/proc/x")


def test_checking_a_folder_leaves_it_byte_identical(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    check_folder(str(tmp_path))
    check_folder(str(tmp_path / "new"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]  # the probe folder is gone again


@pytest.mark.parametrize("name, make, message", [
    ("results.csv", "mkdir", r"holds a folder 'results\.csv' where the study writes a file"),
    ("report.html", "mkdir", r"holds a folder 'report\.html' where the study writes a file"),
    ("study.toml", "mkdir", r"holds a folder 'study\.toml' where the study writes a file"),
    ("runs", "touch", r"holds a file 'runs' where the study keeps a folder"),
    ("runs/l2/seed0.json", "mkdir", r"holds a folder 'runs/l2/seed0\.json' where the study writes a run's record"),
])
def test_an_output_replaced_by_a_folder_or_a_file_is_refused_before_any_write(tmp_path, name, make, message):
    out = tmp_path / "o"
    out.mkdir()
    (out / name).parent.mkdir(parents=True, exist_ok=True)
    getattr(out / name, make)()
    with pytest.raises(RegularkitError, match=rf"^out '{out}' {message}; move it away, or use another --out$"):
        check_folder(str(out))
    assert check_folder(str(out), outputs=False) == out  # --artifacts: any folder will do
    assert sorted(p.name for p in out.iterdir()) == [name.split("/")[0]]


def test_the_artifacts_folder_is_checked_like_out_under_its_own_name(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(RegularkitError, match=r"^artifacts '.*f' is an existing file, not a folder$"):
        check_folder(str(tmp_path / "f"), name="artifacts", outputs=False)
    with pytest.raises(RegularkitError, match=r"^artifacts '.*f/sub' is below '.*f', which is a file$"):
        check_folder(str(tmp_path / "f" / "sub"), name="artifacts", outputs=False)


def test_a_temporary_of_a_killed_writer_goes_at_once_and_a_live_ones_stays(tmp_path):
    """Issue 23: a .tmp left by SIGKILL survived a rerun within 30 s; the writer's pid is in the name now."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    killed = tmp_path / f".results.csv.{_host_tag()}-{int(dead.stdout)}.k3j.tmp"
    live = tmp_path / f".report.html.{_host_tag()}-{os.getpid()}.a9x.tmp"
    elsewhere = tmp_path / f".data.json.{'0' * 8 if _host_tag() != '0' * 8 else '1' * 8}-1.zz.tmp"  # another host
    for p in (killed, live, elsewhere):
        p.write_text("half")
    assert remove_stale_temps(tmp_path) == 1
    assert not killed.exists() and live.exists() and elsewhere.exists()  # young: their writers may be writing
    assert remove_stale_temps(tmp_path, older_than=-1) == 2
