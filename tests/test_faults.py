"""Faults on real processes: dying workers and actors, a lost node, Ray shut down
underneath, interrupts mid-wait, and a 10,000-task cell."""
from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import pytest
from conftest import interrupt_after, wait_until

import ray_magic
from ray_magic.refresher import refresher
from ray_magic.tracker import tracker


def run_captured(ip, source: str):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        result = ip.run_cell(source, store_history=True)
    return result, out.getvalue() + err.getvalue()


def ok(ip, source: str):
    result = ip.run_cell(source, store_history=True)
    assert result.success, f"cell failed: {result.error_before_exec or result.error_in_exec!r}"
    return result.result


def panel_text() -> str | None:
    """The live panel's plain text, if the panel is built (None while it is not)."""
    try:
        panel = ray_magic.panel()
    except ImportError:
        return None
    refresher.tick()
    return panel.text()


@pytest.fixture(scope="module")
def nb(shell):
    import ray

    if not ray.is_initialized():
        shell.run_line_magic("ray_init", "--num-cpus 2 --no-panel --quiet")
    yield shell


@pytest.fixture
def markers(tmp_path, nb):
    """A fresh marker path in the notebook: tasks die only on their first attempt."""
    def make(name: str) -> str:
        path = str(tmp_path / name)
        nb.user_ns["marker"] = path
        return path

    yield make
    nb.user_ns.pop("marker", None)


def cpus_free() -> float:
    import ray

    return ray.available_resources().get("CPU", 0.0)


def cpus_total() -> float:
    import ray

    return ray.cluster_resources().get("CPU", 0.0)


# --- a worker dies mid-task ---------------------------------------------------------------

DIE_ONCE = """\
import os
if not os.path.exists(marker):
    open(marker, "w").close()
    os._exit(1)
'survived'
"""


def test_body_task_survives_worker_death_with_retry(nb, markers) -> None:
    markers("body")
    assert ok(nb, "%%ray_task --max-retries 1 --block survivor\n" + DIE_ONCE) == "survived"
    assert nb.user_ns.pop("survivor") == "survived"


def test_remote_function_survives_worker_death_with_retry(nb, markers) -> None:
    path = markers("function")
    body = textwrap.indent(DIE_ONCE.replace("'survived'", "return 'survived'"), "    ")
    ok(nb, "%%ray_task --max-retries 1\ndef flaky(marker):\n" + body)
    ok(nb, f"flaky_ref = flaky.remote({path!r})")
    assert ok(nb, "%ray_get flaky_ref") == "survived"
    record = tracker.futures[-1]
    wait_until(lambda: record.state == "finished", 30, "the retried task to show finished")
    for name in ("flaky", "flaky_ref"):
        nb.user_ns.pop(name)


def test_task_fails_clearly_without_retries(nb, markers) -> None:
    import ray

    markers("no-retry")
    result, shown = run_captured(nb, "%%ray_task --max-retries 0 --block casualty\n" + DIE_ONCE)
    assert isinstance(result.error_in_exec, ray.exceptions.WorkerCrashedError), repr(result.error_in_exec)
    assert "worker died unexpectedly" in str(result.error_in_exec)
    assert "casualty" not in nb.user_ns
    record = tracker.futures[-1]
    wait_until(lambda: record.state == "failed", 30, "the crashed task to show failed")
    assert "worker died" in record.error
    assert ok(nb, "%%ray_task --block\n40 + 2") == 42


# --- an actor's process dies ----------------------------------------------------------------

ACTOR = """\
import os
import time

class {cls}:
    def __init__(self):
        if os.path.exists(marker):  # a restart: slow, so "restarting" can be seen
            time.sleep(3)
        open(marker, "a").close()

    def pid(self):
        return os.getpid()

    def die(self):
        os._exit(1)
"""


def test_actor_restarts_and_serves_again(nb, markers) -> None:
    import ray

    markers("phoenix")
    ok(nb, "%%ray_actor phoenix --max-restarts 1\n" + ACTOR.format(cls="Phoenix"))
    handle = nb.user_ns["phoenix"]
    record = tracker.actors[handle._actor_id.hex()]
    first_pid = ray.get(handle.pid.remote(), timeout=60)
    seen = [record.state]

    def watch(goal):
        def done():
            tracker.update_actor_states()  # every tick, not once a second: a restart is short
            if record.state != seen[-1]:
                seen.append(record.state)
            return record.state == goal
        return done

    ok(nb, "last_words = phoenix.die.remote()")
    wait_until(watch("restarting"), 30, "the actor to show restarting", step=0.02)
    assert ray_magic.status()["actors"]["restarting"] == 1
    text = panel_text()
    if text is not None:
        assert " 1 restarting" in text.splitlines()[2], text
    wait_until(watch("alive"), 60, "the restarted actor to show alive", step=0.05)
    assert seen == ["alive", "restarting", "alive"], seen
    ok(nb, "new_pid = phoenix.pid.remote()")
    assert ok(nb, "%ray_get new_pid") != first_pid
    with pytest.raises(ray.exceptions.RayActorError):  # the call that killed it is not retried
        ray.get(nb.user_ns["last_words"], timeout=30)
    for name in ("phoenix", "Phoenix", "new_pid", "last_words"):
        nb.user_ns.pop(name)


def test_actor_without_restarts_dies_clearly(nb, markers) -> None:
    import ray

    markers("mortal")
    ok(nb, "%%ray_actor mortal\n" + ACTOR.format(cls="Mortal"))
    handle = nb.user_ns["mortal"]
    record = tracker.actors[handle._actor_id.hex()]
    ray.get(handle.pid.remote(), timeout=60)
    dead_before = ray_magic.status()["actors"]["dead"]
    ok(nb, "mortal.die.remote()")
    wait_until(lambda: (tracker.update_actor_states(), record.state == "dead")[1], 30, "the actor to show dead")

    ok(nb, "after_death = mortal.pid.remote()")
    result, shown = run_captured(nb, "%ray_get after_death")
    assert isinstance(result.error_in_exec, ray.exceptions.ActorDiedError), repr(result.error_in_exec)
    assert "The actor died unexpectedly" in str(result.error_in_exec)
    assert "class_name: Mortal" in shown
    tracker.update_actor_states()
    dead = ray_magic.status()["actors"]["dead"]
    assert dead == sum(r.state == "dead" for r in tracker.actors.values()) and dead >= dead_before + 1
    text = panel_text()
    if text is not None:
        assert text.splitlines()[2].endswith(f" {dead} dead"), text
    for name in ("mortal", "Mortal", "after_death"):
        nb.user_ns.pop(name)


# --- interrupts -------------------------------------------------------------------------------

def assert_cancelled_and_freed(records: list, cancelled_before: int, free_before: float) -> None:
    wait_until(lambda: all(r.state == "cancelled" for r in records), 30, "the tasks to show cancelled")
    # Free as before (all of them unless another test left work running): no forgotten sleeper.
    wait_until(lambda: cpus_free() >= free_before, 15, "the CPUs to be free again")
    cancelled = ray_magic.status()["futures"]["cancelled"]
    assert cancelled == cancelled_before + len(records)
    text = panel_text()
    if text is not None:
        assert text.splitlines()[1].endswith(f" {cancelled} cancelled"), text


def test_interrupting_ray_get_cancels(nb) -> None:
    ok(nb, "%%ray_task\ndef nap(seconds):\n    import time\n    time.sleep(seconds)\n    return seconds\n")
    wait_until(lambda: cpus_free() == cpus_total(), 30, "all CPUs free before the test")
    cancelled_before, free_before = ray_magic.status()["futures"]["cancelled"], cpus_free()
    ok(nb, "naps = [nap.remote(120) for _ in range(3)]")
    records = tracker.futures[-3:]
    time.sleep(1.0)  # two of them running, one queued
    with interrupt_after(1.0):
        result, shown = run_captured(nb, "%ray_get naps")
    assert isinstance(result.error_in_exec, KeyboardInterrupt), repr(result.error_in_exec)
    assert "Interrupted: cancelled 3 task(s)" in shown
    assert_cancelled_and_freed(records, cancelled_before, free_before)
    assert ok(nb, "%%ray_task --block\n40 + 2") == 42
    for name in ("nap", "naps"):
        nb.user_ns.pop(name)


def test_interrupting_block_cancels(nb) -> None:
    cancelled_before, free_before = ray_magic.status()["futures"]["cancelled"], cpus_free()
    with interrupt_after(1.5):
        result, shown = run_captured(nb, "%%ray_task --block never_bound\nimport time\ntime.sleep(120)\n")
    assert isinstance(result.error_in_exec, KeyboardInterrupt), repr(result.error_in_exec)
    assert "Interrupted: cancelled 1 task(s)" in shown
    assert "never_bound" not in nb.user_ns
    assert_cancelled_and_freed(tracker.futures[-1:], cancelled_before, free_before)
    assert ok(nb, "%%ray_task --block\n40 + 2") == 42


# --- Ray shut down underneath ------------------------------------------------------------------

def test_ray_shut_down_underneath(nb) -> None:
    import ray

    ok(nb, "%%ray_task\ndef doze(seconds):\n    import time\n    time.sleep(seconds)\n    return seconds\n")
    ok(nb, "stale = doze.remote(60)")  # pending when Ray goes away
    assert refresher.running
    refresher.errors.clear()
    thread_errors: list = []
    previous_hook = threading.excepthook
    threading.excepthook = thread_errors.append
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            ray.shutdown()  # directly, not %ray_shutdown
            deadline = time.monotonic() + 10
            while refresher.running and time.monotonic() < deadline:
                time.sleep(0.1)
    finally:
        threading.excepthook = previous_hook
    assert not refresher.running, "the refresher thread kept running without Ray"
    assert thread_errors == [] and refresher.errors == [] and "Traceback" not in err.getvalue()

    for _ in range(3):  # on 2 shared cores a local Ray sometimes times out starting: not what is tested here
        result, shown = run_captured(nb, "%ray_init --num-cpus 2 --no-panel --quiet")
        if result.success or "timed out during startup" not in shown:
            break
    assert result.success, shown
    assert refresher.running
    finished_before = ray_magic.status()["futures"]["finished"]
    assert ok(nb, "%%ray_task --block\n40 + 2") == 42
    ok(nb, "fresh = doze.remote(0.1)")  # a remote function defined before the restart
    assert ok(nb, "%ray_get fresh") == 0.1
    refresher.tick()  # old futures must not break polling
    wait_until(lambda: ray_magic.status()["futures"]["finished"] == finished_before + 2, 30,
               "the new tasks to be counted")
    assert refresher.errors == []
    text = panel_text()
    if text is not None:
        assert "1/1 nodes alive" in text and "0 pending" in text, text
    for name in ("doze", "stale", "fresh"):
        nb.user_ns.pop(name)


# --- load -----------------------------------------------------------------------------------------

def test_ten_thousand_tasks_from_one_cell(nb) -> None:
    import ray

    ok(nb, "%%ray_task\ndef tiny(i):\n    return i\n")
    before = ray_magic.status()["futures"]
    started = time.perf_counter()
    ok(nb, "refs = [tiny.remote(i) for i in range(10_000)]")
    cell = nb.execution_count - 1
    submitted = time.perf_counter()
    assert ok(nb, "import ray\nsum(ray.get(refs))") == sum(range(10_000))
    wait_until(lambda: tracker.cells[cell].done == 10_000, 120, "all 10,000 to be counted", step=0.2)
    counted = time.perf_counter()
    print(f"\n10,000 tasks: submitted in {submitted - started:.1f} s, "
          f"all finished and counted in {counted - started:.1f} s")

    after = ray_magic.status()["futures"]
    assert tracker.cells[cell].total == 10_000 and tracker.cells[cell].finished == 10_000
    assert after["finished"] - before["finished"] == 10_000
    assert after["pending"] == 0 and after["failed"] == before["failed"]
    # Bounded memory: the record holds no future once done, so dropping the list frees them all.
    records = [r for r in tracker.futures if r.cell == cell]
    assert len(records) == 10_000 and all(r.ref is None for r in records)
    nb.user_ns.pop("refs")
    nb.user_ns.pop("tiny")
    ok(nb, "import gc; gc.collect()")
    held = ray._private.worker.global_worker.core_worker.get_all_reference_counts()
    assert len(held) < 1_000, f"{len(held)} object refs still held by the driver"


# --- a node dies under a long task (three-node cluster, in its own driver process) ----------------

CLUSTER_DRIVER = r'''
import json, os, sys, time
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
marker = sys.argv[1]
import ray
from ray.cluster_utils import Cluster
from IPython.testing.globalipapp import start_ipython

try:
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
except Exception as err:  # Ray waits a fixed 30 s for each node: too short on an overloaded machine
    print("CLUSTER_START_FAILED " + str(err).splitlines()[0], flush=True)
    sys.exit(3)
ip = start_ipython()
ip.run_line_magic("load_ext", "ray_magic")
report = {}
try:
    ip.run_line_magic("ray_init", f"--address {cluster.address} --no-panel --quiet")
    ip.user_ns["marker"] = marker
    cell = (
        "%%ray_task long --max-retries 2\n"
        "import os, time, ray\n"
        "node = ray.get_runtime_context().get_node_id()\n"
        "if not os.path.exists(marker):\n"
        "    open(marker, 'w').write(node)\n"
        "    time.sleep(300)\n"
        "node\n"
    )
    assert ip.run_cell(cell, store_history=True).success
    deadline = time.time() + 120
    while not (os.path.exists(marker) and open(marker).read()):
        assert time.time() < deadline, "the long task never started"
        time.sleep(0.1)
    first = open(marker).read()
    victim = [n for n in workers if n.node_id == first][0]
    cluster.remove_node(victim)
    result = ip.run_cell("%ray_get long --timeout 120", store_history=True)
    report["error"] = repr(result.error_in_exec) if result.error_in_exec else None
    report["first"], report["second"] = first, ip.user_ns.get("long")
    import ray_magic
    from ray_magic.refresher import refresher
    time.sleep(1.5)
    refresher.tick()
    report["status"] = ray_magic.status()
    try:
        report["panel"] = ray_magic.panel().text()
    except ImportError:
        report["panel"] = None
finally:
    ip.run_line_magic("ray_shutdown", "")
    cluster.shutdown()
print("REPORT " + json.dumps(report, default=str), flush=True)
'''


def run_cluster_driver(tmp_path: Path, attempt: int) -> str:
    script = tmp_path / "driver.py"
    script.write_text(CLUSTER_DRIVER)
    # Its own Ray temp dir: the cluster's address file must not steer anyone's ray.init().
    ray_tmp = tempfile.mkdtemp(prefix="rmf", dir="/tmp")
    env = {**os.environ, "RAY_TMPDIR": ray_tmp, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path / f"marker{attempt}")], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail("the cluster driver did not finish:\n" + out[-3000:])
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    return out


def test_node_lost_under_long_task_is_retried_elsewhere(tmp_path: Path) -> None:
    for attempt in range(2):
        out = run_cluster_driver(tmp_path, attempt)
        if "CLUSTER_START_FAILED" not in out:
            break
    else:
        pytest.skip("Ray's three-node test Cluster did not start twice (Ray waits a fixed 30 s per node; "
                    "the machine is overloaded): " + out.splitlines()[-1])
    lines = [line for line in out.splitlines() if line.startswith("REPORT ")]
    assert lines, out[-3000:]
    report = json.loads(lines[-1][len("REPORT "):])
    assert report["error"] is None, report
    assert report["second"] and report["second"] != report["first"], report  # retried on the other node
    assert report["status"]["futures"]["finished"] == 1 and report["status"]["futures"]["failed"] == 0
    assert report["status"]["cluster"]["nodes_alive"] == 2 and report["status"]["cluster"]["nodes"] == 3
    if report["panel"] is not None:
        assert "2/3 nodes alive" in report["panel"], report["panel"]
