"""`submit` and `cell`: what the magics cost over plain Ray, cell for cell.

submit: one cell submits N tiny tasks and gets their results, through a function
defined with `@ray.remote` (plain), through the same function defined by a
`%%ray_task` cell with no panel shown (the refresher thread still polls, as after
`%ray_init --no-panel`), and the same with the live panel refreshing. Interleaved;
the figure is the median of the per-round ratios magic / plain.

cell: a plain cell `ray.get(one.remote())` against a `%%ray_task --block` body cell
that returns the same value, both timed around `shell.run_cell`.
"""
from __future__ import annotations

from harness import Figure, Notebook, interleaved, paired_ratio, settle, spread

_DEFINE = '''
@ray.remote
def plain_inc(x):
    return x + 1

@ray.remote
def plain_one():
    return 1
'''

_DEFINE_MAGIC = '''%%ray_task
def inc(x):
    return x + 1
'''


def _submit_cell(function: str, n: int) -> str:
    return f"refs = [{function}.remote(i) for i in range({n})]\nvalues = ray.get(refs)\ndel refs, values"


def run_submit(nb: Notebook, quick: bool) -> list[Figure]:
    n = 300 if quick else 2000
    rounds = 5 if quick else 15
    nb.run(_DEFINE)
    nb.run(_DEFINE_MAGIC)
    nb.show_panel()
    plain, magic = _submit_cell("plain_inc", n), _submit_cell("inc", n)
    for source in (plain, magic):  # warm up the workers and the code paths
        nb.run(source)

    def variant(source: str, panel: bool):
        def one() -> float:
            nb.panel_refreshing(panel)
            return nb.timed(source)
        return one

    nb.panel_refreshes.clear()
    samples = interleaved(
        {"plain": variant(plain, False), "magic": variant(magic, False), "magic+panel": variant(magic, True)},
        rounds, between=settle,
    )
    nb.panel_refreshing(False)
    refreshes = nb.panel_refreshes
    ratio, ratios = paired_ratio(samples, "magic", "plain")
    ratio_panel, ratios_panel = paired_ratio(samples, "magic+panel", "plain")
    times = [f"{name}: {spread(values, 1000, ' ms')}" for name, values in samples.items()]
    return [
        Figure("submit", ratio, 1.05,
               how=f"{n:,} tiny tasks submitted and fetched in one cell: `%%ray_task` function over `@ray.remote`, "
                   "no panel (refresher polling)",
               details=times + ["per-round ratios: " + ", ".join(f"{r:.3f}" for r in ratios)]),
        Figure("submit-panel", ratio_panel, 1.10,
               how="the same, with the live panel shown and refreshing every 0.5 s",
               details=["per-round ratios: " + ", ".join(f"{r:.3f}" for r in ratios_panel),
                        f"panel refreshes during those rounds: {len(refreshes)}, {sum(refreshes) * 1000:.0f} ms "
                        f"in all; {spread(refreshes, 1000, ' ms')}"]),
    ]


def run_cell(nb: Notebook, quick: bool) -> list[Figure]:
    rounds = 15 if quick else 41
    nb.run(_DEFINE)
    plain = "ray.get(plain_one.remote())"
    magic = "%%ray_task --block\n1"
    for source in (plain, magic):
        nb.run(source)
    samples = interleaved({"plain": lambda: nb.timed(plain), "magic": lambda: nb.timed(magic)}, rounds)
    ratio, _ = paired_ratio(samples, "magic", "plain")
    return [Figure(
        "cell", ratio, 1.5,
        how="a trivial `%%ray_task --block` body cell over `ray.get(f.remote())` as a plain cell, via run_cell",
        details=[f"{name}: {spread(values, 1000, ' ms')}" for name, values in samples.items()],
    )]
