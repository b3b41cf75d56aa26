"""Download Fashion-MNIST's four official files, verified by their published MD5 checksums.

Only Fashion-MNIST is downloadable: scikit-learn's digits ship inside
scikit-learn, and ``.npz`` datasets are the user's own.  Each file is
streamed into a temporary file next to its target, checked against the MD5
the dataset's authors publish (README of github.com/zalandoresearch/fashion-mnist),
and only then renamed into place: an interrupted or corrupted download never
leaves a file that looks finished.  Files already present with the right
checksum are not fetched again.  Standard library only, so that
``regularkit data download`` starts fast.
"""
from __future__ import annotations

import hashlib
import os
import socket
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from regularkit._util.checks import check_positive
from regularkit.errors import RegularkitError

__all__ = ["download", "DOWNLOADS", "DEFAULT_MIRRORS", "default_data_root", "md5sum"]

#: name -> {file name: official MD5}.  Tests patch this table for their fake files.
DOWNLOADS: dict[str, dict[str, str]] = {
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
}
#: name -> base URL.  GitHub serves the repository's data/fashion folder over HTTPS;
#: the authors' S3 bucket (http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/)
#: serves the same bytes over plain HTTP and can be chosen with REGULARKIT_MIRROR.
DEFAULT_MIRRORS: dict[str, str] = {
    "fashion-mnist": "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
}
_CHUNK = 1 << 16


def default_data_root() -> Path:
    """``$REGULARKIT_DATA``, else ``$XDG_CACHE_HOME/regularkit`` (``~/.cache/regularkit``)."""
    env = os.environ.get("REGULARKIT_DATA")
    if env:
        return Path(env)
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "regularkit"


def md5sum(path: str | os.PathLike) -> str:
    """Hex MD5 of a file, read in chunks (the images file is 26 MB)."""
    digest = hashlib.md5(usedforsecurity=False)  # an identity check against a published table
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _resolve_base_url(name: str, base_url: str | None) -> str:
    url = base_url or os.environ.get("REGULARKIT_MIRROR") or DEFAULT_MIRRORS[name]
    if not url.startswith(("http://", "https://", "file://")):
        raise RegularkitError(f"base_url must start with http://, https:// or file://, got {url!r}")
    return url if url.endswith("/") else url + "/"


def _say(progress: bool, message: str, *, end: str = "\n") -> None:
    if progress:
        print(message, end=end, file=sys.stderr, flush=True)


def _fetch(url: str, target: Path, expected_md5: str, timeout: float, progress: bool) -> None:
    """Stream ``url`` into a temp file beside ``target``; rename it only if the MD5 matches."""
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    digest = hashlib.md5(usedforsecurity=False)
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response:
                    total = int(response.headers.get("Content-Length") or 0)
                    done = 0
                    for chunk in iter(lambda: response.read(_CHUNK), b""):
                        out.write(chunk)
                        digest.update(chunk)
                        done += len(chunk)
                        if total and sys.stderr.isatty():
                            _say(progress, f"\r  {target.name}: {100 * done // total:3d}%", end="")
            except urllib.error.HTTPError as exc:
                raise RegularkitError(f"could not download {url}: HTTP {exc.code} {exc.reason}") from None
            except urllib.error.URLError as exc:
                raise RegularkitError(f"could not download {url}: {exc.reason}") from None
            except (socket.timeout, TimeoutError):
                raise RegularkitError(f"could not download {url}: no answer within {timeout:g} s") from None
            except OSError as exc:  # connection reset, incomplete read, ...
                raise RegularkitError(f"could not download {url}: {exc}") from None
            if total and done != total:
                # http.client returns a short body without complaint when the server hangs up.
                raise RegularkitError(f"could not download {url}: connection closed after {done} of {total} bytes")
            out.flush()
            os.fsync(out.fileno())
        got = digest.hexdigest()
        if got != expected_md5:
            raise RegularkitError(
                f"checksum mismatch for {target.name} from {url}: expected MD5 {expected_md5}, got {got}; "
                "the file was not kept")
        os.replace(tmp, target)
    except BaseException:
        # Ctrl-C included: a partial or unverified download must not stay behind.
        Path(tmp).unlink(missing_ok=True)
        raise


def download(name: str, dest_dir: str | os.PathLike | None = None, *, base_url: str | None = None,
             timeout: float = 30, progress: bool = True) -> list[Path]:
    """Download dataset ``name`` into ``dest_dir``; return the verified files' paths.

    ``dest_dir`` defaults to ``default_data_root() / name``, where
    :func:`regularkit.data.load_dataset` looks.  ``base_url`` (else the
    ``REGULARKIT_MIRROR`` environment variable, else the official location)
    is the folder URL the file names are appended to.  Files verified earlier
    are kept if a later one fails.
    """
    if name not in DOWNLOADS:
        hint = " (digits ships with scikit-learn; nothing to download)" if name == "digits" else ""
        raise RegularkitError(
            f"cannot download {name!r}{hint}; downloadable: {', '.join(DOWNLOADS)}")
    timeout = check_positive("timeout", timeout)
    url = _resolve_base_url(name, base_url)
    dest = Path(dest_dir) if dest_dir is not None else default_data_root() / name
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RegularkitError(f"cannot create folder {dest}: {exc.strerror or exc}") from None
    paths = []
    for filename, expected in DOWNLOADS[name].items():
        target = dest / filename
        paths.append(target)
        if target.is_file() and md5sum(target) == expected:
            _say(progress, f"{target}: present, checksum OK")
            continue
        _say(progress, f"downloading {url + filename} -> {target}")
        _fetch(url + filename, target, expected, timeout, progress)
        if sys.stderr.isatty():
            _say(progress, "")  # end the \r progress line
        _say(progress, f"{target}: checksum OK")
    return paths
