"""An embedded MLflow tracking + registry server for the demo and the tests.

A real `mlflow server` on a free loopback port with a SQLite backend and a local artifact store,
started in its own process group so a Ctrl-C in the terminal reaches only us and `stop()` can end
the server together with its workers. Re-using the same folder re-uses the registry.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

START_TIMEOUT_S = 90.0  # the first start migrates the SQLite schema; on 2 shared cores that takes ~15 s


class MlflowServerError(Exception):
    """The server did not come up; the message points at its log."""


def free_port() -> int:
    """A port the kernel just handed out on loopback (the server binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_process_group(process: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM the process's whole group (servers fork workers), SIGKILL what outlives `grace`."""
    if process.poll() is None:
        _signal_group(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            _signal_group(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    _signal_group(process.pid, signal.SIGKILL)  # workers the leader left behind


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def wait_http(url: str, timeout: float, process: subprocess.Popen[bytes] | None = None) -> None:
    """Poll `url` until it answers 200; fail early if `process` died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise MlflowServerError(f"process exited with code {process.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.25)
    raise MlflowServerError(f"{url} did not answer within {timeout:.0f} s")


class MlflowServer:
    """`with MlflowServer(workdir) as server:` → `server.url`; stopped on exit, also on errors."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = Path(workdir).resolve()
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.workdir / "mlflow-server.log"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = START_TIMEOUT_S) -> MlflowServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        artifacts = self.workdir / "mlflow-artifacts"
        command = [
            sys.executable, "-m", "mlflow", "server",
            "--backend-store-uri", f"sqlite:///{self.workdir / 'mlflow.db'}",
            "--default-artifact-root", artifacts.as_uri(),
            "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
        ]  # fmt: skip
        # No background job runner: it forks ~8 worker processes (GenAI jobs) that the registry never needs.
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        try:
            wait_http(f"{self.url}/health", timeout, self._process)
        except MlflowServerError as err:
            self.stop()
            raise MlflowServerError(f"MLflow server on {self.url}: {err}; see {self.log_path}") from None
        return self

    def stop(self) -> None:
        if self._process is not None:
            stop_process_group(self._process)
            self._process = None

    def __enter__(self) -> MlflowServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
