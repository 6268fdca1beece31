"""A plain runbook walked with keys at 80x24: a variable set by one block reaches the next
(one real bash for the run), a placeholder is asked once, shown filled in before the command
runs, listed in the session pane, and p changes it."""

from __future__ import annotations

import asyncio
import json
import secrets
import textwrap
from collections.abc import Callable
from pathlib import Path

from pilot_support import settle, type_text
from textual.widgets import Static

from opsconsole.run import StepStatus
from screens import OpsConsoleApp
from screens.dialogs import InputDialog, PlanDialog
from screens.home import HomeScreen
from screens.progress_log import ProgressLog
from screens.shell_pane import ShellVariablesPane
from screens.walkthrough import WalkthroughScreen

RUNBOOK = """\
    # Deploy a release

    Set the release once; the next block uses it.

    ```bash
    export RELEASE=v7
    ```

    ```bash
    echo "deploying $RELEASE to <namespace>"
    ```

    ```bash
    echo "again $RELEASE in <namespace>"
    ```
"""


async def until(pilot, condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.02)


def pane_text(screen: WalkthroughScreen) -> str:
    return str(screen.query_one(ShellVariablesPane).visual)


def output_of(screen: WalkthroughScreen, step_id: str) -> str:
    result = screen.session.result(step_id)
    return next(a.text for a in result.artifacts if a.type == "output")


async def approve(pilot, expected_plan: str) -> None:
    await until(pilot, lambda: isinstance(pilot.app.screen, PlanDialog), "the command dialog")
    dialog = pilot.app.screen
    assert isinstance(dialog, PlanDialog)
    assert dialog.question.plan == (expected_plan,)
    await pilot.click("#run")


async def test_walk_a_plain_runbook_with_a_placeholder_and_a_shared_variable(
    tmp_path: Path, make_settings
) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[environments.local]\n", encoding="utf-8")
    path = tmp_path / "deploy.md"
    path.write_text(textwrap.dedent(RUNBOOK), encoding="utf-8")
    app = OpsConsoleApp(make_settings(config, environment="local", runbook_paths=[path]))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, HomeScreen)
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, WalkthroughScreen)
        first, second, third = (step.id for step in screen.session.runbook.steps)
        assert not screen.query_one(ShellVariablesPane).display  # nothing to show yet

        await pilot.press("enter")
        await approve(pilot, "export RELEASE=v7")
        await until(pilot, lambda: screen.session.result(first).status is StepStatus.PASSED,
                    "the first block")
        await settle(pilot)
        assert screen.query_one(ShellVariablesPane).display
        assert "RELEASE = v7" in pane_text(screen)

        # the cursor moved on: enter asks the placeholder, then shows the command filled in
        assert screen.selected_step is not None and screen.selected_step.id == second
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, InputDialog), "the placeholder")
        dialog = app.screen
        assert isinstance(dialog, InputDialog)
        assert dialog.question.prompt == "Value for <namespace>"
        await type_text(pilot, "payments")
        await pilot.press("enter")
        await approve(pilot, 'echo "deploying $RELEASE to payments"')
        await until(pilot, lambda: screen.session.result(second).status is StepStatus.PASSED,
                    "the second block")
        await settle(pilot)
        assert output_of(screen, second) == "deploying v7 to payments\n"
        assert "<namespace> = payments" in pane_text(screen)

        # p changes the value; the third block is not asked again and gets the new one
        await pilot.press("p")
        await until(pilot, lambda: isinstance(app.screen, InputDialog), "the edit dialog")
        await type_text(pilot, "billing")
        await pilot.press("enter")
        await settle(pilot)
        assert "<namespace> = billing" in pane_text(screen)
        # the change is audited and kept in the run state (a resume reuses it)
        records = [
            json.loads(line) for line in screen.session.audit.path.read_text().splitlines()
        ]
        edits = [(r["name"], r["value"], r["how"]) for r in records
                 if r.get("event") == "placeholder.value"]
        assert edits == [("namespace", "payments", "asked"), ("namespace", "billing", "edited")]
        assert screen.session.run.placeholders == {"namespace": "billing"}
        await pilot.press("enter")
        await approve(pilot, 'echo "again $RELEASE in billing"')
        await until(pilot, lambda: screen.session.result(third).status is StepStatus.PASSED,
                    "the third block")
        assert output_of(screen, third) == "again v7 in billing\n"
        assert not isinstance(app.screen, InputDialog)
        detail = "\n".join(str(s.visual) for s in screen.query("StepDetail Static").results(Static))
        assert "again v7 in billing" in detail


SECRET_RUNBOOK = """\
    ---
    cwd: .
    ---
    # Sign in

    ```bash
    SESSION_TOKEN=$(cat session.txt)
    echo "$SESSION_TOKEN"
    ```

    ```bash
    echo "$SESSION_TOKEN"
    ```
"""


def screen_text(app: OpsConsoleApp) -> str:
    """Everything the screen would write to the terminal, as text."""
    strips = app.screen._compositor.render_strips()
    return "\n".join("".join(segment.text for segment in strip) for strip in strips)


async def test_a_secret_variable_printed_by_a_block_never_reaches_the_screen(
    tmp_path: Path, make_settings, monkeypatch
) -> None:
    token = secrets.token_urlsafe(24)
    (tmp_path / "session.txt").write_text(token, encoding="utf-8")
    config = tmp_path / "config.toml"
    config.write_text("[environments.local]\n", encoding="utf-8")
    path = tmp_path / "sign-in.md"
    path.write_text(textwrap.dedent(SECRET_RUNBOOK), encoding="utf-8")
    logged: list[str] = []
    add = ProgressLog.add

    def keep(self: ProgressLog, text, *args, **kwargs):  # type: ignore[no-untyped-def]
        logged.append(str(text))
        return add(self, text, *args, **kwargs)

    monkeypatch.setattr(ProgressLog, "add", keep)
    shown: list[str] = []
    app = OpsConsoleApp(make_settings(config, environment="local", runbook_paths=[path]))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, WalkthroughScreen)
        first, second = (step.id for step in screen.session.runbook.steps)

        def watched(step_id: str) -> Callable[[], bool]:
            def done() -> bool:
                shown.append(screen_text(app))
                return screen.session.result(step_id).status is StepStatus.PASSED
            return done

        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, PlanDialog), "the command dialog")
        await pilot.click("#run")
        await until(pilot, watched(first), "the first block")
        await settle(pilot)
        shown.append(screen_text(app))
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, PlanDialog), "the second dialog")
        await pilot.click("#run")
        await until(pilot, watched(second), "the second block")
        await settle(pilot)
        shown.append(screen_text(app))
        log = "\n".join(logged)
        assert log.count("  ***") >= 2  # both blocks' output reached the log, masked
        assert "SESSION_TOKEN, a secret known only when the block ends" in log
        for text in [log, *shown]:
            assert token[:8] not in text and token[-8:] not in text
