"""The device-flow sign-in in the console, against the sandbox's RFC 8628 server: the code
and URL are on screen while the step polls, approving in the browser closes the dialog,
the token is *** everywhere on screen; a new code and a cancel from the keyboard."""

from __future__ import annotations

import asyncio
import html
import re
from pathlib import Path

from pilot_support import settle

from opsconsole.run import StepStatus
from opsconsole.sandbox import Sandbox
from opsconsole.sandbox.device_auth import DeviceAuthServer
from screens import OpsConsoleApp
from screens.device_flow import DeviceFlowDialog
from screens.home import HomeScreen
from screens.walkthrough import WalkthroughScreen

RUNBOOK = Path(__file__).parents[1] / "runbooks" / "device-flow-rfc8628.md"


async def open_sign_in(pilot) -> tuple[WalkthroughScreen, DeviceFlowDialog]:
    app = pilot.app
    await settle(pilot)
    assert isinstance(app.screen, HomeScreen)
    await pilot.press("enter")
    await settle(pilot)
    screen = app.screen
    assert isinstance(screen, WalkthroughScreen)
    await pilot.press("enter")  # run the selected (first) step: the sign-in
    dialog = await wait_for(pilot, lambda: isinstance(app.screen, DeviceFlowDialog))
    assert dialog
    assert isinstance(app.screen, DeviceFlowDialog)
    return screen, app.screen


async def wait_for(pilot, condition, timeout: float = 60.0) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.05)
    return True


def screen_text(app: OpsConsoleApp) -> str:
    """What the terminal shows, as text (the screenshot without its SVG markup)."""
    svg = app.export_screenshot()
    return html.unescape(re.sub(r"<[^>]+>", "", svg)).replace("\xa0", " ")


def device_auth(sandbox: Sandbox) -> DeviceAuthServer:
    return next(s for s in sandbox.services if isinstance(s, DeviceAuthServer))


async def test_sign_in_shows_code_and_url_then_closes_when_approved(
    sandbox: Sandbox, make_settings
) -> None:
    app = OpsConsoleApp(make_settings(sandbox.config_path, sandbox=sandbox,
                                      runbook_paths=[RUNBOOK]))
    async with app.run_test(size=(120, 40)) as pilot:
        screen, dialog = await open_sign_in(pilot)
        question = dialog.question
        shown = screen_text(app)
        assert question.user_code and question.user_code in shown
        assert question.verification_uri in shown  # the plain URL, also beside the QR
        assert dialog.query_one("#device-qr").display  # 120x40: the QR code fits

        assert await sandbox.simulated_browser(question.url) == "approved"
        session = screen.session
        await wait_for(pilot, lambda: session.result("sign-in").status is StepStatus.PASSED)
        await wait_for(pilot, lambda: app.screen is screen)  # the dialog closed by itself
        await settle(pilot)

        state = device_auth(sandbox).state
        assert state is not None
        (token,) = state.tokens
        shown = screen_text(app)
        assert token not in shown
        assert "authorized after" in shown and "***" in shown


async def test_new_code_then_cancel_from_the_keyboard(sandbox: Sandbox, make_settings) -> None:
    app = OpsConsoleApp(make_settings(sandbox.config_path, sandbox=sandbox,
                                      runbook_paths=[RUNBOOK]))
    async with app.run_test(size=(80, 24)) as pilot:
        screen, first = await open_sign_in(pilot)
        assert not first.query_one("#device-qr").display  # 80x24: no room for the QR
        assert first.question.user_code in screen_text(app)
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, DeviceFlowDialog)
                       and app.screen is not first)
        second = app.screen
        assert isinstance(second, DeviceFlowDialog)
        assert second.question.user_code != first.question.user_code
        await pilot.press("escape")
        await wait_for(pilot, lambda: screen.session.result("sign-in").status
                       is StepStatus.CANCELLED)
        assert app.screen is screen
