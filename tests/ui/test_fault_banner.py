"""The banner names the sandbox faults that are on, on Home and in the walkthrough."""

from __future__ import annotations

from pilot_support import settle
from test_long_steps import jump_to, until

from opsconsole.sandbox import Sandbox
from screens import OpsConsoleApp
from screens.banner import EnvironmentBanner
from screens.home import HomeScreen
from screens.walkthrough import WalkthroughScreen


def banner(app: OpsConsoleApp) -> str:
    return str(app.screen.query_one(EnvironmentBanner).render())


async def test_active_faults_are_on_the_banner_until_cleared(
    sandbox: Sandbox, make_settings
) -> None:
    sandbox.set_fault("runner-down", True)
    app = OpsConsoleApp(make_settings(sandbox.config_path, sandbox=sandbox))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, HomeScreen)
        assert "FAULTS: runner-down" in banner(app)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, WalkthroughScreen)
        assert "FAULTS: runner-down" in banner(app)

        await jump_to(pilot, "clear fault runner-down")  # the palette switches it off
        await until(pilot, lambda: "runner-down" not in sandbox.active_faults, "the switch")
        await until(pilot, lambda: "FAULTS" not in banner(app), "the banner to clear")
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, HomeScreen)
        assert "FAULTS" not in banner(app)
