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
    ]

    def __init__(self, runbook: Runbook, statuses: dict[str, StepStatus], **kwargs: object) -> None:
        self.runbook = runbook
        options: list[Option] = []
        for section in runbook.sections:
            if not section.step_ids:
                continue
            heading = ("#" * max(section.level, 1)) + " " + section.title
            options.append(Option(Content(heading), id=f"section:{section.index}", disabled=True))
            for step_id in section.step_ids:
                step = runbook.step(step_id)
                options.append(Option(step_line(step, statuses[step_id]), id=step_id))
        super().__init__(*options, **kwargs)  # type: ignore[arg-type]

    @property
    def selected_step_id(self) -> str | None:
        option = self.highlighted_option
        if option is None or option.disabled:
            return None
        return option.id

    def set_status(self, step_id: str, status: StepStatus) -> None:
        self.replace_option_prompt(step_id, step_line(self.runbook.step(step_id), status))

    def select_step(self, step_id: str) -> None:
        index = self.get_option_index(step_id)
        self.highlighted = index
        self.scroll_to_highlight()
