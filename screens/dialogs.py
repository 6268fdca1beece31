"""Small modal questions: each is a ``ModalScreen[T]`` answered with ``dismiss()``.

Every dialog starts with the safe or the expected button focused, answers to
escape with "cancel", and shows outside text (step titles, commands, notes)
as plain text, never as markup.
"""

from __future__ import annotations

import time
from collections.abc import Callable
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
    "BreakGlassDialog",
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

#: keys that reach a dialog which confirms an action this soon after it opened are ignored:
#: an Enter held down, or pressed twice, must never confirm what the operator has not read
KEY_GUARD_S = 0.3


def placeholder(text: str) -> str:
    """``[text]``: an input's hint, told apart from typed text without colour (NO_COLOR
    drops the dim style a placeholder otherwise has)."""
    return f"[{visible(text)}]" if text else ""


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
        /* a small terminal (60x20): the frame scrolls, and focusing a button (tab)
           scrolls it into view */
        overflow-y: auto;
        scrollbar-size-vertical: 1;
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
    #: the dialog confirms an action: answers in the first :data:`KEY_GUARD_S` are ignored
    GUARDED = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._opened_at = time.monotonic()

    def _now(self) -> float:
        """The key guard's clock: the app's ``key_clock`` (tests inject one), else real time."""
        clock: Callable[[], float] | None = getattr(self.app, "key_clock", None)
        return clock() if clock is not None else time.monotonic()

    def too_soon(self) -> bool:
        """True while a guarded dialog is too fresh to take an answer (see KEY_GUARD_S)."""
        return self.GUARDED and self._now() - self._opened_at < KEY_GUARD_S

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
        self._opened_at = self._now()
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
    NOTE_PLACEHOLDER = "[note, optional: goes into the evidence]"

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
    NOTE_PLACEHOLDER = "[note, optional]"


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
        hint = (
            f"{question.name} is a secret: shown as ***, never written to disk"
            if question.secret
            else f"Kept as {question.name} for this run"
        )
        if question.pattern:
            hint += f"; must match /{question.pattern}/"
        yield SafeText(Content(hint), classes="dialog-muted")
        yield Input(
            placeholder=placeholder(question.placeholder or question.default or ""),
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
        yield Input(placeholder="[reason for skipping]", id="reason", compact=True)
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

    TITLE_TEXT = "Type the environment's name to run this step"
    FIRST_FOCUS = "environment"
    GUARDED = True

    def __init__(self, step: Step, question: TypeToConfirm) -> None:
        super().__init__(classes="-danger")
        self.step = step
        self.question = question

    @property
    def environment(self) -> str:
        return self.question.expected

    def compose_body(self) -> ComposeResult:
        # said once: what runs, where (the protected environment), and what to type
        yield SafeText(Content.assemble((self.step.title, "bold")), classes="dialog-text")
        yield SafeText(Content(self.question.action), classes="dialog-code")
        yield SafeText(
            Content.assemble(
                "This changes something in ",
                ("PROTECTED ", "bold $text-error"),
                (self.environment, "bold"),
                ". Type its name to run it; escape cancels.",
            ),
            classes="dialog-text",
        )
        # brackets: without colour (NO_COLOR) a placeholder must not look like typed text
        yield Input(
            placeholder=visible(f"[type {self.environment}]"), id="environment", compact=True
        )
        yield self.error_line()

    def compose_buttons(self) -> ComposeResult:
        yield Button("Run it", variant="error", id="confirm", compact=True)
        yield Button("Cancel", id="cancel", compact=True)

    def _submit(self) -> None:
        if self.too_soon():
            return
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
        elif not self.too_soon():
            self.dismiss(None)


#: what an interrupted step's result says when nothing more specific is known
_INTERRUPTED = "It was interrupted while it ran: it may or may not have acted."


class UnknownOutcomeDialog(Dialog[bool | None]):
    """A mutating step was interrupted: re-running it needs the operator's explicit say."""

    TITLE_TEXT = "Outcome unknown"
    FIRST_FOCUS = "cancel"
    GUARDED = True

    def __init__(self, step: Step, result: StepResult) -> None:
        super().__init__(classes="-danger")
        self.step = step
        self.result = result

    def compose_body(self) -> ComposeResult:
        yield SafeText(
            Content.assemble(("? ", "bold $text-warning"), (self.step.title, "bold")),
            classes="dialog-text",
        )
        # the result's own words say what happened; the advice is not said a second time
        detail = self.result.detail or _INTERRUPTED
        check = "" if "check the system" in detail.lower() else "Check the system first. "
        yield SafeText(Content(detail), classes="dialog-muted")
        yield SafeText(
            Content(f"{check}Re-run it anyway, or cancel and skip it (s) with a reason."),
            classes="dialog-text",
        )

    def compose_buttons(self) -> ComposeResult:
        yield Button("Re-run anyway", variant="warning", id="rerun", compact=True)
        yield Button("Cancel", id="cancel", compact=True)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        if not self.too_soon():
            self.dismiss(event.button.id == "rerun")


def _where(where: str) -> str:
    """``where`` with this machine's name filled in: "this machine (the run's shell
    session)" reads "this machine (ops-laptop), the run's shell session"."""
    if where in {"", "this machine"}:
        return this_machine()
    if where.startswith("this machine (") and where.endswith(")"):
        return f"{this_machine()}, {where[len('this machine (') : -1]}"
    return where


def this_machine() -> str:
    """``this machine (ops-laptop)``: where a local command runs, in the operator's words."""
    import socket

    try:
        name = socket.gethostname()
    except OSError:
        name = ""
    return f"this machine ({visible(name)})" if name else "this machine"


class PlanDialog(Dialog[Reply | None]):
    """Approve a plan before it runs: the exact commands or requests, and where they run.

    Cancel has focus; keys in the dialog's first moments are ignored (KEY_GUARD_S)."""

    TITLE_TEXT = "Run a shell command"
    FIRST_FOCUS = "cancel"
    GUARDED = True

    def __init__(self, step: Step, question: ApprovePlan, environment: str) -> None:
        super().__init__()
        self.step = step
        self.question = question
        self.environment = environment

    def compose_body(self) -> ComposeResult:
        question = self.question
        yield SafeText(Content(question.prompt), classes="dialog-text")
        yield SafeText(Content("\n".join(self.question.plan)), classes="dialog-code")
        where: list[str | tuple[str, str]] = [
            ("Runs on   ", "$text-muted"),
            (_where(question.where), "bold"),
        ]
        if question.directory:
            directory = home_relative(question.directory)
            where += ["\n", ("in        ", "$text-muted"), (directory, "bold")]
        where += ["\n", ("for       ", "$text-muted"), (self.environment, "bold")]
        yield SafeText(Content.assemble(*where), classes="dialog-text")
        yield SafeText(
            Content("Tab to Run, then enter, to run it exactly as shown."),
            classes="dialog-muted",
        )

    def compose_buttons(self) -> ComposeResult:
        yield Button("Run", variant="warning", id="run", compact=True)
        yield Button("Cancel", id="cancel", compact=True)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        if not self.too_soon():
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


def quit_consequence(title: str | None, mutating: bool) -> str:
    """What quitting now does to the step that is running, in the operator's words."""
    if title is None:
        return "No step is running: nothing is interrupted."
    if mutating:
        return (
            f"{title} is running and changes something: it is stopped, and its outcome "
            "becomes unknown. Check the system before you run it again."
        )
    return (
        f"{title} is running and changes nothing: it is stopped and comes back pending; "
        "run it again after you resume."
    )


class QuitDialog(Dialog[bool | None]):
    """ctrl+q with a run in progress: says what happens to the step that is running."""

    TITLE_TEXT = "Quit opsconsole?"
    FIRST_FOCUS = "stay"

    def __init__(self, running_title: str | None = None, mutating: bool = False) -> None:
        super().__init__()
        self.running_title = running_title
        self.mutating = mutating

    def compose_body(self) -> ComposeResult:
        yield SafeText(
            Content("A run is in progress (saved; you can resume it later). Quit?"),
            classes="dialog-text",
        )
        yield SafeText(
            Content(quit_consequence(self.running_title, self.mutating)),
            id="quit-consequence",
            classes="dialog-muted",
        )

    def compose_buttons(self) -> ComposeResult:
        yield Button("Quit", variant="error", id="quit", compact=True)
        yield Button("Stay", variant="primary", id="stay", compact=True)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "quit")


class BreakGlassDialog(Dialog[str | None]):
    """Lift read-only mode for a while: a reason is required; it is audited with the
    operator and the expiry."""

    TITLE_TEXT = "Break glass"
    FIRST_FOCUS = "reason"
    GUARDED = True

    def __init__(self, environment: str, minutes: int) -> None:
        super().__init__(classes="-danger")
        self.environment = environment
        self.minutes = minutes

    def compose_body(self) -> ComposeResult:
        yield SafeText(
            Content.assemble(
                "Steps that change something will run in ",
                (self.environment, "bold"),
                " for ",
                (f"{self.minutes} minutes", "bold"),
                "; then it is read-only again. Your reason, your name and the expiry go into "
                "the audit log.",
            ),
            classes="dialog-text",
        )
        yield Input(placeholder="[reason, e.g. INC-1234: rollback approved]", id="reason",
                    compact=True)
        yield self.error_line()

    def compose_buttons(self) -> ComposeResult:
        yield Button("Break glass", variant="error", id="break", compact=True)
        yield Button("Cancel", id="cancel", compact=True)

    def _submit(self) -> None:
        if self.too_soon():
            return
        reason = self.query_one("#reason", Input).value.strip()
        if not reason:
            self.show_error("A break-glass needs a reason.")
            self.query_one("#reason", Input).focus()
            return
        self.dismiss(reason)

    @on(Input.Submitted, "#reason")
    def _submitted(self) -> None:
        self._submit()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "break":
            self._submit()
        elif not self.too_soon():
            self.dismiss(None)


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
