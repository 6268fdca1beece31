"""F1 help: the keys of the screen underneath, and how to walk a runbook."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

__all__ = ["HelpScreen", "WALK_HELP"]

WALK_HELP = """\
How to walk a runbook
 1. Pick the environment (e on Home). A PROTECTED one is red,
    and every mutating step there asks you to type its name.
 2. Open a runbook (enter). Left: sections and steps. Right: the
    selected step, its request or command, and its last result.
 3. enter (or r) runs or answers the selected step; the cursor
    then moves to the next unfinished one: enter, enter, enter.
    A failed step stays selected: r retries it, u moves on;
    n / N jump to the next / previous failed or unknown step.
 4. Shell commands always show the exact command first. Skip what
    does not apply with s and a reason. A phase ends in a gate
    (d): go needs every step of the phase passed or skipped.
 5. The run is saved after every step: quit any time, resume
    later. e exports the evidence report.
 6. READ-ONLY on the banner: steps that change something do not
    run. b breaks glass for a while (a reason; audited).

Marks  · pending  ◌ running  ✓ passed  ✗ failed  ↷ skipped
       ? unknown  ! the step changes something (mutating)"""

#: bindings every screen has that say nothing about this console
_GENERIC_ACTIONS = frozenset(
    {"focus_next", "focus_previous", "app.focus_next", "app.focus_previous",
     "screen.copy_text", "copy_text", "command_palette", "app.command_palette"}
)


class HelpScreen(ModalScreen[None]):
    """Keys (key + description) of the screen that was active, plus the walk-through text."""

    CSS_PATH = "help.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close help"),
        Binding("f1", "close", "Close help"),
        Binding("question_mark", "close", "Close help", show=False),
        Binding("q", "close", "Close help", show=False),
    ]

    def __init__(self, screen: Screen[object]) -> None:
        super().__init__()
        self.keys = self._keys_of(screen)
        self.screen_name = screen.sub_title or type(screen).__name__

    def _keys_of(self, screen: Screen[object]) -> list[tuple[str, str]]:
        rows: dict[str, tuple[list[str], str]] = {}
        for active in screen.active_bindings.values():
            binding = active.binding
            if not binding.description or binding.action in _GENERIC_ACTIONS:
                continue
            # a widget's own keys (cursor moves, scrolling) are summarised below, unless
            # they say what they do (j k g G)
            if not (binding.show or binding.tooltip or isinstance(active.node, Screen)
                    or active.node is self.app):
                continue
            key = self.app.get_key_display(binding)
            action = binding.action.removeprefix("app.")  # the screen's f1 is the app's help
            if action in rows:  # another key for the same thing: one row
                rows[action][0].append(key)
                continue
            rows[action] = ([key], binding.tooltip or binding.description)
        listed = [(" ".join(keys), text) for keys, text in rows.values()]
        listed.append(("↑ ↓", "Move the cursor"))
        rows_out = listed
        rows_out.append(("tab", "Next pane (then ↑ ↓ pgup pgdn scroll it)"))
        rows_out.append(("^p", "Command palette: runbooks, steps, environments"))
        return rows_out

    def compose(self) -> ComposeResult:
        width = max(len(key) for key, _ in self.keys) + 2
        lines: list[str | tuple[str, str]] = []
        for key, description in self.keys:
            if lines:
                lines.append("\n")
            lines += [(key.ljust(width), "bold $text-accent"), description]
        with Vertical(id="help-frame") as frame:
            frame.border_title = "Help"
            frame.border_subtitle = "escape, ? or F1 to close"
            with VerticalScroll(id="help-body"):
                yield Static(
                    Content.assemble(("Keys", "bold underline"), ("  " + self.screen_name, "dim")),
                    classes="help-heading",
                )
                yield Static(Content.assemble(*lines), id="help-keys")
                yield Static(Content(WALK_HELP), id="help-walk")

    def action_close(self) -> None:
        self.dismiss(None)
