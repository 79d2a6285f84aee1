"""ray_magic: IPython magics that make Ray feel native in Jupyter.

`%load_ext ray_magic` registers the magics. Loading imports neither `ray` nor
`ray.data`: they are imported when a magic first needs them.
"""
from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_magics = None  # the RayMagics instance registered in the shell, if any


def load_ipython_extension(ip: Any) -> None:
    """Register the magics (harmless if called again)."""
    global _magics
    from . import session
    from .magics import RayMagics

    if _magics is not None and _magics.shell is ip:
        return
    _magics = RayMagics(shell=ip)
    ip.register_magics(_magics)
    if _magics not in ip.configurables:
        ip.configurables.append(_magics)
    session.current_cell = _magics.current_cell
    session.on_submit = _magics._on_submit
    session.ensure_connected = _magics.ensure_ray


def unload_ipython_extension(ip: Any) -> None:
    """Remove the magics and stop the background updates; Ray keeps running."""
    global _magics
    from . import session
    from .refresher import refresher

    refresher.stop()
    if _magics is None:
        return
    _magics.router.uninstall()
    manager = ip.magics_manager
    for kind, names in _magics.magics.items():
        for name in names:
            manager.magics[kind].pop(name, None)
    manager.registry.pop(type(_magics).__name__, None)
    if _magics in ip.configurables:
        ip.configurables.remove(_magics)
    session.current_cell = lambda: None
    session.on_submit = lambda cell: None
    session.ensure_connected = session.connect_default
    _magics = None


def panel() -> Any:
    """The live panel (an ipywidgets widget), the same one each time."""
    from .live_panel import get_panel

    return get_panel()


def status() -> dict:
    """A snapshot of the panel's counts as plain data (futures, actors, datasets, cluster)."""
    from .cluster import read_cluster
    from .tracker import tracker

    snapshot = tracker.status()
    snapshot["cluster"] = read_cluster().counts()
    return snapshot
