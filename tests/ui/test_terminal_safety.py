"""Escape sequences in outside text never reach the operator's terminal raw.

Textual writes a widget's text to the terminal as it is (it only drops BEL, BS, VT,
FF and CR), so an OSC or CSI sequence in a command's output, a response body or a
runbook's title would retitle, clear or rewrite the terminal, or set its clipboard.
The console draws every control character as a visible symbol instead.
"""

from __future__ import annotations

from pathlib import Path

from pilot_support import settle
from test_long_steps import open_only_runbook, until

from opsconsole.run import StepStatus
from opsconsole.sandbox import Sandbox
from screens import OpsConsoleApp
from screens.dialogs import CancelStepDialog

# ESC ] 0 ; ... ESC \ sets the window title; ESC ] 52 writes the clipboard; CSI 2J clears
RUNBOOK = r"""---
id: hostile-text
title: Hostile text
---

# Hostile text

```ops command
id: hostile
title: "Print \e]0;TITLE-FROM-RUNBOOK\e\\ something"
run: printf 'out \033]52;c;Q0xJUEJPQVJE\033\\ \033[2J done\n'
mutating: false
```

```ops command
id: hostile-mutating
title: "Restart \e]0;TITLE-IN-A-DIALOG\e\\ the worker"
run: exec sleep 30
```
"""


def screen_text(app: OpsConsoleApp) -> str:
    """Everything the screen would write to the terminal, as text."""
    strips = app.screen._compositor.render_strips()
    return "\n".join("".join(segment.text for segment in strip) for strip in strips)


async def test_control_characters_are_drawn_not_sent_to_the_terminal(
    sandbox: Sandbox, make_settings, tmp_path: Path
) -> None:
    path = tmp_path / "hostile.md"
    path.write_text(RUNBOOK, encoding="utf-8")
    app = OpsConsoleApp(make_settings(sandbox.config_path, runbook_paths=[path]))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_only_runbook(pilot)
        await pilot.press("enter")
        await until(pilot, lambda: screen.session.result("hostile").status is StepStatus.PASSED,
                    "the command to finish")
        await settle(pilot)
        await pilot.press("up")  # back on the step: its detail and output are on screen
        await settle(pilot)
        shown = screen_text(app)
        assert "TITLE-FROM-RUNBOOK" in shown and "Q0xJUEJPQVJE" in shown, shown
        assert "\x1b" not in shown
        assert "␛]0;TITLE-FROM-RUNBOOK" in shown  # drawn as a symbol, still readable
        assert "␛]52;c;Q0xJUEJPQVJE" in shown

        # a dialog shows the title too
        await pilot.press("down", "enter")
        await until(pilot, lambda: screen.session.running == "hostile-mutating", "the start")
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, CancelStepDialog), "the question")
        shown = screen_text(app)
        assert "TITLE-IN-A-DIALOG" in shown
        assert "\x1b" not in shown, [line for line in shown.splitlines() if "\x1b" in line]
        await pilot.press("left", "enter")  # stop it
        await until(pilot, lambda: screen.session.running is None, "the step to stop")
        await settle(pilot)
