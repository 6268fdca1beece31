"""Issue 10, defects 2 and 12: the progress log loses no character at a wrap, and after a
shrink it shows the newest lines unless the operator had scrolled up."""

from __future__ import annotations

from pathlib import Path

from pilot_support import settle
from textual.widgets import RichLog

from screens import OpsConsoleApp
from screens.home import HomeScreen
from screens.walkthrough import WalkthroughScreen

#: longer than any log width at 80 columns: it must wrap
PATH = "/var/lib/opsconsole/evidence/evidence-v2-control-plane-20261123T112514Z-b392f9-" + (
    "x" * 40
) + ".md"


def runbook(tmp_path: Path) -> tuple[Path, Path]:
    path = tmp_path / "log.md"
    path.write_text("---\nid: log\ntitle: Log\n---\n# Log\n\n- [ ] look at the log\n")
    config = tmp_path / "config.toml"
    config.write_text('default_environment = "test"\n[environments.test]\ndescription = "t"\n')
    return path, config


async def open_walkthrough(pilot) -> WalkthroughScreen:  # type: ignore[no-untyped-def]
    await settle(pilot)
    assert isinstance(pilot.app.screen, HomeScreen)
    await pilot.press("enter")
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, WalkthroughScreen), screen
    return screen


def shown(log: RichLog) -> list[str]:
    """The log's lines as the terminal shows them: cut to the width the log has now."""
    width = log.scrollable_content_region.width
    return [strip.crop(0, width).text.rstrip() for strip in log.lines]


async def test_a_wrapped_line_loses_no_character(tmp_path: Path, make_settings) -> None:
    path, config = runbook(tmp_path)
    app = OpsConsoleApp(make_settings(config, environment="test", runbook_paths=[path]))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_walkthrough(pilot)
        log = screen.query_one("#walk-progress", RichLog)
        screen._log(f"Evidence written to {PATH} by the operator")
        for index in range(30):  # enough lines for the log's scrollbar to appear
            screen._log(f"line {index}")
        await pilot.pause()
        assert log.max_scroll_y > 0, "the test needs a scrollbar"
        lines = shown(log)
        start = next(i for i, line in enumerate(lines) if line.startswith("Evidence written"))
        wrapped = "".join(lines[start : lines.index("line 0")])
        assert wrapped.replace(" ", "") == f"Evidence written to {PATH} by the operator".replace(
            " ", ""
        ), lines[start : start + 4]


async def test_after_a_shrink_the_log_shows_the_newest_line(
    tmp_path: Path, make_settings
) -> None:
    path, config = runbook(tmp_path)
    app = OpsConsoleApp(make_settings(config, environment="test", runbook_paths=[path]))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_walkthrough(pilot)
        log = screen.query_one("#walk-progress", RichLog)
        for index in range(60):
            screen._log(f"line {index} " + "word " * 15)
        await pilot.pause()
        assert round(log.scroll_y) == log.max_scroll_y > 0
        await pilot.resize_terminal(80, 24)
        await settle(pilot)
        await pilot.pause()
        assert round(log.scroll_y) == log.max_scroll_y, "the newest lines are out of view"
        bottom = shown(log)[round(log.scroll_y) : round(log.scroll_y) + log.size.height]
        assert any(line.startswith("word") or "line 59" in line for line in bottom[-3:]), bottom


async def test_after_a_shrink_a_log_scrolled_up_stays_where_the_operator_left_it(
    tmp_path: Path, make_settings
) -> None:
    path, config = runbook(tmp_path)
    app = OpsConsoleApp(make_settings(config, environment="test", runbook_paths=[path]))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_walkthrough(pilot)
        log = screen.query_one("#walk-progress", RichLog)
        for index in range(60):
            screen._log(f"line {index}")
        await pilot.pause()
        log.scroll_to(y=0, animate=False)
        await pilot.pause()
        screen._log("line 60")  # a new line does not pull the operator down
        await pilot.pause()
        assert log.scroll_y == 0
        await pilot.resize_terminal(80, 24)
        await settle(pilot)
        assert log.scroll_y == 0
