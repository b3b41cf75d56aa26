"""The parent side: one pytest run per mutant, in a forked child (the tests' libraries imported once) or a
fresh interpreter, killed with its whole process group on a timeout or a signal."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from mutation.pytest_side import child_main

#: the command a subprocess runner starts (``--child job.json``)
ENTRY = Path(__file__).resolve().parents[1] / "mutate.py"


# --------------------------------------------------------------------------- runners (the parent side)
class Runner:
    def __init__(self, kind: str, env: dict[str, str], log: Path):
        self.kind, self.env, self.log = kind, env, log
        self.pid: int | None = None
        self.proc: subprocess.Popen | None = None

    def preload(self, modules: list[str], package: str) -> int:
        """Fork runner: import the tests' third-party modules once (never the package under test)."""
        if self.kind != "fork":
            return 0
        n = 0
        with open(os.devnull, "w") as null:
            saved = sys.stdout, sys.stderr
            sys.stdout = sys.stderr = null
            try:
                for name in modules:
                    if name == "__main__" or name.split(".")[0] in (package, "tests", "conftest", "_helpers") \
                            or name in sys.modules:
                        continue
                    try:
                        __import__(name)
                        n += 1
                    except BaseException:  # noqa: BLE001 - a module that cannot be preloaded is loaded by the child
                        pass
            finally:
                sys.stdout, sys.stderr = saved
        if package in sys.modules:
            raise SystemExit(f"mutate: preloading the tests' libraries imported {package}; use --runner subprocess")
        return n

    def run(self, job: dict, timeout: float) -> tuple[str, int | None]:
        """('ok' | 'timeout', exit code) of one pytest run."""
        return self._fork(job, timeout) if self.kind == "fork" else self._subprocess(job, timeout)

    def _fork(self, job, timeout):
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            code = 98
            try:
                os.setpgid(0, 0)
                fd = os.open(self.log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                os.dup2(fd, 1)
                os.dup2(fd, 2)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                os.environ.update(self.env)
                sys.dont_write_bytecode = True
                code = child_main(job)
            except BaseException as exc:  # noqa: BLE001
                print(f"mutate child: {exc!r}", file=sys.stderr)
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        self.pid = pid
        deadline = time.monotonic() + timeout
        try:
            while True:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    return "ok", os.waitstatus_to_exitcode(status)
                if time.monotonic() > deadline:
                    self.stop()
                    return "timeout", None
                time.sleep(0.02)
        finally:
            self._killpg(pid)
            self.pid = None

    def _subprocess(self, job, timeout):
        job_file = self.log.with_suffix(".job.json")
        job_file.write_text(json.dumps(job))
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen([sys.executable, str(ENTRY), "--child", str(job_file)],
                                         env={**os.environ, **self.env}, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
            try:
                return "ok", self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.stop()
                return "timeout", None
            finally:
                self._killpg(self.proc.pid)
                self.proc = None

    @staticmethod
    def _killpg(pgid: int) -> None:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def stop(self) -> None:
        """Kill the running child and everything it started (its own process group); reap it."""
        if self.pid is not None:
            self._killpg(self.pid)
            try:
                os.waitpid(self.pid, 0)
            except ChildProcessError:
                pass
        if self.proc is not None:
            self._killpg(self.proc.pid)
            self.proc.wait()


# --------------------------------------------------------------------------- one module
def package_of(module: Path) -> tuple[Path, str]:
    """(the folder holding the top-level package, the package's name) of a module file."""
    top = module.parent
    while (top.parent / "__init__.py").exists():
        top = top.parent
    if not (top / "__init__.py").exists():
        raise SystemExit(f"mutate: {module} is not inside a package")
    return top.parent, top.name


def covering(cov: dict, path: str, lines: tuple[int, int]) -> list[str]:
    wanted = set(range(lines[0], lines[1] + 1))
    return [t for t, files in cov["tests"].items() if wanted & set(files.get(path, ()))]
