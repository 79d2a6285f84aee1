"""What every benchmark shares: figures, interleaved rounds, one notebook shell with one Ray.

A figure is one number with its goal; `Figure.line()` is the `BENCH ...` line that
`run.py` prints. Rounds run A B C, then C B A, and so on, so that a slow spell on
the (shared, noisy) machine lands on every variant alike; a figure is a median.
"""
from __future__ import annotations

import gc
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # Ray on 127.0.0.1 only

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.path.join(HERE, ".cache")  # generated data, logs, the latest results (ignored by git)


@dataclass
class Figure:
    """One reported number: `value` against `goal` (`at_most` or, when False, at least)."""

    name: str
    value: float
    goal: float | None  # None: reported beside the others, no goal
    unit: str = ""  # "" for a ratio
    at_most: bool = True
    how: str = ""  # one line on how it is measured (README)
    details: list[str] = field(default_factory=list)
    problem: str = ""  # a condition besides the number that was not met (makes it short)

    @property
    def ok(self) -> bool:
        if self.problem:
            return False
        if self.goal is None:
            return True
        if self.value != self.value:  # NaN: the benchmark failed
            return False
        return self.value <= self.goal if self.at_most else self.value >= self.goal

    def shown(self, number: float | None) -> str:
        if number is None:
            return "-"
        if number != number:
            return "nan"
        digits = 3 if abs(number) < 10 else 1
        return f"{number:.{digits}f}{self.unit}"

    def goal_text(self) -> str:
        if self.goal is None:
            return "-"
        return ("<=" if self.at_most else ">=") + self.shown(self.goal)

    def line(self) -> str:
        return f"BENCH {self.name} {self.shown(self.value)} goal {self.goal_text()} {'ok' if self.ok else 'short'}"


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def spread(values: Sequence[float], scale: float = 1.0, unit: str = "") -> str:
    """min / median / max, for the detail lines."""
    if not values:
        return "no samples"
    return (f"min {min(values) * scale:.3g}{unit}, median {median(values) * scale:.3g}{unit}, "
            f"max {max(values) * scale:.3g}{unit}, n={len(values)}")


def interleaved(variants: dict[str, Callable[[], float]], rounds: int,
                between: Callable[[], None] | None = None) -> dict[str, list[float]]:
    """Run each variant once per round, alternating the order (A B C, C B A, ...).

    Each callable returns its own measurement (usually seconds).
    """
    names = list(variants)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names if r % 2 == 0 else reversed(names):
            if between is not None:
                between()
            samples[name].append(variants[name]())
    return samples


def paired_ratio(samples: dict[str, list[float]], top: str, bottom: str) -> tuple[float, list[float]]:
    """Median of the per-round ratios top/bottom (each round's pair ran back to back)."""
    ratios = [a / b for a, b in zip(samples[top], samples[bottom]) if b > 0]
    return median(ratios), ratios


def settle(seconds: float = 0.0) -> None:
    """Collect garbage and give the background threads a moment, between timed steps."""
    gc.collect()
    if seconds:
        time.sleep(seconds)


class CellFailed(RuntimeError):
    pass


class Notebook:
    """A real IPython shell with ray_magic loaded and one local Ray (2 CPUs), as in a notebook.

    Cells run through `shell.run_cell(..., store_history=True)`, so each has its own
    number, as in Jupyter. Widgets are on (`use_widgets`): cell views and the panel
    are real ipywidgets, as in a Jupyter kernel.
    """

    def __init__(self) -> None:
        from IPython.testing.globalipapp import get_ipython, start_ipython

        log("starting the notebook and Ray")
        self.shell = start_ipython() or get_ipython()  # the second call returns None
        self.run("%load_ext ray_magic")
        self.run("%config RayMagics.use_widgets = True")
        for attempt in range(3):  # on a loaded machine Ray's 30 s startup limit can run out
            try:
                self.run("%ray_init --num-cpus 2 --no-panel --quiet")
                break
            except CellFailed as err:
                log(f"Ray did not start ({err}); {'trying again' if attempt < 2 else 'giving up'}")
                if attempt == 2:
                    raise
        self.run("import ray")
        self._panel: Any = None
        self.panel_refreshes: list[float] = []  # seconds each panel refresh took (see panel_refreshing)

    @property
    def ns(self) -> dict:
        return self.shell.user_ns

    def run(self, source: str) -> Any:
        """Run a cell; a cell that fails stops the benchmark (never time an error)."""
        result = self.shell.run_cell(source, store_history=True)
        if not result.success:
            err = result.error_in_exec or result.error_before_exec
            raise CellFailed(f"cell failed: {source.splitlines()[0][:80]!r}: {type(err).__name__}: {err}")
        return result.result

    def timed(self, source: str) -> float:
        """Seconds a cell takes through run_cell."""
        start = time.perf_counter()
        self.run(source)
        return time.perf_counter() - start

    # --- the panel ------------------------------------------------------------------------
    def show_panel(self) -> Any:
        """Show the live panel (%ray_panel): it becomes a listener of the refresher."""
        self.run("%ray_panel")
        import ray_magic

        self._panel = ray_magic.panel()
        return self._panel

    def panel_refreshing(self, on: bool) -> None:
        """Add or remove the panel from the refresher's listeners (the thread keeps running).

        The panel listens through `_timed_refresh`, which records how long each refresh took.
        """
        from ray_magic.refresher import refresher

        if self._panel is None:
            self.show_panel()
        if self._panel.refresh in refresher.listeners:
            refresher.listeners.remove(self._panel.refresh)
        listening = self._timed_refresh in refresher.listeners
        if on and not listening:
            refresher.listeners.append(self._timed_refresh)
        elif not on and listening:
            refresher.listeners.remove(self._timed_refresh)

    def _timed_refresh(self) -> None:
        start = time.perf_counter()
        self._panel.refresh()
        self.panel_refreshes.append(time.perf_counter() - start)

    def shutdown(self) -> None:
        try:
            self.run("%ray_shutdown")
        except Exception:  # best effort at the end of a run
            pass


def tracker_settled(keep: int = 0, timeout: float = 120.0) -> None:
    """Wait until the tracker has moved finished futures along, `keep` left pending (bounded)."""
    from ray_magic.refresher import refresher
    from ray_magic.tracker import tracker

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not refresher.running:
            refresher.tick()
        if len(tracker.pending_records()) <= keep:
            return
        time.sleep(0.05)
    raise TimeoutError(f"{len(tracker.pending_records())} futures still pending after {timeout} s, expected {keep}")


def store_bytes_in_use() -> float:
    """Object-store bytes in use on this (one-node) cluster, as the GCS reports them."""
    import ray

    total = ray.cluster_resources().get("object_store_memory", 0.0)
    return total - ray.available_resources().get("object_store_memory", 0.0)


def rss_bytes() -> int:
    import psutil

    return psutil.Process().memory_info().rss


_T0 = time.perf_counter()


def log(message: str) -> None:
    """Progress for whoever watches the run (goes to the log while figures run)."""
    print(f"[bench {time.perf_counter() - _T0:6.1f} s] {message}", file=sys.stderr, flush=True)
