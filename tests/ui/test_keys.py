"""Issue 10, the last gaps: the key guard's clock, read-only marks, break-glass on Home,
the sandbox's fault memory. Real sandbox on loopback; no sleeping, no timed assertions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pilot_support import settle, type_text
from test_long_steps import jump_to, until
from textual.widgets import Static

import screens.dialogs
from opsconsole.run import StepStatus
from opsconsole.sandbox import Sandbox
from screens import OpsConsoleApp
from screens.dialogs import PlanDialog
from screens.walkthrough import WalkthroughScreen


class ManualClock:
    """The key guard's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


async def test_key_guard_ignores_keys_inside_its_window_and_takes_them_after(
    sandbox: Sandbox, make_settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(screens.dialogs, "KEY_GUARD_S", 0.3, raising=False)  # the real guard
    clock = ManualClock()
    app = OpsConsoleApp(make_settings(sandbox.config_path), key_clock=clock)
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
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, PlanDialog), "the plan")
        dialog = app.screen
        assert dialog.focused is not None and dialog.focused.id == "cancel"
        cancel = dialog.query_one("#cancel")

        clock.now += 0.29  # still inside the window: Cancel is ignored
        await pilot.press("enter")
        await until(pilot, lambda: not cancel.has_class("-active"), "the button to settle")
        assert app.screen is dialog

        clock.now += 0.02  # 0.31 s after it opened: the same key is taken
        await pilot.press("enter")
        await until(pilot, lambda: app.screen is screen, "the dialog to close")
        assert screen.session.result(plain.id).status is StepStatus.PENDING
        assert screen.session.result(plain.id).attempts == 0


def prompt(screen: WalkthroughScreen, step_id: str) -> str:
    from screens.step_list import StepList

    return str(screen.query_one(StepList).get_option(step_id).prompt)


def said(app: OpsConsoleApp) -> str:
    return " ".join(str(note.message) for note in app._notifications)


def glass_records(home: Path) -> list[dict[str, object]]:
    path = home / "audit.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [json.loads(line) for line in lines if '"break_glass"' in line]


async def test_break_glass_on_home_covers_the_runs_opened_meanwhile(
    sandbox: Sandbox, make_settings
) -> None:
    """``read_only = true`` in the config: b works on Home, audited; the walkthrough opened
    then runs steps that change something, and its list no longer marks them refused."""
    from screens.banner import EnvironmentBanner
    from screens.dialogs import BreakGlassDialog
    from screens.home import HomeScreen

    settings = make_settings(sandbox.config_path)
    settings.config.environments["sandbox"].read_only = True
    app = OpsConsoleApp(settings)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot)
        home = app.screen
        assert isinstance(home, HomeScreen)
        banner = home.query_one(EnvironmentBanner)
        assert "READ-ONLY" in str(banner.render())
        await pilot.press("b")
        await until(pilot, lambda: isinstance(app.screen, BreakGlassDialog), "break-glass")
        await type_text(pilot, "INC-7 hotfix approved")
        await pilot.press("enter")
        await until(pilot, lambda: app.screen is home, "the dialog to close")
        assert "BREAK-GLASS" in str(banner.render()) and "READ-ONLY" not in str(banner.render())
        [record] = glass_records(settings.home)
        assert record["reason"] == "INC-7 hotfix approved" and record["environment"] == "sandbox"
        assert record["minutes"] == 30 and str(record["expires"]).endswith("Z")

        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, WalkthroughScreen)
        assert screen.session.mutations_blocked() is None
        assert "BREAK-GLASS" in str(screen.query_one(EnvironmentBanner).render())
        assert "⊘" not in prompt(screen, "create-job") and "!" in prompt(screen, "create-job")
        await jump_to(pilot, "Create a job")
        await pilot.press("enter")
        await settle(pilot)
        result = screen.session.result("create-job")
        assert result.status is StepStatus.PASSED, result.detail
    # the run carries it in its own audit record too
    records = glass_records(settings.home)
    assert len(records) == 2 and records[1]["run"] == screen.session.run.id


async def test_a_command_line_read_only_is_not_lifted_by_break_glass(
    sandbox: Sandbox, make_settings
) -> None:
    """``--read-only``: b says to restart without it, on Home and in the walkthrough; the
    list marks the steps that change something (⊘) and the detail says read-only."""
    from opsconsole.session import StepRefused
    from screens.dialogs import BreakGlassDialog

    settings = make_settings(sandbox.config_path)
    settings.read_only = True
    app = OpsConsoleApp(settings)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot)
        home = app.screen
        await pilot.press("b")
        await pilot.pause()
        assert app.screen is home
        assert "restart without it" in said(app), said(app)
        assert not isinstance(app.screen, BreakGlassDialog)

        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, WalkthroughScreen)
        first = screen.session.runbook.steps[0]
        assert not first.mutating and "⊘" not in prompt(screen, first.id)
        assert "⊘" in prompt(screen, "create-job") and "!" not in prompt(screen, "create-job")
        await jump_to(pilot, "Create a job")
        head = str(screen.query_one("#step-head", Static).visual)
        assert "⊘ read-only" in head, head
        app._notifications.clear()
        await pilot.press("b")
        await pilot.pause()
        assert app.screen is screen and "restart without it" in said(app), said(app)
        with pytest.raises(StepRefused, match="--read-only"):
            screen.session.break_glass("INC-1", 30)
        await pilot.press("enter")
        await settle(pilot)
        assert screen.session.result("create-job").status is StepStatus.PENDING
        assert "restart without --read-only" in said(app), said(app)
    assert glass_records(settings.home) == []
