"""Notebook cells as the generator sees them: Markdown in two languages, code once."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Md:
    es: str
    en: str


@dataclass
class Code:
    source: str
    tags: list[str] = field(default_factory=list)


def md(es: str, en: str) -> Md:
    return Md(es.strip("\n"), en.strip("\n"))


def code(source: str, *tags: str) -> Code:
    """A code cell; tags let tests find a cell's output without counting cells."""
    return Code(source.strip("\n"), list(tags))


# Both Ray Data notebooks start by turning off Ray Data's own progress lines.
QUIET_RAY_DATA = [
    md(
        """
Ray Data, en un cuaderno, escribe el progreso de cada ejecución como líneas de registro
bajo la celda. Las ejecuciones que lanzan las magias muestran su progreso en el panel, sin
esas líneas; para que las llamadas directas a Ray Data de este cuaderno tampoco llenen las
celdas, apagamos su progreso propio.
""",
        """
In a notebook, Ray Data writes the progress of every execution as log lines under the
cell. Executions started from the magics show their progress in the panel, without those
lines; so that this notebook's direct Ray Data calls do not fill the cells either, we turn
their own progress output off.
""",
    ),
    code(
        """
ctx = ray.data.DataContext.get_current()
ctx.enable_progress_bars = False
ctx.print_on_execution_start = False
"""
    ),
]
