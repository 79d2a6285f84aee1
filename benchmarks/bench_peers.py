"""`peers`: the same tiny tasks through ray_magic, ipyparallel and Dask distributed.

All three run in the notebook's own shell, on this machine, over loopback:
ipyparallel with 2 engines (`Cluster(n=2).start_and_connect_sync()`, a
load-balanced view), Dask with a `LocalCluster` of 2 single-threaded worker
processes, dashboard off, and ray_magic's local Ray with 2 CPUs. One cell submits
N tasks one by one (`f.remote(i)`, `view.apply_async(f, i)`, `client.submit(f, i)`)
and collects the results. Also a trivial remote cell: `%%ray_task --block` against
ipyparallel's `%%px` (which runs it on both engines and waits, its default).
Ratios are ray_magic's time over the peer's: below 1 means ray_magic is faster.
"""
from __future__ import annotations

import time

from harness import Figure, Notebook, interleaved, log, paired_ratio, spread

_DEFINE = '''
def inc_py(x):
    return x + 1
'''

_DEFINE_MAGIC = '''%%ray_task
def inc(x):
    return x + 1
'''

_START_IPP = '''
import ipyparallel
ipp_cluster = ipyparallel.Cluster(n=2, log_level=40)
ipp_client = ipp_cluster.start_and_connect_sync()
ipp_view = ipp_client.load_balanced_view()
ipp_client.activate()  # registers %px / %%px on this shell
'''

_START_DASK = '''
import distributed
dask_cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                        dashboard_address=None, host="127.0.0.1")
dask_client = distributed.Client(dask_cluster)
'''

_STOP = '''
for _stop in (lambda: ipp_client.close(), lambda: ipp_cluster.stop_cluster_sync(),
              lambda: dask_client.close(), lambda: dask_cluster.close()):
    try:
        _stop()
    except Exception:
        pass
'''


def _cells(n: int) -> dict[str, str]:
    return {
        "ray_magic": f"refs = [inc.remote(i) for i in range({n})]\nvalues = ray.get(refs)\ndel refs, values",
        "ipyparallel": f"ars = [ipp_view.apply_async(inc_py, i) for i in range({n})]\n"
                       "values = [ar.get() for ar in ars]\ndel ars, values",
        "dask": f"futures = [dask_client.submit(inc_py, i, pure=False) for i in range({n})]\n"
                "values = dask_client.gather(futures)\ndel futures, values",
    }


def run(nb: Notebook, quick: bool) -> list[Figure]:
    n = 100 if quick else 1000
    rounds = 5
    nb.panel_refreshing(True)  # as a user would have it
    nb.run(_DEFINE)
    nb.run(_DEFINE_MAGIC)
    started: dict[str, float] = {}
    try:
        for name, source in (("ipyparallel", _START_IPP), ("dask", _START_DASK)):
            log(f"starting {name}")
            started[name] = nb.timed(source)
        cells = _cells(n)
        for source in cells.values():  # warm up every engine and worker
            nb.run(source)
        throughput = interleaved({name: (lambda s=source: nb.timed(s)) for name, source in cells.items()}, rounds)
        ray_cell, px_cell = "%%ray_task --block\n1 + 1", "%%px\n1 + 1"
        for source in (ray_cell, px_cell):
            nb.run(source)
        cell_rounds = 7 if quick else 21
        cell = interleaved({"ray_task": lambda: nb.timed(ray_cell), "px": lambda: nb.timed(px_cell)}, cell_rounds)
    finally:
        started_at = time.perf_counter()
        nb.run(_STOP)
        log(f"peers stopped in {time.perf_counter() - started_at:.1f} s")

    tasks_per_s = {name: n / (sum(v) / len(v)) for name, v in throughput.items()}
    rate = ", ".join(f"{name} {value:,.0f} tasks/s" for name, value in tasks_per_s.items())
    times = [f"{name}: {spread(values, 1000, ' ms')}" for name, values in throughput.items()]
    startup = "cluster start: " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in started.items())
    figures = []
    for peer in ("ipyparallel", "dask"):
        ratio, _ = paired_ratio(throughput, "ray_magic", peer)
        figures.append(Figure(
            f"peers-{peer}", ratio, 1.0,
            how=f"{n:,} tiny tasks submitted one by one and collected: ray_magic's time over {peer}'s",
            details=(times + [f"mean throughput: {rate}", startup]) if peer == "ipyparallel" else [],
        ))
    ratio, _ = paired_ratio(cell, "ray_task", "px")
    figures.append(Figure(
        "peers-px", ratio, None,
        how="a trivial remote cell: `%%ray_task --block` over ipyparallel's `%%px` (2 engines, blocking)",
        details=[f"{name}: {spread(values, 1000, ' ms')}" for name, values in cell.items()],
    ))
    return figures
