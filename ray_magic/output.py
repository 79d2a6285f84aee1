"""Routing of what tasks print back to the cell that submitted them.

Ray forwards worker output to the driver, which prints it into whichever cell is
running. For tasks the magics made, we take those lines instead: the task's Ray
name carries its cell (`f [cell 3]`, `cell 3`); an actor's lines go to the cell
that last called it. Everything else goes to Ray's own printer, unchanged.
"""
from __future__ import annotations

import re
import sys
from collections.abc import Callable

from .tracker import tracker

_HANDLER = "ray_print_logs"  # the name Ray gives its printer in the dispatcher
_CELL_NAME = re.compile(r"^(?:(?P<label>.*) )?\[cell (?P<n>\d+)\]$|^cell (?P<m>\d+)$")


def cell_of_task_name(name: str) -> int | None:
    """The cell number a magics task name carries, or None."""
    match = _CELL_NAME.match(name or "")
    if not match:
        return None
    return int(match.group("n") or match.group("m"))


class OutputRouter:
    """Takes Ray's worker-output batches and hands magics' lines to `deliver(cell, text)`."""

    def __init__(self, deliver: Callable[[int, str], None]) -> None:
        self.deliver = deliver
        self._ray_printer: Callable | None = None

    def install(self) -> None:
        from ray._private.worker import global_worker_stdstream_dispatcher as dispatcher

        current = dict(dispatcher.handlers).get(_HANDLER)
        if current is None:
            return  # log_to_driver=False: nothing is forwarded, nothing to route
        if getattr(current, "__self__", None) is not self:
            self._ray_printer = current  # Ray adds a fresh printer on each connect
        dispatcher.remove_handler(_HANDLER)
        dispatcher.add_handler(_HANDLER, self.handle)

    @property
    def installed(self) -> bool:
        """Whether Ray's dispatcher hands worker output to us (Ray drops us on disconnect)."""
        if self._ray_printer is None:
            return False
        from ray._private.worker import global_worker_stdstream_dispatcher as dispatcher

        return getattr(dict(dispatcher.handlers).get(_HANDLER), "__self__", None) is self

    def uninstall(self) -> None:
        if self._ray_printer is None:
            return  # never installed: and importing Ray here would slow unloading
        from ray._private.worker import global_worker_stdstream_dispatcher as dispatcher

        dispatcher.remove_handler(_HANDLER)
        dispatcher.add_handler(_HANDLER, self._ray_printer)
        self._ray_printer = None

    def handle(self, data: dict) -> None:
        try:
            cell, prefix = self._route(data)
        except Exception:  # never lose output because of routing
            cell, prefix = None, ""
        if cell is None:
            if self._ray_printer is not None:
                self._ray_printer(data)
            return
        text = "".join(f"({prefix} pid={data.get('pid')}) {line}\n" for line in data.get("lines", []))
        self.deliver(cell, text)

    def _route(self, data: dict) -> tuple[int | None, str]:
        task = data.get("task_name") or ""
        cell = cell_of_task_name(task)
        if cell is not None:
            return cell, task
        if data.get("actor_name"):
            pid = int(data.get("pid") or 0)
            actor = tracker.actor_for_pid(pid)
            if actor is None and tracker.actors:
                tracker.update_actor_states()  # learn pids of new actors
                actor = tracker.actor_for_pid(pid)
            if actor is not None and actor.last_cell is not None:
                return actor.last_cell, f"{data['actor_name']} [cell {actor.last_cell}]"
        return None, ""


def print_to_terminal(cell: int, text: str) -> None:
    """Where no widget can show it (terminal IPython), print at once, marked with its task."""
    sys.stdout.write(text)
    sys.stdout.flush()
