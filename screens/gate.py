"""The go/no-go gate at the end of a phase: the phase's steps, the blockers, the decision."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import on
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Button, Input, Static

from opsconsole.session import Answer

from .dialogs import Dialog
from .status import STATUS_ICON, STATUS_STYLE

if TYPE_CHECKING:
    from opsconsole.model import Step
    from opsconsole.run import StepResult

__all__ = ["GateDialog"]


class GateDialog(Dialog[Answer | None]):
    """Go / No-go, with an optional reason. Go is disabled while the phase has blockers."""

    CSS_PATH = "gate.tcss"
    TITLE_TEXT = "Go / no-go"

    def __init__(
        self,
        step: Step,
        phase: list[tuple[Step, StepResult]],
        blockers: list[Step],
    ) -> None:
        super().__init__()
        self.step = step
        self.phase = phase
        self.blockers = blockers

    def compose_body(self) -> ComposeResult:
        yield Static(Content.assemble((self.step.title, "bold")), id="gate-title")
        if self.step.spec.prompt.strip() != "Go / no-go?":
            yield Static(Content(self.step.spec.prompt), id="gate-prompt")
        lines: list[str | tuple[str, str]] = []
        for step, result in self.phase:
            if lines:
                lines.append("\n")
            lines += [(STATUS_ICON[result.status], STATUS_STYLE[result.status]), " ", step.title]
        if not lines:
            lines = [("(no steps before this gate)", "$text-muted")]
        with VerticalScroll(id="gate-phase", can_focus=False):
            yield Static(Content.assemble(*lines), id="gate-steps")
        if self.blockers:
            count = len(self.blockers)
            yield Static(
                Content.assemble(
                    ("Go is blocked: ", "bold"),
                    f"{count} step{'s' if count > 1 else ''} of this phase not passed or "
                    "skipped. Run or skip them first, or decide no-go.",
                ),
                id="gate-blockers",
            )
        yield Input(
            placeholder="Reason (optional; recorded with the decision)", id="reason", compact=True
        )
        yield self.error_line()

    def compose_buttons(self) -> ComposeResult:
        yield Button("Go", variant="success", id="go", disabled=bool(self.blockers), compact=True)
        yield Button("No-go", variant="error", id="no-go", compact=True)
        yield Button("Cancel", id="cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#cancel" if self.blockers else "#go").focus()

    def _reason(self) -> str:
        return self.query_one("#reason", Input).value

    @on(Input.Submitted, "#reason")
    def _submitted(self) -> None:
        if self.blockers:
            self.show_error("Go is blocked (see above): choose No-go or Cancel.")
            return
        self.dismiss(Answer(yes=True, note=self._reason()))

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "go":
            self.dismiss(Answer(yes=True, note=self._reason()))
        elif event.button.id == "no-go":
            self.dismiss(Answer(yes=False, note=self._reason()))
        else:
            self.dismiss(None)
