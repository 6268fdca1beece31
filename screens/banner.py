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
    #: the counts without the zero ones, for a narrow line (Content(""): use ``details``)
    compact_details: reactive[Content] = reactive(Content(""))
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
        description, then the "Environment:" label give way, then separators and zero
        counts shrink; the marks are cut last, and the counts never."""
        width = self.content_region.width or self.size.width or 10_000
        name = self.environment_name
        for compact in (False, True):
            sep = "│" if compact else " │ "
            marks = self._marks(sep, compact)
            counts = self.compact_details if compact and self.compact_details else self.details
            tail: list[Content | str] = [sep, counts] if counts else []
            run: list[Content | str] = [sep, Content(f"run {self.run_id}")] if self.run_id else []
            about: list[Content | str] = (
                [" — ", self.description] if self.description and not self.details else []
            )
            stages = [("", [])] if compact else [
                ("Environment: ", [*run, *about]), ("Environment: ", run),
                ("Environment: ", []), ("", []),
            ]
            for label, extra in stages:
                candidate = Content.assemble(self._head(label, name, compact), *marks, *extra,
                                             *tail)
                if candidate.cell_length <= width:
                    return candidate
        # still too long: the name and the marks give way, the counts do not
        fixed = Content.assemble(*tail).cell_length
        rest = Content.assemble(self._head("", name, True), *marks)
        room = max(width - fixed, 1)
        if rest.cell_length > room:
            rest = rest.truncate(max(room - 1, 0)) + Content("…")
        return Content.assemble(rest, *tail)

    def _marks(self, sep: str, compact: bool) -> list[Content | str]:
        """READ-ONLY, BREAK-GLASS, FAULTS: words, so they survive NO_COLOR."""
        marks: list[Content | str] = []
        if self.read_only:
            marks += [sep, Content.assemble(("READ-ONLY", "bold $text-warning"))]
        if self.break_glass:
            marks += [
                sep,
                Content.assemble(("BREAK-GLASS ", "bold $text-error"), (self.break_glass, "bold")),
            ]
        if self.faults:
            label = "FAULTS:" if compact else "FAULTS: "
            marks += [
                sep,
                Content.assemble(
                    (label, "bold $text-warning"),
                    (("," if compact else ", ").join(self.faults), "$text-warning"),
                ),
            ]
        return marks

    def _head(self, label: str, name: str, compact: bool = False) -> Content:
        if self.protected:
            return Content.assemble(("PROTECTED" + (" " if compact else ": "), "bold"),
                                    (name, "bold"))
        return Content.assemble(label, (name, "bold"))
