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
