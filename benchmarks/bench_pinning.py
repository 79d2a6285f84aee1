"""`pinning`: tracking keeps no object alive, and a finished future costs the driver little.

Object store: the notebook holds 100 MiB (`ray.put`) so that the starting figure is
not zero; each round a cell runs N tasks through a `%%ray_task` function, each
returning 1 MiB, waits for them and drops its refs; the refresher keeps ticking
(with the panel). Bytes in use (the GCS's object_store_memory, total minus
available) are read once the tracker has moved every future along and the
reading is stable. The figure is the highest reading (what a leak would push up
round after round) over the starting figure.

Driver memory: rounds alternate K tiny tasks through `@ray.remote` and through a
`%%ray_task` function (each submitted, fetched and dropped); the growth of the
driver's Python heap (tracemalloc, after the tracker has settled and a garbage
collection) per round is scaled to 10,000 futures. The figure is the magic's
median; RSS growth (noisy: the allocator keeps and returns memory in big pieces)
is reported beside it.
"""
from __future__ import annotations

import sys
import time

from harness import (
    Figure,
    Notebook,
    interleaved,
    log,
    median,
    rss_bytes,
    settle,
    spread,
    store_bytes_in_use,
    tracker_settled,
)

MIB = 1 << 20
BASELINE_MIB = 100

_DEFINE = f'''
import numpy as np

held = ray.put(np.ones({BASELINE_MIB} * {MIB}, dtype=np.uint8))  # what the notebook holds on purpose

@ray.remote
def plain_small(i):
    return i
'''

_DEFINE_MAGIC = f'''%%ray_task
import numpy as np

def one_mib(i):
    return np.full({MIB}, i % 256, dtype=np.uint8)

def small(i):
    return i
'''


def _stable_store_reading(timeout: float = 15.0) -> float:
    """Bytes in use once two readings 0.5 s apart agree, after 0.5 s (the GCS reports with a lag)."""
    deadline = time.monotonic() + timeout
    time.sleep(0.5)
    last = store_bytes_in_use()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = store_bytes_in_use()
        if now == last:
            return now
        last = now
    return last


def _store(nb: Notebook, quick: bool) -> Figure:
    n = 200 if quick else 2000
    rounds = 3  # a size, not a timing: three rounds show whether it grows
    nb.run(_DEFINE)
    nb.run(_DEFINE_MAGIC)
    deadline = time.monotonic() + 15
    while store_bytes_in_use() < BASELINE_MIB * MIB and time.monotonic() < deadline:
        time.sleep(0.2)
    start = _stable_store_reading()
    log("pinning: object store rounds")
    readings = []
    for _ in range(rounds):
        nb.run(f"refs = [one_mib.remote(i) for i in range({n})]\n"
               "ready, _ = ray.wait(refs, num_returns=len(refs), fetch_local=False)\n"
               "del refs, ready")
        tracker_settled()
        readings.append(_stable_store_reading())
    nb.run("del held")
    ratios = [r / start for r in readings]
    return Figure(
        "pinning-store", max(ratios), 1.05,
        how=f"object-store bytes in use after {n:,} tasks returning 1 MiB each, refs dropped, over the starting "
            f"figure (the notebook holds {BASELINE_MIB} MiB); highest of {rounds} rounds",
        details=[f"start {start / MIB:.1f} MiB in use; after each round: "
                 + ", ".join(f"{r / MIB:.1f}" for r in readings) + " MiB"],
    )


def _driver(nb: Notebook, quick: bool) -> Figure:
    import tracemalloc

    from ray_magic.tracker import tracker

    k = 500 if quick else 1000
    rounds = 3 if quick else 5  # a size: the rounds show it is steady

    def variant(function: str):
        source = f"refs = [{function}.remote(i) for i in range({k})]\nvalues = ray.get(refs)\ndel refs, values"

        def one() -> float:
            tracker_settled()
            settle()
            before = tracemalloc.get_traced_memory()[0]
            nb.run(source)
            tracker_settled()
            settle()
            return (tracemalloc.get_traced_memory()[0] - before) * 10_000 / k / 1e6  # MB per 10,000 futures

        return one

    variants = {"plain": variant("plain_small"), "magic": variant("small")}
    log("pinning: driver memory rounds")
    tracemalloc.start()
    try:
        for one in variants.values():  # warm up: first-use allocations
            one()
        rss_before = rss_bytes()
        samples = interleaved(variants, rounds)
        rss_growth = (rss_bytes() - rss_before) * 10_000 / (2 * rounds * k) / 1e6
    finally:
        tracemalloc.stop()
    records = tracker.futures[-1000:]
    per_record = sum(_record_bytes(r) for r in records) / max(len(records), 1)
    return Figure(
        "pinning-driver", median(samples["magic"]), 20.0, unit="MB",
        how=f"driver memory (tracemalloc) growth per 10,000 finished futures tracked ({k:,} tiny `%%ray_task` "
            "tasks per round, refs dropped)",
        details=[f"magic: {spread(samples['magic'], 1, ' MB')}",
                 f"plain @ray.remote: {spread(samples['plain'], 1, ' MB')}",
                 f"RSS over all {2 * rounds * k:,} futures (both kinds): {rss_growth:+.1f} MB per 10,000",
                 f"a finished FutureRecord holds about {per_record:.0f} bytes "
                 f"({per_record * 10_000 / 1e6:.1f} MB per 10,000)"],
    )


def _record_bytes(record) -> int:
    """Shallow size of a record and the strings it owns."""
    size = sys.getsizeof(record)
    for name in ("label", "task_id", "error"):
        value = getattr(record, name, None)
        if isinstance(value, str):
            size += sys.getsizeof(value)
    return size


def run(nb: Notebook, quick: bool) -> list[Figure]:
    nb.show_panel()
    nb.panel_refreshing(True)
    return [_store(nb, quick), _driver(nb, quick)]
