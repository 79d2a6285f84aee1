"""Cluster, node and running-task state read from the GCS, without the dashboard.

The panel's only live reads of Ray state: `ray.nodes()` for the node table, each
live node's available resources for what is in use, and the GCS's task events
for which pending tasks have started and where. Reads are cached (`every`
seconds), so a panel refreshing twice a second asks the GCS at most once a second
for nodes and less often for tasks. Node snapshots are plain frozen data:
comparing two tells whether to redraw.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .session import is_connected

# Resources the panel shows, by Ray's resource name.
CPU, GPU, MEMORY, OBJECT_STORE = "CPU", "GPU", "memory", "object_store_memory"
SHOWN = (CPU, GPU, MEMORY, OBJECT_STORE)


@dataclass(frozen=True)
class NodeState:
    node_id: str
    address: str  # host:port of its raylet
    alive: bool
    is_head: bool
    total: tuple[tuple[str, float], ...]  # the SHOWN resources, as (name, amount)
    used: tuple[tuple[str, float], ...]  # total minus available; empty when unknown

    def amount(self, name: str) -> float:
        return dict(self.total).get(name, 0.0)

    def in_use(self, name: str) -> float | None:
        used = dict(self.used)
        return used.get(name) if used else None


@dataclass(frozen=True)
class ClusterState:
    """One read of the cluster; `connected` False when Ray is not (or no longer) there."""

    connected: bool
    address: str = ""
    version: str = ""
    nodes: tuple[NodeState, ...] = ()
    error: str | None = None  # why the last read failed, if it did
    read_at: float = field(default=0.0, compare=False)

    @property
    def alive(self) -> int:
        return sum(1 for node in self.nodes if node.alive)

    def total(self, name: str) -> float:
        """Sum over live nodes: a dead node's resources leave the totals."""
        return sum(node.amount(name) for node in self.nodes if node.alive)

    def in_use(self, name: str) -> float | None:
        values = [node.in_use(name) for node in self.nodes if node.alive]
        if not values or any(v is None for v in values):
            return None
        return sum(values)

    def counts(self) -> dict:
        """The numbers the panel's first text line shows, as plain data."""
        return {
            "connected": self.connected,
            "address": self.address,
            "ray_version": self.version,
            "nodes_alive": self.alive,
            "nodes": len(self.nodes),
            "cpus": self.total(CPU),
            "gpus": self.total(GPU),
        }


DISCONNECTED = ClusterState(connected=False)


def _shown(resources: dict) -> tuple[tuple[str, float], ...]:
    return tuple((name, float(resources.get(name, 0.0))) for name in SHOWN)


def read_cluster() -> ClusterState:
    """Read nodes and per-node use from the GCS now (a few ms); never raises."""
    if not is_connected():
        return DISCONNECTED
    import ray

    try:
        address = ray.get_runtime_context().gcs_address or ""
        raw_nodes = ray.nodes()
    except Exception as err:  # the GCS went away between the check and the read
        if not is_connected():
            return DISCONNECTED
        return ClusterState(connected=True, error=f"{type(err).__name__}: {err}", read_at=time.time())
    try:
        available = ray._private.state.available_resources_per_node()
    except Exception:  # e.g. Ray Client (ray://): per-node use is not offered there
        available = None
    nodes = []
    for raw in raw_nodes:
        node_id = raw.get("NodeID", "")
        alive = bool(raw.get("Alive"))
        total = _shown(raw.get("Resources") or {})
        used: tuple[tuple[str, float], ...] = ()
        if alive and available is not None and node_id in available:
            free = available[node_id]
            used = tuple((name, max(0.0, amount - float(free.get(name, 0.0)))) for name, amount in total)
        nodes.append(NodeState(
            node_id=node_id,
            address=f"{raw.get('NodeManagerAddress', '?')}:{raw.get('NodeManagerPort', '?')}",
            alive=alive,
            is_head="node:__internal_head__" in (raw.get("Resources") or {}),
            total=total,
            used=used,
        ))
    # Live nodes first, then by address: rows keep their places between reads.
    nodes.sort(key=lambda n: (not n.alive, not n.is_head, n.address, n.node_id))
    return ClusterState(connected=True, address=address, version=ray.__version__, nodes=tuple(nodes),
                        read_at=time.time())


class ClusterReader:
    """Caches `read_cluster()` for `every` seconds."""

    def __init__(self, every: float = 1.0) -> None:
        self.every = every
        self.state: ClusterState = DISCONNECTED
        self.reads = 0  # GCS reads so far (tests check that idle refreshes do not read)
        self._read_at = float("-inf")
        self._lock = threading.Lock()

    def read(self, force: bool = False) -> ClusterState:
        with self._lock:
            now = time.monotonic()
            if not is_connected():
                self.state, self._read_at = DISCONNECTED, float("-inf")
            elif force or now - self._read_at >= self.every or not self.state.connected:
                self.state, self._read_at = read_cluster(), now
                self.reads += 1
            return self.state


# TaskStatus values (ray.core.generated.common_pb2) in the GCS's task events.
_RUNNING_STATUSES = (8, 9, 10)  # RUNNING, RUNNING_IN_RAY_GET, RUNNING_IN_RAY_WAIT
_ENDED_STATUSES = (11, 12)  # FINISHED, FAILED


def read_running_tasks() -> dict[str, str]:
    """Task id -> node id (hex) of the tasks running now, from the GCS's task events.

    The GCS hands over its whole (bounded) history of task events each time, so
    callers poll this slowly (`RunningTasks`).
    """
    import ray

    latest: dict[bytes, Any] = {}
    for event in ray._private.state.state._get_all_task_events():
        seen = latest.get(event.task_id)
        if seen is None or event.attempt_number >= seen.attempt_number:
            latest[event.task_id] = event
    running = {}
    for task_id, event in latest.items():
        statuses = event.state_updates.state_ts_ns
        if any(s in statuses for s in _ENDED_STATUSES) or not any(s in statuses for s in _RUNNING_STATUSES):
            continue
        node = event.state_updates.node_id or event.task_info.node_id
        running[task_id.hex()] = node.hex()
    return running


class RunningTasks:
    """Which tasks run where, read at most every `every` seconds and only while asked for.

    A read costs in proportion to the GCS's task history, so the pause after each
    read is a hundred times its cost (reading takes at most ~1% of the thread), and
    once one read takes longer than `give_up_after` the panel goes without (until
    Ray is started again): submission must stay as cheap as plain Ray's.
    """

    def __init__(self, every: float = 2.0, give_up_after: float = 1.0) -> None:
        self.every = every
        self.give_up_after = give_up_after
        self.running: dict[str, str] = {}
        self.version = 0  # bumped when `running` changed
        self.given_up = False
        self._next = float("-inf")

    def read(self, wanted: bool) -> dict[str, str]:
        if not is_connected():
            self.given_up = False  # a new Ray starts with a short history
        if not wanted or self.given_up or not is_connected():
            self._set({})
            self._next = float("-inf")
            return self.running
        now = time.monotonic()
        if now < self._next:
            return self.running
        try:
            running = read_running_tasks()
        except Exception:  # e.g. task events served only by a dashboard: go without
            running, cost = {}, 30.0
        else:
            cost = time.monotonic() - now
            self.given_up = cost > self.give_up_after
        self._next = now + max(self.every, 100 * cost)
        self._set(running)
        return self.running

    def _set(self, running: dict[str, str]) -> None:
        if running != self.running:
            self.running = running
            self.version += 1
