"""Make tests/search/search_objectives.py importable, here and in spawned search workers.

The suite runs with ``--import-mode=importlib``, which leaves ``sys.path`` alone;
worker processes started with "spawn" unpickle the objectives by module name and
inherit the parent's ``sys.path``, so the folder goes on it once, here.
"""
import sys
from pathlib import Path

_HERE = str(Path(__file__).parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)


import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_url():
    """A throw-away PostgreSQL server on 127.0.0.1, or a skip that says what is missing."""
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        pytest.skip("PostgreSQL test skipped: psycopg2 is not importable (pip install psycopg2-binary)")
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb")) or [shutil.which("initdb")]
    if not found[-1]:
        pytest.skip("PostgreSQL test skipped: no initdb (Debian: apt-get install postgresql)")
    bindir = os.path.dirname(found[-1])
    root = tempfile.mkdtemp(prefix="regularkit-pg-")
    as_user = {}
    if os.geteuid() == 0:  # postgres refuses to run as root: hand the folder to 'nobody'
        nobody = pwd.getpwnam("nobody")
        os.chmod(root, 0o755)
        os.chown(root, nobody.pw_uid, nobody.pw_gid)
        as_user = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
    data, port = os.path.join(root, "data"), _free_port()
    pg_ctl = os.path.join(bindir, "pg_ctl")
    try:
        subprocess.run([os.path.join(bindir, "initdb"), "-D", data, "-U", "regularkit", "--auth=trust"],
                       check=True, capture_output=True, cwd=root, **as_user)
        subprocess.run([pg_ctl, "-D", data, "-l", os.path.join(root, "server.log"), "-w", "-o",
                        f"-p {port} -k {root} -c listen_addresses=127.0.0.1", "start"],
                       check=True, capture_output=True, cwd=root, **as_user)
    except (subprocess.CalledProcessError, OSError) as exc:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"PostgreSQL test skipped: could not start a server: {exc}")
    yield f"postgresql+psycopg2://regularkit@127.0.0.1:{port}/postgres"
    subprocess.run([pg_ctl, "-D", data, "-m", "immediate", "stop"], capture_output=True, cwd=root, **as_user)
    shutil.rmtree(root, ignore_errors=True)
