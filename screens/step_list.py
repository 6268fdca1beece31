"""The walkthrough's left pane: sections as headings, steps with their state marks."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual.binding import Binding, BindingType
from textual.content import Content
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from .status import step_line

if TYPE_CHECKING:
    from opsconsole.model import Runbook
    from opsconsole.run import StepStatus

__all__ = ["StepList"]


class StepList(OptionList):
    """Cursor-driven list of steps; section titles are headings the cursor skips."""

    DEFAULT_CSS = """
    StepList {
        height: 1fr;
        max-height: 100%;
        text-wrap: nowrap;
        text-overflow: ellipsis;
        border: none;
        padding: 0;
        &:focus {
            border: none;
        }
        & > .option-list--option-disabled {
            color: $text-primary;
            text-style: bold;
        }
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select", "Run", tooltip="Run or answer the selected step"),
        Binding("j", "cursor_down", "Down", show=False, tooltip="Next step (as ↓)"),
        Binding("k", "cursor_up", "Up", show=False, tooltip="Previous step (as ↑)"),
        Binding("g", "first", "First", show=False, tooltip="First step (as home)"),
        Binding("G", "last", "Last", show=False, tooltip="Last step (as end)"),
    ]

    def __init__(self, runbook: Runbook, statuses: dict[str, StepStatus], **kwargs: object) -> None:
        self.runbook = runbook
        self.statuses = dict(statuses)
        #: the ``/`` filter: only steps whose title or id contains it are listed
        self.filter_text = ""
        #: read-only mode: steps that change something are marked as refused
        self.read_only = False
        super().__init__(*self._filtered_options(), **kwargs)  # type: ignore[arg-type]

    def _filtered_options(self) -> list[Option]:
        wanted = self.filter_text.casefold()
        options: list[Option] = []
        for section in self.runbook.sections:
            steps = [self.runbook.step(step_id) for step_id in section.step_ids]
            if wanted:
                steps = [s for s in steps if wanted in f"{s.title} {s.id}".casefold()]
            if not steps:
                continue
            heading = ("#" * max(section.level, 1)) + " " + section.title
            options.append(Option(Content(heading), id=f"section:{section.index}", disabled=True))
            options += [
                Option(step_line(step, self.statuses[step.id], read_only=self.read_only),
                       id=step.id)
                for step in steps
            ]
        return options

    def set_filter(self, text: str) -> None:
        """List only the steps whose title or id contains ``text`` (case ignored)."""
        if text == self.filter_text:
            return
        selected = self.selected_step_id
        self.filter_text = text
        self.set_options(self._filtered_options())
        if selected is not None and self._has(selected):
            self.select_step(selected)
        else:
            first = next((o.id for o in self.options if not o.disabled), None)
            self.highlighted = self.get_option_index(first) if first else None

    def _has(self, step_id: str) -> bool:
        return any(option.id == step_id for option in self.options)

    @property
    def selected_step_id(self) -> str | None:
        option = self.highlighted_option
        if option is None or option.disabled:
            return None
        return option.id

    def set_status(self, step_id: str, status: StepStatus) -> None:
        self.statuses[step_id] = status
        if self._has(step_id):  # filtered out: shown with its state when the filter clears
            self.replace_option_prompt(
                step_id, step_line(self.runbook.step(step_id), status, read_only=self.read_only)
            )

    def set_read_only(self, read_only: bool) -> bool:
        """Mark (or unmark) the steps that change something as refused here; True when
        that changed."""
        if read_only == self.read_only:
            return False
        self.read_only = read_only
        for step in self.runbook.steps:
            if step.mutating and self._has(step.id):
                self.replace_option_prompt(
                    step.id, step_line(step, self.statuses[step.id], read_only=read_only)
                )
        return True

    def select_step(self, step_id: str) -> None:
        if not self._has(step_id):
            self.set_filter("")  # a step is never selected out of sight
        index = self.get_option_index(step_id)
        self.highlighted = index
        self.scroll_to_highlight()
