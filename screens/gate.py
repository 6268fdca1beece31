"""The go/no-go gate at the end of a phase: the phase's steps, the blockers, the decision."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import on
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Button, Input

from opsconsole.operator import Reply

from .dialogs import Dialog, SafeText
from .status import STATUS_ICON, STATUS_STYLE

if TYPE_CHECKING:
    from opsconsole.model import Step
    from opsconsole.steps.gate import GateQuestion

__all__ = ["GateDialog"]


class GateDialog(Dialog[Reply | None]):
    """Go / No-go, with an optional reason. Go is disabled while the phase has blockers."""

    CSS_PATH = "gate.tcss"
    TITLE_TEXT = "Go / no-go"
    GUARDED = True

    def __init__(self, step: Step, question: GateQuestion) -> None:
        super().__init__()
        self.step = step
        self.question = question
        self.blockers = question.blockers

    def compose_body(self) -> ComposeResult:
        yield SafeText(Content.assemble((self.step.title, "bold")), id="gate-title")
        if self.question.prompt.strip() != "Go / no-go?":
            yield SafeText(Content(self.question.prompt), id="gate-prompt")
        lines: list[str | tuple[str, str]] = []
        for line in self.question.phase:
            if lines:
                lines.append("\n")
            lines += [(STATUS_ICON[line.status], STATUS_STYLE[line.status]), " ", line.title]
        if not lines:
            lines = [("(no steps before this gate)", "$text-muted")]
        with VerticalScroll(id="gate-phase", can_focus=False):
            yield SafeText(Content.assemble(*lines), id="gate-steps")
        if self.blockers:
            count = len(self.blockers)
            yield SafeText(
                Content.assemble(
                    ("Go is blocked: ", "bold"),
                    f"{count} step{'s' if count > 1 else ''} of this phase not passed or "
                    "skipped. Run or skip them first, or decide no-go.",
                ),
                id="gate-blockers",
            )
        yield Input(
            placeholder="[reason, optional: recorded with the decision]", id="reason", compact=True
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
        if self.too_soon():
            return
        if self.blockers:
            self.show_error("Go is blocked (see above): choose No-go or Cancel.")
            return
        self.dismiss(Reply("go", self._reason()))

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        if self.too_soon():
            return
        if event.button.id in {"go", "no-go"}:
            self.dismiss(Reply(event.button.id, self._reason()))
        else:
            self.dismiss(None)
