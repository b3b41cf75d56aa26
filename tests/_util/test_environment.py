"""``_util.environment``: what every result records about where it was made (versions, machine, git revision)."""
import platform
import subprocess

import pytest
import torch

from regularkit._util import environment as env


def git(cwd, *args):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(cwd), *args], check=True,
                   capture_output=True)


def test_git_revision_is_the_commit_and_says_dirty_when_a_tracked_file_changed(tmp_path):
    git(tmp_path, "init", "-q")
    (tmp_path / "a.txt").write_text("one\n")
    git(tmp_path, "add", "a.txt")
    git(tmp_path, "commit", "-q", "-m", "first")
    head = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()
    assert env.git_revision(tmp_path) == head and len(head) == 40
    (tmp_path / "untracked.txt").write_text("ignored\n")  # untracked files do not make it dirty
    assert env.git_revision(tmp_path) == head
    (tmp_path / "a.txt").write_text("two\n")
    assert env.git_revision(tmp_path) == head + "-dirty"


def test_git_revision_outside_a_repository_is_unknown(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert env.git_revision(tmp_path) == "unknown"


def test_cpu_model_is_the_model_name_line_of_cpuinfo():
    try:
        text = open("/proc/cpuinfo", encoding="utf-8", errors="replace").read()
    except OSError:
        pytest.skip("no /proc/cpuinfo here")
    names = [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")]
    assert env.cpu_model() == (names[0] if names else platform.processor() or platform.machine())


def test_environment_records_versions_threads_and_a_missing_package_as_none(monkeypatch):
    monkeypatch.setattr(env, "_PACKAGES", ("torch", "no-such-package-regularkit-test"))
    record = env.environment()
    assert record["versions"] == {"torch": torch.__version__, "no-such-package-regularkit-test": None}
    assert record["machine"]["torch_threads"] == torch.get_num_threads()
    assert record["python"] == platform.python_version()
    assert set(record) == {"python", "versions", "machine", "git_revision"}
