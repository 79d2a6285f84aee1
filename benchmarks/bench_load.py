"""`load`: what `%load_ext ray_magic` adds to starting a shell, in fresh processes.

Each round starts two fresh Python processes, one that starts an IPython shell and
one that starts a shell and loads the extension (order alternating). Each process
times itself from before `import IPython` to the shell being ready, and reports
whether `ray` got imported. The figure is the median time of the `%load_ext` call;
the difference of the median startups is reported beside it.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

from harness import HERE, Figure, interleaved, median, spread

_PROBE = r"""
import json, sys, time
start = time.perf_counter()
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
ready = time.perf_counter()
if LOAD:
    shell.run_line_magic("load_ext", "ray_magic")
loaded = time.perf_counter()
print(json.dumps({"startup": loaded - start, "load": loaded - ready,
                  "ray": "ray" in sys.modules, "ray.data": "ray.data" in sys.modules}))
"""


def _probe(load: bool) -> dict:
    code = _PROBE.replace("LOAD", "True" if load else "False")
    env = dict(os.environ, PYTHONPATH=os.path.dirname(HERE))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env,
                         cwd=os.path.dirname(HERE), check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(quick: bool) -> list[Figure]:
    rounds = 5 if quick else 11
    results: dict[str, list[dict]] = {"shell": [], "shell+ray_magic": []}

    def variant(name: str, load: bool):
        def one() -> float:
            result = _probe(load)
            results[name].append(result)
            return result["startup"]
        return one

    samples = interleaved({"shell": variant("shell", False), "shell+ray_magic": variant("shell+ray_magic", True)},
                          rounds)
    loads = [r["load"] for r in results["shell+ray_magic"]]
    imported = any(r["ray"] or r["ray.data"] for r in results["shell+ray_magic"])
    added = median(samples["shell+ray_magic"]) - median(samples["shell"])
    figure = Figure(
        "load", median(loads) * 1000, 50.0, unit="ms",
        how="fresh processes, interleaved: time of `%load_ext ray_magic` in a just-started IPython shell",
        details=[
            f"%load_ext call: {spread(loads, 1000, ' ms')}",
            f"shell startup without: {spread(samples['shell'], 1000, ' ms')}",
            f"shell startup with:    {spread(samples['shell+ray_magic'], 1000, ' ms')}",
            f"difference of median startups: {added * 1000:.1f} ms",
            f"ray imported by loading: {'YES (short)' if imported else 'no'}",
        ],
    )
    if imported:
        figure.problem = "loading imported ray"
    return [figure]
