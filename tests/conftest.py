"""Shared fixtures: one real IPython shell with the extension, one real local Ray per session."""
import contextlib
import os
import signal

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # Ray on 127.0.0.1 only

import pytest


@pytest.fixture(scope="session")
def shell():
    """A real IPython InteractiveShell with ray_magic loaded (no Ray started)."""
    from IPython.testing.globalipapp import start_ipython

    ip = start_ipython()
    ip.run_line_magic("load_ext", "ray_magic")
    return ip


@pytest.fixture
def ip(shell):
    """The shell, connected to the session's local Ray (started once, restarted if a test shut it down)."""
    import ray

    if not ray.is_initialized():
        shell.run_line_magic("ray_init", "--num-cpus 2 --no-panel --quiet")
    yield shell


def pytest_sessionfinish(session, exitstatus):
    import sys

    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()


def run(ip, source: str):
    """Run a cell as Jupyter would (counting it), returning IPython's ExecutionResult."""
    return ip.run_cell(source, store_history=True)


def wait_until(condition, seconds: float, what: str, step: float = 0.1) -> None:
    """Tick the refresher until condition() holds (bounded: timings here are noisy)."""
    import time

    from ray_magic.refresher import refresher

    deadline = time.monotonic() + seconds
    while True:
        refresher.tick()
        if condition():
            return
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(step)


@contextlib.contextmanager
def interrupt_after(seconds: float):
    """A SIGALRM handler raises KeyboardInterrupt mid-wait, as Jupyter's interrupt does."""

    def handler(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
