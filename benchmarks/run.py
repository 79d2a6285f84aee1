"""Run the ray_magic benchmarks: `python benchmarks/run.py [--quick] [--only NAME ...] [--readme]`.

Prints one line per figure, `BENCH <name> <value> goal <goal> <ok|short>`, and
exits 1 when a figure falls short. Everything else the run prints (Ray, the
peers, progress) goes to `benchmarks/.cache/bench.log`; `-v` also prints each
figure's details. `--readme` writes the table of this run into README.md.

One process, one notebook shell, one local Ray with 2 CPUs for every figure but
`load` (which starts fresh processes).
"""
from __future__ import annotations

import argparse
import datetime
import faulthandler
import json
import os
import platform
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from harness import CACHE, HERE, Figure, Notebook, log  # noqa: E402

# name -> (module, function, figures it reports); in the order they run.
GROUPS = {
    "load": ("bench_load", "run", ["load"]),
    "submit": ("bench_submit", "run_submit", ["submit", "submit-panel"]),
    "cell": ("bench_submit", "run_cell", ["cell"]),
    "panel": ("bench_panel", "run", ["panel-tick", "panel-tick-pending", "responsive"]),
    "pinning": ("bench_pinning", "run", ["pinning-store", "pinning-driver"]),
    "peers": ("bench_peers", "run", ["peers-ipyparallel", "peers-dask", "peers-px"]),
    "data": ("bench_data", "run", ["data"]),
}
NEEDS_NOTEBOOK = {"submit", "cell", "panel", "pinning", "peers", "data"}
README = os.path.join(HERE, "README.md")
START, END = "<!-- results:start -->", "<!-- results:end -->"


def machine() -> dict:
    import psutil
    import ray

    return {
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "ray": ray.__version__,
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "load_start": os.getloadavg()[0],
    }


class Output:
    """BENCH lines to the real stdout; everything else (fd 1 and 2) to the log."""

    def __init__(self, log_path: str, verbose: bool) -> None:
        self.verbose = verbose
        sys.stdout.flush()
        sys.stderr.flush()
        self.out = os.fdopen(os.dup(1), "w", buffering=1)
        self.log_path = log_path
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        faulthandler.enable(file=sys.stderr)

    def figure(self, figure: Figure) -> None:
        print(figure.line(), file=self.out, flush=True)
        lines = [f"    {figure.how}"] + [f"    {d}" for d in figure.details]
        if figure.problem:
            lines.append(f"    problem: {figure.problem}")
        print(figure.line() + "\n" + "\n".join(lines), file=sys.stderr, flush=True)
        if self.verbose:
            print("\n".join(lines), file=self.out, flush=True)

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)
        print(text, file=sys.stderr, flush=True)


def run_group(name: str, quick: bool, notebook: Notebook | None) -> list[Figure]:
    module_name, function, _ = GROUPS[name]
    module = __import__(module_name)
    if name in NEEDS_NOTEBOOK:
        return getattr(module, function)(notebook, quick)
    return getattr(module, function)(quick)


def table(figures: list[Figure], info: dict, quick: bool, elapsed: float) -> str:
    rows = [
        f"Latest {'quick' if quick else 'full'} run: {info['date']}; {info['cores']} cores, "
        f"{info['memory_gib']} GiB, Python {info['python']}, Ray {info['ray']}; {elapsed:.0f} s; "
        f"load average {info['load_start']:.1f} at the start, {info['load_end']:.1f} at the end.",
        "",
        "| figure | value | goal | | how it is measured |",
        "|---|---|---|---|---|",
    ]
    for f in figures:
        how = f.how.replace("|", "\\|")
        rows.append(f"| `{f.name}` | {f.shown(f.value)} | {f.goal_text()} | {'ok' if f.ok else '**short**'} | {how} |")
    return "\n".join(rows)


def write_readme(text: str) -> None:
    with open(README) as handle:
        readme = handle.read()
    if START not in readme or END not in readme:
        raise SystemExit(f"{README} has no {START} ... {END} section")
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    with open(README, "w") as handle:
        handle.write(f"{head}{START}\n{text}\n{END}{tail}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="A reduced run, for a smoke check.")
    parser.add_argument("--only", nargs="+", choices=list(GROUPS), help="Run only these benchmarks.")
    parser.add_argument("--readme", action="store_true", help="Write this run's table into benchmarks/README.md.")
    parser.add_argument("-v", "--verbose", action="store_true", help="Also print each figure's details.")
    args = parser.parse_args(argv)
    if args.readme and (args.quick or args.only):
        parser.error("--readme records a full run: drop --quick and --only")

    os.makedirs(CACHE, exist_ok=True)
    started = time.perf_counter()
    info = machine()
    output = Output(os.path.join(CACHE, "bench.log"), args.verbose)
    faulthandler.dump_traceback_later(600 if args.quick else 1800, exit=True)  # never hang forever
    names = args.only or list(GROUPS)
    figures: list[Figure] = []
    notebook: Notebook | None = None
    no_notebook: Exception | None = None  # starting it failed: say so for every figure that needs it
    try:
        for name in names:
            log(f"--- {name}")
            try:
                if name in NEEDS_NOTEBOOK and notebook is None:
                    if no_notebook is not None:
                        raise RuntimeError(f"no notebook: {no_notebook}")
                    try:
                        notebook = Notebook()
                    except Exception as err:
                        no_notebook = err
                        raise
                got = run_group(name, args.quick, notebook)
            except Exception as err:
                traceback.print_exc()
                got = [Figure(figure, float("nan"), None, how=f"failed: {type(err).__name__}: {err}",
                              problem=f"{type(err).__name__}: {err}") for figure in GROUPS[name][2]]
            for figure in got:
                output.figure(figure)
            figures += got
    finally:
        if notebook is not None:
            notebook.shutdown()
    elapsed = time.perf_counter() - started
    info["load_end"] = os.getloadavg()[0]
    short = [f.name for f in figures if not f.ok]
    output.say(f"# {len(figures) - len(short)}/{len(figures)} figures ok in {elapsed:.0f} s"
               + (f"; short: {', '.join(short)}" if short else "") + f" (log: {output.log_path})")
    result = {"machine": info, "quick": args.quick, "elapsed_s": elapsed,
              "figures": [{**vars(f), "ok": f.ok} for f in figures]}
    with open(os.path.join(CACHE, "latest-quick.json" if args.quick else "latest.json"), "w") as handle:
        json.dump(result, handle, indent=1, default=str)
    if args.readme:
        write_readme(table(figures, info, args.quick, elapsed))
    faulthandler.cancel_dump_traceback_later()
    return 1 if short else 0


if __name__ == "__main__":
    sys.exit(main())
