"""The environment banner: which environment the operator is acting on, always visible.

A protected environment switches the banner to its own accent ($error) and
spells out PROTECTED, so production can never be mistaken for staging.
"""

from __future__ import annotations

from textual.content import Content
from textual.reactive import reactive
from textual.widget import Widget

__all__ = ["EnvironmentBanner"]


class EnvironmentBanner(Widget):
    """One line: the environment (protected accent) and optional run details."""

    DEFAULT_CSS = """
    EnvironmentBanner {
        height: 1;
        width: 1fr;
        padding: 0 1;
        background: $panel;
        color: $foreground;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    EnvironmentBanner.-protected {
        background: $error;
        color: $text;
        text-style: bold;
    }
    """

    environment_name: reactive[str] = reactive("")
    protected: reactive[bool] = reactive(False)
    description: reactive[str] = reactive("")
    #: extra text after the environment (run id, counts) — Content, never markup
    details: reactive[Content] = reactive(Content(""))
    #: sandbox faults switched on (shown with a text marker that survives NO_COLOR)
    faults: reactive[tuple[str, ...]] = reactive(())
    #: nothing that changes something runs here (read-only mode, or another console holds
    #: the run)
    read_only: reactive[bool] = reactive(False)
    #: a break-glass in force: the time left ("29:41"), "" when none
    break_glass: reactive[str] = reactive("")

    def watch_protected(self, protected: bool) -> None:
        self.set_class(protected, "-protected")

    def render(self) -> Content:
        if self.protected:
            head = Content.assemble(("PROTECTED: ", "bold"), (self.environment_name, "bold"))
        else:
            head = Content.assemble("Environment: ", (self.environment_name, "bold"))
        parts: list[Content | str] = [head]
        if self.read_only:
            parts += [" │ ", Content.assemble(("READ-ONLY", "bold $text-warning"))]
        if self.break_glass:
            parts += [
                " │ ",
                Content.assemble(("BREAK-GLASS ", "bold $text-error"), (self.break_glass, "bold")),
            ]
        if self.faults:
            parts += [
                " │ ",
                Content.assemble(
                    ("FAULTS: ", "bold $text-warning"), (", ".join(self.faults), "$text-warning")
                ),
            ]
        if self.details:
            parts += [" │ ", self.details]
        elif self.description:
            parts += [" — ", self.description]
        return Content.assemble(*parts)
