"""Terminal IPython in a real terminal (tmux): the magics and the panel's plain-text form.

The venv's `ipython` runs in a pane of a private tmux server (its own socket, so
no other tmux is touched). The test types as a person would, waiting for each
prompt, and reads the screen. At the end ipython exits by `exit`; anything of
ours still running (by environment marker) is ended, then the tmux server.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

import pytest

TMUX = shutil.which("tmux")
if TMUX is None:
    pytest.skip("terminal test: tmux is missing (apt-get install tmux)", allow_module_level=True)

from frontends import end_marked, marked_env, new_marker, wait_until  # noqa: E402

IPYTHON = Path(sys.executable).with_name("ipython")
WAIT = 240  # seconds: a local Ray under the load of parallel test runs can take a minute
PANEL = re.compile(
    rf"^Ray {re.escape(version('ray'))} at 127\.0\.0\.1:\d+: 1/1 nodes alive, 1 CPUs, 0 GPUs\s*\n"
    r"futures: 0 pending, 1 finished, 0 failed, 0 cancelled\s*\n"
    r"actors: 0 alive, 0 restarting, 0 dead\s*$",
    re.M,
)


class Terminal:
    """One tmux pane running a command, on a private tmux server."""

    def __init__(self, workdir: Path, env: dict) -> None:
        self.socket = str(workdir / "tmux.sock")
        self.env = env
        self.pid: int | None = None

    def tmux(self, *args: str) -> str:
        result = subprocess.run([TMUX, "-S", self.socket, *args], env=self.env, capture_output=True, text=True,
                                timeout=30)
        if result.returncode != 0 and args[0] not in ("kill-server", "has-session"):
            raise AssertionError(f"tmux {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    def start(self, *command: str) -> None:
        # Wide enough that the panel's lines do not wrap; no shell between tmux and the command.
        self.tmux("new-session", "-d", "-x", "220", "-y", "50", *command)
        self.pid = int(self.tmux("display-message", "-p", "#{pane_pid}").strip())

    def type_line(self, text: str) -> None:
        if text:
            self.tmux("send-keys", "-l", text)  # literal: no key names looked up in the text
        self.tmux("send-keys", "Enter")

    def screen(self) -> str:
        """Everything the pane showed, wrapped lines joined."""
        return self.tmux("capture-pane", "-p", "-J", "-S", "-2000")

    def wait_for(self, pattern: re.Pattern | str, what: str, timeout: float = WAIT) -> re.Match:
        regex = re.compile(pattern, re.M) if isinstance(pattern, str) else pattern
        try:
            return wait_until(lambda: regex.search(self.screen()), timeout, what)
        except AssertionError as err:
            raise AssertionError(f"{err}; the screen:\n{self.screen()}") from None

    def wait_prompt(self, number: int) -> None:
        self.wait_for(rf"^In \[{number}\]:(\s|$)", f"the prompt In [{number}]")

    def alive(self) -> bool:
        return self.pid is not None and Path(f"/proc/{self.pid}").exists()

    def stop(self) -> None:
        self.tmux("kill-server")


@pytest.fixture(scope="module")
def terminal():
    workdir = Path(tempfile.mkdtemp(prefix="rmt", dir="/tmp"))  # short: tmux sockets have a path limit
    marker = new_marker()
    env = marked_env(marker, IPYTHONDIR=str(workdir / "ipython"), TERM="xterm-256color")
    term = Terminal(workdir, env)
    try:
        yield term
    finally:
        if term.alive():
            term.type_line("exit")
            try:
                wait_until(lambda: not term.alive(), 60, "ipython to exit")
            except AssertionError:
                pass
        end_marked(marker)  # the fallback: only processes that carry this test's marker
        term.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.mark.timeout(600)
def test_terminal_ipython_shows_plain_text_panel(terminal: Terminal) -> None:
    terminal.start(str(IPYTHON), "--no-banner", "--colors=nocolor", "--HistoryManager.hist_file=:memory:")
    terminal.wait_prompt(1)
    terminal.type_line("%load_ext ray_magic")
    terminal.wait_prompt(2)
    # No background refresh during the test: %ray_panel must show the state as of
    # when it is asked for, not as of the refresher's last tick.
    terminal.type_line("%config RayMagics.refresh_interval = 3600")
    terminal.wait_prompt(3)
    terminal.type_line("%ray_init --num-cpus 1 --no-panel --quiet")
    terminal.wait_prompt(4)
    assert "Error" not in terminal.screen().split("In [3]:", 1)[1], terminal.screen()

    # A cell magic at the terminal: the first line opens the cell; the cell runs when
    # it ends in a blank line, i.e. on the second Enter after its last line.
    terminal.type_line("%%ray_task --block")
    terminal.wait_for(r"^\s+\.\.\.:\s*$", "the continuation prompt")
    terminal.type_line("x = 6 * 7")
    terminal.type_line("x")
    terminal.type_line("")
    terminal.type_line("")
    terminal.wait_for(r"^Out\[4\]: 42\s*$", "the task's value as the cell's output")
    terminal.wait_prompt(5)

    terminal.type_line("%ray_panel")
    terminal.wait_prompt(6)
    shown = terminal.screen().split("In [5]: %ray_panel", 1)[1].split("In [6]:", 1)[0]
    assert PANEL.search(shown), f"the plain-text panel was not on the screen; it showed:\n{shown}"
    assert "VBox(" not in shown and "<" not in shown, shown  # not a widget repr, not HTML

    terminal.type_line("exit")
    wait_until(lambda: not terminal.alive(), 60, "ipython to exit after `exit`")
