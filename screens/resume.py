"""The resume prompt: an unfinished run of this runbook exists in this environment."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from textual import on
from textual.app import ComposeResult
from textual.content import Content
from textual.widgets import Button, Static

from .dialogs import Dialog
from .status import format_time, run_counts

if TYPE_CHECKING:
    from opsconsole.model import Runbook
    from opsconsole.run import Run

__all__ = ["ResumeChoice", "ResumePrompt"]

ResumeChoice = Literal["resume", "new"]


class ResumePrompt(Dialog[ResumeChoice | None]):
    """Resume / Start new / Cancel."""

    CSS_PATH = "resume.tcss"
    TITLE_TEXT = "Unfinished run"
    FIRST_FOCUS = "resume"

    def __init__(self, run: Run, runbook: Runbook) -> None:
        super().__init__()
        self.run = run
        self.runbook = runbook

    def _stopped_at(self) -> str:
        cursor = self.run.cursor
        if cursor is None:
            return "the end"
        try:
            return self.runbook.step(cursor).title
        except KeyError:
            return cursor

    def compose_body(self) -> ComposeResult:
        run = self.run
        counts = run_counts(run)
        yield Static(
            Content.assemble(
                "Resume run ",
                (run.id, "bold"),
                " started at ",
                (format_time(run.started_at), "bold"),
                ", stopped at step ",
                (self._stopped_at(), "bold"),
                " (",
                (f"{counts['passed']} passed", "$text-success"),
                ", ",
                (f"{counts['failed']} failed", "$text-error" if counts["failed"] else ""),
                ", ",
                (f"{counts['unknown']} unknown", "$text-warning" if counts["unknown"] else ""),
                ")?",
            ),
            id="resume-question",
        )
        yield Static(
            Content.assemble(
                ("Runbook ", "$text-muted"),
                (self.runbook.title, "$text-muted"),
                ("  ·  environment ", "$text-muted"),
                (run.environment, "$text-muted"),
            ),
            id="resume-context",
        )
        if run.runbook_digest != self.runbook.digest:
            yield Static(
                Content(
                    "The runbook file changed since this run started; results are kept by step id."
                ),
                id="resume-changed",
            )

    def compose_buttons(self) -> ComposeResult:
        yield Button("Resume", variant="primary", id="resume", compact=True)
        yield Button("Start new", id="new", compact=True)
        yield Button("Cancel", id="cancel", compact=True)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "resume":
            self.dismiss("resume")
        elif event.button.id == "new":
            self.dismiss("new")
        else:
            self.dismiss(None)
