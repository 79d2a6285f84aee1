"""Cells -> Ray: definitions become remote functions, bodies become tasks, classes actors.

Plain functions that the magics call; every user mistake is a CellError raised
before anything runs or is submitted.
"""
from __future__ import annotations

import ast
import linecache
from typing import Any

from . import session
from .cells import BODY, DEFINITIONS, Cell, CellError, compile_body, missing_names, single_class
from .tracker import tracker


def cell_text(cell: Cell) -> str:
    """The whole cell as registered for tracebacks (magic line included)."""
    return "".join(linecache.cache[cell.filename][2])


def define_functions(cell: Cell, namespace: dict, options: dict) -> list[str]:
    """Run a definitions cell in the notebook, then bind each function as a remote function."""
    if cell.shape != DEFINITIONS:
        raise CellError("expected only imports and function definitions")
    exec(compile(cell.tree, cell.filename, "exec"), namespace)
    text = cell_text(cell)
    for name in cell.functions:
        function = namespace.get(name)
        if callable(function) and hasattr(function, "__code__"):
            namespace[name] = session.RemoteFunction(function, options, namespace, cell.filename, text)
    return cell.functions


def first_read_line(cell: Cell, name: str) -> int:
    lines = [n.lineno for n in ast.walk(cell.tree) if isinstance(n, ast.Name) and n.id == name]
    return min(lines) if lines else 1


def body_arguments(cell: Cell, namespace: dict) -> tuple[list[str], list[Any]]:
    """The notebook variables a body cell reads, and their values; only those are sent."""
    missing = missing_names(cell.free, namespace)
    if missing:
        name = missing[0]
        raise CellError(
            f"name {name!r} (line {first_read_line(cell, name)} of the cell) is not defined in the notebook"
        )
    params = [name for name in cell.free if name in namespace]
    return params, [namespace[name] for name in params]


def submit_body(cell: Cell, namespace: dict, options: dict, label: str, number: int | None):
    """Submit a body cell as one task; returns (ref, record)."""
    if cell.shape != BODY:
        raise CellError("expected a body cell")
    params, args = body_arguments(cell, namespace)
    function = compile_body(cell, params)
    try:
        ref = session.submit_body(function, args, options, label, number, cell.filename, cell_text(cell))
    except Exception:
        culprit = unpicklable(params, args)
        if culprit:
            raise CellError(culprit) from None
        raise
    return ref, tracker.futures[-1]


def unpicklable(names: list[str], values: list[Any]) -> str | None:
    """Name the first variable that cannot be sent to a worker, or None."""
    import ray

    for name, value in zip(names, values):
        if isinstance(value, ray.ObjectRef):
            continue
        try:
            ray.cloudpickle.dumps(value)
        except Exception as err:
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            return f"variable {name!r} cannot be sent to a worker: {reason}"
    return None


def define_actor(cell: Cell, namespace: dict, options: dict) -> str:
    """Run an actor cell in the notebook and bind its one class as a Ray actor class."""
    class_name = single_class(cell)
    exec(compile(cell.tree, cell.filename, "exec"), namespace)
    namespace[class_name] = session.ActorClass(namespace[class_name], options, cell.filename, cell_text(cell))
    return class_name
