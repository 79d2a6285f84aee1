"""The one background thread that moves futures along and updates every view.

It polls the tracker (cost follows what is pending), refreshes cell views and
whatever else subscribed (the panel), and stops quietly when Ray goes away.
Tests call `tick()` directly for a deterministic refresh.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

from .cellview import cell_views
from .session import is_connected
from .tracker import tracker

ACTOR_STATE_EVERY = 1.0  # seconds between GCS reads of actor states


class Refresher:
    def __init__(self) -> None:
        self.interval = 0.5
        self.listeners: list[Callable[[], None]] = []
        # Called once as the thread ends (stopped, or Ray gone): views draw their stopped state.
        self.on_stop: list[Callable[[], None]] = []
        self.errors: list[str] = []  # kept for debugging; never printed into a cell
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()  # tick() from tests and the thread never overlap
        self._last_actor_read = 0.0

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.running:
            return
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ray_magic refresher", daemon=True)
        self._thread.start()

    def stop(self, wait: bool = True) -> None:
        self._stop.set()
        thread = self._thread
        if wait and thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        self._thread = None

    def _run(self) -> None:
        stop = self._stop
        while not stop.wait(self.interval):
            if not is_connected():
                break  # Ray went away underneath us: stop quietly
            try:
                self.tick()
            except Exception as err:  # never print from a background thread
                if not is_connected():
                    break
                self._note(err)
        self.notify_stopped()

    def notify_stopped(self) -> None:
        """Let views draw their stopped state (also called by %ray_shutdown once Ray is down)."""
        with self._lock:
            for callback in list(self.on_stop):
                try:
                    callback()
                except Exception as err:  # never print from a background thread
                    self._note(err)

    def _note(self, err: Exception) -> None:
        self.errors = (self.errors + [f"{type(err).__name__}: {err}"])[-20:]

    def tick(self) -> None:
        """One refresh: poll futures, read actor states now and then, redraw views."""
        with self._lock:
            if not is_connected():
                return
            tracker.poll()
            now = time.monotonic()
            if tracker.actors and now - self._last_actor_read >= ACTOR_STATE_EVERY:
                self._last_actor_read = now
                tracker.update_actor_states()
            cell_views.refresh()
            for listener in list(self.listeners):
                listener()


refresher = Refresher()
