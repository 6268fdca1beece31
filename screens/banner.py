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
    #: the run's counts, shown whole at every width — Content, never markup
    details: reactive[Content] = reactive(Content(""))
    #: the run shown (dropped first when the line is too narrow)
    run_id: reactive[str] = reactive("")
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
        """Identity first, counts always whole: on a narrow terminal the run id, then the
        description, then the "Environment:" label give way; the name is cut last."""
        width = self.content_region.width or self.size.width or 10_000
        marks: list[Content | str] = []
        if self.read_only:
            marks += [" │ ", Content.assemble(("READ-ONLY", "bold $text-warning"))]
        if self.break_glass:
            marks += [
                " │ ",
                Content.assemble(("BREAK-GLASS ", "bold $text-error"), (self.break_glass, "bold")),
            ]
        if self.faults:
            marks += [
                " │ ",
                Content.assemble(
                    ("FAULTS: ", "bold $text-warning"), (", ".join(self.faults), "$text-warning")
                ),
            ]
        tail: list[Content | str] = [" │ ", self.details] if self.details else []
        run: list[Content | str] = [" │ ", Content(f"run {self.run_id}")] if self.run_id else []
        about: list[Content | str] = (
            [" — ", self.description] if self.description and not self.details else []
        )
        name = self.environment_name
        for label, extra in (("Environment: ", [*run, *about]), ("Environment: ", run),
                             ("Environment: ", []), ("", [])):
            head = self._head(label, name)
            candidate = Content.assemble(head, *marks, *extra, *tail)
            if candidate.cell_length <= width:
                return candidate
        # still too long: the environment's name and the marks give way, the counts do not
        fixed = Content.assemble(*tail).cell_length
        rest = Content.assemble(self._head("", name), *marks)
        room = max(width - fixed, 1)
        if rest.cell_length > room:
            rest = rest.truncate(max(room - 1, 0)) + Content("…")
        return Content.assemble(rest, *tail)

    def _head(self, label: str, name: str) -> Content:
        if self.protected:
            return Content.assemble(("PROTECTED: ", "bold"), (name, "bold"))
        return Content.assemble(label, (name, "bold"))
