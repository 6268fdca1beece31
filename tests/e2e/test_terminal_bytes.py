"""Issue 10, defects 11 and 13, end to end: the real `opsconsole demo` in a pseudo-terminal
(80x24, TERM=xterm-256color), the bytes it writes read from the pty.

- Only what changed is sent: a cursor move in the step list, which used to rewrite the
  whole screen body (about 9.4 KB), and one read-only step run (about 39 KB).
- NO_COLOR=1: not one 256-colour or truecolor SGR sequence (38;5 / 48;5 / 38;2 / 48;2).

The bounds are bytes, not time; the pty is read until the screen has been quiet a while.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.e2e


def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "terminal_bytes", REPO / "benchmarks" / "terminal_bytes.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("terminal_bytes", module)
    spec.loader.exec_module(module)
    return module


SGR = re.compile(r"\x1b\[([0-9;:]*)m")
#: attributes that show on a blank cell (underline, reverse, strike, double underline,
#: overline): with them, its foreground shows too
SPACE_VISIBLE = frozenset({"4", "7", "9", "21", "53"})


def visible_cells(capture: str) -> list[list[tuple[str, object]]]:
    """A ``tmux capture-pane -e`` screen as rows of (character, what it shows). A blank
    shows its background (and its foreground only under an underline, reverse video or a
    strike): the mirror lets blanks keep the pen the terminal has when they look the same."""
    rows: list[list[tuple[str, object]]] = []
    attributes: set[str] = set()
    fg = bg = ""
    for line in capture.split("\n"):
        row: list[tuple[str, object]] = []
        at = 0
        for match in [*SGR.finditer(line), None]:
            text = line[at : match.start() if match else len(line)]
            for char in text:
                if char == " ":
                    shown = attributes & SPACE_VISIBLE
                    row.append((char, (frozenset(shown), fg if shown else "", bg)))
                else:
                    row.append((char, (frozenset(attributes), fg, bg)))
            if match is None:
                break
            at = match.end()
            params = match.group(1).replace(":", ";").split(";") if match.group(1) else ["0"]
            index = 0
            while index < len(params):
                code = params[index] or "0"
                if code in {"38", "48"}:
                    width = 3 if params[index + 1 : index + 2] == ["5"] else 5
                    value = ";".join(params[index : index + width])
                    fg, bg = (value, bg) if code == "38" else (fg, value)
                    index += width
                    continue
                if code == "0":
                    attributes, fg, bg = set(), "", ""
                elif code == "39":
                    fg = ""
                elif code == "49":
                    bg = ""
                elif code in {"22", "23", "24", "25", "27", "28", "29", "55"}:
                    undo = {"22": {"1", "2"}, "23": {"3"}, "24": {"4", "21"}, "25": {"5"},
                            "27": {"7"}, "28": {"8"}, "29": {"9"}, "55": {"53"}}[code]
                    attributes -= undo
                elif 30 <= int(code) <= 37 or 90 <= int(code) <= 97:
                    fg = code
                elif 40 <= int(code) <= 47 or 100 <= int(code) <= 107:
                    bg = code
                else:
                    attributes.add(code)
                index += 1
        rows.append(row)
    return rows


def test_visible_cells_tells_what_shows_from_what_does_not() -> None:
    red_blank = visible_cells("\x1b[38;5;1;48;5;2m \x1b[0m")
    green_blank = visible_cells("\x1b[38;5;3;48;5;2m \x1b[0m")
    assert red_blank == green_blank  # a blank's foreground does not show
    assert visible_cells("\x1b[48;5;2m \x1b[0m") != visible_cells("\x1b[48;5;4m \x1b[0m")
    assert visible_cells("\x1b[7;38;5;1;48;5;2m ") != visible_cells("\x1b[7;38;5;3;48;5;2m ")
    assert visible_cells("\x1b[38;5;1mx") != visible_cells("\x1b[38;5;3mx")
    assert visible_cells("\x1b[1mx\x1b[22mx") == visible_cells("\x1b[1mx\x1b[0mx")


def test_a_cursor_move_and_a_step_run_send_only_what_changed(tmp_path: Path) -> None:
    tb = bench()
    home = tmp_path / "state"
    terminal = tb.start(home, None, False)
    try:
        tb.open_v2(terminal)
        terminal.settle(1.0)
        moves = [terminal.key(tb.DOWN, quiet=1.0) for _ in range(3)]
        # then down to the first http step (a read-only GET) and run it
        for _ in range(3):
            terminal.key(tb.DOWN, quiet=1.0)
        run = terminal.key(tb.ENTER, quiet=0.05)
        run += tb.wait_status(terminal, home, "ops-jobs-without-key")
        status = tb.step_status(home, "ops-jobs-without-key")
    finally:
        terminal.close()
        shutil.rmtree(home, ignore_errors=True)
    assert status == "passed"
    # before: 3.9 KB, 9.5 KB, 9.3 KB (every visible row of the list and the detail pane)
    assert all(0 < move <= 2048 for move in moves), moves
    # before: 39 KB
    assert 0 < run <= 8192, run


def test_no_color_sends_no_256_colour_or_truecolor(tmp_path: Path) -> None:
    tb = bench()
    home = tmp_path / "state"
    terminal = tb.start(home, None, True)
    try:
        tb.open_v2(terminal)
        terminal.key(tb.DOWN)
        mark = len(terminal.seen)
        terminal.key(tb.F1, quiet=0.05)
        terminal.wait_for(b"or F1 to close", since=mark)
        terminal.settle()
        terminal.key(tb.F1)
        terminal.key(tb.ENTER, quiet=1.0)  # run the selected command step
    finally:
        terminal.close()
        shutil.rmtree(home, ignore_errors=True)
    seen = bytes(terminal.seen)
    assert len(seen) > 2000, "the console drew next to nothing"
    found = tb.RICH_COLOUR.findall(seen)
    assert not found, f"{len(found)} 256-colour / truecolor sequences, e.g. {found[:3]}"


def test_what_the_terminal_shows_equals_a_full_redraw(tmp_path: Path) -> None:
    """The mirror sends only changed cells: after a walk of keys, the terminal (tmux) must
    show exactly what a full redraw (ctrl+l) shows, text and styles."""
    from tests.conftest import require_tool
    from tests.e2e.test_demo_terminal import Terminal, open_v2

    require_tool("tmux")
    env = {
        "OPSCONSOLE_HOME": str(tmp_path / "state"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "PYTHONPATH": str(REPO),
        "TERM": "xterm-256color",
    }
    terminal = Terminal([sys.executable, "-m", "opsconsole.cli", "demo"], env)
    try:
        open_v2(terminal)
        terminal.wait_for("V2 control plane — walkthrough")
        terminal.keys("Down", "Down", "Down", "Up", "F1")
        terminal.wait_for("or F1 to close")
        terminal.keys("F1", "Enter")  # close help, run the selected command step
        terminal.wait_for("✓1 ")
        terminal.keys("Down", "Down")

        def styled() -> str:
            return subprocess.run(
                [*terminal.tmux, "capture-pane", "-p", "-e", "-t", terminal.name],
                capture_output=True, text=True, check=True,
            ).stdout

        def steady() -> str:
            last = ""
            for _ in range(50):  # until two captures a moment apart agree
                now = styled()
                if now == last:
                    return now
                last = now
                time.sleep(0.3)
            return last

        shown = steady()
        terminal.keys("C-l")
        redrawn = steady()
        assert "walkthrough" in shown
        assert visible_cells(shown) == visible_cells(redrawn)
    finally:
        terminal.close()
