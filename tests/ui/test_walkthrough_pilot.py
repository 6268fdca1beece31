"""Keyboard flows against the real sandbox: what an operator does, key by key."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from pilot_support import V2, settle, type_text
from textual.widgets import Static

from opsconsole.run import RunStatus, RunStore, StepStatus
from opsconsole.sandbox import Sandbox
from screens import OpsConsoleApp
from screens.dialogs import (
    ManualCheckDialog,
    QuitDialog,
    SkipReasonDialog,
    TypedConfirmDialog,
)
from screens.gate import GateDialog
from screens.home import HomeScreen
from screens.step_list import StepList
from screens.walkthrough import WalkthroughScreen


def text_of(widget: Static) -> str:
    return str(widget.visual)


def detail_text(screen: WalkthroughScreen) -> str:
    return "\n".join(
        text_of(static) for static in screen.query("StepDetail Static").results(Static)
        if static.display
    )


def notifications(app: OpsConsoleApp) -> list[str]:
    return [f"{note.title}: {note.message}" for note in app._notifications]


async def open_v2(pilot) -> WalkthroughScreen:
    app = pilot.app
    await settle(pilot)
    assert isinstance(app.screen, HomeScreen)
    await pilot.press("enter")
    await settle(pilot)
    screen = app.screen
    assert isinstance(screen, WalkthroughScreen), screen
    return screen


async def jump_to(pilot, step_title: str) -> None:
    """Select a step through the command palette (by a fragment of its title)."""
    await pilot.press("ctrl+p")
    await pilot.pause()
    await type_text(pilot, step_title)
    await pilot.pause(0.3)
    await pilot.press("enter")
    await settle(pilot)


async def test_walk_v2_to_the_end_with_keys_only(sandbox: Sandbox, make_settings, tmp_path: Path):
    app = OpsConsoleApp(make_settings(sandbox.config_path))
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        screen = await open_v2(pilot)
        session = screen.session
        skipped: list[str] = []
        for _ in range(100):
            if session.finished:
                break
            step = screen.selected_step
            assert step is not None
            # the cursor always waits on the next unfinished step: enter, enter, enter
            assert step.id == session.next_step_id()
            if step.kind == "command" and step.spec.plain:
                await pilot.press("s")
                await settle(pilot)
                assert isinstance(app.screen, SkipReasonDialog)
                if not skipped:
                    await pilot.press("enter")  # an empty reason is refused, the dialog stays
                    await pilot.pause()
                    assert isinstance(app.screen, SkipReasonDialog)
                    error = app.screen.query_one("#dialog-error", Static)
                    assert "needs a reason" in text_of(error)
                await type_text(pilot, "in CI")
                await pilot.press("enter")
                skipped.append(step.id)
            elif step.kind == "gate":
                await pilot.press("enter")
                await settle(pilot)
                assert isinstance(app.screen, GateDialog)
                await pilot.press("shift+tab")  # from Go to the reason
                await type_text(pilot, "ok")
                await pilot.press("enter")
            elif step.kind == "manual":
                await pilot.press("enter")
                await settle(pilot)
                assert isinstance(app.screen, ManualCheckDialog)
                await pilot.press("enter")  # the note has focus; enter answers "Checked"
            else:
                await pilot.press("enter")
            await settle(pilot)
            assert app.screen is screen, f"unexpected {app.screen} after {step.id}"
            assert session.result(step.id).status in {StepStatus.PASSED, StepStatus.SKIPPED}, (
                step.id, session.result(step.id).detail,
            )
        assert session.finished
        state = screen.query_one("#walk-run-state", Static)
        assert state.display and "Run completed" in text_of(state)

        await pilot.press("e")
        await settle(pilot)
        exported = list((tmp_path / "state" / "evidence").glob("evidence-*.md"))
        assert len(exported) == 1
        assert any("Evidence exported" in note for note in notifications(app))

    saved = RunStore(tmp_path / "state").load(session.run.id)
    assert saved.status is RunStatus.COMPLETED
    plain = [s.id for s in session.runbook.steps if s.kind == "command" and s.spec.plain]
    assert skipped == plain and len(plain) == 3
    for step in session.runbook.steps:
        result = saved.results[step.id]
        if step.id in plain:
            assert result.status is StepStatus.SKIPPED
            assert result.note == "in CI"
        else:
            assert result.status is StepStatus.PASSED, (step.id, result.detail)
    assert saved.results["startup-gate"].note == "ok"
    assert saved.results["release-gate"].detail == "GO: ok"
    evidence = exported[0].read_text(encoding="utf-8")
    assert "V2 control plane" in evidence
    for value in sandbox.secret_values.values():
        assert value not in evidence


async def test_injected_runner_fault_fails_the_trigger_with_its_reason(
    sandbox: Sandbox, make_settings
):
    app = OpsConsoleApp(make_settings(sandbox.config_path, sandbox=sandbox))
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        screen = await open_v2(pilot)
        await pilot.press("ctrl+p")
        await type_text(pilot, "inject rejects")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await settle(pilot)
        assert "runner-rejects-token" in sandbox.active_faults

        await jump_to(pilot, "trigger")
        assert screen.selected_step is not None
        assert screen.selected_step.id == "trigger-runner"
        await pilot.press("enter")
        await settle(pilot)

        result = screen.session.result("trigger-runner")
        assert result.status is StepStatus.FAILED
        # still selected after failing, with the reason on screen
        assert screen.selected_step.id == "trigger-runner"
        shown = detail_text(screen)
        assert "FAILED" in shown
        assert "Runner rejected the request (401 Unauthorized)" in shown
        steps = screen.query_one(StepList)
        prompt = str(steps.get_option("trigger-runner").prompt)
        assert prompt.startswith("✗")
        assert any("Step failed" in note for note in notifications(app))


BROKEN = """\
---
id: broken
title: "[b]Broken[/b] runbook [draft]"
---

# Broken

```ops http
url: http://127.0.0.1:1/health
expect:
  stauts: 200
```
"""


async def test_broken_runbook_shows_path_line_message_and_does_not_open(
    sandbox: Sandbox, make_settings, tmp_path: Path
):
    folder = tmp_path / "team-runbooks"
    folder.mkdir()
    (folder / "broken.md").write_text(BROKEN, encoding="utf-8")
    app = OpsConsoleApp(make_settings(sandbox.config_path, runbook_paths=[V2, folder]))
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot)
        home = app.screen
        assert isinstance(home, HomeScreen)
        await pilot.press("down")
        await pilot.pause()
        detail = text_of(home.query_one("#runbook-detail", Static))
        assert "team-runbooks/broken.md:11: ops http: unknown field 'expect.stauts'" in detail
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen is home
        assert any("Cannot open this runbook" in note for note in notifications(app))
        # outside text is never markup: the title shows literally, in the palette too
        await pilot.press("ctrl+p")
        await type_text(pilot, "open")
        await pilot.pause(0.3)
        palette = app.screen
        assert type(palette).__name__ == "CommandPalette"
        shown = " ".join(str(option.prompt) for option in palette.query_one("CommandList").options)
        assert "[b]Broken[/b] runbook [draft]" in shown
        assert "broken.md:11: ops http: unknown field" in shown
        await pilot.press("escape")
        await pilot.pause()
        # still alive and usable: back up and open the good one
        await pilot.press("up", "enter")
        await settle(pilot)
        assert isinstance(app.screen, WalkthroughScreen)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_closed_port_fails_with_a_readable_reason(
    sandbox: Sandbox, make_settings, tmp_path: Path
):
    port = closed_port()
    config = sandbox.config_path.read_text(encoding="utf-8")
    dead = tmp_path / "dead.toml"
    dead.write_text(
        config.replace(sandbox.variables["base_url"], f"http://127.0.0.1:{port}"),
        encoding="utf-8",
    )
    app = OpsConsoleApp(make_settings(dead))
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        screen = await open_v2(pilot)
        await jump_to(pilot, "without X-O")
        assert screen.selected_step.id == "ops-jobs-without-key"
        await pilot.press("enter")
        await settle(pilot)
        result = screen.session.result("ops-jobs-without-key")
        assert result.status is StepStatus.FAILED
        reason = f"connection refused: nothing is listening at 127.0.0.1:{port}"
        assert reason in detail_text(screen)
        assert any(reason in note for note in notifications(app))
        # the console is still there and answers keys
        await pilot.press("u")
        await pilot.pause()
        assert screen.selected_step.id == "ops-jobs-wrong-key"


async def test_slow_request_keeps_the_ui_responsive(sandbox: Sandbox, make_settings):
    sandbox.set_fault("slow-control-plane", True)
    app = OpsConsoleApp(make_settings(sandbox.config_path))
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        screen = await open_v2(pilot)
        await jump_to(pilot, "wrong X-Ops")
        assert screen.selected_step.id == "ops-jobs-wrong-key"
        await pilot.press("enter")
        await pilot.pause(0.2)
        assert screen.running_step == "ops-jobs-wrong-key"
        assert "RUNNING" in detail_text(screen)
        # the operator keeps working while the slow request runs
        await pilot.press("up")
        await pilot.pause()
        assert screen.selected_step.id == "ops-jobs-without-key"
        await pilot.press("f1")
        await pilot.pause()
        assert type(app.screen).__name__ == "HelpScreen"
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("r")  # a second step while one runs is refused, not queued
        await pilot.pause()
        assert any("still running" in note for note in notifications(app))
        # every key above was answered while the slow request was still in flight
        assert screen.session.running == "ops-jobs-wrong-key"
        await settle(pilot)
        assert screen.session.result("ops-jobs-wrong-key").status is StepStatus.PASSED
        assert screen.session.result("ops-jobs-without-key").status is StepStatus.PENDING


async def test_quit_asks_only_when_a_run_is_in_progress(sandbox: Sandbox, make_settings):
    app = OpsConsoleApp(make_settings(sandbox.config_path))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_v2(pilot)
        await pilot.press("ctrl+q")  # nothing run yet: nothing to lose
        await pilot.pause()
        # asserted while the app still runs: it is exiting, and never asked
        assert app.return_code == 0
        assert not any(isinstance(s, QuitDialog) for s in app.screen_stack)
        assert app.screen_stack, "the stack must still be there to look at"

    app = OpsConsoleApp(make_settings(sandbox.config_path))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_v2(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert screen.run_in_progress
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert isinstance(app.screen, QuitDialog)
        await pilot.press("enter")  # Stay is focused
        await pilot.pause()
        assert app.screen is screen
        assert app.return_code is None
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert isinstance(app.screen, QuitDialog)
        await pilot.press("left", "enter")  # Quit
        await pilot.pause()
    assert app.return_code == 0
    saved = RunStore(screen.session.store.root.parent).load(screen.session.run.id)
    assert saved.status is RunStatus.IN_PROGRESS
    assert saved.results["cp-missing-database-url"].status is StepStatus.PASSED


async def test_protected_environment_needs_the_typed_name(sandbox: Sandbox, make_settings):
    app = OpsConsoleApp(make_settings(sandbox.config_path, environment="sandbox-prod"))
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot)
        assert app.screen.has_class("-protected")
        screen = await open_v2(pilot)
        assert screen.has_class("-protected")
        # a read-only step runs without a question
        assert screen.selected_step.id == "cp-missing-database-url"
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen is screen
        assert screen.session.result("cp-missing-database-url").status is StepStatus.PASSED

        await jump_to(pilot, "create")
        assert screen.selected_step.id == "create-job"
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, TypedConfirmDialog)
        await type_text(pilot, "sandbox")  # not the protected one's name
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, TypedConfirmDialog)
        assert screen.session.result("create-job").status is StepStatus.PENDING
        await pilot.press("ctrl+u")
        await type_text(pilot, "sandbox-prod")
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen is screen
        result = screen.session.result("create-job")
        assert result.status is StepStatus.PASSED, result.detail

        # escape on the confirmation leaves the step alone
        await jump_to(pilot, "trigger")
        assert screen.selected_step.id == "trigger-runner"
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, TypedConfirmDialog)
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is screen
        assert screen.session.result("trigger-runner").status is StepStatus.PENDING


async def test_interrupted_mutating_step_is_unknown_and_reruns_only_when_asked(
    sandbox: Sandbox, make_settings, tmp_path: Path
):
    from opsconsole.loader import load_runbook
    from opsconsole.run import Run, StepResult

    runbook = load_runbook(V2)
    interrupted = Run(
        id="20250314T031209Z-dead01", runbook_path=str(V2), runbook_id=runbook.id,
        runbook_title=runbook.title, runbook_digest=runbook.digest, environment="sandbox",
        cursor="create-job",
        results={
            "ops-jobs-without-key": StepResult(step_id="ops-jobs-without-key",
                                               status=StepStatus.PASSED),
            # the console died while this POST was in flight
            "create-job": StepResult(step_id="create-job", status=StepStatus.RUNNING),
        },
    )
    RunStore(tmp_path / "state").save(interrupted)
    app = OpsConsoleApp(make_settings(sandbox.config_path))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert type(app.screen).__name__ == "ResumePrompt"
        await pilot.press("enter")  # Resume
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, WalkthroughScreen)
        assert screen.selected_step.id == "create-job"
        assert "UNKNOWN" in detail_text(screen)
        await pilot.press("enter")
        await settle(pilot)
        assert type(app.screen).__name__ == "UnknownOutcomeDialog"
        await pilot.press("enter")  # Cancel is focused: nothing runs
        await settle(pilot)
        assert screen.session.result("create-job").status is StepStatus.UNKNOWN
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("left", "enter")  # Re-run anyway
        await settle(pilot)
        assert app.screen is screen
        assert screen.session.result("create-job").status is StepStatus.PASSED


async def test_unexpected_error_shows_a_dialog_and_keeps_the_run(
    sandbox: Sandbox, make_settings, monkeypatch: pytest.MonkeyPatch
):
    from opsconsole.session import RunSession

    async def broken_execute(self, step_id, *args, **kwargs):
        raise RuntimeError(f"executor exploded on {step_id}")

    app = OpsConsoleApp(make_settings(sandbox.config_path))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_v2(pilot)
        monkeypatch.setattr(RunSession, "execute", broken_execute)
        await pilot.press("enter")
        await settle(pilot)
        assert type(app.screen).__name__ == "ErrorDialog"
        shown = " ".join(str(s.visual) for s in app.screen.query(Static).results(Static))
        assert "RuntimeError: executor exploded on cp-missing-database-url" in shown
        assert screen.session.run.id in shown
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen is screen
        assert screen.running_step is None
        saved = RunStore(screen.session.store.root.parent).load(screen.session.run.id)
        assert saved.status is RunStatus.IN_PROGRESS
