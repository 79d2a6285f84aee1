"""Helpers for tests that drive real frontends: a Jupyter server, and cleanup by marker.

Every process these tests start (the server, its kernels, the Ray that a kernel
starts, and that Ray's workers) inherits RAY_MAGIC_TEST_MARKER from the
environment. At the end the tests end exactly those processes: first politely
(kernels shut down through the server, the server by its process group), then
whatever still carries the marker. Nothing else on the machine is touched.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

MARKER_VAR = "RAY_MAGIC_TEST_MARKER"


def new_marker() -> str:
    return f"{MARKER_VAR}={uuid.uuid4().hex}"


def marked_env(marker: str, **extra: str) -> dict:
    """The environment for processes this test starts, tagged with its marker."""
    env = dict(os.environ)
    name, value = marker.split("=", 1)
    env[name] = value
    env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    env.update(extra)
    return env


def marked_pids(marker: str) -> list[int]:
    """Processes whose environment carries the marker (ours, and only ours)."""
    needle = marker.encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:  # gone, or not ours to read
            continue
        if needle in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def end_marked(marker: str, grace: float = 10.0) -> list[int]:
    """SIGTERM what still carries the marker, then SIGKILL; returns the pids it had to signal."""
    pids = marked_pids(marker)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
            time.sleep(0.2)
    return pids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout: float, what: str, every: float = 0.5):
    """Poll until predicate() returns something truthy; fail naming `what`."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as err:  # e.g. the server not listening yet
            last_error = err
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}" +
                         (f" (last error: {last_error!r})" if last_error else ""))


class JupyterServer:
    """One Jupyter server (JupyterLab and Notebook 7 both served) in its own process group."""

    def __init__(self, root: Path, marker: str) -> None:
        self.root = root
        self.marker = marker
        self.port = free_port()
        self.token = uuid.uuid4().hex
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = root.parent / "jupyter-server.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 90) -> None:
        home = self.root.parent
        env = marked_env(
            self.marker,
            JUPYTER_CONFIG_DIR=str(home / "config"),
            JUPYTER_RUNTIME_DIR=str(home / "runtime"),
            JUPYTER_DATA_DIR=str(home / "data"),  # extensions still come from the venv's share/jupyter
            IPYTHONDIR=str(home / "ipython"),
            JUPYTER_PLATFORM_DIRS="1",
        )
        cmd = [
            sys.executable, "-m", "jupyterlab",
            "--ip=127.0.0.1", f"--port={self.port}", "--ServerApp.port_retries=0",
            "--no-browser", "--allow-root", f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}",
            "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ]
        log = open(self.log_path, "wb")  # the server writes to it for its lifetime
        self.proc = subprocess.Popen(cmd, cwd=self.root, env=env, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        wait_until(lambda: self.proc.poll() is None and self.api("status") is not None, timeout,
                   f"the Jupyter server on port {self.port} (log: {self.log_path})")

    def api(self, path: str, method: str = "GET"):
        request = urllib.request.Request(f"{self.url}/api/{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else {}

    def session_for(self, notebook: str) -> dict | None:
        for session in self.api("sessions"):
            if session.get("path") == notebook:
                return session
        return None

    def kernel_ready(self, notebook: str) -> bool:
        """The notebook's kernel is idle and a frontend is connected to it."""
        session = self.session_for(notebook)
        kernel = (session or {}).get("kernel") or {}
        return kernel.get("execution_state") == "idle" and kernel.get("connections", 0) >= 1

    def shutdown_kernels(self, timeout: float = 30) -> None:
        """Shut every kernel down through the server: the kernel's Ray ends with it."""
        for kernel in self.api("kernels"):
            try:
                self.api(f"kernels/{kernel['id']}", method="DELETE")
            except Exception:
                pass
        try:
            wait_until(lambda: not self.api("kernels"), timeout, "kernels to shut down")
        except AssertionError:
            pass

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            self.shutdown_kernels()
        except Exception:
            pass
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(timeout=10)
                break
            except subprocess.TimeoutExpired:
                continue
        self.proc = None
