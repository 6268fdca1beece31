"""``ops oauth_callback`` in the console against the sandbox HDM, at 80x24: the step shows
the authorization URL and the tunnel command, the operator approves in the (sandbox's)
browser, pastes the address it was sent to, and the step verifies ``authorized: true``.
A paste from another authorization is refused with the reason and the step keeps
waiting; a 16 KB paste is taken whole; nothing secret of the paste is left on screen or
under the run's home."""

from __future__ import annotations

import asyncio
import html
import re
import secrets as random
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from pilot_support import settle
from textual import events
from textual.widgets import Input

import opsconsole.sandbox.hdm as hdm_module
from opsconsole.run import StepStatus
from opsconsole.sandbox import Sandbox
from screens import OpsConsoleApp
from screens.dialogs import InputDialog
from screens.home import HomeScreen
from screens.walkthrough import WalkthroughScreen
from tests.leak_forms import assert_no_leak

RUNBOOK = Path(__file__).parents[1] / "runbooks" / "hdm-oauth-callback.md"
STEP = "hdm-oauth-recover"
SIZE = (80, 24)


async def approve_in_browser(sandbox: Sandbox, url: str) -> str:
    """The operator's browser: open the authorization URL, press Approve, and read the
    address bar it is sent to. The one place this test uses the sandbox's browser."""
    return await sandbox.simulated_browser.press(url, "approve")


async def wait_for(pilot, condition, timeout: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.05)


def screen_text(app: OpsConsoleApp) -> str:
    """What the terminal shows, as text (the screenshot without its SVG markup)."""
    svg = app.export_screenshot()
    return html.unescape(re.sub(r"<[^>]+>", "", svg)).replace("\xa0", " ")


def unwrapped(app: OpsConsoleApp) -> str:
    """The screen's text with its lines joined and the dialog's borders taken out, so a
    URL wrapped over several lines reads as one."""
    lines = [line.strip(" │▎▊▌┃║█▕") for line in screen_text(app).splitlines()]
    return "".join(line.strip() for line in lines)


def says(app: OpsConsoleApp, words: str) -> bool:
    """The screen says ``words``, however its lines wrapped them."""
    return re.sub(r"\s", "", words) in re.sub(r"\s", "", unwrapped(app))


async def open_paste_dialog(pilot) -> tuple[WalkthroughScreen, InputDialog]:
    app = pilot.app
    await settle(pilot)
    assert isinstance(app.screen, HomeScreen)
    await pilot.press("enter")
    await settle(pilot)
    screen = app.screen
    assert isinstance(screen, WalkthroughScreen)
    await pilot.press("enter")  # run the selected (only) step
    await wait_for(pilot, lambda: isinstance(app.screen, InputDialog))
    await settle(pilot)
    dialog = app.screen
    assert isinstance(dialog, InputDialog)
    return screen, dialog


async def paste(pilot, text: str) -> None:
    """As a terminal delivers a paste (bracketed paste), into the focused field; then Enter."""
    field = pilot.app.screen.query_one("#value", Input)
    assert pilot.app.focused is field
    field.post_message(events.Paste(text))
    await pilot.pause()
    assert field.value == text  # nothing cut (4,096 bytes is where terminals used to cut)
    await pilot.press("enter")


def shown_authorization(app: OpsConsoleApp, sandbox: Sandbox) -> str:
    """The authorization URL as the screen shows it (read off the screen, not the step)."""
    spotify = re.escape(sandbox.variables["hdm_spotify_url"])
    found = re.search(spotify + r"/authorize\?[A-Za-z0-9%&=+._~-]+?state=[A-Za-z0-9_-]{32}",
                      unwrapped(app))
    assert found, "the authorization URL is not on screen"
    return found.group(0)


def app_for(sandbox: Sandbox, make_settings) -> OpsConsoleApp:
    return OpsConsoleApp(make_settings(sandbox.config_path, sandbox=sandbox,
                                       runbook_paths=[RUNBOOK]))


@pytest.fixture
def hdm_sandbox() -> Sandbox:
    from opsconsole.loader import load_runbook

    sb = Sandbox.for_runbooks([load_runbook(RUNBOOK)])
    try:
        sb.start()
        sb.install_keyring()
        yield sb
    finally:
        sb.stop()


async def test_paste_the_redirect_and_see_authorized_verified(
    hdm_sandbox: Sandbox, make_settings
) -> None:
    app = app_for(hdm_sandbox, make_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen, dialog = await open_paste_dialog(pilot)
        url = shown_authorization(app, hdm_sandbox)
        port = hdm_sandbox.variables["hdm_callback_port"]
        assert says(app, f"Tunnel (on your machine): ssh -N -L {port}:127.0.0.1:{port} ")
        where = await approve_in_browser(hdm_sandbox, url)
        assert where.startswith(f"http://127.0.0.1:{port}/callback?code=")
        await paste(pilot, where)
        session = screen.session
        await wait_for(pilot, lambda: session.result(STEP).status is StepStatus.PASSED)
        await settle(pilot)
        result = session.result(STEP)
        assert "verify json authorized" in [a.name for a in result.assertions]
        assert all(a.ok for a in result.assertions)
        assert says(app, "authorized: the pasted callback was accepted and verified")
        code = parse_qs(urlsplit(where).query)["code"][0]
        assert_no_leak(screen_text(app), code)


async def test_a_paste_from_another_authorization_is_refused_and_the_step_waits(
    hdm_sandbox: Sandbox, make_settings
) -> None:
    app = app_for(hdm_sandbox, make_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen, first = await open_paste_dialog(pilot)
        where = await approve_in_browser(hdm_sandbox, shown_authorization(app, hdm_sandbox))
        other = re.sub(r"state=[^&]+", "state=" + random.token_urlsafe(24), where)
        await paste(pilot, other)
        await wait_for(pilot, lambda: isinstance(app.screen, InputDialog)
                       and app.screen is not first)
        await settle(pilot)
        session = screen.session
        assert session.result(STEP).status is StepStatus.RUNNING  # waiting, not failed
        assert says(app, "Refused: the URL's state is not the one this run was issued")
        await paste(pilot, where)  # the right one still works
        await wait_for(pilot, lambda: session.result(STEP).status is StepStatus.PASSED)


async def test_a_16_kb_paste_authorizes_and_leaves_no_secret_on_screen_or_on_disk(
    hdm_sandbox: Sandbox, make_settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole oauth_callback run, then every file under the run's home and the
    exported evidence, and the screen: not the pasted URL, its code, the 16 KB value in
    it, the tokens HDM got for the code, or the sandbox's secrets."""
    monkeypatch.setenv("HOME", str(tmp_path))
    issued: list[str] = []

    def recorded(nbytes: int | None = None) -> str:
        value = random.token_urlsafe(nbytes)
        if nbytes == 32:  # the code, then the access and the refresh token
            issued.append(value)
        return value

    monkeypatch.setattr(hdm_module, "token_urlsafe", recorded)
    app = app_for(hdm_sandbox, make_settings)
    async with app.run_test(size=SIZE) as pilot:
        screen, _ = await open_paste_dialog(pilot)
        where = await approve_in_browser(hdm_sandbox, shown_authorization(app, hdm_sandbox))
        bulk = random.token_urlsafe(12_300)  # an identity provider's long session value
        pasted = f"{where}&session_state={bulk}"
        assert len(pasted.encode()) > 16 * 1024
        await paste(pilot, pasted)
        session = screen.session
        await wait_for(pilot, lambda: session.result(STEP).status is StepStatus.PASSED)
        await settle(pilot)
        seen = [screen_text(app)]
        await pilot.press("e")  # export the evidence report
        evidence = tmp_path / "state" / "evidence"
        await wait_for(pilot, lambda: any(evidence.glob("*.md")))
        await settle(pilot)
        seen.append(screen_text(app))
    code, access_token, refresh_token = issued
    values = [code, bulk, access_token, refresh_token, *hdm_sandbox.secret_values.values()]
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    kinds = {p.parent.name + "/" + p.suffix for p in files}
    assert {"runs/.json", "state/.jsonl", "evidence/.md"} <= kinds, kinds  # state, audit
    texts = [("the screen", text) for text in seen] + [
        (str(p.relative_to(tmp_path)), p.read_bytes().decode("utf-8", errors="replace"))
        for p in files
    ]
    for place, text in texts:
        leaked = pasted in text or where in text
        assert not leaked, f"the pasted URL is in {place}"  # never the value itself
        for value in values:
            assert_no_leak(text, value)
