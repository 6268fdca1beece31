"""Issue 10: what an operator in an incident notices (dialogs, keys, resume), key by key.

Real sandbox on loopback, real process groups for commands; every wait polls a state.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from pilot_support import settle, type_text
from test_long_steps import (
    jump_to,
    long_runbook,
    open_only_runbook,
    start_and_wait,
    until,
)
from textual.widgets import Input, Static

import screens.dialogs
from opsconsole.run import StepStatus
from opsconsole.sandbox import Sandbox
from screens import OpsConsoleApp
from screens.dialogs import PlanDialog, QuitDialog, TypedConfirmDialog, UnknownOutcomeDialog
from screens.walkthrough import WalkthroughScreen


def shown(screen: object) -> str:
    """Every text the dialog shows, its frame title included."""
    texts = [str(s.visual) for s in screen.query(Static).results(Static)]  # type: ignore[attr-defined]
    frame = screen.query_one("#dialog")  # type: ignore[attr-defined]
    return "\n".join([str(frame.border_title or ""), *texts])


@pytest.mark.parametrize(
    ("mutating", "title", "says", "never"),
    [
        (False, "Watch the queue", "comes back pending", "unknown"),
        (True, "Restart the worker", "outcome becomes unknown", "pending"),
    ],
)
async def test_quit_says_what_happens_to_the_running_step(
    sandbox: Sandbox, make_settings, tmp_path: Path,
    mutating: bool, title: str, says: str, never: str,
) -> None:
    runbook, pid_file = long_runbook(tmp_path, mutating=mutating)
    app = OpsConsoleApp(make_settings(sandbox.config_path, runbook_paths=[runbook]))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_only_runbook(pilot)
        await start_and_wait(pilot, screen, pid_file)
        await pilot.press("ctrl+q")
        await until(pilot, lambda: isinstance(app.screen, QuitDialog), "the quit question")
        consequence = str(app.screen.query_one("#quit-consequence", Static).visual)
        assert title in consequence and says in consequence, consequence
        assert never not in consequence, consequence
        await pilot.press("enter")  # Stay has focus
        await pilot.pause()
        assert app.screen is screen and screen.session.running is not None
        await pilot.press("escape")
        if mutating:
            await until(pilot, lambda: app.screen is not screen, "the stop question")
            await pilot.press("left", "enter")
        await until(pilot, lambda: screen.session.running is None, "the step to stop")
        await settle(pilot)


async def test_unknown_outcome_dialog_says_it_once(
    sandbox: Sandbox, make_settings, tmp_path: Path
) -> None:
    runbook, pid_file = long_runbook(tmp_path, mutating=True)
    app = OpsConsoleApp(make_settings(sandbox.config_path, runbook_paths=[runbook]))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_only_runbook(pilot)
        await start_and_wait(pilot, screen, pid_file)
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is not screen, "the stop question")
        await pilot.press("left", "enter")  # Stop it: the outcome is unknown
        await until(pilot, lambda: screen.session.running is None, "the step to stop")
        await settle(pilot)
        assert screen.session.result("restart").status is StepStatus.UNKNOWN
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, UnknownOutcomeDialog), "the dialog")
        text = shown(app.screen).lower()
        said = text.count("may or may not have acted") + text.count("may have gone out")
        assert said == 1, text
        assert text.count("check the system") == 1, text
        await pilot.press("enter")  # Cancel has focus
        await settle(pilot)
        assert screen.session.result("restart").status is StepStatus.UNKNOWN


async def test_protected_confirmation_says_it_once_and_its_hint_is_bracketed(
    sandbox: Sandbox, make_settings
) -> None:
    app = OpsConsoleApp(make_settings(sandbox.config_path, environment="sandbox-prod"))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        await jump_to(pilot, "create")
        await pilot.press("enter")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, TypedConfirmDialog)
        text = shown(dialog)
        assert text.lower().count("protected") == 1, text
        assert text.count("Create a job") == 1, text
        field = dialog.query_one("#environment", Input)
        # NO_COLOR drops the dim placeholder style: the hint must not read as typed text
        assert field.placeholder.startswith("[") and field.placeholder.endswith("]")
        assert field.placeholder != "sandbox-prod"
        await pilot.press("escape")
        await settle(pilot)


async def test_every_text_field_hint_is_bracketed(sandbox: Sandbox, make_settings) -> None:
    app = OpsConsoleApp(make_settings(sandbox.config_path))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        hints: dict[str, str] = {}
        await pilot.press("s")  # skip: its reason
        await settle(pilot)
        hints["skip"] = app.screen.query_one("#reason", Input).placeholder
        await pilot.press("escape")
        await settle(pilot)
        await jump_to(pilot, "ops_jobs in the database")  # a manual check: its note
        await pilot.press("enter")
        await until(pilot, lambda: app.screen is not screen, "the manual check")
        hints["note"] = app.screen.query_one("#note", Input).placeholder
        await pilot.press("escape")
        await settle(pilot)
        await jump_to(pilot, "startup contract holds")  # the gate: its reason
        await pilot.press("enter")
        await until(pilot, lambda: app.screen is not screen, "the gate")
        hints["gate"] = app.screen.query_one("#reason", Input).placeholder
        await pilot.press("escape")
        await settle(pilot)
    for name, hint in hints.items():
        assert hint.startswith("[") and hint.endswith("]"), (name, hint)


async def test_plain_shell_shows_where_it_runs_and_a_fast_enter_never_runs_it(
    sandbox: Sandbox, make_settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = OpsConsoleApp(make_settings(sandbox.config_path))
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, WalkthroughScreen)
        plain = next(
            step for step in screen.session.runbook.steps
            if step.kind == "command" and getattr(step.spec, "plain", False)
        )
        screen.select_step(plain.id)
        await pilot.pause()
        # as if the keys came at once: the guard window never closes in this test
        monkeypatch.setattr(screens.dialogs, "KEY_GUARD_S", 3600.0, raising=False)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, PlanDialog), "the plan")
        dialog = app.screen
        text = shown(dialog)
        assert f"this machine ({socket.gethostname()})" in text, text
        assert "sandbox" in text  # the environment
        assert dialog.focused is not None and dialog.focused.id == "cancel"
        await pilot.press("tab", "enter")  # Run, at once: ignored
        await pilot.pause()
        assert app.screen is dialog
        await pilot.press("shift+tab", "enter")  # Cancel, at once: ignored too
        await pilot.pause()
        assert app.screen is dialog
        monkeypatch.setattr(screens.dialogs, "KEY_GUARD_S", 0.0, raising=False)
        assert dialog.focused is not None and dialog.focused.id == "cancel", dialog.focused
        cancel = dialog.query_one("#cancel")
        # a button takes no second press while it still shows the first one
        await until(pilot, lambda: not cancel.has_class("-active"), "the button to settle")
        await pilot.press("enter")  # Cancel, after a moment: closes, nothing ran
        await until(pilot, lambda: app.screen is screen, "the dialog to close")
        await settle(pilot)
        assert app.screen is screen
        assert screen.session.result(plain.id).status is StepStatus.PENDING
        assert screen.session.result(plain.id).attempts == 0


async def test_a_typed_reason_in_dialogs_is_never_lost(sandbox: Sandbox, make_settings) -> None:
    """Defect 1, every dialog that takes text: keys typed as it opens land in its field."""
    app = OpsConsoleApp(make_settings(sandbox.config_path))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        await pilot.press("s")
        await until(pilot, lambda: app.screen is not screen, "the skip dialog")
        await type_text(pilot, "done by CI")
        assert app.screen.query_one("#reason", Input).value == "done by CI"
        await pilot.press("enter")
        await settle(pilot)
        first = screen.session.runbook.steps[0].id
        assert screen.session.result(first).note == "done by CI"


class SteppedClock:
    """The session's clock, moved by the test (the break-glass expiry without waiting)."""

    def __init__(self) -> None:
        import time

        self.offset = 0.0
        self._monotonic = time.monotonic

    def monotonic(self) -> float:
        return self._monotonic() + self.offset

    async def sleep(self, seconds: float) -> None:
        import asyncio

        await asyncio.sleep(seconds)


async def test_read_only_shows_mutating_steps_but_runs_them_only_after_break_glass(
    sandbox: Sandbox, make_settings, tmp_path: Path
) -> None:
    import json

    from screens.banner import EnvironmentBanner
    from screens.dialogs import BreakGlassDialog

    settings = make_settings(sandbox.config_path)
    # read_only = true in the config (a --read-only on the command line is never lifted)
    settings.config.environments["sandbox"].read_only = True
    app = OpsConsoleApp(settings)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot)
        assert "READ-ONLY" in str(app.screen.query_one(EnvironmentBanner).render())
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, WalkthroughScreen)
        banner = screen.query_one(EnvironmentBanner)
        assert "READ-ONLY" in str(banner.render())
        clock = SteppedClock()
        screen.session.clock = clock

        await pilot.press("enter")  # a step that only looks runs
        await settle(pilot)
        first = screen.session.runbook.steps[0]
        assert not first.mutating
        assert screen.session.result(first.id).status is StepStatus.PASSED

        await jump_to(pilot, "Create a job")
        assert screen.selected_step is not None and screen.selected_step.id == "create-job"
        await pilot.press("enter")  # refused, with a message that says what to do
        await settle(pilot)
        assert app.screen is screen
        assert screen.session.result("create-job").status is StepStatus.PENDING
        said = " ".join(str(note.message) for note in app._notifications)
        assert "read-only" in said and "break glass (b)" in said, said

        await pilot.press("b")
        await until(pilot, lambda: isinstance(app.screen, BreakGlassDialog), "break-glass")
        await pilot.press("enter")  # no reason: refused
        await pilot.pause()
        assert isinstance(app.screen, BreakGlassDialog)
        await type_text(pilot, "INC-42 rollback approved")
        await pilot.press("enter")
        await until(pilot, lambda: app.screen is screen, "the dialog to close")
        assert "BREAK-GLASS 30:00" in str(banner.render()) or "BREAK-GLASS 29:" in str(
            banner.render()
        )
        assert "READ-ONLY" not in str(banner.render())
        await pilot.press("enter")
        await settle(pilot)
        result = screen.session.result("create-job")
        assert result.status is StepStatus.PASSED, result.detail

        clock.offset = 30 * 60 + 1  # the break-glass runs out
        await until(pilot, lambda: "READ-ONLY" in str(banner.render()), "read-only again")
        assert "BREAK-GLASS" not in str(banner.render())
        await jump_to(pilot, "Trigger the runner")
        await pilot.press("enter")
        await settle(pilot)
        assert screen.session.result("trigger-runner").status is StepStatus.PENDING

    records = [
        json.loads(line)
        for line in (settings.home / "audit.jsonl").read_text().splitlines()
        if '"break_glass"' in line
    ]
    assert len(records) == 1
    record = records[0]
    assert record["reason"] == "INC-42 rollback approved"
    assert record["operator"] and record["expires"].endswith("Z") and record["minutes"] == 30


async def test_keys_operators_already_know(sandbox: Sandbox, make_settings) -> None:
    from opsconsole.config import bundled_runbooks_dir
    from screens.help import HelpScreen
    from screens.home import HomeScreen, RunbookTable
    from screens.step_list import StepList

    app = OpsConsoleApp(
        make_settings(sandbox.config_path, runbook_paths=[bundled_runbooks_dir()])
    )
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        home = app.screen
        assert isinstance(home, HomeScreen)
        table = home.query_one(RunbookTable)
        assert table.row_count >= 3
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        help_keys = "\n".join(f"{key} {text}" for key, text in app.screen.keys)
        for key in ("/", "q", "j", "k", "g", "G"):
            assert any(row[0].split()[0] == key or f" {key}" in f" {row[0]}"
                       for row in app.screen.keys), (key, help_keys)
        await pilot.press("question_mark")
        await pilot.pause()
        assert app.screen is home
        await pilot.press("j")
        assert table.cursor_row == 1
        await pilot.press("k")
        assert table.cursor_row == 0
        await pilot.press("G")
        assert table.cursor_row == table.row_count - 1
        await pilot.press("g")
        assert table.cursor_row == 0
        total = table.row_count
        await pilot.press("slash")
        await type_text(pilot, "discogs")
        await pilot.pause()
        assert 0 < table.row_count < total
        assert all("discogs" in str(table.get_row_at(i)).lower() for i in range(table.row_count))
        await pilot.press("q")  # in the filter field: typed, not quit
        await pilot.pause()
        assert app.return_code is None
        await pilot.press("backspace", "escape")
        await pilot.pause()
        assert table.row_count == total and app.focused is table

        # the walkthrough: j k g G, / filter, n N, q back
        await pilot.press("slash")
        await type_text(pilot, "V2 control")
        await pilot.press("enter")  # keeps the filter, back to the list
        await pilot.pause()
        assert table.row_count == 1 and app.focused is table
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, WalkthroughScreen)
        steps = screen.session.runbook.steps
        await pilot.press("j")
        assert screen.selected_step.id == steps[1].id
        await pilot.press("k")
        assert screen.selected_step.id == steps[0].id
        await pilot.press("G")
        assert screen.selected_step.id == steps[-1].id
        await pilot.press("g")
        assert screen.selected_step.id == steps[0].id

        for step_id in ("runner-allowlist", "create-job"):  # two that need attention
            screen.session.result(step_id).status = StepStatus.FAILED
        await pilot.press("n")
        assert screen.selected_step.id == "runner-allowlist"
        await pilot.press("n")
        assert screen.selected_step.id == "create-job"
        await pilot.press("n")  # around
        assert screen.selected_step.id == "runner-allowlist"
        await pilot.press("N")
        assert screen.selected_step.id == "create-job"

        steps_list = screen.query_one(StepList)
        await pilot.press("slash")
        await type_text(pilot, "runner")
        await pilot.pause()
        listed = [o.id for o in steps_list.options if not o.disabled]
        assert listed and all("runner" in screen.session.runbook.step(i).title.lower()
                              or "runner" in i for i in listed), listed
        assert len(listed) < len(steps)
        await pilot.press("escape")  # clears the filter; does not leave the walkthrough
        await pilot.pause()
        assert app.screen is screen
        assert len([o for o in steps_list.options if not o.disabled]) == len(steps)
        await pilot.press("q")
        await settle(pilot)
        assert app.screen is home
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0


async def test_resume_restores_the_sandbox_faults_that_were_on(
    sandbox: Sandbox, make_settings
) -> None:
    from screens.resume import ResumePrompt

    settings = make_settings(sandbox.config_path, sandbox=sandbox)
    app = OpsConsoleApp(settings)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, WalkthroughScreen)
        app.set_sandbox_fault("runner-down", True)
        await until(pilot, lambda: app.active_faults == ("runner-down",), "the fault")
        await pilot.press("enter")  # one step done: the run is worth resuming
        await settle(pilot)
        run_id = screen.session.run.id

    sandbox.set_fault("runner-down", False)  # a fresh demo starts without faults
    assert not sandbox.active_faults
    app = OpsConsoleApp(make_settings(sandbox.config_path, sandbox=sandbox))
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ResumePrompt), "the resume prompt")
        await pilot.press("enter")  # Resume
        await until(pilot, lambda: isinstance(app.screen, WalkthroughScreen), "the walk")
        await settle(pilot)
        assert app.screen.session.run.id == run_id
        assert sandbox.active_faults == frozenset({"runner-down"})
        assert app.active_faults == ("runner-down",)
        said = " ".join(str(note.message) for note in app._notifications)
        assert "runner-down" in said, said


async def test_resume_after_a_crash_names_the_running_step_and_lands_on_it(
    sandbox: Sandbox, make_settings, tmp_path: Path
) -> None:
    """Defect 5: kill -9 while a mutating step ran, with the saved cursor elsewhere."""
    from pilot_support import V2

    from opsconsole.loader import load_runbook
    from opsconsole.run import Run, RunStore, StepResult
    from screens.resume import ResumePrompt

    runbook = load_runbook(V2)
    first = runbook.steps[0].id
    RunStore(tmp_path / "state").save(Run(
        id="20250314T031209Z-dead02", runbook_path=str(V2), runbook_id=runbook.id,
        runbook_title=runbook.title, runbook_digest=runbook.digest, environment="sandbox",
        cursor=first,
        results={
            first: StepResult(step_id=first, status=StepStatus.PASSED),
            "create-job": StepResult(step_id="create-job", status=StepStatus.RUNNING),
        },
    ))
    app = OpsConsoleApp(make_settings(sandbox.config_path))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ResumePrompt), "the resume prompt")
        question = str(app.screen.query_one("#resume-question", Static).visual)
        assert "interrupted while running step" in question, question
        assert "Create a job (POST /api/v1/ops/jobs)" in question, question
        assert runbook.step(first).title not in question, question
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, WalkthroughScreen), "the walk")
        await settle(pilot)
        screen = app.screen
        assert screen.selected_step is not None and screen.selected_step.id == "create-job"
        assert screen.session.result("create-job").status is StepStatus.UNKNOWN
