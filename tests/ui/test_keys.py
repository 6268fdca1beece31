"""Issue 10, the last gaps: the key guard's clock, read-only marks, break-glass on Home,
the sandbox's fault memory. Real sandbox on loopback; no sleeping, no timed assertions."""

from __future__ import annotations

import pytest
from pilot_support import settle
from test_long_steps import until

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
