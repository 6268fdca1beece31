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
    """One tmux session at 80x24 running a command."""

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        self.name = f"opsconsole-e2e-{uuid.uuid4().hex[:8]}"
        # a private server per terminal: no interference from (or with) anyone's tmux
        self.socket = Path(tempfile.gettempdir()) / f"{self.name}.sock"
        self.tmux = [require_tool("tmux"), "-S", str(self.socket)]
        exports = " ".join(f"{key}={shlex.quote(value)}" for key, value in env.items())
        line = f"exec env {exports} {shlex.join(command)}"
        subprocess.run(
            [*self.tmux, "new-session", "-d", "-s", self.name, "-x", "80", "-y", "24", line],
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
