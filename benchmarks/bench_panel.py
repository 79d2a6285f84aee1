"""`panel-tick` and `responsive`: what one refresh costs, and whether the kernel stays quick.

The notebook first runs 9,900 tiny tasks through a `%%ray_task` function
(finished, tracked; quick: 900), then keeps 100 futures pending: tasks that
depend on the result of a task sleeping for an hour (with `num_cpus=0`), so they
wait without taking a CPU. That is state A (>= 10,000 tracked, 100 pending). State B adds 9,900 more such
futures (10,000 pending; quick: 5,000); cancelling them returns to A, with a
longer history.
The states alternate A B A B A (quick: A B A): switching means submitting or
cancelling 9,900 tasks, so the rounds alternate per state, not per tick.

In each visit the refresher thread is stopped and `refresher.tick()` (poll, cell
views, the live panel) is timed several times, 0.1 s apart; then the thread is
started again (0.5 s interval, panel listening) and trivial cells are timed
through `run_cell`.
"""
from __future__ import annotations

import time

from harness import Figure, Notebook, log, median, spread, tracker_settled

_DEFINE_MAGIC = '''%%ray_task
def tiny(i):
    return i

def waiter(dependency, i):
    return i
'''

_DEFINE_BLOCKER = '''
import time as _time

@ray.remote(num_cpus=0)
def hold(seconds):
    _time.sleep(seconds)
    return 0

blocker = hold.remote(3600)  # plain Ray: not tracked; the waiters depend on it
'''

PENDING_A = 100
PENDING_B = 10_000


def _ticks(count: int) -> list[float]:
    """Time `count` refreshes with the thread stopped (two untimed ones first)."""
    from ray_magic.refresher import refresher

    refresher.stop()
    samples = []
    for i in range(count + 2):
        start = time.perf_counter()
        refresher.tick()
        took = time.perf_counter() - start
        if i >= 2:
            samples.append(took)
        time.sleep(0.1)
    refresher.start()
    return samples


def _trivial_cells(nb: Notebook, count: int) -> list[float]:
    """Time trivial cells while the refresher thread runs, at varied phases of its interval."""
    samples = []
    for i in range(count):
        time.sleep(0.03 + (i * 0.037) % 0.2)
        samples.append(nb.timed("x = 1"))
    return samples


def run(nb: Notebook, quick: bool) -> list[Figure]:
    from ray_magic.refresher import refresher
    from ray_magic.tracker import tracker

    cycles = 1 if quick else 2
    ticks = 9 if quick else 11
    cells = 9 if quick else 31
    finished = (1_000 if quick else 10_000) - PENDING_A  # quick: a shorter history
    pending_b = 5_000 if quick else PENDING_B
    nb.show_panel()
    nb.panel_refreshing(True)
    nb.run(_DEFINE_MAGIC)
    nb.run(_DEFINE_BLOCKER)
    log(f"panel: {finished:,} finished futures")
    nb.run(f"refs = [tiny.remote(i) for i in range({finished})]\nvalues = ray.get(refs)\ndel refs, values")
    nb.run(f"kept = [waiter.remote(blocker, i) for i in range({PENDING_A})]")
    tracker_settled(keep=PENDING_A)

    tick = {"A": [], "B": []}
    cell = {"A": [], "B": []}
    tracked = {"A": [], "B": []}

    def visit(state: str) -> None:
        pending = len(tracker.pending_records())
        tracked[state].append(f"{len(tracker.futures):,} tracked, {pending:,} pending")
        tick[state] += _ticks(ticks)
        cell[state] += _trivial_cells(nb, cells)

    try:
        visit("A")
        for _ in range(cycles):
            log(f"panel: {pending_b - PENDING_A:,} more pending")
            nb.run(f"more = [waiter.remote(blocker, i) for i in range({pending_b - PENDING_A})]")
            refresher.tick()  # take the new futures in (not timed: it scans them once)
            visit("B")
            log("panel: cancelling them")
            nb.run("for ref in more:\n    ray.cancel(ref)\ndel more")
            tracker_settled(keep=PENDING_A)
            visit("A")
    finally:
        nb.run("for ref in (globals().get('more') or []) + (globals().get('kept') or []):\n    ray.cancel(ref)\n"
               "if globals().get('blocker') is not None:\n    ray.cancel(blocker, force=True)\n"
               "more = kept = blocker = None")
        tracker_settled()

    tick_a, tick_b = median(tick["A"]), median(tick["B"])
    return [
        Figure("panel-tick", tick_a * 1000, 10.0, unit="ms",
               how=f"one `refresher.tick()` (poll, cell views, live panel) with >= {finished + PENDING_A:,} tracked "
                   "futures, 100 of them pending",
               details=[f"A ({'; '.join(tracked['A'])}): {spread(tick['A'], 1000, ' ms')}",
                        f"B ({'; '.join(tracked['B'])}): {spread(tick['B'], 1000, ' ms')}"]),
        Figure("panel-tick-pending", tick_b / tick_a, 5.0, at_most=False,
               how=f"the tick with {pending_b:,} pending over the tick with 100 pending: cost follows what is "
                   "pending, not history"),
        Figure("responsive", median(cell["B"]) * 1000, 100.0, unit="ms",
               how=f"a trivial cell (`x = 1`) through run_cell while {pending_b:,} futures are pending and the "
                   "refresher (with the panel) runs every 0.5 s",
               details=[f"with {pending_b:,} pending: {spread(cell['B'], 1000, ' ms')}",
                        f"with 100 pending:    {spread(cell['A'], 1000, ' ms')}"]),
    ]

