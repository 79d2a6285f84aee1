"""Bad input, one table: every magic and option, each mistake a one-line error.

For each row: IPython shows exactly one line (`UsageError: ...`) that names the
cause, with no traceback into ray_magic; nothing is submitted (tracker and Ray's
own task events); the notebook's namespace is unchanged; the next cell runs.
"""
from __future__ import annotations

import contextlib
import io
import re
import time

import pytest
from IPython.core.error import UsageError

from ray_magic.tracker import tracker

# IPython's history bookkeeping changes with every counted cell; everything else must not.
_HISTORY = re.compile(r"^(_{1,3}|_i{1,3}|_i?\d+|In|Out|_oh|_ih|_dh|_exit_code)$")

# Variables the table's cells refer to, made once (see the `nb` fixture).
SETUP = """
import threading, time
import ray
five = 5
numbers = [1, 2]
lk = threading.Lock()
ds = ray.data.range(20)
"""

CASES = [
    # --- %ray_init: options are checked first, connected or not -------------------------
    ("%ray_init --bogus", "%ray_init: unrecognized arguments: --bogus"),
    ("%ray_init --num-cpus x", "argument --num-cpus: expected a number, got 'x'"),
    ("%ray_init --num-gpus -1", "argument --num-gpus: expected zero or more"),
    ("%ray_init --runtime-env '{bad'", "argument --runtime-env: bad JSON"),
    ("%ray_init --runtime-env '[1]'", "argument --runtime-env: expected a JSON object"),
    ("%ray_init --object-store-memory -1", "argument --object-store-memory: expected zero or more, got -1"),
    ("%ray_init --address foo", "malformed address 'foo'"),
    ("%ray_init --address http://x:1", "the only scheme allowed is ray://"),
    ("%ray_init --address host:99999", "port must be a number in 1..65535"),
    ("%ray_init --address 'unclosed", "%ray_init: no closing quotation"),
    ("%ray_init --address 127.0.0.1:1", "run %ray_shutdown first to connect to 127.0.0.1:1"),
    ("%ray_shutdown now", "%ray_shutdown takes no arguments"),
    ("%ray_panel --big", "%ray_panel takes no arguments"),
    ("%ray_timeline --cell x", "%ray_timeline: argument --cell: expected a whole number, got 'x'"),
    ("%ray_timeline --last 0", "argument --last: expected more than 0 seconds"),
    ("%ray_timeline --bogus", "%ray_timeline: unrecognized arguments: --bogus"),
    # --- %%ray_task: options ---------------------------------------------------------------
    ("%%ray_task --bogus\n1", "%%ray_task: unrecognized arguments: --bogus"),
    ("%%ray_task a b\n1", "%%ray_task: unrecognized arguments: b"),
    ("%%ray_task --num-cpus x\n1", "argument --num-cpus: expected a number, got 'x'"),
    ("%%ray_task --max-retries -5\n1", "argument --max-retries: expected -1 (forever) or more, got -5"),
    ("%%ray_task --memory lots\n1", "argument --memory: expected a whole number, got 'lots'"),
    ("%%ray_task --resources '{bad'\n1", "argument --resources: bad JSON"),
    ("""%%ray_task --resources '{"TPU": -1}'\n1""", "resource 'TPU' needs a number of zero or more"),
    ("%%ray_task --runtime-env nope\n1", "argument --runtime-env: bad JSON"),
    ("%%ray_task --label\n1", "argument --label: expected one argument"),
    ("%%ray_task --timeout 3\n1", "--timeout goes with --block"),
    ("%%ray_task --block --timeout 0\n1", "argument --timeout: expected more than 0 seconds"),
    # --- %%ray_task: cells -------------------------------------------------------------------
    ("%%ray_task\n", "cell body is empty"),
    ("%%ray_task\n# only a comment\n", "the cell is empty"),
    ("%%ray_task\nx = (\n", "syntax error on line 2 of the cell"),
    ("%%ray_task\nx = 1\ny = 2\nz = = 3\n", "syntax error on line 4 of the cell"),
    ("%%ray_task\nyield 1\n", "line 2 of the cell: 'yield' outside function"),
    ("%%ray_task out\ndef f():\n    return 1\n", "NAME is only for a body cell"),
    ("%%ray_task --block\ndef f():\n    return 1\n", "--block is only for a body cell"),
    ("%%ray_task\nx = 1\nundefined_thing + x\n", "name 'undefined_thing' (line 3 of the cell) is not defined"),
    ("%%ray_task\nlen(str(lk))\n", "variable 'lk' cannot be sent to a worker"),
    # --- %%ray_actor ----------------------------------------------------------------------------
    ("%%ray_actor\nx = 1\n", "must define exactly one class (found 0)"),
    ("%%ray_actor\nclass A:\n    pass\nclass B:\n    pass\n", "exactly one class (found 2: A, B)"),
    ("%%ray_actor\n# nothing\n", "the cell is empty"),
    ("%%ray_actor\nclass A:\n    def f(self) return 1\n", "syntax error on line 3 of the cell"),
    ("%%ray_actor --lifetime forever\nclass A:\n    pass\n", "argument --lifetime: invalid choice: 'forever'"),
    ("%%ray_actor --name foo\nclass A:\n    pass\n", "--name, --namespace, --lifetime and --get-if-exists need NAME"),
    ("%%ray_actor --max-restarts -2\nclass A:\n    pass\n", "argument --max-restarts: expected -1 (forever) or more"),
    ("%%ray_actor --max-concurrency x\nclass A:\n    pass\n", "argument --max-concurrency: expected a whole number"),
    # --- %ray_kill ---------------------------------------------------------------------------------
    ("%ray_kill", "%ray_kill: the following arguments are required: name"),
    ("%ray_kill nothing_here", "name 'nothing_here' is not defined in the notebook"),
    ("%ray_kill five", "five has type int, not an actor handle"),
    ("%ray_kill dead_actor", "actor dead_actor is already dead"),
    # --- %ray_get / %ray_cancel ----------------------------------------------------------------------
    ("%ray_get", "%ray_get: the following arguments are required: names"),
    ("%ray_get nothing_here", "name 'nothing_here' is not defined in the notebook"),
    ("%ray_get five", "five has type int, not a future"),
    ("%ray_get numbers", "numbers has type list, not a future"),
    ("%ray_get --timeout abc fin", "argument --timeout: expected a number, got 'abc'"),
    ("%ray_get --timeout 0.5 sleeper", "1 of 1 futures not done after 0.5 s"),
    ("%ray_cancel fin", "fin is already done; nothing to cancel"),
    ("%ray_cancel five", "five has type int, not a future"),
    # --- %ray_data -------------------------------------------------------------------------------------
    ("%ray_data", "%ray_data: the following arguments are required: expr"),
    ("%ray_data 5", "%ray_data: 5 has type int, not a Ray Dataset"),
    ("%ray_data five", "five has type int, not a Ray Dataset"),
    ("%ray_data nothing_here", "name 'nothing_here' is not defined in the notebook"),
    ("%ray_data 1 +", "is not an expression"),
    ("%ray_data -n x ds", "argument -n: expected a whole number, got 'x'"),
    ("%ray_data ds --bogus", "%ray_data: unrecognized arguments: --bogus"),
    ("""%ray_data ds.filter(expr="id >""", "is not an expression"),
    # --- %%ray_data ------------------------------------------------------------------------------------
    ("%%ray_data nothing_here\ndf\n", "IN 'nothing_here' is not defined in the notebook"),
    ("%%ray_data five\ndf\n", "%%ray_data: five has type int, not a Ray Dataset"),
    ("%%ray_data = ds\ndf\n", "expected [OUT =] IN [options]"),
    ("%%ray_data ds --batch-format xml\ndf\n", "argument --batch-format: invalid choice: 'xml'"),
    ("%%ray_data ds --batch-size -3\ndf\n", "argument --batch-size: expected zero or more"),
    ("%%ray_data ds\n# nothing\n", "the cell is empty"),
    ("%%ray_data ds\ndf[df.id >\n", "syntax error on line 2 of the cell"),
    ("%%ray_data out = ds\nnope_name + df\n", "name 'nope_name' is not defined in the notebook"),
    ("%%ray_data out = ds\nclass T:\n    def f(self):\n        pass\n", "class T needs a __call__(self, batch) method"),
    ("%%ray_data out = ds\nlen(str(lk))\ndf\n", "variable 'lk' cannot be sent to a worker"),
]

# Cells that run first, for the rows that need a future, an actor or a sleeping task.
PREPARE = {
    "%ray_get --timeout 0.5 sleeper": "%%ray_task sleeper --label sleeper\nimport time\ntime.sleep(120)\n",
}


def run_captured(ip, source: str):
    """Run a counted cell; return IPython's result and everything it displayed."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        result = ip.run_cell(source, store_history=True)
    return result, out.getvalue() + err.getvalue()


def namespace(ip) -> dict:
    return {k: v for k, v in ip.user_ns.items() if not _HISTORY.match(k)}


def assert_namespace_unchanged(before: dict, after: dict) -> None:
    assert sorted(after) == sorted(before), f"names added or removed: {set(after) ^ set(before)}"
    changed = [k for k in before if after[k] is not before[k]]
    assert not changed, f"names rebound: {changed}"


def counts() -> tuple[int, int, int]:
    return len(tracker.futures), len(tracker.actors), len(tracker.datasets)


@pytest.fixture(scope="module")
def nb(shell):
    """The shell on a running Ray, with the variables the table refers to."""
    import ray

    if not ray.is_initialized():
        shell.run_line_magic("ray_init", "--num-cpus 2 --no-panel --quiet")
    for cell in (
        SETUP,
        "%%ray_task fin --label fin\n1\n",
        "%%ray_actor dead_actor\nclass Doomed:\n    def ping(self):\n        return 1\n",
    ):
        result = shell.run_cell(cell, store_history=True)
        assert result.success, result.error_in_exec
    ns = shell.user_ns
    ray.get(ns["fin"])
    # From a cell, so the call is named after its own cell, not a later (bad) one.
    assert shell.run_cell("ray.get(dead_actor.ping.remote())", store_history=True).success
    shell.run_line_magic("ray_kill", "dead_actor")
    actor_id = ns["dead_actor"]._actor_id.hex()
    deadline = time.monotonic() + 30
    while ray._private.state.actors(actor_id=actor_id).get("State") != "DEAD":
        assert time.monotonic() < deadline, "the killed actor never showed as dead"
        time.sleep(0.1)
    bad_cells: list[int] = []
    yield shell, bad_cells
    for name in ("sleeper",):
        if name in ns:
            ray.cancel(ns[name], force=True)
    for name in ("five", "numbers", "lk", "ds", "fin", "dead_actor", "sleeper", "Doomed", "threading", "time"):
        ns.pop(name, None)


@pytest.mark.parametrize(("cell", "fragment"), CASES, ids=[c.split("\n")[0] + f" #{i}" for i, (c, _) in
                                                           enumerate(CASES)])
def test_bad_input(nb, cell: str, fragment: str) -> None:
    ip, bad_cells = nb
    if cell in PREPARE:
        assert ip.run_cell(PREPARE[cell], store_history=True).success
    before, submitted = namespace(ip), counts()

    result, shown = run_captured(ip, cell)
    bad_cells.append(ip.execution_count - 1)

    assert isinstance(result.error_in_exec, UsageError), f"{result.error_in_exec!r}\n{shown}"
    lines = [line for line in shown.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line, IPython showed:\n{shown}"
    assert lines[0].startswith("UsageError: "), lines[0]
    assert fragment in lines[0], lines[0]
    assert "Traceback" not in shown and "ray_magic" not in shown
    assert counts() == submitted, "something was submitted or recorded"
    assert_namespace_unchanged(before, namespace(ip))

    # The next cell runs, and the magics still work.
    after, shown = run_captured(ip, "%%ray_task --block\n40 + 2\n")
    assert after.success and after.result == 42, shown


def test_failed_future_as_input(nb) -> None:
    """A failed upstream task: the dependent task fails with the upstream error, as Ray raises it."""
    import ray

    ip, _ = nb
    assert ip.run_cell("%%ray_task broken\nraise ValueError('boom upstream')\n", store_history=True).success
    ray.wait([ip.user_ns["broken"]], timeout=30)
    before = namespace(ip)

    result, shown = run_captured(ip, "%%ray_task --block downstream\nbroken + 1\n")

    err = result.error_in_exec
    assert isinstance(err, ValueError) and isinstance(err, ray.exceptions.RayTaskError), repr(err)
    assert "boom upstream" in str(err)
    assert "ValueError: boom upstream" in shown
    assert_namespace_unchanged(before, namespace(ip))  # downstream is not bound
    assert ip.run_cell("%%ray_task --block\n40 + 2\n", store_history=True).result == 42
    ip.user_ns.pop("broken", None)


def test_nothing_reached_ray(nb) -> None:
    """Ray's own record of tasks (GCS task events) holds none named for a bad cell."""
    import ray

    _, bad_cells = nb
    assert len(bad_cells) == len(CASES)
    names = {f"cell {n}" for n in bad_cells}
    pattern = re.compile(r"\[cell (\d+)\]$")
    time.sleep(2.5)  # task events reach the GCS about once a second
    job = ray.get_runtime_context().get_job_id()
    seen = [e.task_info.name for e in ray._private.state.state._get_all_task_events()
            if e.task_info.job_id.hex() == job]
    assert any(name == "fin" or name.startswith("fin ") for name in seen), "the probe cannot see this job's tasks"
    leaked = [name for name in seen if name in names
              or ((m := pattern.search(name)) and int(m.group(1)) in bad_cells)]
    assert not leaked, f"tasks from bad cells reached Ray: {leaked}"


def test_catalogue_is_large_enough() -> None:
    magics = {re.match(r"%%?\w+", c).group(0) for c, _ in CASES}
    assert len(CASES) >= 30
    assert magics >= {"%ray_init", "%ray_shutdown", "%ray_panel", "%%ray_task", "%%ray_actor", "%ray_kill",
                      "%ray_get", "%ray_cancel", "%ray_timeline", "%ray_data", "%%ray_data"}
