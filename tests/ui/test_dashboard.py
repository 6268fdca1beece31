"""The dashboard in a real app: real checks on loopback, keys never wait on a check."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

from pilot_support import V2, settle

from opsconsole.config import Config, ConsoleSettings, Environment
from opsconsole.loader import load_runbook
from opsconsole.run import StepStatus
from screens import OpsConsoleApp
from screens.dashboard import DashboardScreen, Tile


async def test_a_check_that_hangs_never_holds_up_keys(
    tmp_path: Path, hostile_server  # type: ignore[no-untyped-def]
) -> None:
    path = tmp_path / "hang.md"
    path.write_text(
        textwrap.dedent(
            """\
            ---
            id: hang
            title: Hang
            variables: {base: ""}
            ---
            # Checks

            ```ops http
            id: never
            watch: true
            url: "{{ base }}/never"
            timeout: 60s
            ```
            """
        ),
        encoding="utf-8",
    )
    base = hostile_server.url("").rstrip("/")
    config = Config(environments={"t": Environment(name="t", variables={"base": base})})
    settings = ConsoleSettings(
        config=config, home=tmp_path / "state", runbook_paths=[path], environment="t"
    )
    app = OpsConsoleApp(settings)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = DashboardScreen([load_runbook(path)])
        await app.push_screen(screen)
        await pilot.pause()
        # the check is out and will not answer for 60 s; the keys are answered now
        assert any(w.group == "dashboard" and w.is_running for w in app.workers)
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is not screen
        # hidden: no timer re-arms a round
        assert screen._timer is None


async def test_checks_run_for_real_and_enter_opens_the_runbook_at_that_check(
    sandbox, make_settings  # type: ignore[no-untyped-def]
) -> None:
    app = OpsConsoleApp(make_settings(sandbox.config_path, sandbox=sandbox))
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(pilot)
        await pilot.press("d")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, DashboardScreen)
        readings = screen._readings
        assert readings and all(r.status is StepStatus.PASSED for r in readings.values())
        assert screen._timer is not None  # the next round is armed after this one
        tile = screen.query_one(Tile)
        tile.focus()
        await pilot.press("down", "enter")
        await settle(pilot)
        walkthrough = app.walkthrough
        assert walkthrough is not None
        assert walkthrough.selected_step is not None
        assert walkthrough.selected_step.id == "debug-env-leaks-nothing"


async def test_rounds_never_overlap(sandbox, make_settings) -> None:  # type: ignore[no-untyped-def]
    app = OpsConsoleApp(make_settings(sandbox.config_path, sandbox=sandbox))
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(pilot)
        screen = DashboardScreen([load_runbook(V2)])
        await app.push_screen(screen)
        await pilot.pause()
        calls: list[int] = []
        watcher = screen._watcher_for()
        real_round = watcher.round
        active = 0

        async def counted() -> dict:  # type: ignore[type-arg]
            nonlocal active
            active += 1
            calls.append(active)
            try:
                await asyncio.sleep(0.05)
                return await real_round()
            finally:
                active -= 1

        watcher.round = counted  # type: ignore[method-assign]
        for _ in range(5):
            await pilot.press("r")
        await settle(pilot)
        assert calls and max(calls) == 1
