"""Atomic writes and the figure helper: a failed write leaves the old file and no temp file."""
import os
import re
import subprocess
import sys

import matplotlib.pyplot as plt
import pytest

from regularkit._util.io import (
    _host_tag,
    atomic_savefig,
    atomic_write,
    atomic_write_json,
    atomic_write_text,
    figure,
    temp_writer_alive,
)


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    path = atomic_write_text(tmp_path / "a.txt", "old")

    def boom(f):
        f.write(b"partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, boom)
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_json_is_sorted_and_handles_arrays_paths_sets(tmp_path):
    import numpy as np
    path = atomic_write_json(tmp_path / "d.json", {"b": np.arange(2), "a": tmp_path, "c": {2, 1}})
    assert path.read_text() == '{\n  "a": "%s",\n  "b": [\n    0,\n    1\n  ],\n  "c": [\n    1,\n    2\n  ]\n}\n' % tmp_path


def test_figure_is_off_pyplot_and_saves_png(tmp_path):
    before = plt.get_fignums()
    fig = figure(3, 2)
    fig.add_subplot().plot([0, 1], [1, 0])
    path = atomic_savefig(fig, tmp_path / "f.png", dpi=50)
    assert plt.get_fignums() == before  # never registered with pyplot: nothing to close, nothing leaks
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert tuple(fig.get_size_inches()) == (3, 2)


def test_files_follow_the_umask_not_mkstemps_0600(tmp_path):
    import os
    import stat

    from regularkit._util import io
    path = atomic_write_text(tmp_path / "r.txt", "x")
    assert stat.S_IMODE(path.stat().st_mode) == io.FILE_MODE == 0o666 & ~io._umask()
    old = os.umask(0o027)
    try:
        assert io._umask() == 0o027
    finally:
        os.umask(old)


def test_a_temp_file_names_its_writer_so_a_killed_ones_is_known(tmp_path, monkeypatch):
    seen = []
    real = os.replace

    def spy(src, dst):
        seen.append(os.path.basename(src))
        assert temp_writer_alive(src) is True  # this process, writing it
        real(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    atomic_write_text(tmp_path / "r.csv", "x")
    assert re.fullmatch(rf"\.r\.csv\.{_host_tag()}-{os.getpid()}\.[^.]+\.tmp", seen[0])
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    assert temp_writer_alive(tmp_path / f".r.csv.{_host_tag()}-{int(dead.stdout)}.ab.tmp") is False
    other = "f" * 8 if _host_tag() != "f" * 8 else "e" * 8
    assert temp_writer_alive(f".r.csv.{other}-{os.getpid()}.ab.tmp") is None  # another machine: cannot tell
    assert temp_writer_alive(".r.csv.abc123.tmp") is None  # an older version's name
