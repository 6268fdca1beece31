"""Bounded child processes, with real subprocesses: memory, long lines, process groups, hang-up.

Each test runs real commands through ``run_bounded`` and then looks at the
processes themselves in ``/proc``: "gone" means no live (non-zombie) process is
left in the command's process group. The command prints its own process group
first (``pgrp=N``) so the test knows where to look.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import select
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from opsconsole.process import (
    LINE_CONTINUES,
    ProcessResult,
    child_environment,
    run_bounded,
)
from tests.conftest import REPO

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")

#: the command's first line: its process group (field 5 of /proc/$$/stat)
PRINT_PGRP = 'read -r _ _ _ _ pg _ < /proc/$$/stat; echo "pgrp=$pg"; '


def live_members(pgid: int) -> list[int]:
    """Pids of the processes of group ``pgid`` that still run (zombies are dead)."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path("/proc", entry, "stat").read_text()
        except OSError:
            continue
        state, _ppid, pgrp = stat[stat.rfind(")") + 2 :].split()[:3]
        if int(pgrp) == pgid and state not in ("Z", "X"):
            members.append(int(entry))
    return members


def pgrp_of(lines: list[str]) -> int:
    found = [line for line in lines if line.startswith("pgrp=")]
    assert found, f"the command did not print its process group: {lines[:5]}"
    return int(found[0].removeprefix("pgrp="))


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Wait for an event that must happen (not a performance bound: the limit is generous)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting: {what}"
        time.sleep(0.05)


async def bash(
    command: str, *, timeout: float = 60, tail_bytes: int = 64 * 1024, grace: float = 2.0
) -> tuple[ProcessResult, list[str]]:
    lines: list[str] = []
    result = await run_bounded(
        ["/bin/bash", "-c", command],
        env=child_environment(),
        timeout=timeout,
        on_output=lines.append,
        tail_bytes=tail_bytes,
        grace=grace,
    )
    return result, lines


# -- memory and long lines -------------------------------------------------------------------

MEASURE_SCRIPT = textwrap.dedent(
    """
    import asyncio, json, sys
    from opsconsole.process import child_environment, run_bounded

    def status(field):
        for line in open("/proc/self/status"):
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024

    lines = 0
    def count(line):
        global lines
        lines += 1

    async def main():
        # warm up (imports, the event loop, the first subprocess), then reset the peak
        await run_bounded(["true"], env=child_environment(), timeout=60)
        try:
            with open("/proc/self/clear_refs", "w") as refs:
                refs.write("5")
        except OSError:
            pass
        before = status("VmHWM")
        result = await run_bounded(
            ["/bin/bash", "-c", sys.argv[1]], env=child_environment(), timeout=600,
            on_output=count,
        )
        print(json.dumps({
            "growth": status("VmHWM") - before, "bytes_total": result.bytes_total,
            "lines_total": result.lines_total, "delivered": lines,
            "exit_code": result.exit_code, "output_len": len(result.output),
        }))

    asyncio.run(main())
    """
)


def test_a_flood_of_output_costs_constant_memory(tmp_path: Path) -> None:
    # 100 MB of `yes` in 1,000,000 lines of 100 bytes; today's run_command keeps all of it.
    script = tmp_path / "measure.py"
    script.write_text(MEASURE_SCRIPT)
    volume = 100_000_000
    completed = subprocess.run(
        [sys.executable, str(script), f"yes {'y' * 99} | head -c {volume}"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr
    measured = json.loads(completed.stdout)
    assert measured["exit_code"] == 0
    assert measured["bytes_total"] == volume
    assert measured["lines_total"] == measured["delivered"] == volume // 100
    assert 64 * 1024 - 100 < measured["output_len"] <= 64 * 1024, "the tail, from a whole line"
    # the cap is the 64 KiB tail; allow the interpreter's own churn, far below the 100 MB read
    assert measured["growth"] < 16 * 1024 * 1024, f"peak RSS grew {measured['growth']} bytes"


async def test_a_100kb_line_without_newline_is_delivered_in_pieces_and_counted() -> None:
    # two-byte characters, so a piece cut in the middle of one would show U+FFFD
    pieces: list[str] = []
    result = await run_bounded(
        [sys.executable, "-c", "import sys; sys.stdout.buffer.write(('é' * 50_000).encode())"],
        env=child_environment(),
        timeout=60,
        on_output=pieces.append,
    )
    assert result.exit_code == 0
    assert result.bytes_total == 100_000
    assert result.lines_total == 1
    assert len(pieces) > 1
    assert all(piece.endswith(LINE_CONTINUES) for piece in pieces[:-1])
    assert not pieces[-1].endswith(LINE_CONTINUES)
    line = "".join(piece.removesuffix(LINE_CONTINUES) for piece in pieces)
    assert line == "é" * 50_000
    assert all(len(piece.removesuffix(LINE_CONTINUES)) <= 8 * 1024 for piece in pieces)
    assert result.truncated
    assert result.output == "é" * (64 * 1024 // 2)


async def test_the_tail_is_bounded_starts_at_a_line_and_counts_everything() -> None:
    result, lines = await bash("seq 1 100000", tail_bytes=1000)
    assert result.lines_total == len(lines) == 100_000
    assert lines[-1] == "100000"
    assert result.bytes_total == sum(len(str(n)) + 1 for n in range(1, 100_001))
    assert result.truncated
    assert len(result.output) <= 1000
    assert result.output.endswith("99999\n100000\n")
    first = result.output.splitlines()[0]
    assert int(first) + len(result.output.splitlines()) - 1 == 100_000, "starts at a whole line"


async def test_exit_status_signal_and_stdin_are_the_commands_own() -> None:
    result, lines = await bash("echo out; echo err >&2; exit 3")
    assert (result.exit_code, result.signal, result.stopped) == (3, None, "")
    assert lines == ["out", "err"]
    result, _ = await bash("kill -USR1 $$")
    assert (result.exit_code, result.signal) == (None, signal.SIGUSR1)
    result = await run_bounded(["cat"], env=child_environment(), timeout=60, stdin=b"a\nb")
    assert (result.output, result.lines_total) == ("a\nb", 2)
    with pytest.raises(FileNotFoundError):
        await run_bounded(["no-such-program-here"], env=child_environment(), timeout=60)


# -- the whole process group is stopped ------------------------------------------------------


async def test_timeout_stops_the_whole_group_even_processes_that_ignore_sigterm() -> None:
    result, lines = await bash(
        PRINT_PGRP + "trap '' TERM; sleep 300 & sleep 301", timeout=2, grace=0.3
    )
    pgid = pgrp_of(lines)
    assert result.timed_out
    assert result.exit_code is None and result.signal == signal.SIGKILL
    assert result.stopped == (
        "still running after 2s: stopped the process group (SIGTERM, then SIGKILL after 0.3s)"
    )
    assert live_members(pgid) == []


async def test_cancellation_stops_the_group_reaps_it_and_reraises() -> None:
    lines: list[str] = []
    ready = asyncio.Event()

    def collect(line: str) -> None:
        lines.append(line)
        if line == "ready":
            ready.set()

    task = asyncio.create_task(
        run_bounded(
            ["/bin/bash", "-c", PRINT_PGRP + "trap '' TERM; sleep 300 & echo ready; sleep 301"],
            env=child_environment(),
            timeout=600,
            on_output=collect,
            grace=0.3,
        )
    )
    await asyncio.wait_for(ready.wait(), 60)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert live_members(pgrp_of(lines)) == [], "cancelled, yet processes of the group run"


async def test_a_background_process_holding_the_output_does_not_hang_the_reader() -> None:
    result, lines = await bash(PRINT_PGRP + "sleep 300 & echo started", timeout=600)
    assert not result.timed_out
    assert result.exit_code == 0
    assert lines[-1] == "started"
    assert result.stopped == (
        "the command exited but processes it started in the background kept its output open: "
        "stopped them (SIGTERM)"
    )
    assert live_members(pgrp_of(lines)) == []


async def test_a_command_that_leaves_a_quiet_background_process_leaves_no_orphan() -> None:
    result, lines = await bash(PRINT_PGRP + "sleep 300 >/dev/null 2>&1 & echo started", timeout=60)
    assert result.exit_code == 0
    assert "left processes running in the background: stopped them" in result.stopped
    assert live_members(pgrp_of(lines)) == []


async def test_a_failing_output_consumer_stops_the_command_and_is_raised() -> None:
    seen: list[str] = []

    def fragile(line: str) -> None:
        seen.append(line)
        if len(seen) == 3:
            raise RuntimeError("the screen went away")

    with pytest.raises(RuntimeError, match="the screen went away"):
        await run_bounded(
            ["/bin/bash", "-c", PRINT_PGRP + "yes"],
            env=child_environment(),
            timeout=600,
            on_output=fragile,
        )
    assert live_members(pgrp_of(seen)) == []


# -- opsconsole itself goes away -------------------------------------------------------------

PARENT_SCRIPT = textwrap.dedent(
    """
    import asyncio, sys, threading
    from opsconsole.process import child_environment, install_hangup_handlers, run_bounded

    mode, command, grace = sys.argv[1], sys.argv[2], float(sys.argv[3])
    if mode != "no-handlers":
        install_hangup_handlers()
    ready = threading.Event()

    def show(line):
        print(line, flush=True)
        if line == "ready":
            ready.set()

    def run():
        asyncio.run(run_bounded(
            ["/bin/bash", "-c", command], env=child_environment(), timeout=600, on_output=show,
            grace=grace,
        ))

    if mode == "exit-while-running":  # a step still runs in a thread when opsconsole exits
        threading.Thread(target=run, daemon=True).start()
        ready.wait(60)
        sys.stdin.readline()
        sys.exit(0)
    run()
    """
)
STUBBORN = PRINT_PGRP + "trap '' TERM; sleep 300 & echo ready; sleep 301"
#: a grace the lifeline guard would wait before SIGKILL: only the handlers can stop it sooner
LONG_GRACE = 300


def start_parent(tmp_path: Path, mode: str, grace: float) -> tuple[subprocess.Popen[bytes], int]:
    """A Python process running STUBBORN through run_bounded; returns it and the group."""
    script = tmp_path / "parent.py"
    script.write_text(PARENT_SCRIPT)
    parent = subprocess.Popen(
        [sys.executable, str(script), mode, STUBBORN, str(grace)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert parent.stdout is not None
    seen = b""
    deadline = time.monotonic() + 60
    while b"ready\n" not in seen:
        assert time.monotonic() < deadline, f"the parent never got ready: {seen!r}"
        readable, _, _ = select.select([parent.stdout], [], [], 1)
        if readable:
            chunk = os.read(parent.stdout.fileno(), 4096)
            assert chunk, f"the parent ended early: {seen!r}"
            seen += chunk
    pgid = pgrp_of(seen.decode().splitlines())
    assert live_members(pgid), "the command should be running now"
    return parent, pgid


def finish(parent: subprocess.Popen[bytes]) -> int:
    code = parent.wait(timeout=60)
    for pipe in (parent.stdin, parent.stdout):
        if pipe is not None:
            pipe.close()
    return code


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGTERM], ids=["SIGHUP", "SIGTERM"])
def test_a_hangup_stops_the_child_before_opsconsole_exits(
    tmp_path: Path, signum: signal.Signals
) -> None:
    parent, pgid = start_parent(tmp_path, "handlers", grace=LONG_GRACE)
    parent.send_signal(signum)
    assert finish(parent) == -signum, "opsconsole should still die of the signal"
    # checked at once: the lifeline guard alone would wait LONG_GRACE before SIGKILL
    assert live_members(pgid) == [], "opsconsole exited but its child still runs"


def test_exiting_while_a_step_runs_in_a_thread_stops_the_child(tmp_path: Path) -> None:
    parent, pgid = start_parent(tmp_path, "exit-while-running", grace=LONG_GRACE)
    assert parent.stdin is not None
    parent.stdin.write(b"exit\n")
    parent.stdin.flush()
    assert finish(parent) == 0
    assert live_members(pgid) == [], "opsconsole exited but its child still runs"


def test_a_sigkilled_opsconsole_still_takes_the_child_with_it(tmp_path: Path) -> None:
    parent, pgid = start_parent(tmp_path, "no-handlers", grace=0.3)
    parent.kill()
    finish(parent)
    wait_until(lambda: not live_members(pgid), "the orphaned group to be stopped")


# -- the environment -------------------------------------------------------------------------


def test_child_environment_is_the_allowlist_plus_what_the_step_passes() -> None:
    token = secrets.token_urlsafe(24)
    source = {
        "PATH": "/usr/bin:/bin",
        "HOME": "/home/op",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TERM": "xterm-256color",
        "OPSCONSOLE_SECRET_ANYTHING": token,
        "SSH_AUTH_SOCK": "/tmp/agent.sock",
        "DBUS_SESSION_BUS_ADDRESS": "unix:path=/run/user/1000/bus",
        "BASH_ENV": "/tmp/evil.sh",
        "AWS_SECRET_ACCESS_KEY": token,
    }
    env = child_environment({"STEP_VALUE": "given"}, source=source)
    assert env == {
        "PATH": "/usr/bin:/bin",
        "HOME": "/home/op",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TERM": "xterm-256color",
        "STEP_VALUE": "given",
    }
    passed = child_environment({"OPSCONSOLE_SECRET_ANYTHING": "declared"}, source=source)
    assert passed["OPSCONSOLE_SECRET_ANYTHING"] == "declared"


async def test_a_child_cannot_see_opsconsoles_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    token = secrets.token_urlsafe(24)
    given = secrets.token_urlsafe(24)
    monkeypatch.setenv("OPSCONSOLE_SECRET_ANYTHING", token)
    result = await run_bounded(["env"], env=child_environment({"STEP_TOKEN": given}), timeout=60)
    seen = dict(line.split("=", 1) for line in result.output.splitlines() if "=" in line)
    leaked = token in result.output or any(name.startswith("OPSCONSOLE_SECRET") for name in seen)
    assert not leaked, "the child saw an OPSCONSOLE_SECRET_* variable"
    assert seen.get("PATH") == os.environ["PATH"]
    assert seen.get("STEP_TOKEN") == given, "what the step passes with env: must arrive"
