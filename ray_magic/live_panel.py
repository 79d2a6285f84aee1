"""The live panel: one ipywidgets view of the cluster, nodes, futures, actors and datasets.

Built once, on the main thread. After that the refresher thread updates it by
setting traits of the widgets it already has (fixed pools of rows for the bounded
tables), and only when something it shows has changed. It reads the tracker and
`cluster.ClusterReader`, never fetches a value, and holds no future, actor handle
or dataset: rows point at tracker records weakly. Every string is HTML-escaped.

(Named `live_panel`, not `panel`: importing a submodule `ray_magic.panel` would
replace the public function `ray_magic.panel()` with the module.)
"""
from __future__ import annotations

import html
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any

import ipywidgets as w

from . import session
from .cellview import human_bytes
from .cluster import CPU, GPU, MEMORY, OBJECT_STORE, ClusterReader, ClusterState, NodeState, RunningTasks
from .refresher import refresher
from .tracker import ALIVE, DEAD, DONE_STATES, FAILED, ActorRecord, CellStats, FutureRecord, tracker

FUTURE_ROWS = 20  # rows in the futures table; the rest are counted
CELL_BARS = 8  # progress bars of submitting cells
ACTOR_ROWS = 20
DATASET_ROWS = 5
NODE_ROWS = 64
OPERATOR_ROWS = 12  # per dataset run

_HIDDEN, _SHOWN = "none", None
_TABLE = '<table style="border-collapse:collapse;font-size:90%">'


def esc(value: Any) -> str:
    """Any value as HTML text: markup in it shows as characters."""
    return html.escape(str(value), quote=True)


def _num(value: float) -> str:
    return f"{value:g}"


def _seconds(value: float, whole: bool = False) -> str:
    if value < 60:
        return f"{value:.0f} s" if whole or value >= 10 else f"{value:.1f} s"
    if value < 3600:
        return f"{int(value // 60)} min {int(value % 60)} s"
    return f"{int(value // 3600)} h {int(value % 3600 // 60)} min"


def text_lines(state: ClusterState, status: dict) -> list[str]:
    """The panel as three lines of plain text (terminal IPython, nbconvert)."""
    if state.connected:
        first = (f"Ray {state.version} at {state.address}: {state.alive}/{len(state.nodes)} nodes alive, "
                 f"{_num(state.total(CPU))} CPUs, {_num(state.total(GPU))} GPUs")
    else:
        first = "Ray: not connected (run %ray_init)"
    futures, actors = status["futures"], status["actors"]
    return [
        first,
        f"futures: {futures['pending']} pending, {futures['finished']} finished, "
        f"{futures['failed']} failed, {futures['cancelled']} cancelled",
        f"actors: {actors['alive']} alive, {actors['restarting']} restarting, {actors['dead']} dead",
    ]


class _FutureWindow:
    """Which futures get rows: failures and pending first, then the latest to end.

    Scans each new record once and then only what is pending, so a redraw costs
    in proportion to what is pending, not to the notebook's whole history. A task
    just cancelled or finished is among the latest to end, so its row stays in view.
    """

    def __init__(self) -> None:
        self.reset(None)

    def reset(self, futures: list | None) -> None:
        self._futures = futures
        self._seen = 0
        self.pending: dict[int, FutureRecord] = {}  # in submission order
        self.failed: deque[FutureRecord] = deque(maxlen=FUTURE_ROWS)
        self.ended: deque[FutureRecord] = deque(maxlen=FUTURE_ROWS)  # in the order they ended

    def update(self) -> None:
        futures = tracker.futures
        if futures is not self._futures:  # tracker.reset() after %ray_shutdown
            self.reset(futures)
        end = len(futures)
        for record in futures[self._seen:end]:
            if record.state in DONE_STATES:
                self._ended(record)
            else:
                self.pending[id(record)] = record
        self._seen = end
        for key, record in list(self.pending.items()):
            if record.state in DONE_STATES:
                del self.pending[key]
                self._ended(record)

    def _ended(self, record: FutureRecord) -> None:
        (self.failed if record.state == FAILED else self.ended).append(record)

    def rows(self, limit: int) -> list[FutureRecord]:
        pending = list(self.pending.values())
        failed = list(reversed(self.failed))[: limit - min(len(pending), limit // 2)]
        chosen = failed + pending[: limit - len(failed)]
        return chosen + list(reversed(self.ended))[: limit - len(chosen)]
        return chosen


class _FutureRow:
    """One row of the futures table: label, state, time taken, cancel button."""

    def __init__(self, on_cancel: Callable[[FutureRecord], None]) -> None:
        self.record: weakref.ref | None = None
        self.label = w.HTML(layout=w.Layout(width="38%"))
        self.state = w.HTML(layout=w.Layout(width="38%"))
        self.time = w.HTML(layout=w.Layout(width="10%"))
        self.button = w.Button(description="cancel", disabled=True, tooltip="Cancel this task",
                               layout=w.Layout(width="100px"))
        self.button.on_click(lambda _: self._clicked(on_cancel))
        self.box = w.HBox([self.label, self.state, self.time, self.button], layout=w.Layout(display=_HIDDEN))

    def _clicked(self, on_cancel: Callable[[FutureRecord], None]) -> None:
        record = self.record() if self.record is not None else None
        if record is not None:
            on_cancel(record)

    def show(self, record: FutureRecord | None, cancelling: bool, live: bool, node: str | None = None) -> None:
        """Draw `record` (None hides the row); `node`: where it runs, if it has started."""
        if record is None:
            self.record = None
            self.box.layout.display = _HIDDEN
            return
        self.record = weakref.ref(record)
        where = f" <small>cell {record.cell}</small>" if record.cell is not None else ""
        self.label.value = f"<code>{esc(record.label)}</code>{where}"
        pending = record.state not in DONE_STATES
        if record.state == FAILED:
            error = record.error or "failed"
            short = error if len(error) <= 120 else error[:117] + "..."
            self.state.value = f'<span style="color:#c62828" title="{esc(error)}">failed: {esc(short)}</span>'
        elif pending and cancelling:
            self.state.value = "cancelling"
        elif pending and node is not None:
            self.state.value = esc(f"running on {node[:8]}")
        else:
            self.state.value = esc(record.state)
        self.time.value = esc(_seconds(record.duration, whole=pending))
        self.button.description = "cancelling" if pending and cancelling else "cancel"
        self.button.disabled = not (live and pending and not cancelling and record.ref is not None)
        self.box.layout.display = _SHOWN


class _CellBar:
    """Progress of one submitting cell: done of total."""

    def __init__(self) -> None:
        self.label = w.HTML(layout=w.Layout(width="110px"))
        self.bar = w.IntProgress(min=0, max=1, value=0, layout=w.Layout(width="220px"))
        self.counts = w.HTML()
        self.box = w.HBox([self.label, self.bar, self.counts], layout=w.Layout(display=_HIDDEN))

    def show(self, stats: CellStats | None) -> None:
        if stats is None:
            self.box.layout.display = _HIDDEN
            return
        self.label.value = esc(f"cell {stats.cell}" if stats.cell is not None else "outside cells")
        self.bar.max = max(stats.total, 1)
        self.bar.value = stats.done
        self.bar.bar_style = "danger" if stats.failed else ("success" if stats.done == stats.total else "")
        extra = "".join(f", {n} {word}" for n, word in ((stats.failed, "failed"), (stats.cancelled, "cancelled")) if n)
        self.counts.value = esc(f"{stats.done}/{stats.total} done{extra}")
        self.box.layout.display = _SHOWN


class _ActorRow:
    """One row of the actors table: class, name, state, calls, kill button."""

    def __init__(self, on_kill: Callable[[ActorRecord], None]) -> None:
        self.record: weakref.ref | None = None
        self.class_name = w.HTML(layout=w.Layout(width="22%"))
        self.name = w.HTML(layout=w.Layout(width="22%"))
        self.state = w.HTML(layout=w.Layout(width="16%"))
        self.calls = w.HTML(layout=w.Layout(width="24%"))
        self.button = w.Button(description="kill", disabled=True, tooltip="Kill this actor (no restart)",
                               layout=w.Layout(width="100px"))
        self.button.on_click(lambda _: self._clicked(on_kill))
        self.box = w.HBox([self.class_name, self.name, self.state, self.calls, self.button],
                          layout=w.Layout(display=_HIDDEN))

    def _clicked(self, on_kill: Callable[[ActorRecord], None]) -> None:
        record = self.record() if self.record is not None else None
        if record is not None:
            on_kill(record)

    def show(self, record: ActorRecord | None, killing: bool, live: bool) -> None:
        if record is None:
            self.record = None
            self.box.layout.display = _HIDDEN
            return
        self.record = weakref.ref(record)
        self.class_name.value = f"<code>{esc(record.class_name)}</code>"
        self.name.value = esc(record.name or "")
        dying = killing and record.state != DEAD
        self.state.value = esc("killing" if dying else record.state)
        self.calls.value = esc(f"{record.calls_done} done, {record.calls_pending} pending")
        self.button.disabled = not (live and record.state != DEAD and not dying and record.handle is not None)
        self.box.layout.display = _SHOWN


def _used_of(state: ClusterState | NodeState, name: str, as_bytes: bool) -> str:
    fmt = human_bytes if as_bytes else _num
    total = state.total(name) if isinstance(state, ClusterState) else state.amount(name)
    used = state.in_use(name)
    return f"{fmt(total)}" if used is None else f"{fmt(used)} of {fmt(total)}"


def _cluster_html(state: ClusterState) -> str:
    if not state.connected:
        return "<i>Not connected to Ray.</i>"
    rows = [
        ("Address", state.address),
        ("Ray", state.version),
        ("Nodes", f"{state.alive} alive of {len(state.nodes)}"),
        ("CPUs in use", _used_of(state, CPU, False)),
        ("GPUs in use", _used_of(state, GPU, False)),
        ("Memory reserved", _used_of(state, MEMORY, True)),
        ("Object store in use", _used_of(state, OBJECT_STORE, True)),
    ]
    if state.error:
        rows.append(("Last read failed", state.error))
    body = "".join(f'<tr><td style="padding-right:1em">{esc(k)}</td><td>{esc(v)}</td></tr>' for k, v in rows)
    return f"{_TABLE}{body}</table>"


def _nodes_html(state: ClusterState) -> str:
    if not state.nodes:
        return ""
    head = "".join(f'<th style="text-align:left;padding-right:1em">{h}</th>' for h in
                   ("node", "address", "state", "CPUs used", "GPUs used", "memory reserved", "object store used"))
    rows = []
    for node in state.nodes[:NODE_ROWS]:
        cells = [node.node_id[:8] + (" (head)" if node.is_head else ""), node.address,
                 "alive" if node.alive else "dead"]
        if node.alive:
            cells += [_used_of(node, CPU, False), _used_of(node, GPU, False), _used_of(node, MEMORY, True),
                      _used_of(node, OBJECT_STORE, True)]
        else:
            cells += ["-"] * 4
        rows.append("<tr>" + "".join(f'<td style="padding-right:1em">{esc(c)}</td>' for c in cells) + "</tr>")
    more = len(state.nodes) - NODE_ROWS
    tail = f"<div>{more} more nodes not shown</div>" if more > 0 else ""
    return f"{_TABLE}<tr>{head}</tr>{''.join(rows)}</table>{tail}"


def _dataset_html(run: Any) -> str:
    ended = run.finished_at or time.time()
    where = f" (cell {run.cell})" if run.cell is not None else ""
    state = run.state + (f": {run.error}" if run.error else "")
    head = (f"<div><code>{esc(run.label)}</code>{esc(where)}: {esc(state)}, "
            f"{esc(_seconds(ended - run.started_at))}</div>")
    rows = []
    for op in list(run.operators)[:OPERATOR_ROWS]:
        total = op.total
        if total is None:
            bar, of = "<progress></progress>", ""
        else:
            bar, of = f'<progress value="{op.done}" max="{max(total, 1)}"></progress>', f" of {total:,}"
        rows.append(f'<tr><td style="padding-right:1em">{esc(op.name)}</td><td>{bar}</td>'
                    f'<td style="padding-left:1em">{esc(f"{op.done:,}{of} {op.unit}")}</td></tr>')
    return head + (f"{_TABLE}{''.join(rows)}</table>" if rows else "")


class _TimelineView:
    """The notebook's tasks as bars per worker, drawn on demand.

    ray.timeline() takes about a second, so it is never read on a tick: the
    button asks, and the refresher thread draws at its next tick.
    """

    def __init__(self) -> None:
        self.button = w.Button(description="draw timeline", tooltip="Which worker ran which task, and when")
        self.html = w.HTML("<small>Press the button to draw which worker ran which task, and when.</small>")
        self.box = w.VBox([self.button, self.html])
        self.asked = False
        self.button.on_click(self._clicked)

    def _clicked(self, _button: w.Button) -> None:
        self.asked = True
        self.button.description = "drawing..."

    def draw_if_asked(self) -> None:
        if not self.asked:
            return
        self.asked = False
        from . import session
        from .timeline import build_timeline, fetch_events

        try:
            job_id = session.ray_module().get_runtime_context().get_job_id()
            self.html.value = build_timeline(fetch_events(), job_id=job_id)._repr_html_()
        except Exception as err:  # Ray went away mid-read: say so in the panel, never raise
            self.html.value = f"<small>timeline unavailable: {esc(type(err).__name__)}: {esc(err)}</small>"
        self.button.description = "redraw timeline"


def _section(title: str) -> w.HTML:
    return w.HTML(f'<div style="margin-top:6px;font-weight:bold">{esc(title)}</div>')


class RayPanel(w.VBox):
    """The live panel. Build it with `get_panel()`: there is one per kernel."""

    def __init__(self) -> None:
        self.cluster = ClusterReader()
        self.tasks = RunningTasks()
        self.redraws = 0  # how many times something was redrawn (idle ticks do not count)
        self._lock = threading.RLock()
        self._key: tuple | None = None
        self._live = False  # the refresher is updating us
        self._message = ""
        self._clicks = 0
        self._window = _FutureWindow()
        self._cancelling: weakref.WeakSet[FutureRecord] = weakref.WeakSet()
        self._killing: weakref.WeakSet[ActorRecord] = weakref.WeakSet()

        self.header = w.HTML()
        self.cluster_html = w.HTML()
        self.nodes_html = w.HTML()
        self.futures_html = w.HTML()
        self.cell_bars = [_CellBar() for _ in range(CELL_BARS)]
        self.future_rows = [_FutureRow(self._cancel) for _ in range(FUTURE_ROWS)]
        self.futures_more = w.HTML()
        self.actors_html = w.HTML()
        self.actor_rows = [_ActorRow(self._kill) for _ in range(ACTOR_ROWS)]
        self.actors_more = w.HTML()
        self.datasets_html = w.HTML()
        self.dataset_rows = [w.HTML(layout=w.Layout(display=_HIDDEN)) for _ in range(DATASET_ROWS)]
        self.timeline = _TimelineView()
        super().__init__(children=[
            self.header,
            _section("Cluster"), self.cluster_html,
            _section("Nodes"), self.nodes_html,
            _section("Futures"), self.futures_html,
            w.VBox([bar.box for bar in self.cell_bars]),
            w.VBox([row.box for row in self.future_rows]),
            self.futures_more,
            _section("Actors"), self.actors_html,
            w.VBox([row.box for row in self.actor_rows]),
            self.actors_more,
            _section("Datasets"), self.datasets_html,
            w.VBox(self.dataset_rows),
            _section("Timeline"), self.timeline.box,
        ])

    # --- refreshing (the refresher thread; or the main thread before it runs) ---------------
    def refresh(self, force: bool = False) -> None:
        """Redraw what changed since the last refresh; nothing when idle."""
        with self._lock:
            self._live = True
            self._draw(self.cluster.read(force=force), force)
            self.timeline.draw_if_asked()

    def updates_stopped(self) -> None:
        """Draw the stopped state: Ray shut down or gone, or updates stopped (%unload_ext)."""
        with self._lock:
            self._live = False
            self._draw(self.cluster.read(force=True), force=True)

    def _draw(self, state: ClusterState, force: bool) -> None:
        self._window.update()
        running_tasks = self.tasks.read(wanted=bool(self._window.pending) and self._live)
        runs = self._chosen_runs()
        running = any(run.state == "running" for run in runs)
        key = (
            state, tracker.version, len(tracker.futures), len(self._window.pending), len(tracker.actors),
            tuple((id(r), r.state, r.done, tuple((o.done, o.total) for o in r.operators)) for r in runs),
            int(time.time()) if self._window.pending or running else 0,  # clocks of pending rows
            self._clicks, self._live, refresher.interval, self.tasks.version,
        )
        if key == self._key and not force:
            return
        self._key = key
        self.redraws += 1
        self._draw_header(state)
        self.cluster_html.value = _cluster_html(state)
        self.nodes_html.value = _nodes_html(state)
        self._draw_futures(running_tasks)
        self._draw_actors()
        self._draw_datasets(runs)

    def _draw_header(self, state: ClusterState) -> None:
        if not state.connected:
            status = "not connected: run %ray_init"
        elif self._live:
            status = f"live, refreshed every {_num(refresher.interval)} s"
        else:
            status = "updates stopped: run %ray_panel to resume"
        message = f'<div style="color:#c62828">{esc(self._message)}</div>' if self._message else ""
        self.header.value = f"<b>Ray</b> &middot; {esc(status)}{message}"

    def _draw_futures(self, running_tasks: dict[str, str]) -> None:
        counts = tracker.status()["futures"]
        total = len(tracker.futures)
        chosen = self._window.rows(FUTURE_ROWS)
        running = sum(1 for r in self._window.pending.values() if r.task_id in running_tasks)
        self.futures_html.value = esc(
            f"{total:,} submitted: {counts['pending']:,} pending ({running:,} running), "
            f"{counts['finished']:,} finished, {counts['failed']:,} failed, {counts['cancelled']:,} cancelled"
            if total else "No futures yet."
        )
        cells = list(tracker.cells.values())
        busy = [s for s in reversed(cells) if s.pending]
        cell_list = (busy + [s for s in reversed(cells) if not s.pending])[:CELL_BARS]
        for i, bar in enumerate(self.cell_bars):
            bar.show(cell_list[i] if i < len(cell_list) else None)
        for i, row in enumerate(self.future_rows):
            record = chosen[i] if i < len(chosen) else None
            if record is None:
                row.show(None, False, self._live)
            else:
                row.show(record, record in self._cancelling, self._live, running_tasks.get(record.task_id))
        hidden = total - len(chosen)
        more_cells = len(cells) - len(cell_list)
        notes = []
        if hidden > 0:
            notes.append(f"{hidden:,} more futures not shown")
        if more_cells > 0:
            notes.append(f"{more_cells} more cells not shown")
        self.futures_more.value = esc("; ".join(notes))

    def _draw_actors(self) -> None:
        records = list(tracker.actors.values())
        live = [r for r in reversed(records) if r.state != DEAD]
        chosen = (live + [r for r in reversed(records) if r.state == DEAD])[:ACTOR_ROWS]
        counts = tracker.status()["actors"]
        self.actors_html.value = esc(
            f"{counts[ALIVE]} alive, {counts['restarting']} restarting, {counts[DEAD]} dead" if records
            else "No actors yet."
        )
        for i, row in enumerate(self.actor_rows):
            record = chosen[i] if i < len(chosen) else None
            row.show(record, record is not None and record in self._killing, self._live)
        more = len(records) - len(chosen)
        self.actors_more.value = esc(f"{more} more actors not shown") if more > 0 else ""

    def _chosen_runs(self) -> list:
        recent = list(tracker.datasets[-50:])
        running = [r for r in reversed(recent) if r.state == "running"]
        return (running + [r for r in reversed(recent) if r.state != "running"])[:DATASET_ROWS]

    def _draw_datasets(self, runs: list) -> None:
        self.datasets_html.value = "" if runs else "No dataset executions yet."
        for i, row in enumerate(self.dataset_rows):
            if i < len(runs):
                row.value = _dataset_html(runs[i])
                row.layout.display = _SHOWN
            else:
                row.layout.display = _HIDDEN

    # --- buttons (main thread): act, then let the next refresh draw the outcome -------------
    def _cancel(self, record: FutureRecord) -> None:
        ref = record.ref
        if ref is None or record.state in DONE_STATES or record in self._cancelling:
            return
        self._cancelling.add(record)
        self._clicks += 1
        # session.cancel may wait ~2 s before forcing: not on the kernel's thread.
        threading.Thread(target=self._cancel_now, args=([ref],), name="ray_magic cancel", daemon=True).start()

    def _cancel_now(self, refs: list) -> None:
        try:
            session.cancel(refs)
        except Exception as err:  # shown in the panel, never printed from a thread
            self._say(f"cancel failed: {type(err).__name__}: {err}")

    def _kill(self, record: ActorRecord) -> None:
        handle = record.handle
        if handle is None:
            self._say(f"cannot kill {record.class_name}: the notebook no longer holds its handle")
            return
        try:
            session.kill(handle)
        except Exception as err:
            self._say(f"kill failed: {type(err).__name__}: {err}")
            return
        self._killing.add(record)
        self._clicks += 1

    def _say(self, message: str) -> None:
        self._message = message[:300]
        self._clicks += 1

    # --- plain text ----------------------------------------------------------------------------
    def text(self) -> str:
        return "\n".join(text_lines(self.cluster.read(), tracker.status()))

    def __repr__(self) -> str:
        return self.text()

    def _repr_mimebundle_(self, **kwargs: Any) -> dict:
        bundle = dict(super()._repr_mimebundle_(**kwargs) or {})
        bundle["text/plain"] = self.text()  # whole: ipywidgets would cut it at 110 characters
        return bundle


_panel: RayPanel | None = None


def get_panel() -> RayPanel:
    """The one live panel, built on first use and refreshed by the refresher thread."""
    global _panel
    if _panel is None:
        _panel = RayPanel()
        if session.is_connected():
            _panel.refresh(force=True)
        else:
            _panel.updates_stopped()
        if _panel.refresh not in refresher.listeners:
            refresher.listeners.append(_panel.refresh)
        if _panel.updates_stopped not in refresher.on_stop:
            refresher.on_stop.append(_panel.updates_stopped)
    import ray_magic

    magics = ray_magic._magics
    if magics is not None and session.is_connected():
        magics._attach()  # updates run while the extension is loaded
    return _panel


def show_panel(magics: Any) -> RayPanel:
    """Display the live panel (%ray_init, %ray_panel); the same panel every time."""
    from IPython.display import display

    if session.is_connected():
        magics._attach()  # (re)start the updates, e.g. after %unload_ext / %load_ext
    panel = get_panel()
    if session.is_connected():
        refresher.tick()  # futures as they are now (a --block cell just got its value), not as of the last tick
        panel.refresh(force=True)
    else:
        panel.updates_stopped()
    if magics.widgets:
        display(panel)
    else:
        display({"text/plain": panel.text()}, raw=True)
    return panel
