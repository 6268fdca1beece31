"""The resume prompt: an unfinished run of this runbook exists in this environment."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from textual import on
from textual.app import ComposeResult
from textual.content import Content
from textual.widgets import Button, Input, Static

from .dialogs import Dialog
from .status import counts_text, format_time, run_counts

if TYPE_CHECKING:
    from opsconsole.model import Runbook
    from opsconsole.run import Run
    from opsconsole.runlock import Holder

__all__ = ["HeldChoice", "ResumeChoice", "ResumePrompt", "RunHeldPrompt", "TakeOverDialog"]

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

    def _interrupted(self) -> str | None:
        from opsconsole.run import StepStatus

        running = [r.step_id for r in self.run.results.values() if r.status is StepStatus.RUNNING]
        return running[0] if running else None

    def _stopped_at(self) -> str:
        cursor = self._interrupted() or self.run.cursor
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
                ", interrupted while running step "
                if self._interrupted()
                else ", stopped at step ",
                (self._stopped_at(), "bold"),
                f" ({counts_text(counts)})?",
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


HeldChoice = Literal["read-only", "take-over"]


class RunHeldPrompt(Dialog[HeldChoice | None]):
    """Another console holds this run: look at it read-only, or take it over."""

    CSS_PATH = "resume.tcss"
    TITLE_TEXT = "Run open in another console"
    FIRST_FOCUS = "read-only"

    def __init__(self, run: Run, runbook: Runbook, holder: Holder) -> None:
        super().__init__(classes="-danger")
        self.run = run
        self.runbook = runbook
        self.holder = holder

    def compose_body(self) -> ComposeResult:
        yield Static(
            Content.assemble(
                "Run ",
                (self.run.id, "bold"),
                " of ",
                (self.runbook.title, "bold"),
                " is open in another console: ",
                (self.holder.who, "bold"),
                f" — {self.holder.status}.",
            ),
            id="resume-question",
        )
        yield Static(
            Content(
                "Open it read-only to look without changing anything. Take it over only if "
                "that console is gone or stuck: it turns read-only at its next save, and the "
                "take-over is audited with your reason."
            ),
            id="resume-context",
        )

    def compose_buttons(self) -> ComposeResult:
        yield Button("Open read-only", variant="primary", id="read-only", compact=True)
        yield Button("Take over…", variant="error", id="take-over", compact=True)
        yield Button("Cancel", id="cancel", compact=True)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        if event.button.id in {"read-only", "take-over"}:
            self.dismiss(event.button.id)  # type: ignore[arg-type]
        else:
            self.dismiss(None)


class TakeOverDialog(Dialog[str | None]):
    """Taking a run from a live console: type the environment's name and give a reason."""

    TITLE_TEXT = "Take over the run"
    FIRST_FOCUS = "reason"

    def __init__(self, run: Run, holder: Holder) -> None:
        super().__init__(classes="-danger")
        self.run = run
        self.holder = holder

    def compose_body(self) -> ComposeResult:
        yield Static(
            Content.assemble(
                "Take run ",
                (self.run.id, "bold"),
                " from ",
                (self.holder.who_at, "bold"),
                "? Type ",
                (self.run.environment, "bold"),
                " and say why (it goes into the audit log).",
            ),
            classes="dialog-text",
        )
        yield Input(placeholder="[reason, e.g. my SSH session hung]", id="reason", compact=True)
        yield Input(placeholder=f"[type {self.run.environment}]", id="environment", compact=True)
        yield self.error_line()

    def compose_buttons(self) -> ComposeResult:
        yield Button("Take over", variant="error", id="take", compact=True)
        yield Button("Cancel", id="cancel", compact=True)

    def _submit(self) -> None:
        reason = self.query_one("#reason", Input).value.strip()
        typed = self.query_one("#environment", Input).value.strip()
        if not reason:
            self.show_error("A take-over needs a reason.")
            self.query_one("#reason", Input).focus()
            return
        if typed != self.run.environment:
            self.show_error(f"Type {self.run.environment!r} exactly to take the run over.")
            self.query_one("#environment", Input).focus()
            return
        self.dismiss(reason)

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "reason":
            self.query_one("#environment", Input).focus()
        else:
            self._submit()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "take":
            self._submit()
        else:
            self.dismiss(None)
