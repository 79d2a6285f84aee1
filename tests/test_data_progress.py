"""ray_magic.data_progress against a real local Ray (no mocks)."""

from __future__ import annotations

import gc
import inspect
import logging
import os
import re
import subprocess
import sys
import threading
import time
import weakref

import pytest

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

from ray_magic import data_progress as dp  # noqa: E402

# Lines Ray Data prints per execution when stdout is not a TTY (as in a notebook).
RAY_DATA_NOISE = re.compile(
    r"Running Dataset|Total Progress|Starting execution of Dataset"
    r"|Execution plan of Dataset|execution finished in|execution failed"
    r"|Progress will be logged|An exception was raised from a task"
    r"|Exception occurred in user code"
)


@pytest.fixture(scope="module")
def ray_local():
    import ray

    started = not ray.is_initialized()
    if started:
        ray.init(address="local", num_cpus=2, include_dashboard=False)
    import ray.data

    yield ray
    if started:
        ray.shutdown()


class _CurrentStderr:
    """Whatever sys.stderr is when written to (pytest swaps it between phases)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


@pytest.fixture
def output(ray_local, capfd):
    """capfd, with Ray Data's console handler writing where a notebook's would.

    The handler keeps the sys.stderr of the moment `ray.data` was imported (in a
    kernel: the cell's stream; under pytest: the global capture, which capfd
    does not see), so point it at the sys.stderr of the moment.
    """
    from ray._private.log import PlainRayHandler

    handlers = [
        h
        for h in logging.getLogger("ray.data").handlers
        if isinstance(h, PlainRayHandler)  # not pytest's own capture handlers
    ]
    assert handlers, "Ray Data has no console handler any more"
    streams = [h.stream for h in handlers]
    for handler in handlers:
        handler.setStream(_CurrentStderr())
    capfd.readouterr()
    yield capfd
    for handler, stream in zip(handlers, streams):
        handler.setStream(stream)


# --- pins on Ray's internal API ------------------------------------------------


def test_ray_internal_api_is_as_the_hook_assumes(ray_local):
    import importlib

    from ray.data._internal.progress import get_progress_manager
    from ray.data._internal.progress.base_progress import (
        BaseExecutionProgressManager,
        BaseProgressBar,
    )

    executor_module = importlib.import_module(dp.EXECUTOR_MODULE)
    # The executor looks the factory up by this module-level name at each run.
    assert hasattr(executor_module, dp.FACTORY_NAME)
    assert "get_progress_manager(" in inspect.getsource(executor_module.StreamingExecutor.execute)
    assert list(inspect.signature(get_progress_manager).parameters) == [
        "ctx",
        "dataset_id",
        "topology",
        "verbose_progress",
    ]
    # Every abstract method is one we implement; a new one would break us loudly.
    assert set(BaseExecutionProgressManager.__abstractmethods__) <= {
        "__init__",
        *dp.MANAGER_METHODS,
    }
    assert set(BaseProgressBar.__abstractmethods__) == {
        "set_description",
        "get_description",
        "update",
    }
    manager_class = dp._make_manager_class()
    assert not manager_class.__abstractmethods__
    # No other place picks a progress manager (a new executor would bypass us).
    data_dir = os.path.dirname(ray_local.data.__file__)
    callers = set()
    for folder, _, files in os.walk(data_dir):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                with open(path, encoding="utf-8") as source:
                    if "get_progress_manager" in source.read():
                        callers.add(os.path.relpath(path, data_dir))
    assert callers == {
        "_internal/progress/__init__.py",
        "_internal/execution/streaming_executor.py",
    }
    # The log filter recognises the executor's thread by its name. (Building an
    # executor to check would register a dataset logger for good, hence source.)
    init_source = inspect.getsource(executor_module.StreamingExecutor.__init__)
    assert f'f"{dp.EXECUTOR_THREAD_PREFIX}{{self._dataset_id}}"' in init_source


def test_import_does_not_import_ray():
    code = (
        "import sys, ray_magic.data_progress as dp\n"
        "run = dp.DatasetRun('x')\n"
        "assert 'ray' not in sys.modules, sorted(m for m in sys.modules if 'ray' in m)"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root, timeout=60)


# --- the factory ----------------------------------------------------------------


def test_factory_falls_back_to_rays_manager_without_a_run(ray_local):
    dp.install()
    ctx = ray_local.data.DataContext.get_current()
    ray_type = type(dp._ray_factory(ctx, "fallback_0", {}, False))
    ours = dp._make_manager_class()
    assert ray_type is not ours

    # No run active: exactly Ray's choice (here the logging manager: not a TTY).
    assert type(dp._progress_manager_factory(ctx, "fallback_1", {}, False)) is ray_type

    # A run active on this thread does not leak to other threads.
    seen: list[type] = []
    with dp.track_executions(dp.DatasetRun("main thread")):
        assert type(dp._progress_manager_factory(ctx, "x_2", {}, False)) is ours
        worker = threading.Thread(target=lambda: seen.append(type(dp._progress_manager_factory(ctx, "x_3", {}, False))))
        worker.start()
        worker.join()
    assert seen == [ray_type]


def test_uninstall_restores_rays_factory(ray_local):
    import importlib

    executor_module = importlib.import_module(dp.EXECUTOR_MODULE)
    dp.install()
    original = dp._ray_factory
    dp.install()  # idempotent: does not wrap itself
    assert dp._ray_factory is original
    assert dp.is_installed()
    dp.uninstall()
    assert getattr(executor_module, dp.FACTORY_NAME) is original
    assert not dp.is_installed()
    dp.install()


# --- tracked executions -----------------------------------------------------------


def test_tracked_run_records_operators_and_prints_nothing(ray_local, output):
    # Functions defined here are shipped by value: workers cannot import tests.
    def slow_identity(batch):
        time.sleep(0.3)  # slow enough to watch progress from another thread
        return batch

    def even(row) -> bool:
        return row["id"] % 2 == 0

    ds = ray_local.data.range(20000, override_num_blocks=8).map_batches(slow_identity, batch_size=None).filter(even)
    ds_ref = weakref.ref(ds)
    run = dp.DatasetRun("ds.materialize()", cell=3)
    samples: list[tuple[str, int, int | None]] = []
    stop = threading.Event()

    def reader() -> None:  # what the panel does from its refresh thread
        while not stop.is_set():
            if run.state == "running":
                samples.extend((o.name, o.done, o.total) for o in run.operators)
            time.sleep(0.02)

    output.readouterr()
    sampler = threading.Thread(target=reader)
    sampler.start()
    try:
        with dp.track_executions(run) as active:
            assert active is run
            materialized = ds.materialize()
    finally:
        stop.set()
        sampler.join()
    out, err = output.readouterr()

    assert run.state == "finished" and run.error is None
    assert run.finished_at is not None and run.finished_at >= run.started_at
    assert run.executions == 1 and run.dataset_id
    assert run.operators, "no operator recorded"
    for op in run.operators:
        assert op.unit == "rows"
        assert op.done == op.total == 10000, op
    assert run.done == run.total == 10000
    assert materialized.count() == 10000

    partial = [done for _, done, _ in samples if 0 < done < 10000]
    assert partial, f"never saw partial progress: {samples[-5:]}"

    assert not RAY_DATA_NOISE.search(out + err), out + err

    # The record keeps no Dataset alive.
    del ds, materialized
    gc.collect()
    assert ds_ref() is None


def test_each_execution_of_a_run_replaces_the_operators(ray_local, output):
    ds = ray_local.data.range(1000).map_batches(lambda b: b)
    run = dp.DatasetRun("preview")
    output.readouterr()
    with dp.track_executions(run):
        assert ds.count() == 1000
        first_id = run.dataset_id
        first_ops = run.operators
        rows = ds.take(3)
        ds.schema()
    out, err = output.readouterr()

    assert len(rows) == 3
    assert run.executions >= 2
    assert run.dataset_id != first_id
    assert run.operators is not first_ops
    assert any(op.name == "limit=1" for op in run.operators), run.operators
    assert not RAY_DATA_NOISE.search(out + err), out + err


def test_failing_transform_marks_run_failed(ray_local, output):
    def boom(batch):
        raise ValueError("boom in a transform")

    ds = ray_local.data.range(100).map_batches(boom)
    run = dp.DatasetRun("ds.take(1)")
    output.readouterr()
    with pytest.raises(Exception, match="boom in a transform"):
        with dp.track_executions(run):
            ds.take(1)
    out, err = output.readouterr()

    assert run.state == "failed"
    assert run.finished_at is not None
    assert "boom in a transform" in (run.error or "")
    assert "\x1b[" not in (run.error or "")  # plain text for the panel
    assert not RAY_DATA_NOISE.search(out + err), out + err


def test_untracked_run_still_logs_as_ray_does(ray_local, output):
    # Last on purpose: its lines must not leak into the captures above.
    dp.install()
    output.readouterr()
    ray_local.data.range(1000).map_batches(lambda b: b).take(1)
    out, err = output.readouterr()
    assert "Logging error" not in err, err  # the capture itself must work
    assert re.search(r"INFO \S+ -- ======= Running Dataset: dataset_", err), err
    assert "Starting execution of Dataset" in err, err
