"""ray_magic.connect against real Ray processes: a `ray start --head` cluster with
token auth, joined by driver subprocesses (a process can hold one Ray connection
at a time, and other tests may share this one's)."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ray_magic.connect import ConnectError, validate_address

REPO = Path(__file__).resolve().parents[1]
RAY_CLI = str(Path(sys.executable).with_name("ray"))
FAST = 10.0  # seconds: a refused connection, including the driver's start-up

# Connects with the JSON kwargs in argv[2], runs one tiny task, tries to connect
# again, and prints one JSON line of what happened.
DRIVER = """
import json, os, sys, time
import ray  # before timing: the import alone takes seconds on a busy machine
from ray_magic.connect import ConnectError, connect, connection_info
start = time.monotonic()
try:
    info = connect(json.loads(sys.argv[1]), **json.loads(sys.argv[2]))
except ConnectError as e:
    print(json.dumps({
        "error": str(e),
        "seconds": time.monotonic() - start,
        "initialized": ray.is_initialized(),
        "env": {k: v for k, v in os.environ.items() if k.startswith("RAY_AUTH")},
    }))
    sys.exit(0)
@ray.remote
def double(x):
    return 2 * x
result = ray.get(double.remote(21), timeout=60)
try:
    connect(None)
    again = None
except ConnectError as e:
    again = str(e)
print(json.dumps(
    {"info": info, "result": result, "again": again, "current": connection_info()}
))
ray.shutdown()
"""


@dataclass
class Cluster:
    address: str
    token: str
    home: Path  # holds .ray/auth_token, as `ray start` expects
    root: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(home: Path, **extra: str) -> dict[str, str]:
    """This environment minus anything that would pick a cluster or a token for us."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")
    }
    env.update(
        HOME=str(home),
        RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",  # bind and dial 127.0.0.1
        PYTHONPATH=str(REPO),
        **extra,
    )
    return env


def _drive(address: str | None, env: dict[str, str], **kwargs: object) -> tuple[dict, float]:
    """Run DRIVER in a fresh process; its JSON line and the wall time it took."""
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, json.dumps(address), json.dumps(kwargs)],
        env=env,
        cwd=REPO,
        check=False,  # the assertion below shows the driver's output
        capture_output=True,
        text=True,
        timeout=120,
    )
    seconds = time.monotonic() - start
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert proc.returncode == 0 and lines, f"driver failed:\n{proc.stdout}\n{proc.stderr[-3000:]}"
    return json.loads(lines[-1]), seconds


def _kill_group(proc: subprocess.Popen, home: Path) -> None:
    """End the `ray start` process group: SIGTERM, then SIGKILL (it drains for up to
    30 s). Never `ray stop`: it would kill every Ray on the machine."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(3)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # the group outlives its leader
    proc.wait(5)
    # Workers run in process groups of their own and carry the cluster's unique HOME.
    with_home = f"\0HOME={home}\0".encode()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if with_home in b"\0" + environ:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    root = Path(tempfile.mkdtemp(prefix="rmc", dir="/tmp"))  # short: socket paths
    home = root / "home"
    (home / ".ray").mkdir(parents=True)
    token = secrets.token_hex(32)
    (home / ".ray" / "auth_token").write_text(token)
    port = _free_port()
    log_path = root / "head.log"
    with open(log_path, "wb") as log:
        head = subprocess.Popen(
            [
                RAY_CLI, "start", "--head", "--block", f"--port={port}",
                "--node-ip-address=127.0.0.1", "--num-cpus=1",
                "--include-dashboard=false", f"--temp-dir={root / 't'}",
                "--object-store-memory=100000000", "--disable-usage-stats",
            ],
            # Token auth on explicitly (`ray start` turns it on only when it finds
            # a token), reading the token from this temp HOME, not the real one.
            env=_env(home, RAY_AUTH_MODE="token"),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while "Ray runtime started" not in log_path.read_text(errors="replace"):
            assert head.poll() is None, f"ray start exited:\n{log_path.read_text()}"
            assert time.monotonic() < deadline, f"ray start hung:\n{log_path.read_text()}"
            time.sleep(0.3)
        yield Cluster(f"127.0.0.1:{port}", token, home, root)
    finally:
        _kill_group(head, home)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def empty_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    return home


@pytest.mark.parametrize(
    ("address", "normalized"),
    [
        (None, None),
        ("auto", "auto"),
        (" AUTO ", "auto"),
        ("local", "local"),
        ("127.0.0.1:6379", "127.0.0.1:6379"),
        ("head-node.example.com:1", "head-node.example.com:1"),
        ("localhost:65535", "localhost:65535"),
        ("[::1]:6379", "[::1]:6379"),
        ("ray://127.0.0.1:10001", "ray://127.0.0.1:10001"),
        ("RAY://head:10001", "ray://head:10001"),
    ],
)
def test_validate_address_accepts(address: str | None, normalized: str | None) -> None:
    assert validate_address(address) == normalized


@pytest.mark.parametrize(
    "address",
    [
        "",
        "   ",
        "foo",
        "host:notaport",
        "http://x",
        "http://x:80",
        ":123",
        "host:0",
        "host:65536",
        "host:-1",
        "host:",
        "ray://",
        "ray://:10001",
        "ray://host",
        "bad host:6379",
        "[not-ipv6]:6379",
        "::1:6379",
    ],
)
def test_validate_address_rejects(address: str) -> None:
    with pytest.raises(ConnectError) as err:
        validate_address(address)
    assert "\n" not in str(err.value)


def test_import_does_not_import_ray() -> None:
    code = "import sys, ray_magic.connect; assert 'ray' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=60)


def test_unreachable_address_fails_fast(empty_home: Path) -> None:
    out, seconds = _drive(f"127.0.0.1:{_free_port()}", _env(empty_home))
    assert "cannot reach 127.0.0.1:" in out["error"]
    assert "\n" not in out["error"] and seconds < FAST


def test_auto_unreachable_fails_fast(empty_home: Path) -> None:
    port = _free_port()
    out, seconds = _drive("auto", _env(empty_home, RAY_ADDRESS=f"127.0.0.1:{port}"))
    assert out["error"].startswith(f"cannot reach the cluster found for 'auto' at 127.0.0.1:{port}")
    assert seconds < FAST


def test_local_options_rejected_when_joining(empty_home: Path) -> None:
    out, _ = _drive("127.0.0.1:1", _env(empty_home), num_cpus=2)
    assert "num_cpus" in out["error"]


def test_not_a_gcs_fails_within_timeout(empty_home: Path) -> None:
    # The kernel accepts connections on a listening socket; nothing ever answers.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        out, _ = _drive(address, _env(empty_home), timeout=3)
    assert out["error"] == f"{address} did not answer as a Ray cluster (GCS) within 3 s"
    assert out["seconds"] < 4.5  # Ray's own client would take about 13 s


def test_start_local(empty_home: Path) -> None:
    out, _ = _drive(None, _env(empty_home), num_cpus=1)
    assert out["result"] == 42
    assert out["info"]["local"] is True
    assert out["info"]["version"].startswith("2.")
    assert out["current"] == out["info"]
    assert out["again"].startswith("Ray is already connected (at 127.0.0.1:")


def test_failed_init_leaves_ray_down(cluster: Cluster) -> None:
    # Ray connects before it checks runtime_env, so this fails half-way.
    out, _ = _drive(cluster.address, _env(cluster.home), runtime_env={"pip": 5})
    assert out["error"].startswith(f"could not connect to {cluster.address}: runtime_env['pip']")
    assert out["initialized"] is False
    assert out["env"] == {}  # RAY_AUTH_MODE=token, set to send the token, is undone


def test_join_with_token_in_home(cluster: Cluster) -> None:
    out, _ = _drive(cluster.address, _env(cluster.home))
    assert out["result"] == 42
    assert out["info"]["address"] == cluster.address
    assert out["info"]["local"] is False
    assert out["current"] == out["info"]


def test_auto_follows_ray_address(cluster: Cluster) -> None:
    out, _ = _drive("auto", _env(cluster.home, RAY_ADDRESS=cluster.address))
    assert out["result"] == 42 and out["info"]["address"] == cluster.address


def test_missing_token_fails_fast(cluster: Cluster, empty_home: Path) -> None:
    out, seconds = _drive(cluster.address, _env(empty_home))
    assert "requires an auth token and none was found" in out["error"]
    assert "RAY_AUTH_TOKEN" in out["error"] and "--token-file" in out["error"]
    assert seconds < FAST


def test_missing_token_in_token_mode_fails_fast(cluster: Cluster, empty_home: Path) -> None:
    # Unguarded, Ray aborts the whole process here (a failed C++ check).
    out, seconds = _drive(cluster.address, _env(empty_home, RAY_AUTH_MODE="token"))
    assert "no auth token was found" in out["error"] and seconds < FAST


def test_wrong_token_fails_fast(cluster: Cluster) -> None:
    env = _env(cluster.home, RAY_AUTH_TOKEN="wrong" + cluster.token[5:])
    out, seconds = _drive(cluster.address, env)
    assert "rejected the auth token from the RAY_AUTH_TOKEN environment variable" in out["error"]
    assert seconds < FAST


def test_token_file(cluster: Cluster, empty_home: Path, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    shutil.copy(cluster.home / ".ray" / "auth_token", token_file)
    # The file wins over a wrong RAY_AUTH_TOKEN, which Ray itself would prefer.
    env = _env(empty_home, RAY_AUTH_TOKEN="wrong")
    out, _ = _drive(cluster.address, env, token_file=str(token_file))
    assert out["result"] == 42


def test_missing_token_file(cluster: Cluster, empty_home: Path, tmp_path: Path) -> None:
    out, _ = _drive(cluster.address, _env(empty_home), token_file=str(tmp_path / "nope"))
    assert out["error"].startswith("cannot read token file")
