"""What a cell that submitted tasks shows under it.

One compact line of progress (done of total), the result of a body cell when it
arrives, and an area where its tasks' prints land, also after the cell finished.
Built on the main thread; updated only by the refresher thread.
"""
from __future__ import annotations

import collections
import html
from typing import Any

from .tracker import DONE_STATES, FAILED, FINISHED, FutureRecord, tracker

PREVIEW_MAX_BYTES = 64 * 1024
MAX_KEPT_CHARS = 200_000  # a cell that prints without end keeps only its latest output


def human_bytes(size: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} B"


def preview_value(value: Any, limit: int = 300) -> str:
    """A short one-line repr of a result."""
    text = repr(value)
    text = " ".join(text.split()) if len(text) < 5 * limit else " ".join(text[: 5 * limit].split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class WatchedFuture:
    """A body cell's future: the view fetches a small result once, then lets go."""

    def __init__(self, ref: Any, record: FutureRecord) -> None:
        self.ref = ref
        self.record = record
        self.preview: str | None = None

    def settle(self) -> bool:
        """Fill in the preview once the task is done; True when it changed."""
        if self.preview is not None or self.record.state not in DONE_STATES:
            return False
        record = self.record
        if record.state == FINISHED:
            if record.size is not None and record.size <= PREVIEW_MAX_BYTES:
                import ray

                try:
                    self.preview = preview_value(ray.get(self.ref, timeout=5))
                except Exception as err:  # the value cannot be read here: say so, once
                    self.preview = f"(result not readable here: {type(err).__name__})"
            else:
                size = f"{human_bytes(record.size)}" if record.size else "more than 100 KiB"
                self.preview = f"(a result of {size} in the object store; not fetched)"
        elif record.state == FAILED:
            self.preview = record.error or "failed"
        else:
            self.preview = "cancelled"
        self.ref = None
        return True


class CellView:
    """Progress, results and prints of one cell's tasks."""

    def __init__(self, cell: int | None, use_widgets: bool, prints_only: bool = False) -> None:
        self.cell = cell
        self.prints_only = prints_only  # a --block cell shows its value itself: only prints go here
        self.watched: list[WatchedFuture] = []
        self.text = ""  # everything its tasks printed (bounded)
        self._queue: collections.deque[str] = collections.deque()
        self._shown = None  # last (done, total, failed, previews) drawn
        self.widget = self._build() if use_widgets else None

    def _build(self):
        import ipywidgets as w

        shared = _shared_styles()  # 6 widgets per cell instead of 15: a body cell costs ~3x less
        if self.prints_only:  # one widget: the cheapest view that still catches late prints
            self.output = w.Output(layout=shared["output"])
            return self.output
        self.summary = w.HTML(layout=shared["plain"], style=shared["html"])
        self.bar = w.IntProgress(min=0, max=1, value=0, layout=shared["bar"], style=shared["progress"])
        self.result = w.HTML(layout=shared["plain"], style=shared["html"])
        self.output = w.Output(layout=shared["output"])
        return w.VBox([w.HBox([self.bar, self.summary], layout=shared["plain"]), self.result, self.output],
                      layout=shared["plain"])

    # called from Ray's log thread: only queue
    def append_text(self, text: str) -> None:
        self._queue.append(text)

    def watch(self, ref: Any, record: FutureRecord) -> None:
        self.watched.append(WatchedFuture(ref, record))

    @property
    def stats(self):
        return tracker.cells.get(self.cell)

    def refresh(self) -> None:
        """Bring the view up to date; cheap when nothing changed."""
        for future in self.watched:
            future.settle()
        new = ""
        while self._queue:
            new += self._queue.popleft()
        if new:
            self.text = (self.text + new)[-MAX_KEPT_CHARS:]
            if self.widget is not None:
                self.output.append_stdout(new)
        stats = self.stats
        shown = (stats.done, stats.total, stats.failed, stats.cancelled) if stats else (0, 0, 0, 0)
        shown += tuple(f.preview for f in self.watched)
        if shown == self._shown or self.widget is None or self.prints_only:
            self._shown = shown
            return
        self._shown = shown
        done, total, failed, cancelled = shown[:4]
        self.bar.max = max(total, 1)
        self.bar.value = done
        self.bar.bar_style = "danger" if failed else ("success" if total and done == total else "")
        self.summary.value = html.escape(self.summary_text())
        self.result.value = "<br>".join(
            f"<code>{html.escape(f.record.label)}</code> &rarr; {html.escape(f.preview or 'pending')}"
            for f in self.watched
        )

    def summary_text(self) -> str:
        stats = self.stats
        if stats is None:  # only actors so far: their prints come here
            return f"cell {self.cell}: output of its actors"
        extra = "".join(f", {n} {word}" for n, word in ((stats.failed, "failed"), (stats.cancelled, "cancelled")) if n)
        return f"cell {self.cell}: {stats.done}/{stats.total} done{extra}"

    def __repr__(self) -> str:
        return self.summary_text()

    def _repr_mimebundle_(self, **kwargs: Any) -> dict:
        bundle = {"text/plain": self.summary_text()}
        widget = self.widget
        if widget is not None and widget.comm is not None:
            # The widget's own bundle would first build a repr of its whole tree, only to be replaced.
            bundle["application/vnd.jupyter.widget-view+json"] = {
                "version_major": 2, "version_minor": 0, "model_id": widget.model_id,
            }
        return bundle


_shared: dict = {}


def _shared_styles() -> dict:
    """Layout and style widgets that every cell view shares (never changed after creation).

    Each widget would otherwise make its own, and creating a widget is what a cell
    view costs. Made again if they were closed.
    """
    if not _shared or any(widget.comm is None for widget in _shared.values()):
        import ipywidgets as w
        from ipywidgets.widgets.widget_int import ProgressStyle
        from ipywidgets.widgets.widget_string import HTMLStyle

        _shared.update(
            plain=w.Layout(),
            bar=w.Layout(width="160px"),
            output=w.Layout(max_height="240px", overflow="auto"),
            html=HTMLStyle(),
            progress=ProgressStyle(),
        )
    return _shared


class CellViews:
    """All cells' views, by cell number."""

    def __init__(self) -> None:
        self.by_cell: dict[int | None, CellView] = {}

    def get(self, cell: int | None) -> CellView | None:
        return self.by_cell.get(cell)

    def create(self, cell: int | None, use_widgets: bool, prints_only: bool = False) -> tuple[CellView, bool]:
        view = self.by_cell.get(cell)
        if view is not None:
            return view, False
        view = self.by_cell[cell] = CellView(cell, use_widgets, prints_only)
        return view, True

    def deliver(self, cell: int, text: str) -> None:
        view = self.by_cell.get(cell)
        if view is None:
            view, _ = self.create(cell, use_widgets=False)
        view.append_text(text)

    def refresh(self) -> None:
        for view in list(self.by_cell.values()):
            view.refresh()

    def reset(self) -> None:
        self.by_cell.clear()


cell_views = CellViews()
