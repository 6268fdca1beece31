"""Small modal questions: each is a ``ModalScreen[T]`` answered with ``dismiss()``.

Every dialog starts with the safe or the expected button focused, answers to
escape with "cancel", and shows outside text (step titles, commands, notes)
as plain text, never as markup.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from opsconsole.operator import ApprovePlan, Choose, EnterText, Reply, TypeToConfirm

from .status import visible, visible_content

if TYPE_CHECKING:
    from opsconsole.model import Step
    from opsconsole.run import StepResult

__all__ = [
    "CancelStepDialog",
    "ChoiceDialog",
    "ConfirmStepDialog",
    "Dialog",
    "ErrorDialog",
    "InputDialog",
    "ManualCheckDialog",
    "PlanDialog",
    "QuitDialog",
    "SafeText",
    "SkipReasonDialog",
    "TypedConfirmDialog",
    "UnknownOutcomeDialog",
]

ResultT = TypeVar("ResultT")


def home_relative(path: str) -> str:
    """``/home/ops/srv`` -> ``~/srv``: the directory as the operator's shell shows it."""
    from pathlib import Path

    try:
        relative = Path(path).relative_to(Path.home())
    except ValueError:
        return path
    return "~" if str(relative) == "." else f"~/{relative}"


class SafeText(Static):
    """A Static for text from outside (titles, commands, details, errors): never markup,
    control characters drawn as symbols, so no escape sequence reaches the terminal."""

    def __init__(self, content: Content | str = "", **kwargs: Any) -> None:
        super().__init__(_safe(content), markup=False, **kwargs)

    def update(self, content: Any = "", *, layout: bool = True) -> None:
        super().update(_safe(content), layout=layout)


def _safe(content: Content | str) -> Content | str:
    return visible(content) if isinstance(content, str) else visible_content(content)


class Dialog(ModalScreen[ResultT]):
    """A framed question in the middle of the screen; escape cancels (dismisses None)."""

    DEFAULT_CSS = """
    Dialog {
        align: center middle;
        background: $background 60%;
    }
    Dialog > #dialog {
        width: 76;
        max-width: 100%;
        height: auto;
        max-height: 100%;
        border: thick $primary;
        border-title-style: bold;
        border-title-color: $text;
        background: $surface;
        padding: 0 1;
    }
    Dialog.-danger > #dialog {
        border: thick $error;
    }
    Dialog .dialog-text {
        width: 1fr;
        height: auto;
    }
    Dialog .dialog-muted {
        width: 1fr;
        height: auto;
        color: $text-muted;
    }
    Dialog .dialog-error {
        width: 1fr;
        height: auto;
        color: $text-error;
        text-style: bold;
    }
    Dialog .dialog-code {
        width: 1fr;
        height: auto;
        max-height: 8;
        padding: 0 1;
        margin: 1 0 0 0;
        background: $boost;
        color: $text;
    }
    Dialog Input {
        margin: 1 0 0 0;
        background: $boost;
    }
    Dialog Input:focus {
        background: $primary 20%;
    }
    Dialog #dialog-buttons {
        width: 1fr;
        height: auto;
        align-horizontal: right;
        margin-top: 1;
    }
    Dialog #dialog-buttons Button {
        margin-left: 2;
        min-width: 10;
        padding: 0 1;
    }
    Dialog #dialog-buttons Button:focus {
        text-style: bold reverse;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", tooltip="Close without answering"),
        Binding("left", "app.focus_previous", "Previous button", show=False),
        Binding("right", "app.focus_next", "Next button", show=False),
    ]

    #: the dialog frame's title
    TITLE_TEXT = ""
    #: id of the widget focused when the dialog opens
    FIRST_FOCUS: str | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog") as frame:
            frame.border_title = self.TITLE_TEXT
            yield from self.compose_body()
            with Horizontal(id="dialog-buttons"):
                yield from self.compose_buttons()

    def compose_body(self) -> ComposeResult:
        yield from ()

    def compose_buttons(self) -> ComposeResult:
        yield from ()

    def on_mount(self) -> None:
        if self.FIRST_FOCUS:
            self.query_one(f"#{self.FIRST_FOCUS}").focus()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def show_error(self, text: str) -> None:
        error = self.query_one("#dialog-error", Static)
        error.update(Content(text))
        error.display = True

    @staticmethod
    def error_line() -> Static:
        line = SafeText("", id="dialog-error", classes="dialog-error")
        line.display = False
        return line


class ChoiceDialog(Dialog[Reply | None]):
    """A question with a few answers (a manual check, a yes/no), and an optional note.

    The note field has focus when there is one, so what the operator types straight
    away is never lost; enter answers with the question's default choice."""

    TITLE_TEXT = "Question"
    NOTE_PLACEHOLDER = "Note (optional; goes into the evidence)"

    def __init__(self, step: Step, question: Choose) -> None:
        super().__init__()
        self.step = step
        self.question = question

    def compose_body(self) -> ComposeResult:
        question = self.question
        yield SafeText(Content.assemble((question.prompt, "bold")), classes="dialog-text")
        if question.detail:
            yield SafeText(Content(question.detail), classes="dialog-muted")
        for choice in question.choices:
            if choice.disabled:
                yield SafeText(
                    Content.assemble((f"{choice.label}: ", "bold"), choice.disabled),
                    classes="dialog-muted",
                )
        if question.note:
            yield Input(placeholder=self.NOTE_PLACEHOLDER, id="note", compact=True)

    def compose_buttons(self) -> ComposeResult:
        variants = {"positive": "success", "negative": "error", "neutral": "default"}
        for choice in self.question.choices:
            yield Button(
                Content(visible(choice.label)),  # a step type's words: never markup
                variant=variants[choice.tone],  # type: ignore[arg-type]
                id=f"choice-{choice.key}",
                disabled=choice.disabled is not None,
                compact=True,
            )
        yield Button("Cancel", id="cancel", compact=True)

    def on_mount(self) -> None:
        if self.question.note:
            self.query_one("#note", Input).focus()
            return
        default = self.question.choice(self.question.default or "")
        if default is not None and default.disabled is None:
            self.query_one(f"#choice-{default.key}", Button).focus()
        else:
            self.query_one("#cancel", Button).focus()

    def _note(self) -> str:
        return self.query_one("#note", Input).value if self.question.note else ""

    @on(Input.Submitted, "#note")
    def _submitted(self) -> None:
        default = self.question.choice(self.question.default or "")
        if default is None or default.disabled is not None:
            self.query_one("#cancel", Button).focus()
            return
        self.dismiss(Reply(default.key, self._note()))

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        button_id = event.button.id or ""
        if button_id.startswith("choice-"):
            self.dismiss(Reply(button_id.removeprefix("choice-"), self._note()))
        else:
            self.dismiss(None)


class ManualCheckDialog(ChoiceDialog):
    """A task-list item: did the operator check it? (Checked / Not OK + an optional note)."""

    TITLE_TEXT = "Manual check"


class ConfirmStepDialog(ChoiceDialog):
    """An ``ops confirm`` step: a yes/no question recorded in the run."""

    TITLE_TEXT = "Confirm"
    NOTE_PLACEHOLDER = "Note (optional)"


class InputDialog(Dialog[Reply | None]):
    """A value for the run (hidden when it is a secret)."""

    TITLE_TEXT = "Input"
    FIRST_FOCUS = "value"

    def __init__(self, step: Step, question: EnterText) -> None:
        super().__init__()
        self.step = step
        self.question = question

    def compose_body(self) -> ComposeResult:
        question = self.question
        yield SafeText(Content.assemble((question.prompt, "bold")), classes="dialog-text")
        if question.detail:
            yield SafeText(Content(question.detail), classes="dialog-text")
        hint = f"Saved as {question.name}"
        if question.secret:
            hint += " (secret: never shown, never saved)"
        if question.pattern:
            hint += f"; must match /{question.pattern}/"
        yield SafeText(Content(hint), classes="dialog-muted")
        yield Input(
            placeholder=visible(question.placeholder or question.default or ""),
            password=question.secret,
            id="value",
            compact=True,
        )
        yield self.error_line()

    def compose_buttons(self) -> ComposeResult:
        yield Button("OK", variant="primary", id="ok", compact=True)
        yield Button("Cancel", id="cancel", compact=True)

    def _submit(self) -> None:
        from opsconsole.patterns import fullmatch

        question = self.question
        value = self.query_one("#value", Input).value or (question.default or "")
        if not value:
            self.show_error("Type a value (or cancel and skip the step with a reason).")
            return
        if question.pattern and not fullmatch(question.pattern, value):
            self.show_error(f"That does not match /{question.pattern}/.")
            return
        self.dismiss(Reply(value))

    @on(Input.Submitted, "#value")
    def _submitted(self) -> None:
        self._submit()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "ok":
            self._submit()
        else:
            self.dismiss(None)


class SkipReasonDialog(Dialog[str | None]):
    """Skip a step: the reason is required (it goes into the evidence)."""

    TITLE_TEXT = "Skip step"
    FIRST_FOCUS = "reason"

    def __init__(self, step: Step) -> None:
        super().__init__()
        self.step = step

    def compose_body(self) -> ComposeResult:
        yield SafeText(
            Content.assemble("Skip ", (self.step.title, "bold"), "?"), classes="dialog-text"
        )
        yield SafeText(
            Content("The reason is required; it is recorded in the run and the evidence."),
            classes="dialog-muted",
        )
        yield Input(placeholder="Reason for skipping", id="reason", compact=True)
        yield self.error_line()

    def compose_buttons(self) -> ComposeResult:
        yield Button("↷ Skip", variant="warning", id="skip", compact=True)
        yield Button("Cancel", id="cancel", compact=True)

    def _submit(self) -> None:
        reason = self.query_one("#reason", Input).value.strip()
        if not reason:
            self.show_error("A skip needs a reason.")
            self.query_one("#reason", Input).focus()
            return
        self.dismiss(reason)

    @on(Input.Submitted, "#reason")
    def _submitted(self) -> None:
        self._submit()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "skip":
            self._submit()
        else:
            self.dismiss(None)


class TypedConfirmDialog(Dialog[Reply | None]):
    """A mutating step in a protected environment: type the environment's name to go on."""

    TITLE_TEXT = "Protected environment"
    FIRST_FOCUS = "environment"

    def __init__(self, step: Step, question: TypeToConfirm) -> None:
        super().__init__(classes="-danger")
        self.step = step
        self.question = question

    @property
    def environment(self) -> str:
        return self.question.expected

    def compose_body(self) -> ComposeResult:
        yield SafeText(
            Content.assemble(
                ("PROTECTED: ", "bold $text-error"),
                (self.environment, "bold"),
                " — this step changes something:",
            ),
            classes="dialog-text",
        )
        yield SafeText(Content.assemble((self.step.title, "bold")), classes="dialog-text")
        yield SafeText(Content(self.question.action), classes="dialog-code")
        yield SafeText(
            Content.assemble(
                "Type ", (self.environment, "bold"), " to run it, or escape to cancel."
            ),
            classes="dialog-text",
        )
        yield Input(placeholder=visible(self.environment), id="environment", compact=True)
        yield self.error_line()

    def compose_buttons(self) -> ComposeResult:
        yield Button("Run it", variant="error", id="confirm", compact=True)
        yield Button("Cancel", id="cancel", compact=True)

    def _submit(self) -> None:
        typed = self.query_one("#environment", Input).value.strip()
        if typed != self.environment:
            self.show_error(f"That is not {self.environment!r}: type the name exactly.")
            self.query_one("#environment", Input).focus()
            return
        self.dismiss(Reply(typed))

    @on(Input.Submitted, "#environment")
    def _submitted(self) -> None:
        self._submit()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "confirm":
            self._submit()
        else:
            self.dismiss(None)


class UnknownOutcomeDialog(Dialog[bool | None]):
    """A mutating step was interrupted: re-running it needs the operator's explicit say."""

    TITLE_TEXT = "Outcome unknown"
    FIRST_FOCUS = "cancel"

    def __init__(self, step: Step, result: StepResult) -> None:
        super().__init__(classes="-danger")
        self.step = step
        self.result = result

    def compose_body(self) -> ComposeResult:
        yield SafeText(
            Content.assemble(("? ", "bold $text-warning"), (self.step.title, "bold")),
            classes="dialog-text",
        )
        yield SafeText(
            Content(
                "This step was interrupted while it ran: it may or may not have acted. "
                "Check the system first. Then re-run it, or skip it (s) with a reason."
            ),
            classes="dialog-text",
        )
        if self.result.detail:
            yield SafeText(Content(self.result.detail), classes="dialog-muted")

    def compose_buttons(self) -> ComposeResult:
        yield Button("Re-run anyway", variant="warning", id="rerun", compact=True)
        yield Button("Cancel", id="cancel", compact=True)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "rerun")


class PlanDialog(Dialog[Reply | None]):
    """Approve a plan before it runs: the exact commands or requests, and where they run."""

    TITLE_TEXT = "Run a shell command"
    FIRST_FOCUS = "cancel"

    def __init__(self, step: Step, question: ApprovePlan, environment: str) -> None:
        super().__init__()
        self.step = step
        self.question = question
        self.environment = environment

    def compose_body(self) -> ComposeResult:
        question = self.question
        parts: list[str | tuple[str, str]] = [
            f"{question.prompt} It runs on ",
            (question.where or "this machine", "bold"),
        ]
        if question.directory:
            parts += [", in ", (home_relative(question.directory), "bold")]
        parts += [" (environment ", (self.environment, "bold"), "):"]
        yield SafeText(Content.assemble(*parts), classes="dialog-text")
        yield SafeText(Content("\n".join(self.question.plan)), classes="dialog-code")
        yield SafeText(
            Content("Tab to Run and press enter to run it exactly as shown."),
            classes="dialog-muted",
        )

    def compose_buttons(self) -> ComposeResult:
        yield Button("Run", variant="warning", id="run", compact=True)
        yield Button("Cancel", id="cancel", compact=True)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(Reply("yes") if event.button.id == "run" else None)


class CancelStepDialog(Dialog[bool | None]):
    """Escape while a mutating step runs: stopping it may leave its outcome unknown."""

    TITLE_TEXT = "Stop the running step?"
    FIRST_FOCUS = "keep"

    def __init__(self, title: str) -> None:
        super().__init__(classes="-danger")
        self.step_title = title

    def compose_body(self) -> ComposeResult:
        yield SafeText(Content.assemble((self.step_title, "bold")), classes="dialog-text")
        yield SafeText(
            Content(
                "This step changes something. If its action already went out, stopping it "
                "now leaves its outcome unknown: check the system before running it again."
            ),
            classes="dialog-text",
        )

    def compose_buttons(self) -> ComposeResult:
        yield Button("Stop it", variant="error", id="stop", compact=True)
        yield Button("Keep running", variant="primary", id="keep", compact=True)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "stop")


class QuitDialog(Dialog[bool | None]):
    """ctrl+q with a run in progress."""

    TITLE_TEXT = "Quit opsconsole?"
    FIRST_FOCUS = "stay"

    def compose_body(self) -> ComposeResult:
        yield SafeText(
            Content("A run is in progress (saved; you can resume it later). Quit?"),
            classes="dialog-text",
        )
        yield SafeText(
            Content("A step that is still running is interrupted and comes back as unknown."),
            classes="dialog-muted",
        )

    def compose_buttons(self) -> ComposeResult:
        yield Button("Quit", variant="error", id="quit", compact=True)
        yield Button("Stay", variant="primary", id="stay", compact=True)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "quit")


class ErrorDialog(Dialog[None]):
    """Something unexpected went wrong; the run is saved."""

    TITLE_TEXT = "Unexpected error"
    FIRST_FOCUS = "ok"

    def __init__(self, message: str, advice: str) -> None:
        super().__init__(classes="-danger")
        self.message = message
        self.advice = advice

    def compose_body(self) -> ComposeResult:
        yield SafeText(Content(self.message), classes="dialog-code")
        yield SafeText(Content(self.advice), classes="dialog-text")

    def compose_buttons(self) -> ComposeResult:
        yield Button("OK", variant="primary", id="ok", compact=True)

    @on(Button.Pressed)
    def _pressed(self) -> None:
        self.dismiss(None)
