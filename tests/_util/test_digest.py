"""Content digests: a file replaced behind a restored mtime is hashed again; an unchanged one comes from the cache."""
import hashlib
import os
import shutil

import numpy as np
import pytest

from regularkit._util import digest


@pytest.fixture
def reads(tmp_path, monkeypatch):
    """Digests cached under ``tmp_path``; returns the list of files actually read (hashed)."""
    monkeypatch.setenv("REGULARKIT_DATA", str(tmp_path / "cache"))
    seen = []
    real = digest._sha256

    def counting(path):
        seen.append(path.name)
        return real(path)

    monkeypatch.setattr(digest, "_sha256", counting)
    return seen


def settled(monkeypatch):
    """Pretend the files were last changed long before they are hashed (no racy window)."""
    monkeypatch.setattr(digest, "RACY_S", -1e9)


def test_the_digest_is_the_sha256_of_the_bytes_and_an_unchanged_file_is_read_once(tmp_path, reads, monkeypatch):
    settled(monkeypatch)
    f = tmp_path / "a.npz"
    f.write_bytes(b"abc" * 1000)
    assert digest.file_digest(f) == hashlib.sha256(b"abc" * 1000).hexdigest()
    assert digest.file_digest(f) == digest.file_digest(str(f)) == hashlib.sha256(b"abc" * 1000).hexdigest()
    assert reads == ["a.npz"]  # the later calls came from the cache
    assert digest.cache_path() == tmp_path / "cache" / "digests.json" and digest.cache_path().is_file()


def test_same_size_content_behind_a_restored_mtime_is_hashed_again(tmp_path, reads):
    """Issue 23: ``cp b.npz d.npz; touch -d @1700000000 d.npz`` reused the old results."""
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    a.write_bytes(b"A" * 4096)
    b.write_bytes(b"B" * 4096)
    os.utime(a, ns=(1_700_000_000 * 10**9,) * 2)
    first = digest.file_digest(a)
    mtime = a.stat().st_mtime_ns
    shutil.copyfile(b, a)  # cp b a: same size, same inode, new bytes
    os.utime(a, ns=(mtime, mtime))  # touch -d: the mtime put back
    assert a.stat().st_size == 4096 and a.stat().st_mtime_ns == mtime
    assert digest.file_digest(a) == hashlib.sha256(b"B" * 4096).hexdigest() != first
    os.replace(b, a)  # mv onto the name: a new inode with the old times
    os.utime(a, ns=(mtime, mtime))
    assert digest.file_digest(a) == hashlib.sha256(b"B" * 4096).hexdigest()


def test_a_changed_ctime_or_inode_misses_the_cache_even_when_settled(tmp_path, reads, monkeypatch):
    settled(monkeypatch)
    f = tmp_path / "d.npz"
    f.write_bytes(b"1" * 100)
    digest.file_digest(f)
    mtime = f.stat().st_mtime_ns
    f.write_bytes(b"2" * 100)
    os.utime(f, ns=(mtime, mtime))
    entry = digest._load_cache()[str(f.resolve())]
    assert entry["size"] == f.stat().st_size and entry["mtime_ns"] == f.stat().st_mtime_ns  # what fooled the old key
    cache = digest._load_cache()
    cache[str(f.resolve())]["ctime_ns"] = f.stat().st_ctime_ns  # even a ctime that matched...
    cache[str(f.resolve())]["inode"] += 1  # ...with another inode is another file
    digest._save_cache(cache)
    assert digest.file_digest(f) == hashlib.sha256(b"2" * 100).hexdigest()
    assert reads == ["d.npz", "d.npz"]
    assert digest.file_digest(f) == hashlib.sha256(b"2" * 100).hexdigest() and len(reads) == 2  # now cached
    cache = digest._load_cache()
    cache[str(f.resolve())]["sha256"] = "stale"
    cache[str(f.resolve())]["ctime_ns"] -= 1  # all else equal, the ctime alone tells the file was touched since
    digest._save_cache(cache)
    assert digest.file_digest(f) == hashlib.sha256(b"2" * 100).hexdigest() and len(reads) == 3


def test_a_file_hashed_within_the_racy_window_is_not_trusted(tmp_path, reads, monkeypatch):
    """A write in the same clock tick as the hash keeps every stat field: such an entry is hashed again."""
    f = tmp_path / "r.npz"
    f.write_bytes(b"x" * 10)
    for _ in range(3):
        digest.file_digest(f)
    assert reads == ["r.npz"] * 3  # changed just now: every use reads it
    settled(monkeypatch)
    digest.file_digest(f)
    digest.file_digest(f)
    assert reads == ["r.npz"] * 3  # once quiet long enough, the last hash is used


def test_a_folder_digest_names_paths_and_contents_and_reads_the_cache_once(tmp_path, reads, monkeypatch):
    settled(monkeypatch)
    root = tmp_path / "imgs"
    (root / "cat").mkdir(parents=True)
    (root / "dog").mkdir()
    (root / "cat" / "1.png").write_bytes(b"c")
    (root / "dog" / "1.png").write_bytes(b"d")
    loads = []
    real_load = digest._load_cache
    monkeypatch.setattr(digest, "_load_cache", lambda: loads.append(1) or real_load())
    first = digest.tree_digest(root)
    assert len(loads) == 1 and reads == ["1.png", "1.png"]
    assert digest.path_digest(root) == first and reads == ["1.png", "1.png"]
    (root / "dog" / "1.png").rename(root / "cat" / "2.png")  # same bytes, another label: another dataset
    assert digest.tree_digest(root) != first


def test_an_unreadable_cache_is_ignored_and_a_read_only_one_still_gives_the_digest(tmp_path, reads, monkeypatch):
    f = tmp_path / "f.bin"
    f.write_bytes(b"q")
    digest.cache_path().parent.mkdir(parents=True)
    digest.cache_path().write_text("[1, 2")  # torn JSON
    assert digest.file_digest(f) == hashlib.sha256(b"q").hexdigest()
    digest.cache_path().write_text("[1, 2]")  # JSON, but not a table
    assert digest.file_digest(f) == hashlib.sha256(b"q").hexdigest()
    monkeypatch.setattr(digest, "atomic_write_json", lambda *a: (_ for _ in ()).throw(PermissionError("ro")))
    assert digest.file_digest(f) == hashlib.sha256(b"q").hexdigest()


def test_arrays_digest_covers_dtype_shape_bytes_and_extras():
    a = np.arange(6, dtype=np.int64)
    assert digest.arrays_digest([a]) == digest.arrays_digest([a.copy()])
    assert digest.arrays_digest([a]) != digest.arrays_digest([a.reshape(2, 3)])
    assert digest.arrays_digest([a]) != digest.arrays_digest([a.astype(np.int32)])
    assert digest.arrays_digest([a], "x") != digest.arrays_digest([a], "y")
