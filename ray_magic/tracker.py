"""The record of every future, actor and dataset run the notebook made.

Submission (main thread) only appends; `poll()` (the refresher's background
thread) moves futures along. A record holds its ObjectRef only while the task is
pending, never an actor handle (a weak reference) or a dataset, so tracking
keeps nothing alive. A finished record is a few small fields.
"""
from __future__ import annotations

import collections
import time
import weakref
from typing import Any

PENDING, RUNNING, FINISHED, FAILED, CANCELLED = "pending", "running", "finished", "failed", "cancelled"
DONE_STATES = (FINISHED, FAILED, CANCELLED)
ALIVE, RESTARTING, DEAD = "alive", "restarting", "dead"

# Ray's ErrorType values as they appear in an object's metadata (common.proto).
_CANCELLED_METADATA = b"5"
_IN_PLASMA_METADATA = b"4"


class FutureRecord:
    """One submitted task or actor call.

    The label may arrive as (name, small scalar args) and is formatted only when
    shown, and the task id is read from the ref only when asked: submission stays cheap.
    """

    __slots__ = (
        "ref", "_label", "cell", "actor", "submitted", "ended", "state", "error", "size", "_task_id", "__weakref__",
    )

    def __init__(self, ref: Any, label: str | tuple, cell: int | None, actor: ActorRecord | None = None) -> None:
        self.ref = ref  # dropped as soon as the task is done
        self._label = label
        self.cell = cell
        self.actor = actor
        self.submitted = time.time()
        self.ended: float | None = None
        self.state = PENDING
        self.error: str | None = None
        self.size: int | None = None  # bytes of an inlined result, known without deserializing
        self._task_id: str | None = None

    @property
    def label(self) -> str:
        if isinstance(self._label, tuple):
            name, args = self._label
            self._label = f"{name}({', '.join(_short_number(a) for a in args)})"
        return self._label

    @property
    def task_id(self) -> str | None:
        """Hex id of the task; known while it is pending (the panel needs it only then)."""
        if self._task_id is None and self.ref is not None:
            self._task_id = self.ref.task_id().hex()
        return self._task_id

    @property
    def duration(self) -> float:
        return (self.ended or time.time()) - self.submitted

    def __repr__(self) -> str:
        return f"<future {self.label} {self.state}>"


def _short_number(value: Any) -> str:
    try:
        text = repr(value)
    except ValueError:  # an int too long to print
        return "int"
    return text if len(text) <= 24 else text[:21] + "..."


class CellStats:
    """Counts of the futures one cell submitted: what its progress line shows."""

    __slots__ = ("cell", "total", "finished", "failed", "cancelled")

    def __init__(self, cell: int | None) -> None:
        self.cell = cell
        self.total = self.finished = self.failed = self.cancelled = 0

    @property
    def done(self) -> int:
        return self.finished + self.failed + self.cancelled

    @property
    def pending(self) -> int:
        return self.total - self.done


class ActorRecord:
    """One actor created through the magics; the handle is held weakly."""

    def __init__(self, handle: Any, class_name: str, name: str | None, cell: int | None) -> None:
        self.actor_id = handle._actor_id.hex()
        self._handle = weakref.ref(handle)
        self.class_name = class_name
        self.name = name
        self.cell = cell
        self.state = ALIVE
        self.calls_done = 0
        self.calls_submitted = 0
        self.pid: int | None = None
        self.last_cell = cell  # where its prints go: the cell that called it last

    @property
    def handle(self) -> Any:
        return self._handle()

    @property
    def calls_pending(self) -> int:
        return self.calls_submitted - self.calls_done

    def __repr__(self) -> str:
        return f"<actor {self.class_name} {self.name or ''} {self.state}>"


class Tracker:
    """Futures, actors and dataset runs, with counts the panel and status() read."""

    def __init__(self) -> None:
        self.futures: list[FutureRecord] = []
        self.cells: dict[int | None, CellStats] = {}
        self.actors: dict[str, ActorRecord] = {}
        self.datasets: list[Any] = []
        self._incoming: collections.deque[FutureRecord] = collections.deque()
        self._pending: list[FutureRecord] = []
        self.counts = {PENDING: 0, FINISHED: 0, FAILED: 0, CANCELLED: 0}
        self.version = 0  # bumped whenever something changes: views redraw only then
        self.connection: str | None = None  # session.connection_key() of the Ray the records belong to

    # --- submission side (main thread) -------------------------------------------------
    def add_future(self, ref: Any, label: str, cell: int | None, actor: ActorRecord | None = None) -> FutureRecord:
        record = FutureRecord(ref, label, cell, actor)
        stats = self.cells.get(cell)
        if stats is None:
            stats = self.cells[cell] = CellStats(cell)
        stats.total += 1
        if actor is not None:
            actor.calls_submitted += 1
            actor.last_cell = cell
        self.futures.append(record)
        self._incoming.append(record)
        return record

    def add_actor(self, handle: Any, class_name: str, name: str | None, cell: int | None) -> ActorRecord:
        record = ActorRecord(handle, class_name, name, cell)
        self.actors[record.actor_id] = record
        self.version += 1
        return record

    def add_dataset_run(self, run: Any) -> None:
        self.datasets.append(run)
        self.version += 1

    # --- refresher side (one background thread) ----------------------------------------
    def poll(self) -> list[FutureRecord]:
        """Move finished futures to their final state; returns the records that changed.

        Costs in proportion to what is pending, not to history.
        """
        while self._incoming:
            self._pending.append(self._incoming.popleft())
        if not self._pending:
            return []
        import ray

        refs = [r.ref for r in self._pending]
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0, fetch_local=False)
        if not ready:
            return []
        ready_ids = {ref.binary() for ref in ready}
        done = [r for r in self._pending if r.ref.binary() in ready_ids]
        self._pending = [r for r in self._pending if r.ref.binary() not in ready_ids]
        self._classify(done)
        return done

    def _classify(self, records: list[FutureRecord]) -> None:
        """Set finished / failed / cancelled from each result's metadata, without fetching values."""
        import ray

        core_worker = ray._private.worker.global_worker.core_worker
        # timeout 0: reads what is already in this process's memory store; values in
        # the object store come back empty and are not pulled.
        objects = core_worker.get_objects([r.ref for r in records], 0)
        now = time.time()
        for record, obj in zip(records, objects):
            data, metadata = obj[0], obj[1]
            state = FINISHED
            if metadata is not None and metadata.isdigit() and metadata != _IN_PLASMA_METADATA:
                state = CANCELLED if metadata == _CANCELLED_METADATA else FAILED
            if state == FAILED:
                record.error = _error_summary(record.ref)
            elif state == FINISHED and data is not None:
                record.size = len(data)
            self._finish(record, state, now)

    def _finish(self, record: FutureRecord, state: str, now: float) -> None:
        record.state = state
        record.ended = now
        record.ref = None  # the tracker never keeps a finished object alive
        stats = self.cells[record.cell]
        setattr(stats, state, getattr(stats, state) + 1)
        self.counts[state] += 1
        if record.actor is not None:
            record.actor.calls_done += 1
        self.version += 1

    def pending_records(self) -> list[FutureRecord]:
        return list(self._pending) + list(self._incoming)

    def update_actor_states(self) -> None:
        """Read each live actor's state from the GCS (no dashboard needed)."""
        import ray

        for record in list(self.actors.values()):
            if record.state == DEAD:
                continue
            try:
                info = ray._private.state.actors(actor_id=record.actor_id)
            except Exception:  # GCS gone or actor unknown yet: try next tick
                continue
            state = {"ALIVE": ALIVE, "RESTARTING": RESTARTING, "DEAD": DEAD}.get(info.get("State", ""), record.state)
            pid = info.get("Pid") or None
            if state != record.state or pid != record.pid:
                record.state, record.pid = state, pid
                self.version += 1

    # --- reading -----------------------------------------------------------------------
    def status(self) -> dict:
        """Counts as plain data: futures by state, actors by state, datasets."""
        pending = sum(s.pending for s in self.cells.values())
        actors = {ALIVE: 0, RESTARTING: 0, DEAD: 0}
        for record in list(self.actors.values()):
            actors[record.state] += 1
        return {
            "futures": {
                PENDING: pending,
                FINISHED: self.counts[FINISHED],
                FAILED: self.counts[FAILED],
                CANCELLED: self.counts[CANCELLED],
            },
            "actors": actors,
            "datasets": len(self.datasets),
        }

    def actor_for_pid(self, pid: int) -> ActorRecord | None:
        for record in list(self.actors.values()):
            if record.pid == pid:
                return record
        return None

    def reset(self) -> None:
        """Forget everything (on connecting to another Ray: the old records mean nothing there)."""
        self.__init__()

    def abandon(self) -> None:
        """Ray is shutting down: what is still pending is lost. Keep the records, drop the refs,
        so a saved notebook's panel still shows how things ended."""
        now = time.time()
        for record in self.pending_records():
            record.error = "Ray was shut down"
            self._finish(record, CANCELLED, now)
        self._incoming.clear()
        self._pending = []
        for actor in self.actors.values():
            actor.state = DEAD
        self.version += 1


def _error_summary(ref: Any) -> str:
    """The one-line cause of a failed task; the error object is small and local."""
    import ray

    try:
        ray.get(ref, timeout=0)
    except Exception as err:  # the task's own exception, wrapped by Ray
        cause = getattr(err, "cause", None) or err
        text = f"{type(cause).__name__}: {cause}" if cause is not err else str(err).strip().splitlines()[-1]
        return text.strip().splitlines()[0][:300] if text.strip() else type(cause).__name__
    return "failed"


tracker = Tracker()
