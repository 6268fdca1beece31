"""End to end: the real `opsconsole demo` in a real pseudo-terminal (tmux), driven by keys.

An operator opens the V2 runbook, runs steps, the process is killed mid-run
(as a dropped SSH session would), and the next start offers to resume at the
same step with the results intact.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from opsconsole.audit import verify
from opsconsole.run import RunStore, StepStatus
from tests.conftest import REPO, require_tool

pytestmark = pytest.mark.e2e


class Terminal:
    """One tmux session (80x24 unless told) running a command."""

    def __init__(
        self, command: list[str], env: dict[str, str], size: tuple[int, int] = (80, 24)
    ) -> None:
        self.name = f"opsconsole-e2e-{uuid.uuid4().hex[:8]}"
        # a private server per terminal: no interference from (or with) anyone's tmux
        self.socket = Path(tempfile.gettempdir()) / f"{self.name}.sock"
        self.tmux = [require_tool("tmux"), "-S", str(self.socket)]
        exports = " ".join(f"{key}={shlex.quote(value)}" for key, value in env.items())
        # COLUMNS / LINES from the test runner would override the pane's real size
        line = f"exec env -u COLUMNS -u LINES {exports} {shlex.join(command)}"
        subprocess.run(
            [*self.tmux, "new-session", "-d", "-s", self.name,
             "-x", str(size[0]), "-y", str(size[1]), line],
            check=True,
        )

    def screen(self) -> str:
        done = subprocess.run(
            [*self.tmux, "capture-pane", "-p", "-t", self.name], capture_output=True, text=True
        )
        return done.stdout

    def keys(self, *keys: str) -> None:
        for key in keys:
            subprocess.run([*self.tmux, "send-keys", "-t", self.name, key], check=True)
            time.sleep(0.15)

    def wait_for(self, text: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.2)
        raise AssertionError(f"{text!r} never appeared; the screen shows:\n{screen}")

    def pid(self) -> int:
        done = subprocess.run(
            [*self.tmux, "display-message", "-p", "-t", self.name, "#{pane_pid}"],
            capture_output=True,
            text=True,
            check=True,
        )
        return int(done.stdout.strip())

    def kill_hard(self) -> None:
        """SIGKILL the console and everything it started: no chance to save or clean up."""
        pid = self.pid()
        os.killpg(os.getpgid(pid), signal.SIGKILL)

    def close(self) -> None:
        subprocess.run([*self.tmux, "kill-server"], capture_output=True)
        self.socket.unlink(missing_ok=True)


@pytest.fixture
def terminals() -> Iterator[list[Terminal]]:
    opened: list[Terminal] = []
    yield opened
    for terminal in opened:
        terminal.close()


def open_v2(terminal: Terminal) -> None:
    terminal.wait_for("V2 control plane")
    for _ in range(10):  # the list is sorted by title; walk down to the V2 runbook
        if "runbooks/v2-control-plane.md" in terminal.screen():
            break
        terminal.keys("Down")
    terminal.wait_for("runbooks/v2-control-plane.md")
    terminal.keys("Enter")


def test_walk_kill_and_resume_in_a_real_terminal(terminals: list[Terminal], tmp_path: Path) -> None:
    require_tool("tmux")
    home = tmp_path / "state"
    env = {
        "OPSCONSOLE_HOME": str(home),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "PYTHONPATH": str(REPO),
        "TERM": "xterm-256color",
    }
    command = [sys.executable, "-m", "opsconsole.cli", "demo"]

    first = Terminal(command, env)
    terminals.append(first)
    open_v2(first)
    first.wait_for("V2 control plane — walkthrough")
    first.keys("Enter")
    first.wait_for("✓1 ")
    first.keys("Enter")
    screen = first.wait_for("✓2 ")
    assert "Traceback" not in screen
    first.kill_hard()

    runs = RunStore(home / "sandbox").unfinished("v2-control-plane", "sandbox")
    assert len(runs) == 1
    run = runs[0]
    assert run.results["cp-missing-database-url"].status is StepStatus.PASSED
    assert run.results["cp-sqlite-database-url"].status is StepStatus.PASSED
    assert run.cursor == "cp-prod-missing-ops-key"

    second = Terminal(command, env)
    terminals.append(second)
    open_v2(second)
    prompt = second.wait_for("Resume")
    assert run.id in prompt
    second.keys("Enter")  # the default answer is Resume
    screen = second.wait_for("V2 control plane — walkthrough")
    screen = second.wait_for("✓2 ")
    assert run.id in screen
    second.keys("Enter")  # the walk goes on at the step where it stopped
    second.wait_for("✓3 ")
    resumed = RunStore(home / "sandbox").load(run.id)
    assert resumed.results["cp-prod-missing-ops-key"].status is StepStatus.PASSED
    assert verify(home / "sandbox" / "audit.jsonl").ok


def test_the_gate_is_decided_with_keys_only_at_60x20(
    terminals: list[Terminal], tmp_path: Path
) -> None:
    """Issue 10: at 60x20 the gate's buttons are reached with tab and pressed with enter."""
    require_tool("tmux")
    home = tmp_path / "state"
    env = {
        "OPSCONSOLE_HOME": str(home),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "PYTHONPATH": str(REPO),
        "TERM": "xterm-256color",
    }
    small = Terminal([sys.executable, "-m", "opsconsole.cli", "demo"], env, size=(60, 20))
    terminals.append(small)
    small.wait_for("V2 control plane")  # at 60x20 Home gives the whole width to titles
    small.keys("/", "V", "2", "Enter", "Enter")  # filter the runbooks, open the one left
    small.wait_for("V2 control plane — walkthrough")
    small.keys("Enter")  # one step, so the run has something in it
    small.wait_for("✓1 ")
    small.keys("d")  # the next gate: its phase is not done, so Cancel has focus
    small.wait_for("Go is blocked")
    time.sleep(0.5)  # past the dialog's first-moment key guard
    small.keys("BTab")  # Cancel -> No-go (Go is disabled)
    small.keys("Enter")
    screen = small.wait_for("Run stopped")
    assert "Traceback" not in screen
    runs = RunStore(home / "sandbox").runs()
    assert [run.status.value for run in runs] == ["aborted"]  # decided no-go, by keys
