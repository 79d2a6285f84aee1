"""Help as a user asks for it: `%%ray_task?` and friends, and `%config RayMagics`.

Runs the real `?` and `%config` in a real IPython shell and compares what they
print with the magics' own argparse parsers and traits, so an option added
without help, or help that no longer shows, fails here. Starts no Ray.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import re

import pytest

from ray_magic import data
from ray_magic.magics import RayMagics


def printed(shell, source: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        result = shell.run_cell(source)
    assert result.error_in_exec is None and result.error_before_exec is None, source
    return out.getvalue()


def flat(text: str) -> str:
    """Whitespace collapsed: argparse wraps help text to the terminal's width."""
    return " ".join(text.split())


def parser_of(name: str) -> argparse.ArgumentParser:
    return getattr(RayMagics, name).parser


def assert_every_option(shown: str, parser: argparse.ArgumentParser, asked: str) -> None:
    text = flat(shown)
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        names = action.option_strings or [action.metavar or action.dest]
        for name in names:
            assert re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text), f"{asked} does not show {name}"
        assert action.help, f"{names[0]} of {asked} has no help text"
        assert flat(action.help) in text, f"{asked} does not show the help of {names[0]}: {action.help!r}"


# Each magic as a user types it with `?`, and the parsers whose options it must show.
HELP_PAGES = {
    "%%ray_task?": [parser_of("ray_task")],
    "%%ray_actor?": [parser_of("ray_actor")],
    "%ray_data?": [data.preview_args.parser, data.transform_args.parser],
    "%%ray_data?": [data.preview_args.parser, data.transform_args.parser],
}


@pytest.mark.parametrize("asked", list(HELP_PAGES))
def test_help_shows_usage_with_every_option(shell, asked: str) -> None:
    shown = printed(shell, asked)
    for parser in HELP_PAGES[asked]:
        assert_every_option(shown, parser, asked)


@pytest.mark.parametrize(("asked", "usage"), [
    ("%%ray_task?", "%%ray_task ["),
    ("%%ray_actor?", "%%ray_actor ["),
    ("%ray_data?", "%ray_data ["),
    ("%ray_data?", "%%ray_data ["),
])
def test_usage_names_the_magic_as_typed(shell, asked: str, usage: str) -> None:
    """A cell magic's usage starts with %%, a line magic's with %: what the user types."""
    assert usage in printed(shell, asked)


def magics_with_parsers() -> list[str]:
    names = []
    for kind in ("line", "cell"):
        for name, method in RayMagics.magics[kind].items():
            if hasattr(getattr(RayMagics, method), "parser") and name not in names:
                names.append(name)
    return sorted(names)


@pytest.mark.parametrize("name", magics_with_parsers())
def test_every_magic_documents_its_options(shell, name: str) -> None:
    kind = "cell" if name in RayMagics.magics["cell"] and name not in RayMagics.magics["line"] else "line"
    asked = ("%%" if kind == "cell" else "%") + name + "?"
    shown = printed(shell, asked)
    assert "Docstring:" in shown, shown
    assert_every_option(shown, parser_of(RayMagics.magics[kind][name]), asked)


def test_every_magic_has_a_docstring(shell) -> None:
    for kind in ("line", "cell"):
        for name in RayMagics.magics[kind]:
            asked = ("%%" if kind == "cell" else "%") + name + "?"
            shown = printed(shell, asked)
            assert "<no docstring>" not in shown and "Docstring:" in shown, f"{asked} shows no help"


def test_config_lists_every_option_with_help(shell) -> None:
    shown = printed(shell, "%config RayMagics")
    text = flat(shown)
    traits = RayMagics.class_traits(config=True)
    for required in ("auto_init", "address", "refresh_interval", "show_panel"):
        assert required in traits, f"RayMagics.{required} is not a config option"
    for name, trait in traits.items():
        assert f"RayMagics.{name}=" in shown, f"%config RayMagics does not list {name}"
        assert trait.help, f"RayMagics.{name} has no help text"
        assert flat(trait.help) in text, f"%config RayMagics does not show the help of {name}"
