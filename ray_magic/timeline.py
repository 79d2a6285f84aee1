"""Timeline of the notebook's Ray tasks: one row per worker, grouped by node.

Data comes from ``ray.timeline()`` (chrome-tracing events, ~1 s to fetch, so only
on demand). What the real events of Ray 2.60 look like, and what we use:

- a task execution is ``{"ph": "X", "cat": "task::<task name>", "name": <function>,
  "pid": <node IP>, "tid": "worker:<worker id hex>", "ts": µs, "dur": µs,
  "args": {"name": <function>, "task_id": <hex>}}``. The task name (``.options(name=)``,
  also for actor methods) is only in ``cat``; ``name`` is ``__main__.add`` for a
  function and the bare method name (``inc``) for an actor method;
- nested in it, on the same ``tid``: ``task:deserialize_arguments``, ``task:execute``,
  ``task:store_outputs``. A task that raised has ``{"type", "value", "traceback"}`` in
  the args of its ``task:execute`` event (a cancelled one also in its own args);
- a worker that dies (``os._exit``, OOM, ``force`` cancel) loses its unflushed
  events, so its last tasks are missing. ``fetch_events`` adds those attempts back
  from the GCS task table (best effort, internal API) as synthetic events of the same
  shape, marked failed when the attempt failed.
"""

from __future__ import annotations

import html
import logging
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

__all__ = ["Bar", "Timeline", "WorkerStats", "build_timeline", "fetch_events", "parse_task_name"]

_TASK_PREFIX = "task::"
_CELL_SUFFIX = re.compile(r"^(?P<label>.*) \[cell (?P<cell>\d+)\]$", re.DOTALL)
_BODY_CELL = re.compile(r"^cell (?P<cell>\d+)$")
# XML 1.0 forbids these even when escaped, so a task name holding one would
# break the SVG.
_XML_BAD_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_PALETTE = (
    "#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2",
    "#edc948", "#9c755f", "#ff9da7", "#bab0ac", "#86bcb6",
)  # fmt: skip
_FAILED = "#d62728"
# the one remote function that runs every body cell (ray_magic.session.submit_body)
_BODY_RUNNER = "ray_magic.remote_side.run_cell"
_log = logging.getLogger(__name__)


def parse_task_name(name: str) -> tuple[str, int | None]:
    """Split a magics task name into (label, cell).

    ``"add [cell 7]"`` -> ``("add", 7)``, ``"Acc.inc [cell 2]"`` -> ``("Acc.inc", 2)``,
    ``"cell 12"`` -> ``("cell 12", 12)``; any other name -> ``(name, None)``.
    """
    m = _CELL_SUFFIX.match(name)
    if m:
        return m["label"], int(m["cell"])
    m = _BODY_CELL.match(name)
    if m:
        return name, int(m["cell"])
    return name, None


@dataclass
class Bar:
    """One task execution (one attempt) on one worker."""

    label: str
    func: str
    cell: int | None
    node: str
    worker: str
    start: float
    end: float
    failed: bool

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass
class WorkerStats:
    """One worker's row in the summary: busy is the union of its bars, idle the rest of the span."""

    node: str
    worker: str
    tasks: int
    failed: int
    busy: float
    idle: float


@dataclass
class Timeline:
    """Bars with times in seconds from the first bar shown."""

    bars: list[Bar] = field(default_factory=list)

    @property
    def span(self) -> float:
        return max((b.end for b in self.bars), default=0.0)

    def workers(self) -> list[WorkerStats]:
        """Per-worker totals, grouped by node, in order of first activity."""
        rows = []
        for node, workers in self._grouped().items():
            for worker, bars in workers.items():
                busy = _union_length((b.start, b.end) for b in bars)
                rows.append(
                    WorkerStats(
                        node=node,
                        worker=worker,
                        tasks=len(bars),
                        failed=sum(b.failed for b in bars),
                        busy=busy,
                        idle=max(self.span - busy, 0.0),
                    )
                )
        return rows

    def _grouped(self) -> dict[str, dict[str, list[Bar]]]:
        # bars are sorted by start, so dict insertion order = first activity
        groups: dict[str, dict[str, list[Bar]]] = {}
        for b in self.bars:
            groups.setdefault(b.node, {}).setdefault(b.worker, []).append(b)
        return groups

    # ---------------------------------------------------------------- text
    def text(self) -> str:
        if not self.bars:
            return "Timeline: no tasks of this notebook in ray.timeline()"
        stats = self.workers()
        nodes = len({s.node for s in stats})
        lines = [f"Timeline: {len(self.bars)} tasks on {nodes} node(s), {len(stats)} worker(s), span {self.span:.2f} s"]
        node = None
        for s in stats:
            if s.node != node:
                node = s.node
                lines.append(f"node {_one_line(node)}")
            failed = f"  ({s.failed} failed)" if s.failed else ""
            lines.append(
                f"  worker {_short(s.worker)}  tasks {s.tasks:>3}  busy {s.busy:6.2f} s  idle {s.idle:6.2f} s{failed}"
            )
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.text()

    # ----------------------------------------------------------------- svg
    def svg(self, width: int = 860) -> str:
        """Inline SVG; every string in it comes through ``_esc``."""
        gutter, row_h, bar_h, top, font = 150, 18, 14, 8, 11
        if not self.bars:
            return (
                f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="24" '
                f'font-family="sans-serif" font-size="{font}">'
                '<text x="4" y="16">no tasks of this notebook in ray.timeline()</text></svg>'
            )
        span = self.span or 1e-3
        plot_w = width - gutter - 24  # room for the last tick's label
        scale = plot_w / span
        colours = _colour_map(self.bars)
        body: list[str] = []
        y = top
        for node, workers in self._grouped().items():
            body.append(f'<text x="4" y="{y + 12}" font-weight="bold">node {_esc(node)}</text>')
            y += row_h
            for worker, bars in workers.items():
                lanes = _lanes(bars)  # threaded/async actors run bars side by side
                n_lanes = max(lanes) + 1
                h = row_h * n_lanes
                body.append(
                    f'<text x="14" y="{y + 12}">worker {_esc(_short(worker))}</text>'
                    f'<rect x="{gutter}" y="{y}" width="{plot_w}" height="{h - 2}" '
                    'fill="#f4f4f4"/>'
                )
                for bar, lane in zip(bars, lanes):
                    body.append(
                        _bar_svg(bar, gutter + bar.start * scale, y + lane * row_h + 1,
                                 max(bar.duration * scale, 3.0), bar_h, colours[bar.func])
                    )  # fmt: skip
                y += h
        axis_y = y + 2
        body.append(f'<line x1="{gutter}" y1="{axis_y}" x2="{gutter + plot_w}" y2="{axis_y}" stroke="#333"/>')
        for t in _ticks(span):
            x = gutter + t * scale
            body.append(
                f'<line x1="{x:.1f}" y1="{axis_y}" x2="{x:.1f}" y2="{axis_y + 4}" '
                f'stroke="#333"/><text x="{x:.1f}" y="{axis_y + 16}" '
                f'text-anchor="middle">{t:g}</text>'
            )
        body.append(f'<text x="{gutter + plot_w}" y="{axis_y + 30}" text-anchor="end">time (s)</text>')
        # legend: function -> colour, and the failed marker
        x, ly = gutter, axis_y + 46  # own line: never under the axis title
        for func, colour in colours.items():
            item_w = 24 + 7 * min(len(func), 30)
            if x + item_w > width and x > gutter:  # wrap the legend
                x, ly = gutter, ly + 16
            body.append(
                f'<rect x="{x}" y="{ly - 9}" width="10" height="10" fill="{colour}"/>'
                f'<text x="{x + 14}" y="{ly}">{_esc(_truncate(func, 30))}</text>'
            )
            x += item_w
        if any(b.failed for b in self.bars):
            body.append(
                f'<rect x="{x}" y="{ly - 9}" width="10" height="10" fill="none" '
                f'stroke="{_FAILED}" stroke-width="2"/>'
                f'<text x="{x + 14}" y="{ly}">failed</text>'
            )
        height = ly + 8
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" style="max-width:100%;height:auto" '
            f'font-family="sans-serif" font-size="{font}">' + "".join(body) + "</svg>"
        )

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{_esc(s.node)}</td><td>{_esc(_short(s.worker))}</td>"
            f"<td>{s.tasks}</td><td>{s.failed}</td><td>{s.busy:.2f} s</td>"
            f"<td>{s.idle:.2f} s</td></tr>"
            for s in self.workers()
        )
        table = (
            '<table style="font-size:smaller"><tr><th>node</th><th>worker</th>'
            "<th>tasks</th><th>failed</th><th>busy</th><th>idle</th></tr>"
            f"{rows}</table>"
        )
        return f"<div>{self.svg()}{table if self.bars else ''}</div>"


def _bar_svg(bar: Bar, x: float, y: float, w: float, h: int, colour: str) -> str:
    tip = f"{bar.label} — {bar.duration:.3f} s"
    if bar.cell is not None and not bar.label.startswith("cell "):
        tip += f" (cell {bar.cell})"
    if bar.failed:
        tip += " — FAILED"
    # a thin white edge keeps back-to-back bars of one function apart
    stroke = f' stroke="{_FAILED}" stroke-width="2"' if bar.failed else ' stroke="#fff" stroke-width="0.5"'
    css = ' class="failed"' if bar.failed else ""
    out = (
        f"<g{css}><title>{_esc(tip)}</title>"
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h}" fill="{colour}"'
        f"{stroke}/>"
    )
    fits = int((w - 4) / 6.5)  # ~6.5 px per character at font-size 11
    if fits >= 3:
        out += f'<text x="{x + 2:.1f}" y="{y + h - 3:.1f}" fill="#fff">{_esc(_truncate(bar.label, fits))}</text>'
    return out + "</g>"


def fetch_events() -> list[dict]:
    """``ray.timeline()``, plus attempts whose worker died before reporting them."""
    import ray

    # ray.timeline() warns on every call about a future data source; noise in a cell
    state_log = logging.getLogger("ray._private.state")
    level = state_log.level
    state_log.setLevel(logging.ERROR)
    try:
        events = ray.timeline()
    finally:
        state_log.setLevel(level)
    try:
        events = events + _lost_attempts(events)
    except Exception:  # noqa: BLE001 - internal API: degrade to plain ray.timeline()
        _log.debug("could not add lost task attempts", exc_info=True)
    return events


def _lost_attempts(events: list[dict]) -> list[dict]:
    """Synthetic task events for attempts in the GCS task table without a profile event.

    A worker's profile events and its own state updates are flushed together, so
    when a worker dies its last attempts keep only the owner-side states
    (SUBMITTED_TO_WORKER, FINISHED/FAILED): we draw those as the bar.
    """
    import ray
    from ray._private.state import state
    from ray.core.generated.common_pb2 import ErrorType

    # (worker tid, task name) -> recorded (start, end) in ns. Not keyed by task_id:
    # a cancelled task's event has lost it (its args hold the error instead).
    recorded: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    for e in events:
        if e.get("ph") == "X" and e.get("cat", "").startswith(_TASK_PREFIX):
            recorded[(e["tid"], e["cat"])].append((e["ts"] * 1e3, (e["ts"] + e["dur"]) * 1e3))
    ips = {n["NodeID"]: n["NodeManagerAddress"] for n in ray.nodes()}
    extra = []
    for t in state._get_all_task_events():
        ts = t.state_updates.state_ts_ns
        end = ts.get(11) or ts.get(12)  # FINISHED, FAILED
        start = ts.get(8) or ts.get(5)  # RUNNING, else SUBMITTED_TO_WORKER
        if not (end and start and t.task_info.name and t.state_updates.worker_id):
            continue
        tid = "worker:" + t.state_updates.worker_id.hex()
        cat = _TASK_PREFIX + t.task_info.name
        if any(s < end and start < e for s, e in recorded.get((tid, cat), ())):
            continue  # this attempt is in ray.timeline() already
        args: dict = {"task_id": t.task_id.hex(), "name": t.task_info.func_or_class_name,
                      "source": "gcs"}  # fmt: skip
        if 12 in ts:
            err = t.state_updates.error_info
            args["type"] = ErrorType.Name(err.error_type)
            args["value"] = err.error_message
        node = (t.state_updates.node_id or t.task_info.node_id).hex()
        extra.append({
            "cat": cat, "name": args["name"], "pid": ips.get(node, node), "tid": tid,
            "ts": start / 1e3, "dur": (end - start) / 1e3, "ph": "X", "args": args,
        })  # fmt: skip
    return extra


def build_timeline(
    events: list[dict],
    *,
    cell: int | None = None,
    last_seconds: float | None = None,
    known_names: Callable[[str], bool] | None = None,
    job_id: str | None = None,
    now: float | None = None,
) -> Timeline:
    """Bars for this notebook's task executions in ``events`` (from ``fetch_events``).

    Keeps task names that follow the magics' convention (``... [cell N]``,
    ``cell N``) or that ``known_names`` accepts (cell is then None); only cell
    ``cell`` if given; only bars that end within ``last_seconds`` before ``now``
    (default: the current time); only tasks of job ``job_id`` (hex, as
    ``ray.get_runtime_context().get_job_id()``) if given, so another notebook on the
    same cluster with the same task names does not show up.
    """
    errors = _error_spans(events)
    cutoff = None if last_seconds is None else (now or time.time()) - last_seconds
    raw: list[tuple[float, float, Bar]] = []
    for e in events:
        cat = e.get("cat", "")
        if e.get("ph") != "X" or not cat.startswith(_TASK_PREFIX):
            continue
        name = cat[len(_TASK_PREFIX) :]
        label, n = parse_task_name(name)
        if n is None and not (known_names and known_names(name)):
            continue
        if cell is not None and n != cell:
            continue
        args = e.get("args") if isinstance(e.get("args"), dict) else {}
        task_id = args.get("task_id", "")
        # a task id ends with its job id (also for actor tasks, via the actor id);
        # a cancelled task's event has only the error in its args: keep it
        if job_id and task_id and not task_id.endswith(job_id):
            continue
        start = e["ts"] / 1e6
        end = start + e.get("dur", 0) / 1e6
        if cutoff is not None and end < cutoff:
            continue
        tid = str(e.get("tid", ""))
        failed = "type" in args or _failed_inside(errors.get(tid, ()), start, end)
        bar = Bar(
            label=label,
            func=_func_name(label, args.get("name")),
            cell=n,
            node=str(e.get("pid", "")),
            worker=tid.removeprefix("worker:"),
            start=start,
            end=end,
            failed=failed,
        )
        raw.append((start, end, bar))
    raw.sort(key=lambda r: r[0])
    t0 = raw[0][0] if raw else 0.0
    bars = []
    for start, end, bar in raw:
        bar.start, bar.end = start - t0, end - t0
        bars.append(bar)
    return Timeline(bars)


def _error_spans(events: Iterable[dict]) -> dict[str, list[tuple[float, float]]]:
    """(start, end) in s of each ``task:execute`` that raised, per worker tid."""
    spans: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for e in events:
        args = e.get("args")
        if e.get("cat") == "task:execute" and isinstance(args, dict) and "type" in args:
            start = e["ts"] / 1e6
            spans[str(e.get("tid", ""))].append((start, start + e.get("dur", 0) / 1e6))
    return spans


def _failed_inside(spans: Iterable[tuple[float, float]], start: float, end: float) -> bool:
    # the execute event nests inside the task event (µs rounding: allow 1 ms slack)
    return any(s >= start - 1e-3 and e <= end + 1e-3 for s, e in spans)


def _func_name(label: str, func: object) -> str:
    """What a bar is coloured by: the function (``add``) or method (``Acc.inc``)."""
    if func == _BODY_RUNNER or _BODY_CELL.match(label) or not isinstance(func, str) or not func:
        return label  # each body cell is its own code, whatever runs it
    short = func.rsplit(".", 1)[-1]
    # actor events carry the bare method name; the label has the class as well
    return label if label.endswith("." + short) or label == short else short


def _union_length(spans: Iterable[tuple[float, float]]) -> float:
    total, cur_s, cur_e = 0.0, None, None
    for s, e in sorted(spans):
        if cur_e is None or s > cur_e:
            if cur_e is not None:
                total += cur_e - cur_s
            cur_s, cur_e = s, e
        else:
            cur_e = max(cur_e, e)
    if cur_e is not None:
        total += cur_e - cur_s
    return total


def _lanes(bars: list[Bar]) -> list[int]:
    """Greedy lane per bar (bars sorted by start) so overlapping bars do not hide."""
    ends: list[float] = []
    out = []
    for b in bars:
        for i, e in enumerate(ends):
            if b.start >= e - 1e-4:
                ends[i] = b.end
                out.append(i)
                break
        else:
            ends.append(b.end)
            out.append(len(ends) - 1)
    return out


def _ticks(span: float) -> list[float]:
    """Round tick values (1, 2, 5 × 10^k) giving about 5 to 10 ticks."""
    step = 10 ** int(f"{span / 5:e}".split("e")[1])
    for mult in (1, 2, 5, 10):
        if span / (step * mult) <= 10:
            step *= mult
            break
    n = int(span / step + 1e-9)
    return [round(i * step, 10) for i in range(n + 1)]


def _colour_map(bars: list[Bar]) -> dict[str, str]:
    # by first appearance: no two functions share a colour until the palette runs out
    colours: dict[str, str] = {}
    for b in bars:
        if b.func not in colours:
            colours[b.func] = _PALETTE[len(colours) % len(_PALETTE)]
    return colours


def _esc(s: str) -> str:
    return html.escape(_XML_BAD_CHARS.sub("\ufffd", s), quote=True)


def _one_line(s: str) -> str:
    return _XML_BAD_CHARS.sub("?", s).replace("\n", " ")


def _short(worker: str) -> str:
    return worker[:8]


def _truncate(s: str, n: int) -> str:
    return s if len(s) <= n else s[: max(n - 1, 0)] + "…"
