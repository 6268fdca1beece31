"""The browser-approval connect in the console, against the sandbox's Discogs service: the
connect URL is on screen while the step follows the server, nobody approves but the person
(here the test, through the sandbox's browser), and the step ends connected with the
Discogs username; a denial fails it with the server's words."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from pilot_support import settle
from test_device_flow_pilot import screen_text, wait_for

from opsconsole.config import bundled_runbooks_dir
from opsconsole.run import StepStatus
from opsconsole.sandbox import Sandbox
from opsconsole.sandbox.discogs_collection import (
    DISCOGS_ACCOUNT,
    SANDBOX_USER,
    DiscogsCollection,
)
from screens import OpsConsoleApp
from screens.device_flow import ConnectDialog
from screens.home import HomeScreen
from screens.walkthrough import WalkthroughScreen

RUNBOOK = bundled_runbooks_dir() / "discogs-collection.md"
STEP = "discogs-connect"


@pytest.fixture
def discogs(request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    faults = getattr(request, "param", ())
    with Sandbox(faults, services=["discogs-collection"]) as running:
        running.install_keyring()
        yield running


def connect_state(sandbox: Sandbox) -> str:
    service = next(s for s in sandbox.services if isinstance(s, DiscogsCollection))
    return str(service.store.snapshot(SANDBOX_USER)["connect_state"])


def shows_whole(app: OpsConsoleApp, text: str) -> bool:
    """``text`` is on screen, also when the dialog wraps it over several lines."""
    rows = [re.sub(r"^[^A-Za-z0-9]*┃ ?|\s*┃.*$", "", line).strip()
            for line in screen_text(app).splitlines()]
    return text in "".join(rows)


async def start_connect(pilot) -> tuple[WalkthroughScreen, ConnectDialog]:
    app = pilot.app
    await settle(pilot)
    assert isinstance(app.screen, HomeScreen)
    await pilot.press("enter")
    await settle(pilot)
    screen = app.screen
    assert isinstance(screen, WalkthroughScreen)
    screen.select_step(STEP)
    await pilot.pause()
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(app.screen, ConnectDialog))
    dialog = app.screen
    assert isinstance(dialog, ConnectDialog)
    return screen, dialog


async def test_connect_shows_the_url_and_ends_connected_when_approved(
    discogs: Sandbox, make_settings
) -> None:
    app = OpsConsoleApp(make_settings(discogs.config_path, sandbox=discogs,
                                      runbook_paths=[RUNBOOK]))
    async with app.run_test(size=(80, 24)) as pilot:
        screen, dialog = await start_connect(pilot)
        url = dialog.question.verification_uri
        assert url.startswith(discogs.variables["discogs_url"] + "/oauth/authorize?")
        await settle(pilot)
        assert shows_whole(app, url), screen_text(app)
        # nobody approves by itself: the connect waits for the person
        assert connect_state(discogs) == "pending"
        assert screen.session.result(STEP).status is StepStatus.RUNNING

        assert await discogs.simulated_browser(url) == "approved"  # the sandbox page
        session = screen.session
        await wait_for(pilot, lambda: session.result(STEP).status is StepStatus.PASSED)
        await wait_for(pilot, lambda: app.screen is screen)  # the dialog closed by itself
        await settle(pilot)
        detail = session.result(STEP).detail
        assert f"approved for {DISCOGS_ACCOUNT}" in detail, detail
        assert DISCOGS_ACCOUNT in screen_text(app)


@pytest.mark.parametrize("discogs", [("discogs-connect-denied",)], indirect=True)
async def test_a_denied_connect_fails_the_step_with_the_servers_words(
    discogs: Sandbox, make_settings
) -> None:
    app = OpsConsoleApp(make_settings(discogs.config_path, sandbox=discogs,
                                      runbook_paths=[RUNBOOK]))
    async with app.run_test(size=(80, 24)) as pilot:
        screen, dialog = await start_connect(pilot)
        said = await discogs.simulated_browser(dialog.question.verification_uri)
        assert said == "not approved: the page answered 403"  # Discogs refused
        session = screen.session
        await wait_for(pilot, lambda: session.result(STEP).status is StepStatus.FAILED)
        await wait_for(pilot, lambda: app.screen is screen)
        detail = session.result(STEP).detail
        assert "job denied: Access was denied on the Discogs authorize page" in detail, detail
        assert connect_state(discogs) == "denied"


async def test_escape_stops_waiting_and_the_connect_is_unknown(
    discogs: Sandbox, make_settings
) -> None:
    """The connect was started: stopping is never "failed" and never a pass."""
    app = OpsConsoleApp(make_settings(discogs.config_path, sandbox=discogs,
                                      runbook_paths=[RUNBOOK]))
    async with app.run_test(size=(80, 24)) as pilot:
        screen, dialog = await start_connect(pilot)
        assert dialog.query_one("#approved")
        assert not dialog.query("#restart")  # no "new code": that would be a new connect
        await pilot.press("escape")
        session = screen.session
        await wait_for(pilot, lambda: session.result(STEP).status is StepStatus.UNKNOWN)
        assert app.screen is screen
        assert connect_state(discogs) == "pending"
