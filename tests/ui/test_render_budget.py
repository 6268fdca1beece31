"""Issue 10, defect 11, in the widget tree: moving the cursor redraws only what changed.

The bytes themselves are counted in a real pty (tests/e2e/test_terminal_bytes.py); this
proves the structure behind them: the detail pane's widgets are reused, a piece whose text
did not change is not updated, and the section text and the log are not touched. (A guard:
main already reused these widgets; the bytes were lost below them, in full-region
repaints, which the pty test measures.)
"""

from __future__ import annotations

from pathlib import Path

from pilot_support import settle
from textual.widgets import Markdown, RichLog, Static

from screens import OpsConsoleApp
from screens.home import HomeScreen
from screens.step_detail import StepDetail
from screens.walkthrough import WalkthroughScreen

RUNBOOK = """---
id: budget
title: Budget
---
# Budget

## Checks

Some words about this section, long enough to wrap onto a second line in the pane.

```ops command
id: tall
title: A step with a long command
run: |
  echo one
  echo two
  echo three
  echo four
  echo five
mutating: false
```

```ops command
id: short
title: A step with a short command
run: echo hi
mutating: false
```

```ops command
id: short-too
title: Another step with a short command
run: echo ho
mutating: false
```
"""


async def test_moving_the_cursor_redraws_only_what_changed(
    tmp_path: Path, make_settings, monkeypatch
) -> None:
    runbook = tmp_path / "budget.md"
    runbook.write_text(RUNBOOK)
    config = tmp_path / "config.toml"
    config.write_text('default_environment = "test"\n[environments.test]\ndescription = "t"\n')
    app = OpsConsoleApp(make_settings(config, environment="test", runbook_paths=[runbook]))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, HomeScreen)
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, WalkthroughScreen)
        assert screen.selected_step is not None and screen.selected_step.id == "tall"
        detail = screen.query_one(StepDetail)
        children = list(detail.children)
        prose = screen.query_one(Markdown)
        title = screen.query_one("#walk-section-title", Static)
        log = screen.query_one("#walk-progress", RichLog)
        lines = list(log.lines)

        updated: list[str] = []
        original = Static.update

        def counting(self: Static, *args: object, **kwargs: object) -> None:
            updated.append(self.id or type(self).__name__)
            original(self, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(Static, "update", counting)
        prose_updates: list[str] = []
        monkeypatch.setattr(Markdown, "update", lambda self, text: prose_updates.append(text))

        await pilot.press("down")  # tall -> short: the pane gets shorter
        await pilot.pause()
        assert screen.selected_step is not None and screen.selected_step.id == "short"
        assert title.display and str(title.visual).endswith("Checks")
        updated.clear()
        await pilot.press("down")  # short -> short-too: same outcome text, same heights
        await pilot.pause()
        assert screen.selected_step is not None and screen.selected_step.id == "short-too"

        assert list(detail.children) == children, "the detail pane's widgets were replaced"
        assert screen.query_one(Markdown) is prose and not prose_updates
        assert list(log.lines) == lines, "the progress log changed on a cursor move"
        # only the pieces whose text differs: the head (title, id, line) and the command
        assert set(updated) <= {"step-head", "step-block-0"}, updated
        assert "step-outcome" not in updated and "step-block-title-0" not in updated


async def test_a_shorter_step_in_the_same_section_does_not_move_the_section_text(
    tmp_path: Path, make_settings
) -> None:
    """Every line that moves is sent again: within a section the detail keeps the height of
    the tallest step shown, so the section text below stays where it is; a new section
    (or a new terminal size) starts again at the detail's own height."""
    runbook = tmp_path / "budget.md"
    runbook.write_text(RUNBOOK + "\n## Later\n\nMore words.\n\n```ops command\nid: later\n"
                       "title: A later step\nrun: echo later\nmutating: false\n```\n")
    config = tmp_path / "config.toml"
    config.write_text('default_environment = "test"\n[environments.test]\ndescription = "t"\n')
    app = OpsConsoleApp(make_settings(config, environment="test", runbook_paths=[runbook]))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, WalkthroughScreen)
        detail = screen.query_one(StepDetail)
        title = screen.query_one("#walk-section-title", Static)
        tall_height, title_y = detail.outer_size.height, title.region.y
        await pilot.press("down")  # tall -> short: five command lines fewer
        await pilot.pause()
        assert screen.selected_step is not None and screen.selected_step.id == "short"
        assert "echo hi" in str(screen.query_one("#step-block-0", Static).visual)
        assert detail.outer_size.height == tall_height
        assert title.region.y == title_y, "the section text moved up"

        await pilot.press("down", "down")  # into the next section: its own height again
        await pilot.pause()
        assert screen.selected_step is not None and screen.selected_step.id == "later"
        assert detail.outer_size.height < tall_height
        assert title.region.y < title_y
