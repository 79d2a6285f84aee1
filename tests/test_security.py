"""Security: only what a cell reads is sent, every shown string is escaped, nothing
typed or carried in a result is evaluated, and addresses are used as given."""
from __future__ import annotations

import contextlib
import io
import os
import socket
import subprocess
import sys
import threading
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import wait_until

import ray_magic
from ray_magic import session
from ray_magic.cellview import cell_views
from ray_magic.connect import ConnectError, validate_address
from ray_magic.refresher import refresher
from ray_magic.tracker import tracker

SECRET = "s3cr3t-token"
IMG = "<img src=x onerror=alert(1)>"
SCRIPT = "<script>alert(1)</script>"
DANGEROUS_TAGS = {"img", "script", "iframe", "object", "embed", "svg", "math", "style", "link", "meta"}


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append((tag, dict(attrs)))


def start_tags(markup: str) -> list[tuple[str, dict]]:
    parser = _Tags()
    parser.feed(markup)
    parser.close()
    return parser.tags


def assert_no_markup_gets_through(markup: str, allowed: set[str] = frozenset()) -> None:
    """No dangerous tag and no on* handler attribute, whatever the hostile text was."""
    for tag, attrs in start_tags(markup):
        assert tag not in DANGEROUS_TAGS - allowed, f"<{tag}> got through in:\n{markup}"
        handlers = [name for name in attrs if name.lower().startswith("on")]
        assert not handlers, f"event handler {handlers} got through in:\n{markup}"


def ok(ip, source: str):
    result = ip.run_cell(source, store_history=True)
    assert result.success, f"cell failed: {result.error_before_exec or result.error_in_exec!r}"
    return result.result


@pytest.fixture(scope="module")
def nb(shell):
    import ray

    if not ray.is_initialized():
        shell.run_line_magic("ray_init", "--num-cpus 2 --no-panel --quiet")
    ok(shell, f"import ray\nsecret = {SECRET!r}\npublic = 21\n")
    yield shell
    for name in ("secret", "public"):
        shell.user_ns.pop(name, None)


# --- only the variables a cell reads are sent ----------------------------------------------

def test_body_cell_sends_only_what_it_reads(nb, monkeypatch) -> None:
    import ray

    sent = []
    real_submit = session.submit_body

    def spy(function, args, *rest, **kwargs):  # records what goes to Ray, then submits it for real
        sent.append((function, list(args)))
        return real_submit(function, args, *rest, **kwargs)

    monkeypatch.setattr(session, "submit_body", spy)
    assert ok(nb, "%%ray_task --block\npublic * 2\n") == 42

    [(function, args)] = sent
    code = function.__code__
    assert code.co_varnames[: code.co_argcount] == ("public",) and args == [21]
    payload = ray.cloudpickle.dumps((function, args))
    assert SECRET.encode() not in payload
    assert set(function.__globals__) <= {"__name__", "__builtins__", function.__name__}  # not the notebook's


def test_body_cell_in_the_worker_sees_no_notebook_globals(nb) -> None:
    names = ok(nb, "%%ray_task --block\nsorted(n for n in globals() if not n.startswith('__'))\n")
    assert "secret" not in names and "public" not in names, names


def test_remote_function_carries_only_the_globals_it_uses(nb) -> None:
    import ray

    ok(nb, "%%ray_task\ndef peek():\n    _ = public\n"
           "    return sorted(k for k in globals() if not k.startswith('__'))\n")
    payload = ray.cloudpickle.dumps(nb.user_ns["peek"])  # as Ray exports it (and as it travels to tasks)
    assert b"public" in payload and SECRET.encode() not in payload
    seen = ray.get(nb.user_ns.pop("peek").remote(), timeout=60)
    assert "public" in seen and "secret" not in seen, seen


def test_actor_class_carries_only_the_globals_it_uses(nb) -> None:
    import ray

    ok(nb, "%%ray_actor spy_actor\nclass Peeker:\n    def peek(self):\n        _ = public\n"
           "        return sorted(k for k in globals() if not k.startswith('__'))\n")
    seen = ray.get(nb.user_ns["spy_actor"].peek.remote(), timeout=60)
    assert "public" in seen and "secret" not in seen, seen
    for name in ("spy_actor", "Peeker"):
        nb.user_ns.pop(name)


def test_dataset_transform_carries_only_what_it_reads(nb) -> None:
    import ray

    ok(nb, "small = ray.data.range(3)")
    ok(nb, "%%ray_data out = small\ndf.assign(y=public)\n")
    payload = ray.cloudpickle.dumps(nb.user_ns["out"])  # the plan, with the transform, as it is shipped
    assert b"public" in payload and SECRET.encode() not in payload
    for name in ("small", "out"):
        nb.user_ns.pop(name)


# --- every string shown as HTML is escaped ------------------------------------------------------

@pytest.fixture
def widgets(nb):
    ok(nb, "%config RayMagics.use_widgets = True")
    yield nb
    ok(nb, "%config RayMagics.use_widgets = None")


def test_cell_view_escapes_labels_results_and_errors(widgets) -> None:
    ip = widgets
    hostile_repr = (
        "class Shady:\n"
        f"    def __repr__(self):\n        return {SCRIPT!r}\n"
        f"    def _repr_html_(self):\n        return {IMG!r}\n"
    )
    with contextlib.redirect_stdout(io.StringIO()):
        ok(ip, f"%%ray_task --label '{IMG}' hostile_value\n{SCRIPT!r} + {IMG!r}\n")
        value_cell = ip.execution_count - 1
        ok(ip, f"%%ray_task --label '{SCRIPT}' hostile_object\n{hostile_repr}Shady()\n")
        object_cell = ip.execution_count - 1
        ok(ip, f"%%ray_task --label '{IMG}' hostile_error\nraise ValueError({IMG!r})\n")
        error_cell = ip.execution_count - 1
    views = [cell_views.get(n) for n in (value_cell, object_cell, error_cell)]
    assert all(v is not None and v.widget is not None for v in views)
    wait_until(lambda: all(f.preview is not None for v in views for f in v.watched), 60, "the previews")
    shown = ""
    for view in views:
        view.refresh()
        markup = view.summary.value + view.result.value
        assert_no_markup_gets_through(markup)
        shown += markup
    assert "&lt;img src=x onerror=alert(1)&gt;" in shown  # the labels are shown, as text
    assert "ValueError: &lt;img src=x onerror=alert(1)&gt;" in shown  # and the error
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in shown  # and the object's repr
    for name in ("hostile_value", "hostile_object", "hostile_error"):
        ip.user_ns.pop(name)


def test_dataset_preview_escapes_columns_values_and_label(nb) -> None:
    ok(nb, f"hostile_ds = ray.data.from_items([{{{SCRIPT!r}: {IMG!r}, 'n': 1}}])\n"
           f"hostile_map = {{{IMG!r}: hostile_ds}}\n")
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        preview = ok(nb, f'%ray_data hostile_map["{IMG}"] --stats')
    markup = preview._repr_html_()
    assert_no_markup_gets_through(markup)
    assert markup.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 2  # column in the header and in the table
    assert "&lt;img src=x onerror=alert(1)&gt;" in markup  # value and label
    for name in ("hostile_ds", "hostile_map"):
        nb.user_ns.pop(name)


def _panel_markup(panel) -> str:
    """Every HTML string and text the panel's widgets hold."""
    parts = []

    def walk(widget) -> None:
        for trait in ("value", "description", "tooltip"):
            value = getattr(widget, trait, None)
            if isinstance(value, str):
                parts.append(value)
        for child in getattr(widget, "children", ()) or ():
            walk(child)

    walk(panel)
    return "\n".join(parts)


def test_panel_escapes_labels_errors_and_actor_names(nb) -> None:
    import ray

    try:
        panel = ray_magic.panel()
    except ImportError:
        pytest.skip("the panel is not built yet")
    with contextlib.redirect_stdout(io.StringIO()):
        ok(nb, f"%%ray_task --label '{IMG}'\nraise ValueError({SCRIPT!r})\n")
        ok(nb, f"%%ray_actor hostile_actor --name '{IMG}'\nclass Named:\n    def ping(self):\n        return 1\n"
               f"Named.__name__ = {SCRIPT!r}\n")
        ray.get(nb.user_ns["hostile_actor"].ping.remote(), timeout=60)
    wait_until(lambda: tracker.status()["futures"]["pending"] == 0, 60, "the hostile tasks")
    time.sleep(1.1)  # actor states are read once a second
    refresher.tick()
    markup = _panel_markup(panel)
    assert_no_markup_gets_through(markup, allowed={"svg"})  # the timeline view draws our own SVG
    assert "&lt;img src=x onerror=alert(1)&gt;" in markup and "&lt;script&gt;alert(1)&lt;/script&gt;" in markup
    for name in ("hostile_actor", "Named"):
        nb.user_ns.pop(name)


def test_timeline_svg_escapes_labels_and_errors(nb) -> None:
    from ray_magic.timeline import build_timeline, fetch_events

    with contextlib.redirect_stdout(io.StringIO()):
        ok(nb, f"%%ray_task --label '{IMG}' --block\n1\n")
        good = nb.execution_count - 1
        ok(nb, f"%%ray_task --label '{SCRIPT}' doomed\nraise ValueError({IMG!r})\n")
        bad = nb.execution_count - 1
    nb.user_ns.pop("doomed")
    deadline = time.monotonic() + 30
    while True:  # task events reach the GCS about once a second
        events = fetch_events()
        bars = [b for n in (good, bad) for b in build_timeline(events, cell=n).bars]
        if len(bars) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert len(bars) >= 2, "the timeline never showed the hostile tasks"
    for n in (good, bad):
        timeline = build_timeline(events, cell=n)
        for markup in (timeline.svg(), timeline._repr_html_()):
            assert_no_markup_gets_through(markup, allowed={"svg"})
    assert "&lt;img src=x onerror=alert(1)&gt;" in build_timeline(events, cell=good).svg()


# --- nothing typed or carried in a result is evaluated --------------------------------------------

def test_results_and_labels_are_shown_not_run(nb, tmp_path: Path) -> None:
    canary = tmp_path / "ran"
    code = f"__import__('pathlib').Path({str(canary)!r}).touch()"
    nb.user_ns["code_text"] = code
    with contextlib.redirect_stdout(io.StringIO()):
        # A result that is code, a label that is code, a label IPython would expand.
        value = ok(nb, "%%ray_task --block --label '{code_text}' as_text\ncode_text\n")
        ok(nb, f"%%ray_task --label '$code_text' shown\n{code!r}.strip()\n")
        cell = nb.execution_count - 1
        ok(nb, "%ray_get shown")
    assert value == code and nb.user_ns["shown"] == code
    labels = [r.label for r in tracker.futures[-2:]]
    assert labels == ["{code_text}", "$code_text"], labels  # no {var}/$var expansion in the magic line
    view = cell_views.get(cell)
    if view is not None:
        wait_until(lambda: all(f.preview is not None for f in view.watched), 30, "the preview")
        assert code in view.watched[-1].preview
    assert not canary.exists(), "text carried in a result or a label was run"
    for name in ("code_text", "as_text", "shown"):
        nb.user_ns.pop(name)


def test_panel_has_nothing_to_type_into(nb) -> None:
    """The panel's only inputs are buttons: there is no field whose text could be evaluated."""
    try:
        panel = ray_magic.panel()
    except ImportError:
        pytest.skip("the panel is not built yet")
    import ipywidgets as w

    kinds = set()

    def walk(widget) -> None:
        kinds.add(type(widget))
        for child in getattr(widget, "children", ()) or ():
            walk(child)

    walk(panel)
    typed = [k.__name__ for k in kinds if issubclass(k, (w.Text, w.Textarea, w.Combobox, w.Password))]
    assert not typed, typed


# --- addresses ------------------------------------------------------------------------------------

@pytest.mark.parametrize("address", [
    "127.0.0.1:6379x", "ray://127.0.0.1:10001/x", "http://127.0.0.1:6379", "127.0.0.1", ":6379",
    "127.0.0.1:0", "127.0.0.1:70000", "host name:6379", "$(touch /tmp/x):1", "a;b:1", "",
])
def test_malformed_address_rejected(address: str) -> None:
    with pytest.raises(ConnectError, match="malformed address"):
        validate_address(address)


def test_address_checked_before_connecting_and_used_as_given(tmp_path: Path) -> None:
    """In a fresh kernel: malformed addresses never import Ray nor touch the network; a good one
    is dialled exactly as given (a listener here sees it), and interrupting the wait is clean."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    seen: list[float] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            seen.append(time.monotonic())
            conn.close()

    threading.Thread(target=accept, daemon=True).start()
    bad = [f"127.0.0.1:{port}x", f"ray://127.0.0.1:{port}/x", f"http://127.0.0.1:{port}",
           f"'127.0.0.1 :{port}'", f"127.0.0.1:{port};touch"]
    script = tmp_path / "kernel.py"
    script.write_text(
        "import os, signal, sys, time\n"
        "from IPython.testing.globalipapp import start_ipython\n"
        "ip = start_ipython()\n"
        "ip.run_line_magic('load_ext', 'ray_magic')\n"
        f"for address in {bad!r}:\n"
        "    r = ip.run_cell('%ray_init --address ' + address, store_history=True)\n"
        "    print('BAD', type(r.error_in_exec).__name__, 'ray' in sys.modules, str(r.error_in_exec), flush=True)\n"
        "print('GOOD', flush=True)\n"
        "def interrupt(*_):\n"
        "    raise KeyboardInterrupt\n"
        "signal.signal(signal.SIGALRM, interrupt)\n"
        "signal.setitimer(signal.ITIMER_REAL, 4)\n"
        f"r = ip.run_cell('%ray_init --address 127.0.0.1:{port}', store_history=True)\n"
        "import ray\n"
        "print('AFTER', type(r.error_in_exec).__name__, ray.is_initialized(), flush=True)\n"
        "print('NEXT', ip.run_cell('40 + 2', store_history=True).result, flush=True)\n"
    )
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    env.pop("RAY_ADDRESS", None)
    try:
        proc = subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
        lines = []
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("GOOD"):
                assert not seen, "a malformed address reached the network"
        proc.wait(timeout=120)
    finally:
        listener.close()
    bad_lines = [line for line in lines if line.startswith("BAD ")]
    assert len(bad_lines) == len(bad), lines
    for line in bad_lines:
        kind, imported, message = line.split(" ", 3)[1:]
        assert kind == "UsageError" and imported == "False", line  # rejected before Ray was even imported
        assert "malformed address" in message or "unrecognized arguments" in message, line
    assert seen, "the well-formed address was not dialled as given"
    assert "AFTER KeyboardInterrupt False" in lines and "NEXT 42" in lines, lines
