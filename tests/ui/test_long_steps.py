"""Long-running steps in the console: escape stops them, floods of output stay cheap.

Real components throughout: commands are real process groups, the follow polls the
real sandbox on loopback. Nothing here measures time: every wait polls for a state.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from pathlib import Path

from pilot_support import settle, type_text
from textual.widgets import RichLog, Static

from opsconsole.run import StepStatus
from opsconsole.sandbox import Sandbox
from screens import OpsConsoleApp
from screens.dialogs import CancelStepDialog, UnknownOutcomeDialog
from screens.home import HomeScreen
from screens.walkthrough import WalkthroughScreen

LONG_RUNBOOK = """\
---
id: long-steps
title: Long steps
---

# Long steps

```ops command
id: {step_id}
title: {title}
run: "echo $$ > {pid_file}; exec sleep 30"
mutating: {mutating}
timeout: 120s
```

```ops http
id: afterwards
title: Something to select afterwards
url: http://127.0.0.1:9/never-run
```
"""


def long_runbook(tmp_path: Path, *, mutating: bool) -> tuple[Path, Path]:
    pid_file = tmp_path / "pid"
    path = tmp_path / "long-steps.md"
    path.write_text(
        LONG_RUNBOOK.format(
            step_id="restart" if mutating else "watch",
            title="Restart the worker" if mutating else "Watch the queue",
            pid_file=pid_file,
            mutating="true" if mutating else "false",
        ),
        encoding="utf-8",
    )
    return path, pid_file


def detail_text(screen: WalkthroughScreen) -> str:
    return "\n".join(
        str(static.visual)
        for static in screen.query("StepDetail Static").results(Static)
        if static.display
    )


def log_text(screen: WalkthroughScreen) -> list[str]:
    log = screen.query_one("#walk-progress", RichLog)
    return [strip.text for strip in log.lines]


def group_alive(pgid: int) -> bool:
    """Whether any live (not zombie) process is in the group: read from /proc."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path("/proc", entry, "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            return True
    return False


async def until(pilot, condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Poll (never a fixed sleep) until ``condition`` holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.02)


async def open_only_runbook(pilot) -> WalkthroughScreen:
    await settle(pilot)
    assert isinstance(pilot.app.screen, HomeScreen)
    await pilot.press("enter")
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, WalkthroughScreen), screen
    return screen


async def start_and_wait(pilot, screen: WalkthroughScreen, pid_file: Path) -> int:
    """enter on the selected command; returns its process group once it is running."""
    pid_file.unlink(missing_ok=True)
    await pilot.press("enter")
    await until(
        pilot,
        lambda: screen.running_step is not None and pid_file.exists()
        and pid_file.read_text().strip() != "",
        "the command to start",
    )
    pgid = os.getpgid(int(pid_file.read_text()))
    assert group_alive(pgid)
    return pgid


async def jump_to(pilot, words: str) -> None:
    """Select a step through the command palette, once the palette has found it."""
    await pilot.press("ctrl+p")
    await pilot.pause()
    await type_text(pilot, words)

    def found() -> bool:
        lists = pilot.app.screen.query("CommandList")
        return bool(lists) and lists.first().option_count > 0

    await until(pilot, found, f"the palette to find {words!r}")
    await pilot.press("enter")
    await settle(pilot)


def audit_records(home: Path) -> list[dict[str, object]]:
    lines = (home / "audit.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


async def test_escape_cancels_a_read_only_command_and_it_runs_again(
    sandbox: Sandbox, make_settings, tmp_path: Path
) -> None:
    runbook, pid_file = long_runbook(tmp_path, mutating=False)
    app = OpsConsoleApp(make_settings(sandbox.config_path, runbook_paths=[runbook]))
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        screen = await open_only_runbook(pilot)
        assert screen.selected_step is not None and screen.selected_step.id == "watch"
        pgid = await start_and_wait(pilot, screen, pid_file)
        assert "RUNNING" in detail_text(screen)

        await pilot.press("escape")  # read-only: stopped at once, no question
        await until(pilot, lambda: screen.session.running is None, "the step to stop")
        await settle(pilot)
        assert app.screen is screen, "escape on a running step must not leave the walkthrough"
        result = screen.session.result("watch")
        assert result.status is StepStatus.CANCELLED, result.detail
        assert "nothing was changed" in result.detail
        assert not group_alive(pgid), "the command's process group outlived the cancel"
        assert screen.running_step is None
        assert "CANCELLED" in detail_text(screen)
        prompt = str(screen.query_one("#walk-steps").get_option("watch").prompt)
        assert prompt.startswith("⊘")
        assert any("⊘" in line and "nothing was changed" in line for line in log_text(screen))

        # still answering keys: move, help, back
        await pilot.press("down")
        await pilot.pause()
        assert screen.selected_step.id == "afterwards"
        await pilot.press("f1")
        await pilot.pause()
        assert type(app.screen).__name__ == "HelpScreen"
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is screen

        # and the cancelled step runs again
        await pilot.press("up")
        await pilot.pause()
        pgid = await start_and_wait(pilot, screen, pid_file)
        assert screen.session.result("watch").attempts == 2
        await pilot.press("escape")
        await until(pilot, lambda: screen.session.running is None, "the rerun to stop")
        await settle(pilot)
        assert screen.session.result("watch").status is StepStatus.CANCELLED
        assert not group_alive(pgid)
        assert [a.status for a in screen.session.result("watch").history] == [
            StepStatus.CANCELLED
        ]


async def test_escape_on_a_mutating_command_asks_first_and_stopping_makes_it_unknown(
    sandbox: Sandbox, make_settings, tmp_path: Path
) -> None:
    runbook, pid_file = long_runbook(tmp_path, mutating=True)
    settings = make_settings(sandbox.config_path, runbook_paths=[runbook])
    app = OpsConsoleApp(settings)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        screen = await open_only_runbook(pilot)
        pgid = await start_and_wait(pilot, screen, pid_file)

        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, CancelStepDialog), "the question")
        shown = " ".join(str(s.visual) for s in app.screen.query(Static).results(Static))
        assert "Restart the worker" in shown and "unknown" in shown
        await pilot.press("enter")  # "Keep running" has focus
        await pilot.pause()
        assert app.screen is screen
        assert screen.session.running == "restart"
        assert screen.running_step == "restart"
        assert group_alive(pgid), "Keep running stopped the command"

        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, CancelStepDialog), "the question")
        await pilot.press("left", "enter")  # "Stop it"
        await until(pilot, lambda: screen.session.running is None, "the step to stop")
        await settle(pilot)
        assert app.screen is screen
        result = screen.session.result("restart")
        assert result.status is StepStatus.UNKNOWN, result.detail
        assert "Check the system" in result.detail
        assert not group_alive(pgid)
        assert "UNKNOWN" in detail_text(screen)

    records = [r for r in audit_records(settings.home) if r.get("step") == "restart"]
    assert [r["event"] for r in records] == ["step.intent", "step.outcome"]
    assert records[1]["status"] == "unknown"


async def test_cancelling_a_follow_leaves_it_unknown_and_guards_the_rerun(
    make_settings, tmp_path: Path
) -> None:
    sandbox = Sandbox(job_seconds=60)  # the job outlives the test: the follow never ends
    try:
        sandbox.start()
        sandbox.install_keyring()
        settings = make_settings(sandbox.config_path)
        app = OpsConsoleApp(settings)
        async with app.run_test(size=(80, 24), notifications=True) as pilot:
            await settle(pilot)
            await pilot.press("enter")
            await settle(pilot)
            screen = app.screen
            assert isinstance(screen, WalkthroughScreen)
            await jump_to(pilot, "trigger the runner")
            assert screen.selected_step is not None
            assert screen.selected_step.id == "trigger-runner"

            await pilot.press("enter")
            # following: the trigger went out and a state came back
            await until(
                pilot,
                lambda: any("state: running" in line for line in log_text(screen)),
                "the follow to see the job running",
            )
            assert screen.running_step == "trigger-runner"
            await pilot.press("escape")
            await until(pilot, lambda: isinstance(app.screen, CancelStepDialog), "the question")
            await pilot.press("left", "enter")  # Stop it
            await until(pilot, lambda: screen.session.running is None, "the follow to stop")
            await settle(pilot)
            assert app.screen is screen
            result = screen.session.result("trigger-runner")
            assert result.status is StepStatus.UNKNOWN, result.detail
            shown = detail_text(screen)
            assert "UNKNOWN" in shown
            assert "Check the system before running it again" in shown
            # what the follow saw before the cancel is kept (checkpointed)
            assert "running" in shown

            await pilot.press("enter")  # a re-run is guarded
            await settle(pilot)
            assert isinstance(app.screen, UnknownOutcomeDialog)
            await pilot.press("enter")  # Cancel has focus: nothing runs
            await settle(pilot)
            assert app.screen is screen
            assert screen.session.result("trigger-runner").status is StepStatus.UNKNOWN
            assert screen.session.result("trigger-runner").attempts == 1
    finally:
        sandbox.stop()
    records = [r for r in audit_records(settings.home) if r.get("step") == "trigger-runner"]
    assert [r["event"] for r in records] == ["step.intent", "step.outcome"]
    assert records[1]["status"] == "unknown"


async def test_the_stop_question_goes_away_when_the_step_ends_by_itself(
    sandbox: Sandbox, make_settings, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    path = tmp_path / "waits.md"
    path.write_text(
        "---\nid: waits\ntitle: Waits\n---\n\n# Waits\n\n"
        "```ops command\nid: migrate\ntitle: Migrate the schema\n"
        f"run: \"while [ ! -e '{go}' ]; do sleep 0.05; done; echo migrated\"\n```\n",
        encoding="utf-8",
    )
    app = OpsConsoleApp(make_settings(sandbox.config_path, runbook_paths=[path]))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_only_runbook(pilot)
        await pilot.press("enter")
        await until(pilot, lambda: screen.running_step == "migrate", "the step to start")
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, CancelStepDialog), "the question")
        go.touch()  # the command finishes while the operator is still deciding
        await until(pilot, lambda: screen.session.running is None, "the step to finish")
        await settle(pilot)
        # a question about a step that is no longer running is gone, not left to answer
        assert app.screen is screen
        assert screen.session.result("migrate").status is StepStatus.PASSED
