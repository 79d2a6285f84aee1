"""The one place that starts or joins Ray.

Joining a cluster is checked up front, so that a bad address or a missing or wrong
auth token fails within seconds with one line, instead of Ray's minute of retries
ending in a bare ConnectionError. `ray` is imported lazily, inside the functions.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["ConnectError", "connect", "connection_info", "validate_address"]

_TOKEN_ENV_VARS = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")
_HOW_TO_SUPPLY_TOKEN = (
    "supply it with the RAY_AUTH_TOKEN environment variable, the file ~/.ray/auth_token, or %ray_init --token-file PATH"
)
_HOSTNAME = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?$")


class ConnectError(Exception):
    """One-line, user-facing reason why connecting failed (no traceback needed)."""


def validate_address(address: str | None) -> str | None:
    """Return the normalized address or raise ConnectError for a malformed one, before any connection.

    Accepts None (start a new local Ray), 'auto', 'local', 'HOST:PORT', 'ray://HOST:PORT'.
    Rejects e.g. 'foo', 'host:notaport', 'http://x', ':123', empty string, ports outside 1..65535.
    """
    if address is None:
        return None
    if not isinstance(address, str):
        raise ConnectError(f"address must be a string, not {type(address).__name__}")
    addr = address.strip()
    if addr.lower() in ("auto", "local"):
        return addr.lower()
    scheme = ""
    if "://" in addr:
        scheme, _, rest = addr.partition("://")
        if scheme.lower() != "ray":
            raise ConnectError(f"malformed address {address!r}: the only scheme allowed is ray:// (Ray Client)")
        scheme, addr = "ray://", rest
    host, port = _split_host_port(addr, address)
    return f"{scheme}{host}:{port}"


def _split_host_port(addr: str, original: str) -> tuple[str, int]:
    """Split 'host:port' or '[v6]:port' and check both parts."""
    expected = "expected auto, local, HOST:PORT or ray://HOST:PORT"
    host, sep, port_text = addr.rpartition(":")
    if not sep or not host:
        raise ConnectError(f"malformed address {original!r}: {expected}")
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ConnectError(f"malformed address {original!r}: port must be a number in 1..65535")
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise ConnectError(f"malformed address {original!r}: bad IPv6 address") from None
    elif not _HOSTNAME.match(host):
        raise ConnectError(f"malformed address {original!r}: bad host name {host!r}")
    return host, int(port_text)


def connect(
    address: str | None = None,
    *,
    num_cpus: int | None = None,
    num_gpus: int | None = None,
    namespace: str | None = None,
    runtime_env: dict | None = None,
    object_store_memory: int | None = None,
    token_file: str | None = None,
    include_dashboard: bool = False,
    log_to_driver: bool = True,
    timeout: float = 30.0,
) -> dict:
    """Start a new local Ray (address None or 'local') or join a running cluster.

    Returns {'address': <gcs address>, 'version': ray.__version__, 'local': bool}.
    Raises ConnectError with one line naming the cause; Ray is then left not
    initialized and the auth environment variables as they were.

    Side effects that persist after success, on purpose: `token_file` sets
    RAY_AUTH_TOKEN_PATH and RAY_AUTH_MODE=token and removes RAY_AUTH_TOKEN (Ray would
    prefer it over the file); joining with a token available sets RAY_AUTH_MODE=token
    unless the user set RAY_AUTH_MODE; starting a local Ray does the same (Ray itself).
    """
    addr = validate_address(address)
    import ray

    if ray.is_initialized():
        where = connection_info() or {}
        raise ConnectError(f"Ray is already connected (at {where.get('address', '?')}); shut it down first")
    joining = addr not in (None, "local")
    local_only = {
        "num_cpus": num_cpus,
        "num_gpus": num_gpus,
        "object_store_memory": object_store_memory,
    }
    given = [name for name, value in local_only.items() if value is not None]
    if joining and given:
        raise ConnectError(f"{', '.join(given)}: only for starting a new local Ray, not for joining {addr}")

    saved_env = {name: os.environ.get(name) for name in _TOKEN_ENV_VARS}
    try:
        if token_file is not None:
            _use_token_file(token_file)
        if not joining:
            return _init(
                ray,
                "could not start a local Ray",
                local=True,
                address="local",
                num_cpus=num_cpus,
                num_gpus=num_gpus,
                object_store_memory=object_store_memory,
                include_dashboard=include_dashboard,
                namespace=namespace,
                runtime_env=runtime_env,
                log_to_driver=log_to_driver,
            )
        deadline = time.monotonic() + timeout
        if addr.startswith("ray://"):
            # Ray Client: its server is not the GCS, so only check that it listens.
            _check_reachable(addr[len("ray://") :], addr, deadline)
            target = addr
        else:
            target = _resolve(addr)
            _check_reachable(target, addr, deadline)
            _check_auth(target, deadline, timeout)
        return _init(
            ray,
            f"could not connect to {addr}",
            local=False,
            address=target,
            namespace=namespace,
            runtime_env=runtime_env,
            log_to_driver=log_to_driver,
        )
    except ConnectError:
        _restore_env(saved_env)
        raise


def connection_info() -> dict | None:
    """Where the current Ray connection is, as connect() reports it; None when not connected.

    Never imports ray: if nothing imported it, nothing is connected.
    """
    if "ray" not in sys.modules:
        return None
    import ray

    if not ray.is_initialized():
        return None
    try:
        address = ray.get_runtime_context().gcs_address
    except Exception:  # a Ray Client context has no GCS address
        address = None
    node = getattr(ray._private.worker, "_global_node", None)
    return {
        "address": address,
        "version": ray.__version__,
        "local": bool(node and node.head),
    }


def _init(ray: Any, failure: str, *, local: bool, **kwargs: Any) -> dict:
    """ray.init(**kwargs); any failure becomes one line and leaves Ray shut down."""
    try:
        ctx = ray.init(**kwargs)
    except Exception as e:  # whatever the cause, the user sees one line
        _shutdown_quietly(ray)
        raise ConnectError(f"{failure}: {_first_line(e)}") from None
    except KeyboardInterrupt:
        _shutdown_quietly(ray)
        raise
    info = getattr(ctx, "address_info", None) or {}
    return {
        "address": info.get("gcs_address") or kwargs["address"],
        "version": ray.__version__,
        "local": local,
    }


def _resolve(addr: str) -> str:
    """The GCS address Ray will really dial for addr ('auto' looks for a local cluster)."""
    from ray._private import services

    try:
        target = services.canonicalize_bootstrap_address(addr)
    except ConnectionError:
        raise ConnectError(
            "no running Ray cluster found for address 'auto' (none recorded by `ray start` "
            "and RAY_ADDRESS unset); start one with `ray start --head`, or give no address "
            "to start a local Ray"
        ) from None
    except (ValueError, OSError) as e:
        raise ConnectError(f"could not resolve {addr}: {_first_line(e)}") from None
    if target is None:  # RAY_ADDRESS=local, say
        raise ConnectError(f"address {addr!r} does not name a running cluster")
    return target


def _check_reachable(host_port: str, addr: str, deadline: float) -> None:
    """A plain TCP connect, so that a dead address fails in seconds, not after Ray's retries."""
    host, _, port = host_port.rpartition(":")
    host = host.strip("[]")
    if addr == "auto":  # found via RAY_ADDRESS, `ray start`'s record, or a local raylet
        shown = f"the cluster found for 'auto' at {host_port}"
    elif addr.endswith(host_port):
        shown = addr
    else:  # Ray rewrote 127.0.0.1 to this machine's address
        shown = f"{addr} (Ray dials {host_port})"
    try:
        with socket.create_connection((host, int(port)), timeout=_remaining(deadline)):
            pass
    except socket.gaierror as e:
        raise ConnectError(f"cannot reach {shown}: unknown host ({e.strerror})") from None
    except TimeoutError:
        raise ConnectError(f"cannot reach {shown}: no answer (timed out)") from None
    except OSError as e:
        reason = e.strerror or type(e).__name__
        raise ConnectError(f"cannot reach {shown}: {reason}") from None


def _check_auth(gcs_address: str, deadline: float, timeout: float) -> None:
    """One authenticated call to the GCS, so that a missing or wrong token fails in
    milliseconds; unchecked, ray.init retries for a minute and then raises a bare
    ConnectionError."""
    from ray._raylet import AuthenticationTokenLoader
    from ray.exceptions import AuthenticationError

    loader = AuthenticationTokenLoader.instance()
    loader.reset_cache()  # the token sources may have changed since Ray last looked
    try:
        has_token = loader.has_token(ignore_auth_mode=True)
    except AuthenticationError:  # RAY_AUTH_TOKEN_PATH names an unreadable or empty file
        raise ConnectError(
            f"cannot read the auth token file RAY_AUTH_TOKEN_PATH="
            f"{os.environ.get('RAY_AUTH_TOKEN_PATH')}; {_HOW_TO_SUPPLY_TOKEN}"
        ) from None
    mode = os.environ.get("RAY_AUTH_MODE")
    if has_token and mode is None:
        # Like Ray's own ray.init('auto'): send the token we have. A cluster without
        # auth ignores it, and `ray start --head` clusters require it.
        os.environ["RAY_AUTH_MODE"] = mode = "token"
    _refresh_ray_auth_config()
    token_mode = (mode or "").lower() == "token"
    if token_mode and not has_token:
        # Ray aborts the whole process (a failed C++ check) if it dials in token mode
        # without a token, so never let it.
        raise ConnectError(f"RAY_AUTH_MODE=token but no auth token was found for {gcs_address}; {_HOW_TO_SUPPLY_TOKEN}")
    error = _probe_gcs(gcs_address, deadline, timeout)
    if error is None:
        return
    if not isinstance(error, AuthenticationError):
        raise ConnectError(f"{gcs_address} does not answer as a Ray cluster (GCS): {_first_line(error)}")
    if not has_token:
        raise ConnectError(
            f"the Ray cluster at {gcs_address} requires an auth token and none was found; {_HOW_TO_SUPPLY_TOKEN}"
        )
    if not token_mode:
        raise ConnectError(
            f"the Ray cluster at {gcs_address} requires an auth token but "
            f"RAY_AUTH_MODE={mode}; unset it or set it to 'token'"
        )
    raise ConnectError(
        f"the Ray cluster at {gcs_address} rejected the auth token from {_token_source()}; {_HOW_TO_SUPPLY_TOKEN}"
    )


def _probe_gcs(gcs_address: str, deadline: float, timeout: float) -> Exception | None:
    """Open a GCS client (it fetches the cluster id, an authenticated call); return
    its error, if any.

    Ray's client takes about 13 s to give up on a port that accepts connections but
    is not a GCS, whatever timeout it is given; it releases the GIL, so a thread
    bounds it by our deadline and is left to finish on its own.
    """
    from ray._raylet import InnerGcsClient

    outcome: list[Exception | None] = []

    def probe() -> None:
        try:
            InnerGcsClient.standalone(gcs_address, None, int(_remaining(deadline) * 1000))
            outcome.append(None)
        except Exception as e:  # handed to the calling thread
            outcome.append(e)

    thread = threading.Thread(target=probe, name="ray_magic-gcs-probe", daemon=True)
    thread.start()
    thread.join(_remaining(deadline))
    if not outcome:
        raise ConnectError(f"{gcs_address} did not answer as a Ray cluster (GCS) within {timeout:g} s")
    return outcome[0]


def _use_token_file(token_file: str) -> None:
    """Make Ray read its token from token_file, and from nowhere else."""
    path = Path(token_file).expanduser().resolve()
    try:
        ok = bool(path.read_text().strip())
    except OSError as e:
        raise ConnectError(f"cannot read token file {token_file}: {e.strerror}") from None
    if not ok:
        raise ConnectError(f"token file {token_file} is empty")
    os.environ["RAY_AUTH_TOKEN_PATH"] = str(path)
    os.environ.pop("RAY_AUTH_TOKEN", None)  # Ray prefers it over RAY_AUTH_TOKEN_PATH
    os.environ["RAY_AUTH_MODE"] = "token"


def _token_source() -> str:
    """Where Ray took the token from, in its own order of preference."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        return "the RAY_AUTH_TOKEN environment variable"
    if os.environ.get("RAY_AUTH_TOKEN_PATH"):
        return os.environ["RAY_AUTH_TOKEN_PATH"]
    return str(Path.home() / ".ray" / "auth_token")


def _refresh_ray_auth_config() -> None:
    """Ray caches RAY_AUTH_MODE and the token; make it read them again."""
    from ray._raylet import AuthenticationTokenLoader, Config

    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


def _restore_env(saved: dict[str, str | None]) -> None:
    if all(os.environ.get(name) == value for name, value in saved.items()):
        return
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    if "ray" in sys.modules:
        _refresh_ray_auth_config()


def _shutdown_quietly(ray: Any) -> None:
    with contextlib.suppress(Exception):
        ray.shutdown()


def _remaining(deadline: float) -> float:
    # Never zero or less: socket timeouts of 0 mean "do not wait" and None "block".
    return max(0.5, deadline - time.monotonic())


def _first_line(e: BaseException) -> str:
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    return lines[0] if lines else type(e).__name__
