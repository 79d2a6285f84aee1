"""The only door to Ray: connect, submit, wait, cancel, kill, cluster state.

Everything the magics submit goes through here and is recorded in the tracker.
"""
from __future__ import annotations

import dis
import sys
import time
import types
from collections.abc import Callable
from typing import Any

from . import remote_side
from .tracker import tracker

_MISSING = object()

# Set by the magics: returns the number of the cell now running (None outside a cell).
current_cell: Callable[[], int | None] = lambda: None  # noqa: E731
# Set by the magics: called with the cell number on each submission (cell progress views).
on_submit: Callable[[int | None], None] = lambda cell: None  # noqa: E731


def connect_default() -> None:
    """Without the magics loaded, leave connecting to Ray's own auto-init."""


# Set by the magics: connects (the magics' way) before a submission if Ray is not running.
ensure_connected: Callable[[], None] = connect_default


def ray_module():
    import ray

    return ray


def is_connected() -> bool:
    ray = sys.modules.get("ray")
    return bool(ray is not None and ray.is_initialized())


def connection_key() -> str:
    """Identifies the current Ray connection: changes when Ray is shut down and started again."""
    ray = ray_module()
    try:
        cluster = ray._private.worker.global_worker.node.cluster_id.hex()
    except Exception:  # Ray Client has no local node
        cluster = ""
    return f"{cluster}/{ray.get_runtime_context().get_job_id()}"


def _prepare_pickling() -> None:
    # Workers get our small worker-side helpers by value: no install needed there.
    ray = ray_module()
    ray.cloudpickle.register_pickle_by_value(remote_side)


# --- labels --------------------------------------------------------------------------

def short_repr(value: Any) -> str:
    """A cheap label for an argument: small scalars by value, the rest by type."""
    if value is None or isinstance(value, (bool, int, float)):
        text = repr(value)
    elif isinstance(value, str):
        text = repr(value) if len(value) <= 20 else repr(value[:17] + "...")
    else:
        text = type(value).__name__
    return text if len(text) <= 24 else text[:21] + "..."


_SCALARS = frozenset({int, float, bool, type(None)})


def call_label(name: str, args: tuple, kwargs: dict) -> str | tuple:
    """`f(3)`; a few small numbers are kept as they are and formatted only when shown."""
    if not kwargs and len(args) <= 4 and all(type(a) in _SCALARS for a in args):
        return (name, args)  # small immutable numbers: holding them pins nothing
    parts = [short_repr(a) for a in args[:4]] + [f"{k}={short_repr(v)}" for k, v in list(kwargs.items())[:3]]
    if len(args) > 4 or len(kwargs) > 3:
        parts.append("...")
    return f"{name}({', '.join(parts)})"


def task_name(label: str, cell: int | None) -> str:
    """The Ray task name: carries the cell so logs and the timeline can find it."""
    return f"{label} [cell {cell}]" if cell is not None else label


def _track(refs: Any, label: str, cell: int | None, actor=None) -> None:
    if isinstance(refs, list):
        for ref in refs:
            tracker.add_future(ref, label, cell, actor)
    elif hasattr(refs, "task_id"):
        tracker.add_future(refs, label, cell, actor)
    on_submit(cell)


# --- remote functions -----------------------------------------------------------------

def global_names(code: types.CodeType) -> set[str]:
    """Global names a function reads, nested functions and comprehensions included."""
    names = {i.argval for i in dis.get_instructions(code) if i.opname in ("LOAD_GLOBAL", "LOAD_NAME")}
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= global_names(const)
    return names


class RemoteFunction:
    """A notebook function as a Ray remote function, re-exported when a global it uses is rebound.

    Behaves like the object `@ray.remote` returns: `.remote()`, `.options()`,
    `.bind()`; pickles as the plain Ray remote function, so it can be passed to tasks.
    """

    def __init__(self, function: Callable, options: dict, namespace: dict, filename: str, source: str) -> None:
        self._function = function
        self._options = options
        self._namespace = namespace
        self._name = function.__name__
        self._wrapped = remote_side.with_cell_source(function, filename, source)
        self._names = sorted(global_names(function.__code__))
        self.__doc__ = function.__doc__
        self._export()

    def _export(self) -> None:
        ray = ray_module()
        self._ray_function = ray.remote(**self._options)(self._wrapped) if self._options else ray.remote(self._wrapped)
        ns = self._namespace
        self._snapshot = [(name, ns.get(name, _MISSING)) for name in self._names]
        self._per_cell: dict[int | None, Any] = {}

    def _current(self) -> Any:
        """The Ray remote function to submit with, exported again if a global was rebound."""
        ns = self._namespace
        for name, value in self._snapshot:
            if ns.get(name, _MISSING) is not value:
                self._export()
                break
        return self._ray_function

    def remote(self, *args: Any, **kwargs: Any) -> Any:
        if not is_connected():
            ensure_connected()
        function = self._current()
        cell = current_cell()
        submit = self._per_cell.get(cell)
        if submit is None:
            submit = self._per_cell[cell] = function.options(name=task_name(self._name, cell))
        refs = submit.remote(*args, **kwargs)
        _track(refs, call_label(self._name, args, kwargs), cell)
        return refs

    def options(self, **options: Any) -> _WithOptions:
        return _WithOptions(self, options)

    def __getattr__(self, item: str) -> Any:  # bind, _function, etc. from Ray's object
        if item.startswith("__"):
            raise AttributeError(item)
        return getattr(self._current(), item)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._current()(*args, **kwargs)  # Ray's own "use .remote()" error

    def __reduce__(self):
        return (_identity, (self._current(),))

    def __repr__(self) -> str:
        return f"<ray_magic remote function {self._name}>"


def _identity(value: Any) -> Any:
    return value


class _WithOptions:
    def __init__(self, function: RemoteFunction, options: dict) -> None:
        self._function, self._options = function, options

    def remote(self, *args: Any, **kwargs: Any) -> Any:
        if not is_connected():
            ensure_connected()
        cell = current_cell()
        options = {"name": task_name(self._function._name, cell), **self._options}
        refs = self._function._current().options(**options).remote(*args, **kwargs)
        _track(refs, call_label(self._function._name, args, kwargs), cell)
        return refs

    def __getattr__(self, item: str) -> Any:
        return getattr(self._function._current().options(**self._options), item)


# --- actors ----------------------------------------------------------------------------

class ActorClass:
    """A notebook class as a Ray actor class; the actors it makes are tracked."""

    def __init__(self, cls: type, options: dict, filename: str, source: str) -> None:
        ray = ray_module()
        remote_side.init_with_cell_source(cls, filename, source)
        self._cls = cls
        self._name = cls.__name__
        self._ray_class = ray.remote(**options)(cls) if options else ray.remote(cls)
        self._methods = [m for m in dir(cls) if callable(getattr(cls, m, None)) and not m.startswith("__")]
        self.__doc__ = cls.__doc__

    def remote(self, *args: Any, **kwargs: Any) -> Any:
        if not is_connected():
            ensure_connected()
        return self._track(self._ray_class.remote(*args, **kwargs), None)

    def options(self, **options: Any) -> _ActorOptions:
        return _ActorOptions(self, options)

    def _track(self, handle: Any, name: str | None) -> Any:
        cell = current_cell()
        record = tracker.add_actor(handle, self._name, name, cell)
        for method in self._methods:
            # An instance attribute wins over ActorHandle.__getattr__; pickling ignores it.
            setattr(handle, method, _TrackedMethod(getattr(handle, method), f"{self._name}.{method}", record))
        on_submit(cell)
        return handle

    def __getattr__(self, item: str) -> Any:
        if item.startswith("__"):
            raise AttributeError(item)
        return getattr(self._ray_class, item)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._ray_class(*args, **kwargs)

    def __reduce__(self):
        return (_identity, (self._ray_class,))

    def __repr__(self) -> str:
        return f"<ray_magic actor class {self._name}>"


class _ActorOptions:
    def __init__(self, actor_class: ActorClass, options: dict) -> None:
        self._actor_class, self._options = actor_class, options

    def remote(self, *args: Any, **kwargs: Any) -> Any:
        if not is_connected():
            ensure_connected()
        handle = self._actor_class._ray_class.options(**self._options).remote(*args, **kwargs)
        return self._actor_class._track(handle, self._options.get("name"))


class _TrackedMethod:
    """An actor method whose calls are recorded; holds the handle only weakly (via Ray's ActorMethod)."""

    def __init__(self, method: Any, label: str, record: Any) -> None:
        self._method, self._label, self._record = method, label, record
        self._per_cell: dict[int | None, Any] = {}

    def remote(self, *args: Any, **kwargs: Any) -> Any:
        cell = current_cell()
        submit = self._per_cell.get(cell)
        if submit is None:  # named after the cell, so the timeline can find the call
            submit = self._per_cell[cell] = self._method.options(name=task_name(self._label, cell))
        refs = submit.remote(*args, **kwargs)
        _track(refs, call_label(self._label, args, kwargs), cell, self._record)
        return refs

    def options(self, **options: Any) -> Any:
        return self._method.options(**options)

    def __getattr__(self, item: str) -> Any:
        return getattr(self._method, item)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._method(*args, **kwargs)


# --- body cells -------------------------------------------------------------------------

_cell_runners: dict = {}


def submit_body(function: Callable, args: list, options: dict, label: str, cell: int | None,
                filename: str, source: str) -> Any:
    """Run a compiled body cell as one task; ObjectRef arguments become dependencies.

    One runner remote function is exported once per connection; the cell's
    function travels as an argument, so a cell costs no export.
    """
    ray = ray_module()
    runner = _cell_runners.get(ray.get_runtime_context().get_job_id())
    if runner is None:
        runner = _cell_runners[ray.get_runtime_context().get_job_id()] = ray.remote(remote_side.run_cell)
    name = label if label == f"cell {cell}" else task_name(label, cell)
    ref = runner.options(name=name, **options).remote(function, filename, source, *args)
    _track(ref, label, cell)
    return ref


# --- waiting, cancelling, killing -------------------------------------------------------

FORCE_AFTER_SECONDS = 2.0


def wait(refs: list, timeout: float | None = None) -> list:
    """Wait for refs and return their values; on interrupt cancel them, then re-raise."""
    ray = ray_module()
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        pending = list(refs)
        while pending:
            step = 0.2 if deadline is None else max(0.0, min(0.2, deadline - time.monotonic()))
            _, pending = ray.wait(pending, num_returns=len(pending), timeout=step, fetch_local=True)
            if pending and deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"{len(pending)} of {len(refs)} futures not done after {timeout} s")
        return ray.get(list(refs))
    except KeyboardInterrupt:
        cancelled, forced = cancel(refs)
        print(f"Interrupted: cancelled {cancelled} task(s)" + (f", {forced} forcibly" if forced else ""),
              file=sys.stderr)
        raise


def cancel(refs: list, force: bool = False) -> tuple[int, int]:
    """Cancel pending tasks; those still running after a moment are force-cancelled.

    A plain cancel does not wake a task sleeping in Python, so its CPUs would stay
    taken: force-cancelling frees them. Returns (cancelled, forced).
    """
    ray = ray_module()
    pending = _not_done(refs)
    for ref in pending:
        _cancel_one(ref, force)
    forced = 0
    if pending and not force:
        _, still = ray.wait(pending, num_returns=len(pending), timeout=FORCE_AFTER_SECONDS, fetch_local=False)
        for ref in still:
            forced += _cancel_one(ref, True)
    return len(pending), forced


def _not_done(refs: list) -> list:
    ray = ray_module()
    if not refs:
        return []
    _, pending = ray.wait(list(refs), num_returns=len(refs), timeout=0, fetch_local=False)
    return pending


def _cancel_one(ref: Any, force: bool) -> int:
    ray = ray_module()
    try:
        ray.cancel(ref, force=force)
        return 1
    except (ValueError, TypeError):  # actor tasks cannot be force-cancelled
        if force:
            try:
                ray.cancel(ref)
            except Exception:
                pass
        return 0


def kill(handle: Any, no_restart: bool = True) -> None:
    ray_module().kill(handle, no_restart=no_restart)
