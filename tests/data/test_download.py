"""Downloads against a local HTTP server on 127.0.0.1 that serves fake files; never the real network."""
from __future__ import annotations

import hashlib
import http.server
import importlib
import socket
import subprocess
import sys
import threading
from functools import partial
from pathlib import Path

import pytest

from regularkit.data import download, load_dataset
from regularkit.data.datasets import FASHION_MNIST_FILES
from regularkit.errors import RegularkitError

# `regularkit.data.download` is the function (it shadows its module); the module holds the tables.
dl = importlib.import_module("regularkit.data.download")


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """Any code path that forgets base_url hits a closed local port, not the internet."""
    monkeypatch.setitem(dl.DEFAULT_MIRRORS, "fashion-mnist", "http://127.0.0.1:9/")
    monkeypatch.delenv("REGULARKIT_MIRROR", raising=False)


class Server:
    """A static file server in a thread; records the paths it was asked for."""

    def __init__(self, root: Path):
        self.requests: list[str] = []
        self.cut: set[str] = set()  # paths answered with a body shorter than Content-Length
        seen, cut = self.requests, self.cut

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self):
                seen.append(self.path)
                if self.path in cut:
                    self.send_response(200)
                    self.send_header("Content-Length", "1000")
                    self.end_headers()
                    self.wfile.write(b"only ten b")
                    self.close_connection = True
                    return
                super().do_GET()

            def log_message(self, *args):  # keep the test output clean
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/files"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def served(tmp_path, fake_fashion, monkeypatch):
    """Fake Fashion-MNIST files under <server>/files/, with the checksum table patched to them."""
    root = tmp_path / "www"
    (root / "files").mkdir(parents=True)
    fake_fashion(root / "files", n_train=20, n_test=10)
    md5 = {name: hashlib.md5((root / "files" / name).read_bytes()).hexdigest() for name in FASHION_MNIST_FILES}
    monkeypatch.setitem(dl.DOWNLOADS, "fashion-mnist", md5)
    server = Server(root)
    yield server, root / "files", md5
    server.close()


def test_download_verifies_and_loads(served, tmp_path, capsys):
    server, src, md5 = served
    dest = tmp_path / "dest"
    assert download("fashion-mnist", dest, base_url=server.url) == [dest / name for name in FASHION_MNIST_FILES]
    assert sorted(p.name for p in dest.iterdir()) == sorted(FASHION_MNIST_FILES)  # no temp files left
    for name in FASHION_MNIST_FILES:
        assert (dest / name).read_bytes() == (src / name).read_bytes()
    assert server.requests == [f"/files/{name}" for name in FASHION_MNIST_FILES]
    err = capsys.readouterr().err
    assert f"downloading {server.url}/train-images-idx3-ubyte.gz" in err and err.count("checksum OK") == 4
    ds = load_dataset("fashion-mnist", data_dir=dest)
    assert ds.x_train.shape == (20, 1, 28, 28)


def test_files_present_with_right_checksum_are_skipped(served, tmp_path):
    server, src, _ = served
    dest = tmp_path / "dest"
    dest.mkdir()
    for name in FASHION_MNIST_FILES[:3]:
        (dest / name).write_bytes((src / name).read_bytes())
    (dest / FASHION_MNIST_FILES[3]).write_bytes(b"stale")  # wrong checksum: fetched again
    download("fashion-mnist", dest, base_url=server.url + "/", progress=False)
    assert server.requests == [f"/files/{FASHION_MNIST_FILES[3]}"]
    assert (dest / FASHION_MNIST_FILES[3]).read_bytes() == (src / FASHION_MNIST_FILES[3]).read_bytes()
    download("fashion-mnist", dest, base_url=server.url, progress=False)
    assert len(server.requests) == 1


def test_checksum_mismatch_removes_the_bad_file_and_keeps_the_good(served, tmp_path, monkeypatch):
    server, src, md5 = served
    bad = FASHION_MNIST_FILES[2]
    monkeypatch.setitem(dl.DOWNLOADS, "fashion-mnist", {**md5, bad: "0" * 32})
    with pytest.raises(RegularkitError, match=rf"checksum mismatch for {bad} from {server.url}/{bad}: "
                                              rf"expected MD5 0{{32}}, got {md5[bad]}; the file was not kept"):
        download("fashion-mnist", tmp_path / "dest", base_url=server.url, progress=False)
    assert sorted(p.name for p in (tmp_path / "dest").iterdir()) == sorted(FASHION_MNIST_FILES[:2])


def test_http_404_names_the_url(served, tmp_path):
    server, src, _ = served
    (src / FASHION_MNIST_FILES[1]).unlink()
    with pytest.raises(RegularkitError, match=rf"could not download {server.url}/train-labels-idx1-ubyte\.gz: "
                                              r"HTTP 404"):
        download("fashion-mnist", tmp_path / "dest", base_url=server.url, progress=False)
    assert [p.name for p in (tmp_path / "dest").iterdir()] == [FASHION_MNIST_FILES[0]]


def test_connection_closed_early_is_not_a_checksum_error(served, tmp_path):
    server, _, _ = served
    server.cut.add(f"/files/{FASHION_MNIST_FILES[0]}")
    with pytest.raises(RegularkitError, match=rf"could not download {server.url}/{FASHION_MNIST_FILES[0]}: "
                                              r"connection closed after 10 of 1000 bytes"):
        download("fashion-mnist", tmp_path / "dest", base_url=server.url, progress=False)
    assert not list((tmp_path / "dest").iterdir())


def test_file_url_mirror(served, tmp_path):
    _, src, _ = served
    download("fashion-mnist", tmp_path / "dest", base_url=src.as_uri(), progress=False)
    assert sorted(p.name for p in (tmp_path / "dest").iterdir()) == sorted(FASHION_MNIST_FILES)


def test_import_stays_light():
    # `regularkit data download` must not pay for torch or scikit-learn.
    code = ("import sys, regularkit.data; from regularkit.data import download; "
            "assert callable(download); print(sorted(m for m in ('torch', 'sklearn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_mirror_from_environment(served, tmp_path, monkeypatch):
    server, _, _ = served
    monkeypatch.setenv("REGULARKIT_MIRROR", server.url)
    download("fashion-mnist", tmp_path / "dest", progress=False)
    assert len(server.requests) == 4


def test_default_destination_is_where_the_loader_looks(served, tmp_path, monkeypatch, no_fashion_anywhere):
    server, _, _ = served
    paths = download("fashion-mnist", base_url=server.url, progress=False)
    assert {p.parent for p in paths} == {tmp_path / "cache" / "regularkit" / "fashion-mnist"}
    assert len(load_dataset("fashion-mnist").y_test) == 10
    monkeypatch.setenv("REGULARKIT_DATA", str(tmp_path / "mine"))
    paths = download("fashion-mnist", base_url=server.url, progress=False)
    assert paths[0] == tmp_path / "mine" / "fashion-mnist" / FASHION_MNIST_FILES[0]


def test_connection_refused_names_the_url(tmp_path):
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(RegularkitError, match=rf"could not download http://127\.0\.0\.1:{port}/train-images"):
        download("fashion-mnist", tmp_path, base_url=f"http://127.0.0.1:{port}", progress=False, timeout=5)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("name, kwargs, message", [
    ("digits", {}, r"cannot download 'digits' \(digits ships with scikit-learn; nothing to download\); "
                   r"downloadable: fashion-mnist"),
    ("mnist", {}, r"cannot download 'mnist'; downloadable: fashion-mnist"),
    ("fashion-mnist", dict(base_url="example.org/x"), r"base_url must start with http://, https:// or file://, "
                                                      r"got 'example\.org/x'"),
    ("fashion-mnist", dict(timeout=0), r"timeout must be > 0, got 0"),
])
def test_bad_arguments(tmp_path, name, kwargs, message):
    with pytest.raises(RegularkitError, match=message):
        download(name, tmp_path, **kwargs)


def test_official_table_matches_the_published_checksums():
    # From the README of github.com/zalandoresearch/fashion-mnist ("Get the Data").
    assert dl.DOWNLOADS["fashion-mnist"] == {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    }
    assert tuple(dl.DOWNLOADS["fashion-mnist"]) == FASHION_MNIST_FILES


def test_md5sum_reference(tmp_path):
    (tmp_path / "f").write_bytes(b"abc")
    assert dl.md5sum(tmp_path / "f") == "900150983cd24fb0d6963f7d28e17f72"  # RFC 1321 test suite


def test_cli_download_then_study_on_the_downloaded_files(served, tmp_path, capsys):
    """`regularkit data download` against the local server, then a study on what it fetched."""
    from regularkit.cli import main
    server, _, _ = served
    dest = tmp_path / "cli-dest"
    assert main(["data", "download", "fashion-mnist", "--dest", str(dest), "--base-url", server.url]) == 0
    out = capsys.readouterr().out
    assert f"--data-dir {dest}" in out
    code = main(["study", "--data", "fashion-mnist", "--data-dir", str(dest), "--recipes", "baseline",
                 "--seeds", "1", "--epochs", "1", "--val-fraction", "0.5", "--out", str(tmp_path / "s"),
                 "--no-progress"])
    assert code == 0 and (tmp_path / "s" / "results.csv").exists()


def test_cli_download_bad_checksum_exits_2(served, tmp_path, capsys, monkeypatch):
    from regularkit.cli import main
    server, _, md5 = served
    monkeypatch.setitem(dl.DOWNLOADS, "fashion-mnist", {**md5, FASHION_MNIST_FILES[0]: "0" * 32})
    code = main(["data", "download", "fashion-mnist", "--dest", str(tmp_path / "d"), "--base-url", server.url])
    assert code == 2
    assert "checksum" in capsys.readouterr().err
