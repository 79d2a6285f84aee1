"""The live panel against real widgets, a real IPython shell and a real local Ray.

Uses the session's shell and local Ray (conftest). Refreshes are driven with
`refresher.tick()`: the background thread is left running with an interval of an
hour, so it never ticks on its own except in the tests that check it. The
three-node cluster and the shutdown / Ray-gone behaviour run in a subprocess: one
process can only be the driver of one Ray at a time.
"""
from __future__ import annotations

import gc
import html
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

import ipywidgets  # noqa: E402

HOSTILE = "<img src=x onerror=alert(1)>"
WAIT = 60  # seconds: generous, the machine is shared


def _settings(shell, use_widgets: str, interval: str) -> None:
    """Apply settings and restart the refresher thread with them (a running one would keep its pace)."""
    from ray_magic.refresher import refresher

    shell.run_line_magic("config", f"RayMagics.use_widgets = {use_widgets}")
    shell.run_line_magic("config", f"RayMagics.refresh_interval = {interval}")
    refresher.stop()
    shell.run_line_magic("ray_init", "--num-cpus 2 --no-panel --quiet")  # connects, or just re-attaches


@pytest.fixture(scope="module")
def ip(shell):
    _settings(shell, "True", "3600")
    yield shell
    _settings(shell, "None", "0.5")


@pytest.fixture(scope="module")
def panel(ip):
    import ray_magic

    return ray_magic.panel()


def run(ip, source: str):
    result = ip.run_cell(source, store_history=True)
    result.raise_error()
    return result


def tick_until(predicate, timeout: float = WAIT, what: str = "condition"):
    from ray_magic.refresher import refresher

    deadline = time.monotonic() + timeout
    while True:
        refresher.tick()
        if predicate():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def shown(rows):
    return [row for row in rows if row.box.layout.display != "none"]


def row_for(panel, label: str):
    for row in shown(panel.future_rows):
        if html.escape(label) in row.label.value:
            return row
    return None


def cell_bar(panel, cell: int):
    return next((b for b in shown(panel.cell_bars) if b.label.value == f"cell {cell}"), None)


def widget_tree(widget) -> list:
    found = [widget]
    for child in getattr(widget, "children", ()):
        found += widget_tree(child)
    return found


def html_values(panel) -> list[str]:
    return [w.value for w in widget_tree(panel) if isinstance(w, ipywidgets.HTML)]


def test_one_live_panel_shown_by_magic_and_api(ip, panel):
    from IPython.utils.capture import capture_output

    import ray_magic
    from ray_magic.refresher import refresher

    assert isinstance(panel, ipywidgets.Widget)
    assert ray_magic.panel() is panel
    assert panel.refresh in refresher.listeners
    with capture_output() as captured:
        ip.run_line_magic("ray_panel", "")
        ip.run_line_magic("ray_panel", "")
    views = [out.data["application/vnd.jupyter.widget-view+json"]["model_id"] for out in captured.outputs]
    assert views == [panel.model_id, panel.model_id]
    assert captured.outputs[0].data["text/plain"] == repr(panel)
    assert "live" in panel.header.value


def test_text_only_where_widgets_are_off(ip, panel):
    from IPython.utils.capture import capture_output

    ip.run_line_magic("config", "RayMagics.use_widgets = False")
    try:
        with capture_output() as captured:
            ip.run_line_magic("ray_panel", "")
    finally:
        ip.run_line_magic("config", "RayMagics.use_widgets = True")
    assert [out.data for out in captured.outputs] == [{"text/plain": repr(panel)}]


def test_cluster_and_node_sections(ip, panel):
    import ray

    tick_until(lambda: panel.cluster.state.connected, what="a cluster read")
    address = ray.get_runtime_context().gcs_address
    cpus = ray.cluster_resources()["CPU"]
    assert address in panel.cluster_html.value
    assert ray.__version__ in panel.cluster_html.value
    assert "1 alive of 1" in panel.cluster_html.value
    node_id = ray.get_runtime_context().get_node_id()
    assert node_id[:8] in panel.nodes_html.value
    assert ">alive<" in panel.nodes_html.value
    assert f"of {cpus:g}<" in panel.nodes_html.value


def test_bounded_future_rows_failures_and_pending_first_and_cell_bar(ip, panel):
    import ray

    from ray_magic.live_panel import FUTURE_ROWS

    node = ray.get_runtime_context().get_node_id()

    run(ip, "%%ray_task\ndef g(x):\n    if x == 3:\n        raise ValueError('three')\n    return x\n")
    slow_cell = run(ip, "%%ray_task --label slowpoke\nimport time\ntime.sleep(120)\n").execution_count
    result = run(ip, "gs = [g.remote(i) for i in range(40)]")
    cell = result.execution_count
    from ray_magic.tracker import tracker

    tick_until(lambda: tracker.cells[cell].done == 40, what="40 tasks done")
    rows = shown(panel.future_rows)
    assert len(rows) == FUTURE_ROWS
    failed, slow, latest = row_for(panel, "g(3)"), row_for(panel, "slowpoke"), row_for(panel, "g(39)")
    assert "failed: ValueError: three" in failed.state.value
    assert slow.state.value in ("pending", f"running on {node[:8]}")
    assert not slow.button.disabled and failed.button.disabled and latest.button.disabled
    # Failures, then pending, then the latest to end.
    assert rows.index(failed) < rows.index(slow) < rows.index(latest)
    assert all("failed" in r.state.value for r in rows[: rows.index(failed) + 1])
    assert [r.state.value for r in rows[rows.index(latest):]] == ["finished"] * (FUTURE_ROWS - rows.index(latest))
    assert row_for(panel, "g(0)") is None  # an early one, beyond the bound
    assert "more futures not shown" in panel.futures_more.value
    bar = cell_bar(panel, cell)
    assert (bar.bar.value, bar.bar.max, bar.bar.bar_style) == (40, 40, "danger")
    assert bar.counts.value == "40/40 done, 1 failed"
    assert cell_bar(panel, slow_cell).bar.value == 0  # the sleeping cell: 0 of 1
    assert shown(panel.cell_bars)[0] is cell_bar(panel, slow_cell)  # cells with pending tasks first

    # It has started: it shows as running, with its node; and it holds a CPU, which the cluster shows.
    tick_until(lambda: slow.state.value == f"running on {node[:8]}", what="running on its node")
    assert "(1 running)" in panel.futures_html.value
    tick_until(lambda: "<td>1 of " in panel.cluster_html.value, what="a CPU in use")

    # Its cancel button cancels it (plain cancel, then forced after ~2 s: it sleeps).
    cancelled_before = tracker.status()["futures"]["cancelled"]
    slow.button.click()
    tick_until(lambda: slow.state.value == "cancelling", what="cancelling")
    assert slow.button.disabled
    # Just ended, it stays in view (the latest to end come first after failures and pending).
    tick_until(lambda: getattr(row_for(panel, "slowpoke"), "state", slow.state).value == "cancelled",
               what="cancelled")
    assert row_for(panel, "slowpoke").button.disabled
    assert cell_bar(panel, slow_cell).counts.value == "1/1 done, 1 cancelled"
    assert f"{cancelled_before + 1:,} cancelled" in panel.futures_html.value


def test_kill_button_kills_the_actor(ip, panel):
    run(ip, "%%ray_actor panel_counter\nclass PanelCounter:\n    def __init__(self):\n        self.n = 0\n"
            "    def inc(self):\n        self.n += 1\n        return self.n\n")
    run(ip, "import ray\nray.get([panel_counter.inc.remote(), panel_counter.inc.remote()])")

    def counter_row():  # looked up each time: rows are reassigned as actors change state
        return next((r for r in shown(panel.actor_rows) if ">PanelCounter<" in r.class_name.value), None)

    tick_until(lambda: counter_row() is not None and counter_row().calls.value == "2 done, 0 pending",
               what="the actor's calls")
    assert counter_row().state.value == "alive" and not counter_row().button.disabled
    counter_row().button.click()
    tick_until(lambda: counter_row().state.value == "dead", what="the actor dead")
    assert counter_row().button.disabled


def test_crashed_actor_shows_restarting_then_alive(ip, panel, tmp_path):
    marker = str(tmp_path / "started")
    run(ip, textwrap.dedent(f"""\
        %%ray_actor crasher --max-restarts 1
        import os, time
        class Crasher:
            def __init__(self):
                if os.path.exists({marker!r}):
                    time.sleep(4)  # a slow restart, so "restarting" lasts
                open({marker!r}, "w").close()
            def pid(self):
                return os.getpid()
        """))
    run(ip, "import ray\ncrasher_pid = ray.get(crasher.pid.remote())")
    pid = ip.user_ns["crasher_pid"]

    def crasher_row():
        return next((r for r in shown(panel.actor_rows) if ">Crasher<" in r.class_name.value), None)

    tick_until(lambda: crasher_row() is not None and crasher_row().state.value == "alive", what="alive")
    os.kill(pid, signal.SIGKILL)
    seen = []
    tick_until(lambda: seen.append(crasher_row().state.value) or seen[-1] == "restarting", what="restarting")
    tick_until(lambda: crasher_row().state.value == "alive", what="alive again")
    assert "dead" not in seen


def test_panel_keeps_no_object_alive(ip, panel):
    import ray

    from ray_magic.tracker import tracker

    core_worker = ray._private.worker.global_worker.core_worker
    run(ip, "%%ray_task\ndef mib(i):\n    return bytes(1 << 20)\n")
    gc.collect()
    before = len(core_worker.get_all_reference_counts())
    cell = run(ip, "big = [mib.remote(i) for i in range(500)]").execution_count
    tick_until(lambda: tracker.cells[cell].done == 500, what="500 tasks done")
    assert tracker.cells[cell].finished == 500
    assert cell_bar(panel, cell).bar.value == 500
    run(ip, "del big")
    for _ in range(3):
        tick_until(lambda: True)
    gc.collect()
    assert len(core_worker.get_all_reference_counts()) <= before


def test_every_shown_string_is_escaped(ip, panel):
    from ray_magic.data_progress import DatasetRun, OperatorProgress
    from ray_magic.tracker import tracker

    ip.user_ns["HOSTILE"] = HOSTILE
    run(ip, f"%%ray_task --label '{HOSTILE}'\nraise ValueError(HOSTILE)\n")
    run(ip, "%%ray_actor panel_hostile_actor --name '" + HOSTILE + " (panel)'\nclass Plain:\n"
            "    def ping(self):\n        return 1\n")
    dataset_run = DatasetRun(label=HOSTILE, cell=None, operators=[OperatorProgress(HOSTILE, 1, 2)])
    tracker.add_dataset_run(dataset_run)
    try:
        tick_until(lambda: row_for(panel, HOSTILE) is not None and "failed" in row_for(panel, HOSTILE).state.value,
                   what="the failed hostile task")
        values = html_values(panel)
        assert not any(HOSTILE in value for value in values), "a raw hostile string reached an HTML widget"
        escaped = html.escape(HOSTILE)
        row = row_for(panel, HOSTILE)
        assert row is not None and escaped in row.state.value  # the error message
        assert any(escaped in r.name.value for r in shown(panel.actor_rows))  # the actor's name
        assert panel.dataset_rows[0].value.count(escaped) == 2  # run label and operator name
    finally:
        dataset_run.state = "finished"


def test_dataset_progress_per_operator_while_running(ip, panel):
    from ray_magic.refresher import refresher

    run(ip, "import ray.data, time\n"
            "slow_ds = ray.data.range(800, override_num_blocks=8).map_batches(lambda b: time.sleep(0.4) or b)")
    # Let the one background thread refresh the panel while the execution blocks this thread.
    refresher.stop()
    ip.run_line_magic("config", "RayMagics.refresh_interval = 0.1")
    seen: list[str] = []
    done = threading.Event()

    def watch():
        while not done.is_set():
            seen.append(panel.dataset_rows[0].value)
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        run(ip, "slow_count = %ray_data slow_ds --count")
    finally:
        done.set()
        watcher.join()
        refresher.stop()
        ip.run_line_magic("config", "RayMagics.refresh_interval = 3600")
        ip.run_line_magic("ray_panel", "")  # restarts the thread at the slow pace
    assert ip.user_ns["slow_count"] == 800
    tick_until(lambda: ": finished" in panel.dataset_rows[0].value, what="the run finished")
    final = panel.dataset_rows[0].value
    assert "slow_ds.count()" in final
    assert "MapBatches(&lt;lambda&gt;)" in final and "800 of 800 rows" in final
    partial = [v for v in seen if ": running" in v and re.search(r"[1-7]\d\d of 800 rows", v)]
    assert partial, "no progress was shown while the execution ran"


def test_idle_refresh_redraws_nothing_and_reads_the_cluster_at_most_each_second(ip, panel):
    from ray_magic.refresher import refresher

    assert refresher.running
    tick_until(lambda: not panel._window.pending, what="nothing pending")
    refresher.tick()
    redraws, reads = panel.redraws, panel.cluster.reads
    start = time.monotonic()
    for _ in range(10):
        refresher.tick()
    elapsed = time.monotonic() - start
    assert panel.cluster.reads - reads <= int(elapsed) + 1
    # A change in the cluster (object store use) may redraw once; nothing else does.
    assert panel.redraws - redraws <= panel.cluster.reads - reads


def test_widget_tree_is_built_once(ip, panel):
    run(ip, "%%ray_task\ndef g_once(x):\n    return x\n")
    before = [id(w) for w in widget_tree(panel)]
    run(ip, "more = [g_once.remote(i) for i in range(5)]")
    tick_until(lambda: True)
    assert [id(w) for w in widget_tree(panel)] == before


def test_text_form_is_three_whole_lines_matching_status(ip, panel):
    import ray

    import ray_magic

    tick_until(lambda: not panel._window.pending, what="nothing pending")
    text = repr(panel)
    lines = text.splitlines()
    assert len(lines) == 3
    status = ray_magic.status()
    address = ray.get_runtime_context().gcs_address
    f, a = status["futures"], status["actors"]
    assert lines[0] == f"Ray {ray.__version__} at {address}: 1/1 nodes alive, " \
                       f"{status['cluster']['cpus']:g} CPUs, 0 GPUs"
    assert lines[1] == f"futures: {f['pending']} pending, {f['finished']} finished, {f['failed']} failed, " \
                       f"{f['cancelled']} cancelled"
    assert lines[2] == f"actors: {a['alive']} alive, {a['restarting']} restarting, {a['dead']} dead"
    assert f["finished"] >= 500 and f["failed"] >= 2 and f["cancelled"] >= 1 and a["dead"] >= 1
    bundle = panel._repr_mimebundle_()
    assert bundle["text/plain"] == text
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == panel.model_id


def test_unload_stops_updates_and_reload_resumes(ip, panel):
    from ray_magic.refresher import refresher

    ip.run_line_magic("unload_ext", "ray_magic")
    assert not refresher.running
    assert "updates stopped" in panel.header.value
    assert all(row.button.disabled for row in panel.future_rows + panel.actor_rows)
    ip.run_line_magic("load_ext", "ray_magic")
    ip.run_line_magic("config", "RayMagics.use_widgets = True")
    ip.run_line_magic("config", "RayMagics.refresh_interval = 3600")
    ip.run_line_magic("ray_panel", "")
    assert refresher.running
    assert "live" in panel.header.value


CLUSTER_SCRIPT = r"""
import json, os, sys, time
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
import ray
from ray.cluster_utils import Cluster
from IPython.testing.globalipapp import start_ipython

out = {}
node_args = {"num_cpus": 2, "object_store_memory": 100 << 20}
for attempt in range(2):  # Ray gives a node 30 s to start: a second try on a busy machine
    cluster = Cluster()
    try:
        cluster.add_node(include_dashboard=False, **node_args)  # the head
        workers = [cluster.add_node(**node_args) for _ in range(2)]
        cluster.wait_for_nodes()
        break
    except Exception:
        cluster.shutdown()
        if attempt:
            raise
ray.init(address=cluster.address)
ip = start_ipython()
ip.run_line_magic("load_ext", "ray_magic")
ip.run_line_magic("config", "RayMagics.use_widgets = True")
ip.run_line_magic("config", "RayMagics.refresh_interval = 3600")
ip.run_line_magic("ray_init", "--no-panel --quiet")
import ray_magic
from ray_magic.refresher import refresher

panel = ray_magic.panel()
refresher.tick()
out["before"] = {"text": repr(panel), "cluster": panel.cluster_html.value, "nodes": panel.nodes_html.value}
cluster.remove_node(workers[1])
for _ in range(2):  # two refreshes at the default pace
    time.sleep(0.5)
    refresher.tick()
out["after"] = {"text": repr(panel), "cluster": panel.cluster_html.value, "nodes": panel.nodes_html.value}

# The one thread refreshes on its own, and stops on %ray_shutdown.
refresher.stop()
ip.run_line_magic("config", "RayMagics.refresh_interval = 0.1")
ip.run_line_magic("ray_panel", "")
out["running"] = refresher.running
ip.run_cell("%%ray_task\ndef one():\n    return 1\n")
ip.run_cell("r = one.remote()")
deadline = time.monotonic() + 60
while "1 finished" not in panel.futures_html.value and time.monotonic() < deadline:
    time.sleep(0.05)
out["background"] = panel.futures_html.value
ip.run_line_magic("ray_shutdown", "")
out["shutdown"] = {"running": refresher.running, "header": panel.header.value, "text": repr(panel)}

# Ray going away underneath the magics (a plain ray.shutdown()); joining is cheaper than a new Ray.
ray.init(address=cluster.address)
ip.run_line_magic("ray_panel", "")
out["live_again"] = {"running": refresher.running, "header": panel.header.value}
ray.shutdown()
deadline = time.monotonic() + 20
while refresher.running and time.monotonic() < deadline:
    time.sleep(0.05)
out["gone"] = {"running": refresher.running, "header": panel.header.value, "errors": refresher.errors}
cluster.shutdown()
print("RESULT:" + json.dumps(out))
"""


def test_three_node_cluster_node_removal_and_stopping(tmp_path):
    script = tmp_path / "cluster_panel.py"
    script.write_text(CLUSTER_SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=tmp_path, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        try:  # whatever it left behind: its Ray processes are in its process group
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
    results = [line for line in stdout.splitlines() if line.startswith("RESULT:")]
    assert proc.returncode == 0 and results, stdout[-3000:] + stderr[-3000:]
    out = json.loads(results[0][len("RESULT:"):])

    assert ": 3/3 nodes alive, 6 CPUs" in out["before"]["text"]
    assert out["before"]["nodes"].count(">alive<") == 3
    # Removed: shown dead within two refreshes, and its resources leave the totals.
    assert ": 2/3 nodes alive, 4 CPUs" in out["after"]["text"]
    assert out["after"]["nodes"].count(">alive<") == 2 and out["after"]["nodes"].count(">dead<") == 1
    assert "2 alive of 3" in out["after"]["cluster"] and "of 4<" in out["after"]["cluster"]

    assert out["running"] and "1 finished" in out["background"]
    assert not out["shutdown"]["running"]
    assert "not connected" in out["shutdown"]["header"]
    assert out["shutdown"]["text"].splitlines()[0] == "Ray: not connected (run %ray_init)"
    assert out["live_again"]["running"] and "live" in out["live_again"]["header"]
    assert not out["gone"]["running"] and "not connected" in out["gone"]["header"]
    assert out["gone"]["errors"] == []
    assert "Traceback" not in stderr, stderr[-3000:]


def test_timeline_view_draws_on_demand_with_escaped_labels(ip, panel):
    from ray_magic.refresher import refresher

    run(ip, "%%ray_task --label '<b>tl</b>' --block\nimport time\ntime.sleep(0.2)\n1")
    refresher.tick()
    assert "<svg" not in panel.timeline.html.value  # nothing fetched until asked
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        panel.timeline.button.click()
        refresher.tick()  # the refresher thread draws it, not the click
        if "&lt;b&gt;tl&lt;/b&gt;" in panel.timeline.html.value:
            break
        time.sleep(0.5)
    drawn = panel.timeline.html.value
    assert "<svg" in drawn and "&lt;b&gt;tl&lt;/b&gt;" in drawn and "<b>tl</b>" not in drawn
    assert panel.timeline.button.description == "redraw timeline"
