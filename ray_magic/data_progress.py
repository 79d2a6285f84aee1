"""Per-operator progress of Ray Data executions started by the magics.

Ray Data picks a progress manager per execution through
``ray.data._internal.progress.get_progress_manager``, which
``ray.data._internal.execution.streaming_executor`` imports by name. We replace
that name once with a factory that looks at a context variable: inside
``track_executions(run)`` it returns a manager that writes into ``run`` and
prints nothing; everywhere else it returns exactly what Ray would have.

A filter on the console handlers of the ``ray.data`` logger also drops, for
tracked executions only, the INFO lines Ray Data logs around each run
("Starting execution of Dataset ...", "Execution plan ...", "Dataset ...
execution finished", tips) and the two ERROR lines that merely announce the
exception the caller gets anyway. Warnings and other errors still print, and
Ray Data's log file (``logs/ray-data``) still gets every record.

This module imports nothing from Ray at import time: the extension must load
without importing ``ray.data``.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DatasetRun",
    "OperatorProgress",
    "install",
    "is_installed",
    "track_executions",
    "uninstall",
]

# Internal Ray names the hook relies on (pinned by tests/test_data_progress.py).
EXECUTOR_MODULE = "ray.data._internal.execution.streaming_executor"
FACTORY_NAME = "get_progress_manager"
EXECUTOR_THREAD_PREFIX = "StreamingExecutor-"
MANAGER_METHODS = (
    "start",
    "refresh",
    "close_with_finishing_description",
    "update_total_progress",
    "update_total_resource_status",
    "update_operator_progress",
)


@dataclass
class OperatorProgress:
    name: str
    done: int  # rows (or blocks) done
    total: int | None  # None when unknown
    unit: str = "rows"  # "rows" or "blocks"


@dataclass
class DatasetRun:
    """Record of one dataset execution started by the magics.

    Plain data, safe to read from another thread: Ray's executor threads only
    assign ints and strings to it, and ``operators`` is rebound (never cleared)
    when the run starts another execution. Holds no reference to the Dataset.
    """

    label: str  # e.g. "ds.take(5)" or the cell label
    cell: int | None = None
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    state: str = "running"  # "running", "finished", "failed"
    operators: list[OperatorProgress] = field(default_factory=list)
    dataset_id: str | None = None  # of the latest execution
    done: int = 0  # rows the latest execution handed to the caller
    total: int | None = None  # rows it will hand over, when known
    executions: int = 0  # Ray Data executions started under this run
    error: str | None = None  # "ValueError: ..." when the run failed


_active_run: contextvars.ContextVar[DatasetRun | None] = contextvars.ContextVar("ray_magic_dataset_run", default=None)

_lock = threading.Lock()
_ray_factory: Callable[..., Any] | None = None  # Ray's own factory while installed
_log_filter: _TrackedRecordFilter | None = None


class _TrackedIds:
    """Dataset ids of recent tracked executions.

    Bounded: an executor may shut down (and log its "execution finished" line)
    on another thread or at garbage collection, after its run has ended.
    """

    def __init__(self, limit: int = 256) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._limit = limit

    def add(self, dataset_id: str) -> None:
        with _lock:
            self._ids[dataset_id] = None
            while len(self._ids) > self._limit:
                self._ids.popitem(last=False)

    def snapshot(self) -> list[str]:
        with _lock:
            return list(self._ids)


_tracked_ids = _TrackedIds()


def _mentions(text: str, ident: str) -> bool:
    """True if `ident` occurs in `text` not as part of a longer id (`_1` vs `_10`)."""
    start = text.find(ident)
    while start != -1:
        end = start + len(ident)
        if end == len(text) or not (text[end].isalnum() or text[end] == "_"):
            return True
        start = text.find(ident, start + 1)
    return False


# ERROR records that only announce the exception the caller is about to get;
# for a tracked run the exception itself reaches the cell.
_ANNOUNCES_RAISED_ERROR = {
    "ray.data.exceptions": "Exception occurred in user code",
    "ray.data._internal.execution.streaming_executor_state": "An exception was raised from a task of operator",
}


class _TrackedRecordFilter(logging.Filter):
    """Console-handler filter: drops the per-execution chatter of tracked runs.

    Keeps warnings (resource shortages, stalls) and errors other than the
    announcements of the exception that is raised anyway.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._is_tracked(record):
            return True
        if record.levelno < logging.WARNING:
            return False
        prefix = _ANNOUNCES_RAISED_ERROR.get(record.name)
        return prefix is None or not record.getMessage().startswith(prefix)

    @staticmethod
    def _is_tracked(record: logging.LogRecord) -> bool:
        # Emitted on the thread that runs the tracked code (filters run on the
        # emitting thread): "Starting execution", "Execution plan", tips.
        if _active_run.get() is not None:
            return True
        ids = _tracked_ids.snapshot()
        # Emitted on a tracked executor's own thread.
        thread = record.threadName or ""
        if thread.startswith(EXECUTOR_THREAD_PREFIX):
            return thread[len(EXECUTOR_THREAD_PREFIX) :] in ids
        # Emitted elsewhere, e.g. "Dataset <id> execution finished" from the
        # thread that exhausts the iterator or from garbage collection.
        message = record.getMessage()
        return any(_mentions(message, i) for i in ids)


def _console_handlers() -> list[logging.Handler]:
    """Handlers of the `ray.data` logger that print (not the log files)."""
    from ray.data._internal.logging import SessionFileHandler

    return [
        h
        for h in logging.getLogger("ray.data").handlers
        if not isinstance(h, (SessionFileHandler, logging.FileHandler))
    ]


def _ensure_log_filter() -> None:
    # Ray Data may rebuild its handlers (configure_logging), so check every time.
    if _log_filter is None:
        return
    for handler in _console_handlers():
        if _log_filter not in handler.filters:
            handler.addFilter(_log_filter)


_manager_class: type | None = None


def _make_manager_class() -> type:
    """Build the manager class on first use, so Ray is imported only then."""
    global _manager_class
    if _manager_class is not None:
        return _manager_class

    from ray.data._internal.execution.operators.input_data_buffer import (
        InputDataBuffer,
    )
    from ray.data._internal.execution.operators.sub_progress import (
        SubProgressBarMixin,
    )
    from ray.data._internal.progress.base_progress import (
        BaseExecutionProgressManager,
        BaseProgressBar,
    )

    class _SubBar(BaseProgressBar):
        """Sub-progress bar of an all-to-all operator (e.g. shuffle map/reduce)."""

        def __init__(self, progress: OperatorProgress) -> None:
            self._progress = progress

        def set_description(self, name: str) -> None:
            pass  # the panel shows its own name

        def get_description(self) -> str:
            return self._progress.name

        def update(self, increment: int = 0, total: int | None = None) -> None:
            progress = self._progress
            if total is not None:
                progress.total = total
            progress.done += increment
            if progress.total is not None and progress.done > progress.total:
                progress.total = progress.done  # Ray's bars do this with estimates

    class RunProgressManager(BaseExecutionProgressManager):
        """Writes one execution's progress into a DatasetRun; prints nothing."""

        def __init__(self, run: DatasetRun, dataset_id: str, topology: Any) -> None:
            self._run = run
            self._ops: dict[Any, OperatorProgress] = {}  # physical op -> its row
            operators: list[OperatorProgress] = []
            for state in topology.values():
                op = state.op
                if isinstance(op, InputDataBuffer):
                    continue  # Ray's managers skip it too: it only feeds inputs
                progress = OperatorProgress(op.name, 0, op.num_output_rows_total())
                self._ops[op] = progress
                operators.append(progress)
                if isinstance(op, SubProgressBarMixin):
                    # Operators of this kind expect a bar for each name.
                    for sub in op.get_sub_progress_bar_names() or []:
                        sub_progress = OperatorProgress(f"{op.name} / {sub}", 0, progress.total)
                        operators.append(sub_progress)
                        op.set_sub_progress_bar(sub, _SubBar(sub_progress))
            run.executions += 1
            run.dataset_id = dataset_id
            run.done, run.total = 0, None
            self._rows = operators
            run.operators = operators  # rebind: readers never see a half list

        def start(self) -> None:
            pass

        def refresh(self) -> None:
            pass  # the panel polls the run

        def update_total_progress(self, new_rows: int, total_rows: int | None) -> None:
            if total_rows is not None:
                self._run.total = total_rows
            self._run.done += new_rows

        def update_total_resource_status(self, resource_status: str) -> None:
            pass

        def update_operator_progress(self, opstate: Any, resource_manager: Any) -> None:
            progress = self._ops.get(opstate.op)
            if progress is not None:
                self._sync(opstate.op, progress)

        def close_with_finishing_description(self, desc: str, success: bool) -> None:
            # The scheduling loop may stop before its last refresh: sync once more.
            for op, progress in self._ops.items():
                self._sync(op, progress)
            if success:  # totals nobody estimated are known now
                for progress in self._rows:
                    if progress.total is None:
                        progress.total = progress.done

        @staticmethod
        def _sync(op: Any, progress: OperatorProgress) -> None:
            # Same numbers Ray's own tqdm/logging managers show.
            progress.done = op.metrics.row_outputs_taken
            total = op.num_output_rows_total()
            if total is not None:
                progress.total = total

    _manager_class = RunProgressManager
    return _manager_class


def _progress_manager_factory(ctx: Any, dataset_id: str, topology: Any, verbose_progress: bool) -> Any:
    """Replacement for Ray's `get_progress_manager` (same signature)."""
    run = _active_run.get()
    if run is None or _ray_factory is None:
        from ray.data._internal.progress import get_progress_manager

        factory = _ray_factory or get_progress_manager
        return factory(ctx, dataset_id, topology, verbose_progress)
    _tracked_ids.add(dataset_id)
    _ensure_log_filter()
    return _make_manager_class()(run, dataset_id, topology)


def install() -> None:
    """Patch Ray Data's progress factory and console handlers. Idempotent."""
    global _ray_factory, _log_filter
    import importlib

    executor_module = importlib.import_module(EXECUTOR_MODULE)
    with _lock:
        current = getattr(executor_module, FACTORY_NAME)
        if current is not _progress_manager_factory:
            _ray_factory = current
            setattr(executor_module, FACTORY_NAME, _progress_manager_factory)
        if _log_filter is None:
            _log_filter = _TrackedRecordFilter()
    _ensure_log_filter()


def uninstall() -> None:
    """Undo `install`: Ray's factory back in place, filters removed."""
    global _ray_factory, _log_filter
    import sys

    executor_module = sys.modules.get(EXECUTOR_MODULE)
    with _lock:
        if (
            executor_module is not None
            and _ray_factory is not None
            and getattr(executor_module, FACTORY_NAME) is _progress_manager_factory
        ):
            setattr(executor_module, FACTORY_NAME, _ray_factory)
        _ray_factory = None
        log_filter, _log_filter = _log_filter, None
    if log_filter is not None and "ray.data" in sys.modules:
        for handler in _console_handlers():
            handler.removeFilter(log_filter)


def is_installed() -> bool:
    import sys

    module = sys.modules.get(EXECUTOR_MODULE)
    return module is not None and (getattr(module, FACTORY_NAME, None) is _progress_manager_factory)


@contextlib.contextmanager
def track_executions(run: DatasetRun) -> Iterator[DatasetRun]:
    """Record every Ray Data execution started in this context into `run`.

    The calling thread (or asyncio task) only: other threads are untouched.
    Ray Data prints no progress for these executions. On exit `run` is marked
    finished, or failed (with `run.error`) if an exception escapes.
    """
    install()
    token = _active_run.set(run)
    try:
        yield run
    except BaseException as exc:
        run.error = _ANSI_COLOR.sub("", f"{type(exc).__name__}: {exc}")[:500]
        _finish(run, "failed")
        raise
    else:
        _finish(run, "finished")
    finally:
        _active_run.reset(token)


_ANSI_COLOR = re.compile(r"\x1b\[[0-9;]*m")  # Ray colours worker names in errors


def _finish(run: DatasetRun, state: str) -> None:
    run.finished_at = time.time()  # before state: a reader that sees it done sees when
    run.state = state
