"""Issue 10, defects 3 and 4: the console at 60x20, 80x24 and 120x40.

Every assertion is about what is on screen: a widget counts as visible when the screen's
topmost widget at its place is that widget."""

from __future__ import annotations

from pathlib import Path

from pilot_support import settle
from test_long_steps import until
from textual.widgets import Button, Markdown
from textual.widgets._footer import FooterKey

from opsconsole.sandbox import Sandbox
from screens import OpsConsoleApp
from screens.banner import EnvironmentBanner
from screens.gate import GateDialog
from screens.home import HomeScreen
from screens.walkthrough import WalkthroughScreen


def on_screen(app: OpsConsoleApp, widget) -> bool:
    region = widget.region
    width, height = app.size
    if region.width == 0 or region.height == 0:
        return False
    if region.x < 0 or region.y < 0 or region.right > width or region.bottom > height:
        return False
    found, _ = app.screen.get_widget_at(region.x + region.width // 2, region.y)
    return found is widget or widget in found.ancestors


async def open_v2(pilot) -> WalkthroughScreen:
    await settle(pilot)
    await pilot.press("enter")
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, WalkthroughScreen), screen
    return screen


async def test_gate_buttons_are_reached_with_tab_at_60x20(sandbox: Sandbox, make_settings):
    app = OpsConsoleApp(make_settings(sandbox.config_path))
    async with app.run_test(size=(60, 20)) as pilot:
        screen = await open_v2(pilot)
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, GateDialog), "the gate")
        await settle(pilot)
        dialog = app.screen
        reached: set[str] = set()
        for _ in range(6):
            await pilot.press("tab")
            await pilot.pause()
            focused = dialog.focused
            if isinstance(focused, Button):
                assert on_screen(app, focused), f"{focused.id} is focused but off-screen"
                reached.add(focused.id or "")
        assert {"no-go", "cancel"} <= reached, reached
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is screen


async def test_counts_escape_and_help_survive_60_columns(sandbox: Sandbox, make_settings):
    settings = make_settings(sandbox.config_path, environment="sandbox-prod")
    settings.read_only = True
    app = OpsConsoleApp(settings)
    async with app.run_test(size=(60, 20)) as pilot:
        screen = await open_v2(pilot)
        app.active_faults = ("runner-down",)
        await pilot.pause()
        banner = screen.query_one(EnvironmentBanner)
        shown = banner.render()
        counts = banner.details.plain
        whole = counts and shown.plain.endswith(counts)
        compact = banner.compact_details.plain
        assert whole or (compact and shown.plain.endswith(compact)), shown.plain
        assert shown.cell_length <= banner.content_region.width, shown.plain
        # the identity stays whole too: environment, protected, read-only, the fault
        for word in ("PROTECTED", "sandbox-prod", "READ-ONLY", "runner-down"):
            assert word in shown.plain, shown.plain
        keys = {key.key: key for key in screen.query(FooterKey)}
        for key in ("escape", "f1"):
            assert key in keys and on_screen(app, keys[key]), f"{key} is not in the footer"


PROSE_RUNBOOK = """\
---
id: wide-prose
title: Wide prose
---

# Wide prose

Expected log line when the worker starts (copy it exactly):

```text
worker-7 started: queue=ops-critical-eu-west-1 concurrency=16 prefetch=64 visibility_timeout=900s
```

```ops http
id: health
title: Health
url: http://127.0.0.1:9/health
```
"""


async def test_panes_use_the_width_and_code_in_prose_wraps(
    sandbox: Sandbox, make_settings, tmp_path: Path
):
    path = tmp_path / "wide-prose.md"
    path.write_text(PROSE_RUNBOOK, encoding="utf-8")
    app = OpsConsoleApp(make_settings(sandbox.config_path, runbook_paths=[path]))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_v2(pilot)
        pane = screen.query_one("#walk-steps-pane")
        assert pane.outer_size.width >= 52, pane.size  # not stuck at about 48 columns
        before = pane.outer_size.width
        await pilot.press("right_square_bracket")
        await pilot.pause()
        assert pane.outer_size.width == before + 4
        await pilot.press("left_square_bracket", "left_square_bracket")
        await pilot.pause()
        assert pane.outer_size.width == before - 4

        fence = screen.query_one(Markdown).query_one("MarkdownFence")
        label = fence.query_one("#code-content")
        code = fence.code.strip()
        assert len(code) > fence.size.width, "the test needs a line wider than the pane"
        # wrapped: every character is inside the pane, over more than one row
        assert label.size.width <= fence.size.width
        assert label.size.height >= 2, label.size


async def test_home_uses_a_tall_terminal(sandbox: Sandbox, make_settings):
    from opsconsole.config import bundled_runbooks_dir

    app = OpsConsoleApp(make_settings(sandbox.config_path, runbook_paths=[bundled_runbooks_dir()]))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        home = app.screen
        assert isinstance(home, HomeScreen)
        detail = home.query_one("#runbook-detail")
        text = str(detail.visual)
        assert "Sections" in text, text  # the highlighted runbook's outline
        assert detail.size.height >= 15, detail.size
