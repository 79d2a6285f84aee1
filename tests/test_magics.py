"""The core magics on a real IPython shell and a real local Ray (issue 2)."""
import io
import subprocess
import sys
import time
from contextlib import redirect_stderr, redirect_stdout

import pytest
from conftest import interrupt_after, run

from ray_magic.cellview import cell_views
from ray_magic.refresher import refresher
from ray_magic.tracker import tracker


def ok(result):
    """Fail the test with the cell's own error if it raised."""
    if not result.success:
        raise AssertionError(f"cell failed: {result.error_before_exec or result.error_in_exec!r}")
    return result.result


def captured(ip, source):
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        result = run(ip, source)
    return result, out.getvalue() + err.getvalue()


def settle(seconds=10.0):
    """Tick the refresher until nothing is pending (bounded)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        refresher.tick()
        if tracker.status()["futures"]["pending"] == 0:
            return
        time.sleep(0.05)


# --- loading -------------------------------------------------------------------------------

def test_load_ext_imports_neither_ray_nor_ray_data_and_loads_twice():
    code = (
        "from IPython.testing.globalipapp import start_ipython\n"
        "import sys\n"
        "ip = start_ipython()\n"
        "ip.run_line_magic('load_ext', 'ray_magic')\n"
        "ip.run_line_magic('load_ext', 'ray_magic')\n"
        "assert 'ray_task' in ip.magics_manager.magics['cell']\n"
        "print('R', 'ray' in sys.modules, 'ray.data' in sys.modules)\n"
        "ip.run_line_magic('unload_ext', 'ray_magic')\n"
        "print('R', 'ray_task' in ip.magics_manager.magics['cell'])\n"
        "ip.run_line_magic('load_ext', 'ray_magic')\n"
        "ip.run_line_magic('reload_ext', 'ray_magic')\n"
        "print('R', 'ray_task' in ip.magics_manager.magics['cell'], 'ray' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    marked = [word for line in out.stdout.splitlines() if line.startswith("R ") for word in line.split()[1:]]
    assert marked == ["False", "False", "False", "True", "False"], out.stdout + out.stderr


def test_config_lists_the_options(shell):
    result, text = captured(shell, "%config RayMagics")
    for option in ("auto_init", "address", "refresh_interval", "show_panel", "cell_progress"):
        assert option in text


# --- %%ray_task: definitions ---------------------------------------------------------------

def test_definitions_become_remote_functions_with_options(ip):
    ok(run(ip, "%%ray_task --num-cpus 0.5 --max-retries 2\nimport math\n\ndef square(x):\n    return x * x\n"))
    assert ok(run(ip, "import ray\nray.get([square.remote(i) for i in range(4)])")) == [0, 1, 4, 9]
    assert ok(run(ip, "ray.get(square.options(num_cpus=1).remote(5))")) == 25
    assert ip.user_ns["square"]._current()._default_options["num_cpus"] == 0.5
    assert "math" in ip.user_ns  # the cell ran in the notebook: its imports stay


def test_redefined_helper_takes_effect_at_next_submission(ip):
    ok(run(ip, "def helper(x):\n    return x + 1"))
    ok(run(ip, "%%ray_task\ndef uses_helper(x):\n    return helper(x)\n"))
    assert ok(run(ip, "ray.get(uses_helper.remote(1))")) == 2
    first = ip.user_ns["uses_helper"]._current()
    assert ok(run(ip, "ray.get(uses_helper.remote(1))")) == 2
    assert ip.user_ns["uses_helper"]._current() is first  # not exported again when nothing changed
    ok(run(ip, "def helper(x):\n    return x + 100"))
    assert ok(run(ip, "ray.get(uses_helper.remote(1))")) == 101


def test_remote_functions_can_be_passed_to_tasks(ip):
    ok(run(ip, "%%ray_task\ndef inner(x):\n    return x * 3\n\ndef outer(fn, x):\n    import ray\n"
               "    return ray.get(fn.remote(x))\n"))
    assert ok(run(ip, "ray.get(outer.remote(inner, 2))")) == 6


# --- %%ray_task: body ------------------------------------------------------------------------

def test_body_sends_only_what_it_reads_and_returns_last_expression(ip):
    ok(run(ip, "a_val = 20\nunused_big = list(range(100000))"))
    ok(run(ip, "%%ray_task fut\nlocal_tmp = a_val * 2\nlocal_tmp + 2"))
    assert "local_tmp" not in ip.user_ns  # assignments do not leak
    ref = ip.user_ns["fut"]
    import ray

    assert isinstance(ref, ray.ObjectRef)
    assert ray.get(ref) == 42
    sent = tracker.futures[-1]
    assert sent.label.startswith("cell ")


def test_body_with_future_inputs_is_a_task_dag(ip):
    ok(run(ip, "%%ray_task\nimport numpy as np\n\ndef create_matrix(size):\n    return np.random.normal(size=size)\n"))
    ok(run(ip, "x_id = create_matrix.remote([50, 50])\ny_id = create_matrix.remote([50, 50])"))
    value = ok(run(ip, "%%ray_task z --block\nimport numpy as np\nnp.dot(x_id, y_id)"))
    import numpy as np

    assert value.shape == (50, 50)
    expected = np.dot(*__import__("ray").get([ip.user_ns["x_id"], ip.user_ns["y_id"]]))
    assert np.allclose(ip.user_ns["z"], expected)


def test_block_binds_the_value_and_shows_it(ip):
    result = run(ip, "%%ray_task answer --block\n6 * 7")
    assert ok(result) == 42 and ip.user_ns["answer"] == 42


def test_failing_task_raises_as_ray_does_with_the_cells_line(ip):
    ok(run(ip, "%%ray_task failing\nx = 1\n\nraise ValueError('boom from the cell')\n"))
    ok(run(ip, "try:\n    ray.get(failing)\nexcept ValueError as err:\n    caught = str(err)\n"))
    text = ip.user_ns["caught"]
    assert "boom from the cell" in text
    assert "line 4" in text  # the %% line is line 1 of the cell
    assert "raise ValueError('boom from the cell')" in text  # the cell's own source, shown by the worker


def test_failing_remote_function_shows_its_cell_line(ip):
    ok(run(ip, "%%ray_task\ndef explode(x):\n    if x > 1:\n        raise KeyError(f'too big {x}')\n    return x\n"))
    ok(run(ip, "try:\n    ray.get(explode.remote(5))\nexcept KeyError as err:\n    caught_kw = str(err)\n"))
    text = ip.user_ns["caught_kw"]
    assert "raise KeyError(f'too big {x}')" in text and "line 4" in text


def test_block_error_is_raised_in_the_cell(ip):
    result = run(ip, "%%ray_task --block\nraise ZeroDivisionError('nope')")
    assert isinstance(result.error_in_exec, ZeroDivisionError)


# --- output routing --------------------------------------------------------------------------

def test_prints_go_to_the_submitting_cell_even_after_it_finished(ip):
    ok(run(ip, "%%ray_task\nimport time\n\ndef chatty(x):\n    time.sleep(1.0)\n    print('late line', x)\n"
               "    return x\n"))
    first = ip.execution_count
    ok(run(ip, "late_ref = chatty.remote(7)"))
    second = ip.execution_count
    ok(run(ip, "other_ref = chatty.remote(0)"))
    deadline = time.monotonic() + 60
    out = io.StringIO()
    with redirect_stdout(out):
        while time.monotonic() < deadline and "late line 7" not in cell_views.get(first).text:
            refresher.tick()
            time.sleep(0.1)
    assert "late line 7" in cell_views.get(first).text
    assert "late line 7" not in cell_views.get(second).text
    assert "late line 0" not in cell_views.get(first).text
    # Marked with its task and cell, not printed by Ray's own forwarder.
    assert f"(chatty [cell {first}] pid=" in out.getvalue()


def test_prints_land_in_the_cells_output_widget(ip):
    ip.run_line_magic("config", "RayMagics.use_widgets = True")
    try:
        cell = ip.execution_count  # the number the next cell gets
        ok(run(ip, "%%ray_task widget_ref\nprint('to the widget')\n1"))
        view = cell_views.get(cell)
        deadline = time.monotonic() + 60  # Ray forwards worker logs in batches; slow under load
        while time.monotonic() < deadline and not view.output.outputs:
            refresher.tick()
            time.sleep(0.1)
        texts = {c: v.text[-80:] for c, v in cell_views.by_cell.items() if v.text}
        assert view.output.outputs, (cell, texts, refresher.errors)
        assert "to the widget" in view.output.outputs[0]["text"]
        settle()
        refresher.tick()
        assert view.bar.value == view.bar.max == 1
        assert "1" in view.result.value  # the preview of the result
    finally:
        ip.run_line_magic("config", "RayMagics.use_widgets = None")


# --- actors ----------------------------------------------------------------------------------

def test_actor_cell_with_and_without_name(ip):
    ok(run(ip, "%%ray_actor counter\nclass Counter:\n    def __init__(self):\n        self.x = 0\n"
               "    def inc(self):\n        self.x += 1\n    def get_value(self):\n        return self.x\n"))
    assert ok(run(ip, "counter.inc.remote(); counter.inc.remote(); ray.get(counter.get_value.remote())")) == 2
    ok(run(ip, "c2 = Counter.remote()"))
    assert ok(run(ip, "ray.get(c2.get_value.remote())")) == 0
    record = tracker.actors[ip.user_ns["counter"]._actor_id.hex()]
    settle()
    assert record.class_name == "Counter" and record.calls_done == 3


def test_actor_handles_passed_to_tasks_message_actor(ip):
    ok(run(ip, "%%ray_actor\nclass MessageActor:\n    def __init__(self):\n        self.messages = []\n"
               "    def add_message(self, message):\n        self.messages.append(message)\n"
               "    def get_and_clear_messages(self):\n        messages = self.messages\n"
               "        self.messages = []\n        return messages\n"))
    ok(run(ip, "%%ray_task\nimport time\n\ndef worker(message_actor, j):\n    for i in range(3):\n"
               "        time.sleep(0.1)\n        message_actor.add_message.remote(f'Message {i} from worker {j}.')\n"))
    ok(run(ip, "message_actor = MessageActor.remote()\nworkers = [worker.remote(message_actor, j) for j in range(3)]\n"
               "ray.get(workers)\nall_messages = []\nfor _ in range(100):\n"
               "    all_messages += ray.get(message_actor.get_and_clear_messages.remote())\n"
               "    if len(all_messages) == 9:\n        break\n    time.sleep(0.2)\n"))
    assert sorted(ip.user_ns["all_messages"]) == sorted(f"Message {i} from worker {j}." for i in range(3)
                                                         for j in range(3))


def test_ray_kill_and_ray_terminate(ip):
    ok(run(ip, "%%ray_actor victim\nclass Victim:\n    def ping(self):\n        return 'pong'\n"))
    assert ok(run(ip, "ray.get(victim.ping.remote())")) == "pong"
    ok(run(ip, "%ray_kill victim"))
    import ray

    assert isinstance(dead_within(ip, "victim"), ray.exceptions.RayActorError)
    ok(run(ip, "other_victim = Victim.remote()\nray.get(other_victim.ping.remote())\n"
               "other_victim.__ray_terminate__.remote()"))
    assert isinstance(dead_within(ip, "other_victim"), ray.exceptions.RayActorError)


def dead_within(ip, name, seconds=30):
    """The error a ping raises once the actor is gone (ray.kill does not wait for it)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        error = run(ip, f"ray.get({name}.ping.remote(), timeout=20)").error_in_exec
        if error is not None:
            return error
        time.sleep(0.2)
    return None


# --- futures ---------------------------------------------------------------------------------

def test_ray_get_binds_values(ip):
    ok(run(ip, "%%ray_task\ndef square(x):\n    return x * x\n"))
    ok(run(ip, "g1 = square.remote(4)\ng_list = [square.remote(i) for i in range(3)]"))
    ok(run(ip, "%ray_get g1 g_list"))
    assert ip.user_ns["g1"] == 16 and ip.user_ns["g_list"] == [0, 1, 4]


def test_ray_cancel_cancels_a_pending_task(ip):
    ok(run(ip, "%%ray_task\nimport time\n\ndef sleepy(s):\n    time.sleep(s)\n    return s\n"))
    ok(run(ip, "nap = sleepy.remote(60)"))
    time.sleep(0.5)
    result, text = captured(ip, "%ray_cancel nap")
    assert result.success and "Cancelled 1" in text
    import ray

    with pytest.raises((ray.exceptions.TaskCancelledError, ray.exceptions.WorkerCrashedError)):
        ray.get(ip.user_ns["nap"], timeout=30)


def test_interrupting_a_wait_cancels_what_it_waited_on(ip):
    import ray

    ok(run(ip, "long_naps = [sleepy.remote(60) for _ in range(2)]"))
    with interrupt_after(1.0):
        result, text = captured(ip, "%ray_get long_naps")
    assert isinstance(result.error_in_exec, KeyboardInterrupt)
    assert "cancelled 2" in text
    for ref in ip.user_ns["long_naps"]:
        with pytest.raises((ray.exceptions.TaskCancelledError, ray.exceptions.WorkerCrashedError)):
            ray.get(ref, timeout=30)
    # The shell stays usable and the CPUs are free again.
    assert ok(run(ip, "1 + 1")) == 2
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and ray.available_resources().get("CPU", 0) < 2:
        time.sleep(0.2)
    assert ray.available_resources().get("CPU", 0) >= 2


def test_interrupting_block_cancels_the_body_task(ip):
    with interrupt_after(1.0):
        result, text = captured(ip, "%%ray_task --block\nimport time\ntime.sleep(60)")
    assert isinstance(result.error_in_exec, KeyboardInterrupt)
    assert "cancelled 1" in text
    settle(20)
    assert tracker.futures[-1].state == "cancelled"


# --- connecting ------------------------------------------------------------------------------

def test_ray_init_is_idempotent_and_refuses_another_address(ip):
    import ray

    here = ray.get_runtime_context().gcs_address
    result, text = captured(ip, "%ray_init --no-panel")
    assert result.success and "Already connected" in text and here in text
    result, text = captured(ip, "%ray_init --address 127.0.0.1:1 --no-panel")
    assert not result.success and "ray_shutdown" in text
    assert ray.get_runtime_context().gcs_address == here


@pytest.fixture
def ray_tmpdir():
    """A short private Ray temp dir (Ray's socket paths must stay under 107 bytes)."""
    import shutil
    import tempfile

    path = tempfile.mkdtemp(prefix="rm", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_ray_init_ignores_a_stale_cluster_file(ray_tmpdir):
    # A separate driver with its own Ray temp dir, so the stale file affects nobody else.
    code = (
        "import os, subprocess, sys, ray\n"
        "from ray._common.utils import get_ray_address_file\n"
        "path = get_ray_address_file(None)\n"
        "os.makedirs(os.path.dirname(path), exist_ok=True)\n"
        "open(path, 'w').write('127.0.0.1:1')\n"
        "assert path.startswith(os.environ['RAY_TMPDIR']), path\n"
        "from IPython.testing.globalipapp import start_ipython\n"
        "ip = start_ipython()\n"
        "ip.run_line_magic('load_ext', 'ray_magic')\n"
        "ip.run_line_magic('ray_init', '--num-cpus 1 --no-panel --quiet')\n"
        "print('answer', ip.run_cell('%%ray_task --block\\n40 + 2').result)\n"
    )
    env = {**__import__("os").environ, "RAY_TMPDIR": ray_tmpdir, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180, env=env)
    assert "answer 42" in out.stdout, out.stderr[-2000:]


def test_auto_init_starts_ray_and_says_so(ray_tmpdir):
    code = (
        "from IPython.testing.globalipapp import start_ipython\n"
        "ip = start_ipython()\n"
        "ip.run_line_magic('load_ext', 'ray_magic')\n"
        "print('answer', ip.run_cell('%%ray_task --block\\n40 + 2').result)\n"
    )
    env = {**__import__("os").environ, "RAY_TMPDIR": ray_tmpdir, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert "started a local Ray" in out.stdout and "answer 42" in out.stdout, out.stderr[-2000:]


# --- the tutorial, through the magics ------------------------------------------------------------

def test_tutorial_tasks_dag_aggregation_and_actors(ip):
    ok(run(ip, "%%ray_task\nimport time\n\ndef f(x):\n    time.sleep(0.1)\n    return x\n"))
    assert ok(run(ip, "result_ids = [f.remote(i) for i in range(4)]\nray.get(result_ids)")) == [0, 1, 2, 3]
    ok(run(ip, "%%ray_task\nimport numpy as np\n\ndef create_matrix(size):\n    return np.random.normal(size=size)\n\n"
               "def multiply_matrices(x, y):\n    return np.dot(x, y)\n"))
    ok(run(ip, "x_id = create_matrix.remote([100, 100])\ny_id = create_matrix.remote([100, 100])\n"
               "z_id = multiply_matrices.remote(x_id, y_id)\nz = ray.get(z_id)"))
    assert ip.user_ns["z"].shape == (100, 100)
    ok(run(ip, "%%ray_task\nimport time\n\ndef add(x, y):\n    time.sleep(0.05)\n    return x + y\n"))
    slow = ok(run(ip, "values = [1, 2, 3, 4, 5, 6, 7, 8]\nwhile len(values) > 1:\n"
                      "    values = [add.remote(values[0], values[1])] + values[2:]\nray.get(values[0])"))
    fast = ok(run(ip, "values = [1, 2, 3, 4, 5, 6, 7, 8]\nwhile len(values) > 1:\n"
                      "    values = values[2:] + [add.remote(values[0], values[1])]\nray.get(values[0])"))
    assert slow == fast == 36
    ok(run(ip, "%%ray_actor\nclass Counter(object):\n    def __init__(self):\n        self.x = 0\n"
               "    def inc(self):\n        self.x += 1\n    def get_value(self):\n        return self.x\n"))
    assert ok(run(ip, "c = Counter.remote()\nfirst = ray.get(c.get_value.remote())\nc.inc.remote()\nc.inc.remote()\n"
                      "(first, ray.get(c.get_value.remote()))")) == (0, 2)
    ok(run(ip, "%%ray_actor\nclass MessageActor(object):\n    def __init__(self):\n        self.messages = []\n"
               "    def add_message(self, message):\n        self.messages.append(message)\n"
               "    def get_and_clear_messages(self):\n        messages = self.messages\n"
               "        self.messages = []\n        return messages\n"))
    ok(run(ip, "%%ray_task\nimport time\n\ndef worker(message_actor, j):\n    for i in range(3):\n"
               "        time.sleep(0.2)\n        message_actor.add_message.remote(\n"
               "            'Message {} from worker {}.'.format(i, j))\n"))
    ok(run(ip, "message_actor = MessageActor.remote()\n_ = [worker.remote(message_actor, j) for j in range(3)]\n"
               "seen = []\nfor _ in range(20):\n    seen += ray.get(message_actor.get_and_clear_messages.remote())\n"
               "    if len(seen) == 9:\n        break\n    time.sleep(0.2)\n"))
    assert len(ip.user_ns["seen"]) == 9


def test_ray_timeline_shows_one_cells_tasks_and_actor_calls(ip):
    ok(run(ip, "%%ray_task\nimport time\n\ndef tl_add(x, y):\n    time.sleep(0.2)\n    return x + y\n"))
    chain_cell = ip.execution_count
    ok(run(ip, "import ray\nvalues = [1, 2, 3, 4]\nwhile len(values) > 1:\n"
               "    values = [tl_add.remote(values[0], values[1])] + values[2:]\nray.get(values[0])"))
    ok(run(ip, "%%ray_actor tl_acc\nclass TlAcc:\n    def inc(self):\n        return 1\n"))
    actor_cell = ip.execution_count
    ok(run(ip, "ray.get(tl_acc.inc.remote())"))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        chain = ok(run(ip, f"%ray_timeline --cell {chain_cell}"))
        calls = ok(run(ip, f"%ray_timeline --cell {actor_cell}"))
        if len(chain.bars) == 3 and len(calls.bars) == 1:
            break
    assert [bar.func for bar in chain.bars] == ["tl_add"] * 3
    assert calls.bars[0].label.startswith("TlAcc.inc")
    assert "<svg" in chain._repr_html_() and "tasks" in repr(chain)


def test_shutdown_keeps_the_record_and_marks_what_was_lost(ip):
    import ray_magic

    ok(run(ip, "%%ray_task\nimport time\n\ndef forever(x):\n    time.sleep(600)\n"))
    ok(run(ip, "lost = forever.remote(1)"))
    before = ray_magic.status()["futures"]
    ok(run(ip, "%ray_shutdown"))
    after = ray_magic.status()["futures"]
    assert after["pending"] == 0 and after["cancelled"] == before["cancelled"] + before["pending"]
    assert tracker.futures[-1].label == "forever(1)" and tracker.futures[-1].ref is None
    ok(run(ip, "%ray_shutdown"))  # safe to repeat
    ok(run(ip, "%ray_init --num-cpus 2 --no-panel --quiet"))
    assert ray_magic.status()["futures"]["finished"] == 0  # a new Ray starts a new record


def test_block_cell_gets_a_prints_only_view(ip):
    ip.run_line_magic("config", "RayMagics.use_widgets = True")
    try:
        cell = ip.execution_count
        assert ok(run(ip, "%%ray_task --block\nprint('block print')\n5")) == 5
        view = cell_views.get(cell)
        assert view.prints_only and view.widget is view.output  # one Output widget, no progress line
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "block print" not in view.text:
            refresher.tick()
            time.sleep(0.1)
        assert "block print" in view.output.outputs[0]["text"]
    finally:
        ip.run_line_magic("config", "RayMagics.use_widgets = None")
