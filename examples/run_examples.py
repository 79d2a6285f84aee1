"""Execute the example notebooks through a real Jupyter kernel (what `make demo` runs).

Generates the small taxi data set, runs every notebook in examples/es and
examples/en with nbclient (kernel `python3` of this Python), and writes the executed
copies and their HTML renderings under examples/out/<lang>/. Prints where they are
and how long each took; exits non-zero if a cell raised.

    .venv/bin/python examples/run_examples.py                  # all notebooks, both languages
    .venv/bin/python examples/run_examples.py --lang en 02     # one notebook, English only

Tests import `prepare_data`, `kernel_env` and `execute_notebook` from here.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time
from dataclasses import dataclass

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent
LANGUAGES = ("es", "en")
DEFAULT_ROWS = 20_000  # taxi trips over the four monthly files
DEFAULT_INGEST_MIB = 4.0
CELL_TIMEOUT = 600  # seconds; a cell that takes longer has hung
RAY_STARTUP_TIMEOUT = "timed out during startup"  # Ray's message when its node did not start within 30 s


@dataclass
class Run:
    """One executed notebook: where it came from, where it went, how it went."""

    source: pathlib.Path
    executed: pathlib.Path | None
    html: pathlib.Path | None
    seconds: float
    error: str | None  # the failing cell's error, one line; None when every cell ran


def notebook_paths(languages: tuple[str, ...] = LANGUAGES, only: list[str] | None = None) -> list[pathlib.Path]:
    """The committed notebooks, in order; `only` keeps names that start with one of its prefixes."""
    paths = []
    for language in languages:
        for path in sorted((HERE / language).glob("*.ipynb")):
            if not only or any(path.stem.startswith(prefix) for prefix in only):
                paths.append(path)
    return paths


def prepare_data(data_dir: pathlib.Path, rows: int = DEFAULT_ROWS) -> list[pathlib.Path]:
    """Write the taxi CSVs the Ray Data notebook reads (kept if already written alike)."""
    sys.path.insert(0, str(REPO))  # ray_magic from this checkout, installed or not
    from ray_magic.taxi import write_taxi_csvs

    return write_taxi_csvs(data_dir / "taxi", rows)


def kernel_env(data_dir: pathlib.Path, rows: int = DEFAULT_ROWS, ingest_mib: float = DEFAULT_INGEST_MIB) -> dict:
    """The environment of the notebooks' kernel: this Python first on PATH, Ray on 127.0.0.1."""
    env = dict(os.environ)
    bin_dir = str(pathlib.Path(sys.executable).parent)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    env["RAY_MAGIC_DATA_DIR"] = str(data_dir)
    env["RAY_MAGIC_TAXI_ROWS"] = str(rows)
    env["RAY_MAGIC_INGEST_MIB"] = str(ingest_mib)
    env.pop("JPY_PARENT_PID", None)
    return env


def _kernel_manager_class():
    """A kernel manager for `python3` that runs this very interpreter's ipykernel.

    A user-level `python3` kernelspec (~/.local/share/jupyter) would otherwise win
    and could name another Python; ipykernel's own spec uses sys.executable.
    """
    from ipykernel.kernelspec import RESOURCES, get_kernel_dict
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager

    class ThisPythonSpecs(KernelSpecManager):
        def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
            return KernelSpec(resource_dir=RESOURCES, **get_kernel_dict())

    class ThisPythonKernel(AsyncKernelManager):
        def __init__(self, **kwargs):
            kwargs.setdefault("kernel_spec_manager", ThisPythonSpecs())
            kwargs.setdefault("transport_encryption", "auto")  # CurveZMQ keys: no plaintext-TCP warning
            super().__init__(**kwargs)

    return ThisPythonKernel


def _first_error(nb) -> str | None:
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                return f"cell {cell.get('execution_count')}: {output.get('ename')}: {output.get('evalue')}"
    return None


def _run_once(source: pathlib.Path, env: dict, timeout: int):
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    nb = nbformat.read(source, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        kernel_manager_class=_kernel_manager_class(),
        store_widget_state=True,
        resources={"metadata": {"path": str(source.parent)}},
    )
    error = None
    try:
        client.execute(env=env)
    except CellExecutionError as err:
        error = _first_error(nb) or f"{err.ename}: {str(err.evalue).splitlines()[0] if err.evalue else ''}"
    except (CellTimeoutError, DeadKernelError, RuntimeError) as err:  # RuntimeError: kernel did not start
        error = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
    return nb, error


def execute_notebook(source: pathlib.Path, out_dir: pathlib.Path | None, env: dict,
                     timeout: int = CELL_TIMEOUT, html: bool = True) -> tuple[Run, object]:
    """Run one notebook in a fresh kernel (cwd: the notebook's folder); returns (Run, executed notebook).

    A cell error stops the run, as in Jupyter's "run all"; the executed copy, up
    to and with the error, is still written. Ray gives its local node 30 s to
    start; on a machine too busy for that, the notebook runs once more (and says so).
    """
    import nbformat

    started = time.monotonic()
    nb, error = _run_once(source, env, timeout)
    if error and RAY_STARTUP_TIMEOUT in error:
        print(f"(Ray did not start in time, running {source.name} again)", end=" ", file=sys.stderr, flush=True)
        nb, error = _run_once(source, env, timeout)
    seconds = time.monotonic() - started
    executed = html_path = None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        executed = out_dir / source.name
        nbformat.write(nb, executed)
        if html:
            html_path = out_dir / (source.stem + ".html")
            html_path.write_text(render_html(nb), encoding="utf-8")
    return Run(source, executed, html_path, seconds, error), nb


def render_html(nb) -> str:
    """The executed notebook as one HTML page, widgets included (their saved state)."""
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter(template_name="lab").from_notebook_node(nb)
    return body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Execute the example notebooks through a real Jupyter kernel.")
    parser.add_argument("only", nargs="*", help="notebook name prefixes (e.g. 01 02); default: all")
    parser.add_argument("--lang", choices=(*LANGUAGES, "all"), default="all", help="which language's notebooks")
    parser.add_argument("--rows", type=int, default=int(os.environ.get("RAY_MAGIC_TAXI_ROWS", DEFAULT_ROWS)),
                        help=f"taxi trips to generate (default {DEFAULT_ROWS:,})")
    parser.add_argument("--ingest-mib", type=float,
                        default=float(os.environ.get("RAY_MAGIC_INGEST_MIB", DEFAULT_INGEST_MIB)),
                        help=f"MiB of training data in the ML ingest notebook (default {DEFAULT_INGEST_MIB:g})")
    parser.add_argument("--data", type=pathlib.Path, default=HERE / "data", help="data folder (default examples/data)")
    parser.add_argument("--out", type=pathlib.Path, default=HERE / "out", help="output folder (default examples/out)")
    args = parser.parse_args(argv)

    languages = LANGUAGES if args.lang == "all" else (args.lang,)
    paths = notebook_paths(languages, args.only)
    if not paths:
        parser.error("no notebook matches")
    data_dir = args.data.resolve()
    started = time.monotonic()
    prepare_data(data_dir, args.rows)
    print(f"taxi data: {args.rows:,} trips in {data_dir / 'taxi'} ({time.monotonic() - started:.1f} s)", flush=True)
    env = kernel_env(data_dir, args.rows, args.ingest_mib)

    runs = []
    for path in paths:
        label = path.relative_to(HERE)
        print(f"running {label} ...", end=" ", flush=True)
        run, _ = execute_notebook(path, args.out.resolve() / path.parent.name, env)
        runs.append(run)
        print(f"{run.seconds:.1f} s" + (f"  FAILED: {run.error}" if run.error else ""), flush=True)

    print(f"\nExecuted notebooks and HTML in {args.out.resolve()}:")
    for run in runs:
        status = "ok" if run.error is None else "FAILED"
        print(f"  {status:6} {run.seconds:6.1f} s  {run.html}")
    failed = [run for run in runs if run.error]
    print(f"{len(runs) - len(failed)} of {len(runs)} notebooks ran without errors "
          f"in {time.monotonic() - started:.0f} s.")
    for run in failed:
        print(f"FAILED {run.source.relative_to(HERE)}: {run.error}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
