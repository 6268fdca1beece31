"""Questions with a text field take what the operator types from the first key on."""

from __future__ import annotations

from pathlib import Path

from pilot_support import settle, type_text
from test_long_steps import jump_to, until
from textual.widgets import Input

from opsconsole.evidence import render_evidence
from opsconsole.run import StepStatus
from opsconsole.sandbox import Sandbox
from screens import OpsConsoleApp
from screens.dialogs import ManualCheckDialog
from screens.walkthrough import WalkthroughScreen

NOTE = "looked at grafana"


async def test_a_manual_check_note_takes_the_keys_typed_as_the_dialog_opens(
    sandbox: Sandbox, make_settings, tmp_path: Path
) -> None:
    app = OpsConsoleApp(make_settings(sandbox.config_path))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, WalkthroughScreen)
        await jump_to(pilot, "ops_jobs in the database")
        assert screen.selected_step is not None and screen.selected_step.id == "happy-path-4"

        await pilot.press("enter")
        # type as soon as the dialog is there, without waiting for anything else
        await until(pilot, lambda: isinstance(app.screen, ManualCheckDialog), "the dialog")
        dialog = app.screen
        await type_text(pilot, NOTE)
        assert dialog.query_one("#note", Input).value == NOTE
        await pilot.press("enter")  # answers the default: Checked
        await settle(pilot)
        assert app.screen is screen

        result = screen.session.result("happy-path-4")
        assert result.status is StepStatus.PASSED, result.detail
        assert result.answer == "checked"
        assert result.note == NOTE
        assert not result.simulated
        assert f"Operator note: {NOTE}" in render_evidence(screen.session)
