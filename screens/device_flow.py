"""The device-flow sign-in: the user code and the plain verification URL, always on
screen; a QR code of the complete URL when it fits; the countdown to the code's expiry
and the poll state; copy (OSC 52), open a browser (only with a local display, only on
request), a new code, cancel.

It is the dialog of the step's :class:`~opsconsole.operator.ApproveInBrowser`
question. The step keeps polling while it is open and closes it when the answer is in
(approved, denied, expired); the walkthrough forwards the step's events to it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.content import Content
from textual.events import Resize
from textual.widgets import Button, Static

from opsconsole.operator import ApproveInBrowser, Countdown, Event, Progress, Reply, StateChange

from .dialogs import Dialog, SafeText
from .terminal_io import browser_refusal, open_browser, osc52, qr_lines

if TYPE_CHECKING:
    from opsconsole.model import Step

__all__ = ["ConnectDialog", "DeviceFlowDialog", "expires_text"]

#: rows the dialog needs besides the QR code (frame, texts, buttons)
_CHROME_ROWS = 16
_POLLS = re.compile(r"^waiting for approval: (.*?)(?: \(next in [^)]*\))?$")


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds + 0.999))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


def expires_text(expires_at: float, now: float) -> str:
    left = expires_at - now
    return "the code has expired" if left <= 0 else f"code expires in {_duration(left)}"


class DeviceFlowDialog(Dialog[Reply | None]):
    """Sign in on another device while the step polls."""

    TITLE_TEXT = "Sign in with a browser"
    QR_NOTE = "Or scan this QR code with a phone (the same URL, code included)."
    DEFAULT_CSS = """
    DeviceFlowDialog > #dialog {
        width: 80;
    }
    DeviceFlowDialog #device-code {
        text-style: bold;
        color: $accent;
        padding: 0 2;
    }
    DeviceFlowDialog #device-url {
        padding: 0 2;
    }
    DeviceFlowDialog #device-qr {
        width: auto;
        height: auto;
        margin: 1 0 0 2;
    }
    DeviceFlowDialog #device-state {
        margin-top: 1;
    }
    DeviceFlowDialog #dialog-buttons Button {
        margin-left: 1;
        min-width: 0;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "copy", "Copy URL", tooltip="Copy the URL to the clipboard (OSC 52)"),
        Binding("o", "open_browser", "Open browser",
                tooltip="Open the URL in a browser on this machine (local display only)"),
        Binding("r", "restart", "New code", tooltip="Start again with a new code"),
        Binding("enter", "approved", "Approved", tooltip="I approved it: keep polling"),
    ]

    def __init__(
        self,
        step: Step,
        question: ApproveInBrowser,
        *,
        clock: Callable[[], float] = time.time,
        environ: dict[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.step = step
        self.question = question
        self.clock = clock
        self.environ = environ
        self.polls = "no poll yet"
        self.next_poll: float | None = None
        self.qr = qr_lines(question.url) if question.url else []

    # -- layout --------------------------------------------------------------------

    def compose_body(self) -> ComposeResult:
        question = self.question
        yield SafeText(Content.assemble((self.step.title, "bold")), classes="dialog-text")
        yield SafeText("Open this URL in a browser on any device:", classes="dialog-muted")
        yield SafeText(question.verification_uri, id="device-url", classes="dialog-text")
        if question.user_code:
            yield SafeText("and enter the code:", classes="dialog-muted")
            yield SafeText(question.user_code, id="device-code", classes="dialog-text")
        qr = Static(
            Content.assemble(("\n".join(self.qr), "white on black")), id="device-qr",
            markup=False,
        )
        qr.display = False
        yield qr
        yield SafeText("", id="device-qr-note", classes="dialog-muted")
        yield SafeText(self._state_text(), id="device-state", classes="dialog-text")
        yield SafeText("", id="device-note", classes="dialog-muted")

    def compose_buttons(self) -> ComposeResult:
        yield Button("c Copy URL", id="copy", compact=True)
        yield Button("o Browser", id="open", compact=True,
                     disabled=browser_refusal(self.environ) is not None)
        if self.question.restart:
            yield Button("r New code", id="restart", compact=True)
        yield Button("⏎ Approved", id="approved", variant="success", compact=True)
        yield Button("esc Cancel", id="cancel", compact=True)

    def on_mount(self) -> None:
        self._fit_qr()
        refusal = browser_refusal(self.environ)
        if refusal is not None:
            self.note(refusal[0].upper() + refusal[1:] + ".")
        self.query_one("#approved", Button).focus()
        self.set_interval(1.0, self._tick)

    @on(Resize)
    def _resized(self, event: Resize) -> None:
        self._fit_qr()

    def _fit_qr(self) -> None:
        """The QR code only when it fits; the URL above says the same either way."""
        if not self.qr:
            return
        size = self.app.size
        fits = (
            len(self.qr) + _CHROME_ROWS <= size.height
            and len(self.qr[0]) + 8 <= min(size.width, 80)
        )
        self.query_one("#device-qr").display = fits
        note = self.query_one("#device-qr-note", SafeText)
        if fits:
            note.update(self.QR_NOTE)
        else:
            note.update(
                f"(No room for a QR code: it needs a {len(self.qr[0]) + 8}x"
                f"{len(self.qr) + _CHROME_ROWS} terminal, this one is {size.width}x"
                f"{size.height}. The URL above is all you need.)"
            )

    # -- state ---------------------------------------------------------------------

    def _state_text(self) -> str:
        now = self.clock()
        parts = [expires_text(self.question.expires_at, now)]
        if self.next_poll is not None:
            parts.append(f"next poll in {_duration(self.next_poll - now)}")
        parts.append(self.polls)
        return " · ".join(parts)

    def _tick(self) -> None:
        # events may be forwarded before the dialog is composed (a new code's dialog)
        for state in self.query("#device-state").results(SafeText):
            state.update(self._state_text())

    def step_events(self, events: list[Event]) -> None:
        """The step's events, forwarded by the walkthrough while this dialog is open."""
        for event in events:
            if isinstance(event, Progress):
                match = _POLLS.match(event.label)
                self.polls = match.group(1) if match else event.label
            elif isinstance(event, Countdown) and event.label == "next poll":
                self.next_poll = event.until
        self._tick()

    def note(self, text: str) -> None:
        self.query_one("#device-note", SafeText).update(text)

    # -- actions -------------------------------------------------------------------

    def action_copy(self) -> None:
        import os

        environ = self.environ if self.environ is not None else os.environ
        url = self.question.url
        if environ.get("TMUX") or environ.get("STY"):
            driver: Any = getattr(self.app, "_driver", None)
            if driver is not None:
                driver.write(osc52(url, environ))  # wrapped for tmux / screen passthrough
        else:
            self.app.copy_to_clipboard(url)
        self.note("Sent to your clipboard with OSC 52, if your terminal allows it "
                  "(the URL stays above either way).")

    def action_open_browser(self) -> None:
        refusal = browser_refusal(self.environ)
        if refusal is not None:
            self.note(refusal[0].upper() + refusal[1:] + ".")
            return
        self._open(self.question.url)

    @work(thread=True, exit_on_error=False)
    def _open(self, url: str) -> None:
        problem = open_browser(url, self.environ)
        self.app.call_from_thread(
            self.note, "Handed to your browser." if problem is None else
            f"No browser opened: {problem}. Open the URL yourself."
        )

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "restart" and not self.question.restart:
            return False  # a connect the server started: starting again is a new action
        return True

    def action_restart(self) -> None:
        if self.question.restart:
            self.dismiss(Reply("restart", "a new code, asked for in the console"))

    def action_approved(self) -> None:
        self.dismiss(Reply("approved", "approved in the browser (the operator says)"))

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        actions = {"copy": self.action_copy, "open": self.action_open_browser,
                   "restart": self.action_restart, "approved": self.action_approved,
                   "cancel": self.action_cancel}
        action = actions.get(event.button.id or "")
        if action is not None:
            action()


class ConnectDialog(DeviceFlowDialog):
    """Approve a connect the server started (``ops trigger`` with ``approve``): the same
    URL, copy, QR and browser as a sign-in, no code and no new code; the state the step
    reads back from the server, and how long it goes on waiting."""

    TITLE_TEXT = "Approve in a browser"
    QR_NOTE = "Or scan this QR code with a phone (the same URL)."
    #: the last state the step read back from the server
    server_state: str | None = None

    def _state_text(self) -> str:
        left = self.question.expires_at - self.clock()
        parts = [
            "stopped waiting" if left <= 0 else f"waiting up to {_duration(left)} more",
            f"server says: {self.server_state}" if self.server_state else
            "waiting for the server's state",
        ]
        return " · ".join(parts)

    def step_events(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, StateChange):
                self.server_state = event.state
        self._tick()
