"""Issue 6, item 9, end to end: a step's child never outlives the console, and no output
can break or bloat a command step.

The hang-up test runs the real console (``opsconsole run RUNBOOK``) in tmux on a
private socket, starts a command step with a key, and kills the tmux session,
as a dropped SSH link does: the console gets SIGHUP, and the step's ``sleep``
(which runs in its own process group, out of the terminal's reach) must be gone
too. The output tests run command steps through a RunSession: a 100 KB line
without a newline and ``yes`` until the timeout.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from opsconsole.config import Environment
from opsconsole.loader import load_runbook
from opsconsole.run import StepResult, StepStatus
from opsconsole.session import open_session
from tests.conftest import REPO, require_tool
from tests.e2e.test_demo_terminal import Terminal

#: generous: the console stops the group at once on SIGHUP; the lifeline guard alone
#: would take its grace (2 s) after the console is gone
GONE_WITHIN = 30.0


def processes_with_argv(argv: list[str]) -> list[int]:
    """Live (not zombie) processes whose command line is exactly ``argv``."""
    wanted = ("\0".join(argv) + "\0").encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path("/proc", entry, "cmdline").read_bytes()
            stat = Path("/proc", entry, "stat").read_text()
        except OSError:
            continue
        if cmdline == wanted and stat[stat.rfind(")") + 2] not in "ZX":
            found.append(int(entry))
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path("/proc", str(pid), "stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] not in "ZX"


def wait_until(condition: Callable[[], bool], what: str, timeout: float = GONE_WITHIN) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"waited {timeout:g}s for {what}"
        time.sleep(0.1)


@pytest.fixture
def terminals() -> Iterator[list[Terminal]]:
    opened: list[Terminal] = []
    yield opened
    for terminal in opened:
        terminal.close()


@pytest.mark.e2e
def test_a_hangup_takes_the_steps_child_with_the_console(
    terminals: list[Terminal], tmp_path: Path
) -> None:
    require_tool("tmux")
    # a sleep no one else runs: found by its exact command line
    duration = f"300.{secrets.randbelow(10**6):06d}"
    runbook = tmp_path / "hangup.md"
    runbook.write_text(
        "---\nid: hangup\ntitle: Hang-up\n---\n# Hang-up\n\n"
        f"```ops command\nid: sleeper\nrun: sleep {duration}\ntimeout: 10m\n"
        "mutating: false\n```\n"
    )
    config = tmp_path / "config.toml"
    config.write_text('default_environment = "test"\n[environments.test]\ndescription = "t"\n')
    env = {
        "OPSCONSOLE_HOME": str(tmp_path / "state"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "PYTHONPATH": str(REPO),
        "TERM": "xterm-256color",
    }
    command = [
        sys.executable, "-m", "opsconsole.cli", "--config", str(config), "run", str(runbook)
    ]
    terminal = Terminal(command, env)
    terminals.append(terminal)
    terminal.wait_for("Hang-up — walkthrough")
    terminal.keys("Enter")
    terminal.wait_for("RUNNING")
    argv = ["sleep", duration]
    wait_until(lambda: bool(processes_with_argv(argv)), "the step's sleep to start")
    (sleeper,) = processes_with_argv(argv)
    console = terminal.pid()
    assert alive(console)

    # the SSH link drops: the terminal goes away and the console gets SIGHUP
    subprocess.run([*terminal.tmux, "kill-session", "-t", terminal.name], check=True)
    wait_until(lambda: not alive(console), "the console to exit on SIGHUP")
    wait_until(lambda: not alive(sleeper), "the step's child to be stopped")
    assert processes_with_argv(argv) == []


# -- output no command can break ------------------------------------------------------------

LONG_LINE = 100 * 1024


async def run_one(tmp_path: Path, run: str, timeout: str) -> tuple[StepResult, Path]:
    path = tmp_path / "output.md"
    path.write_text(
        "---\nid: output\n---\n# Output\n\n"
        f"```ops command\nid: noisy\nrun: {run!r}\ntimeout: {timeout}\nmutating: false\n```\n"
    )
    runbook = load_runbook(path)
    home = tmp_path / "home"
    session = open_session(runbook, Environment(name="test"), home)
    await session.start()
    try:
        result = await session.execute("noisy")
    finally:
        await session.close()
    return result, home / "runs" / f"{session.run.id}.json"


async def test_a_long_line_without_newline_ends_at_the_timeout_with_a_bounded_tail(
    tmp_path: Path,
) -> None:
    run = f"head -c {LONG_LINE} /dev/zero | tr '\\0' a; sleep 300"
    result, saved = await run_one(tmp_path, run, "2s")
    assert result.status is StepStatus.FAILED
    assert "still running after 2s" in result.detail
    output = result.artifact("output")
    assert output.bytes_total == LONG_LINE
    assert output.truncated and 0 < len(output.text) <= 64 * 1024
    assert set(output.text) == {"a"}
    assert saved.stat().st_size < 1024 * 1024


async def test_yes_until_the_timeout_keeps_only_a_bounded_tail(tmp_path: Path) -> None:
    result, saved = await run_one(tmp_path, "yes", "1s")
    assert result.status is StepStatus.FAILED
    assert "still running after 1s" in result.detail
    output = result.artifact("output")
    assert output.truncated
    assert output.bytes_total > len(output.text)  # everything was counted, the tail kept
    assert abs(output.lines_total - output.bytes_total / 2) <= 1
    assert 0 < len(output.text) <= 64 * 1024 and set(output.text) <= {"y", "\n"}
    assert saved.stat().st_size < 1024 * 1024


@pytest.mark.parametrize(
    ("mutating", "status"),
    [(False, StepStatus.CANCELLED), (True, StepStatus.UNKNOWN)],
    ids=["read-only", "mutating"],
)
async def test_cancelling_a_command_step_stops_its_child_and_says_what_it_means(
    tmp_path: Path, mutating: bool, status: StepStatus
) -> None:
    duration = f"300.{secrets.randbelow(10**6):06d}"
    path = tmp_path / "cancel.md"
    path.write_text(
        "---\nid: cancel\n---\n# Cancel\n\n"
        f"```ops command\nid: sleeper\nrun: sleep {duration}\ntimeout: 10m\n"
        f"mutating: {str(mutating).lower()}\n```\n"
    )
    runbook = load_runbook(path)
    session = open_session(runbook, Environment(name="test"), tmp_path / "home")
    await session.start()
    task = asyncio.create_task(session.execute("sleeper"))
    argv = ["sleep", duration]
    deadline = time.monotonic() + GONE_WITHIN
    while not processes_with_argv(argv):
        assert time.monotonic() < deadline, "the step's sleep never started"
        await asyncio.sleep(0.05)
    (sleeper,) = processes_with_argv(argv)
    task.cancel()  # what escape in the console does
    with pytest.raises(asyncio.CancelledError):
        await task
    await session.close()
    # run_bounded stopped and reaped the group before the cancellation came back
    assert not alive(sleeper)
    result = session.result("sleeper")
    assert result.status is status, result.detail
    assert "cancelled by the operator" in result.detail
