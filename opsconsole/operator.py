"""The operator channel: typed questions a running step asks, typed events it emits.

A step never talks to a screen. It calls ``ctx.ask(question)`` and gets a
:class:`Reply`, and ``ctx.emit(event)`` to say what is happening. Who answers
depends on who drives the session:

- the console answers with modal screens and turns events into messages
  (merged when they repeat, so 100,000 output lines never become 100,000
  messages);
- ``opsconsole check`` answers with a :class:`HeadlessOperator`: answers given
  on the command line, ``--yes`` for confirmations in an unprotected
  environment, the sandbox's simulated operator under ``--sandbox``, and
  otherwise :class:`NoAnswer` (the step is reported skipped with the reason).

Questions carry everything an unattended run needs to decide honestly:
``unattended`` is the fail-safe answer a run without a person must take (a
gate whose phase failed answers no-go), ``simulate`` says whether the
sandbox's simulated operator may answer at all (it never approves a shell
command written for people, nor a typed confirmation).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

from .errors import OpsConsoleError

if TYPE_CHECKING:
    from .model import Step

__all__ = [
    "ApproveInBrowser",
    "ApprovePlan",
    "Choice",
    "Choose",
    "Countdown",
    "EnterText",
    "Event",
    "HeadlessOperator",
    "NoAnswer",
    "Note",
    "Operator",
    "OutputLine",
    "Progress",
    "Question",
    "Reply",
    "Started",
    "StateChange",
    "StepCancelled",
    "TypeToConfirm",
]


class NoAnswer(OpsConsoleError):
    """Nobody can answer this question here; the message is the reason (the step is skipped)."""


class StepCancelled(OpsConsoleError):
    """The operator cancelled a question (escape) or the running step."""


# -- questions -----------------------------------------------------------------------


@dataclass(frozen=True)
class Question:
    """Something a step asks the operator. ``key`` names it within its step
    (``--answer STEP.KEY=VALUE``; ``--answer STEP=VALUE`` for a step's only question)."""

    prompt: str
    key: str = "answer"
    detail: str = ""
    #: the answer an unattended run must take (fail-safe); None: it cannot decide
    unattended: str | None = None
    #: why an unattended run cannot answer (the step's skip reason)
    unattended_reason: str = "needs a human; run it in the console, or use --sandbox"
    #: may the sandbox's simulated operator answer it?
    simulate: bool = True
    #: ``--yes`` answers it (confirmations in unprotected environments only)
    confirmation: bool = False
    #: a page a person opens before answering (an OAuth authorization URL): the sandbox's
    #: simulated operator presses ``visit_button`` there first; a text answer is then
    #: where the browser was sent
    visit: str | None = None
    visit_button: str = "approve"


@dataclass(frozen=True)
class Choice:
    key: str
    label: str
    #: why this choice cannot be taken now (shown; the choice is disabled)
    disabled: str | None = None
    tone: Literal["positive", "negative", "neutral"] = "neutral"


@dataclass(frozen=True)
class Choose(Question):
    """Pick one of a few choices, optionally with a note for the evidence."""

    choices: tuple[Choice, ...] = ()
    default: str | None = None
    #: offer a note field (recorded with the answer)
    note: bool = True
    #: the choice ``--yes`` and the simulated operator take
    yes: str | None = None

    def choice(self, key: str) -> Choice | None:
        return next((c for c in self.choices if c.key == key), None)

    def enabled(self) -> list[Choice]:
        return [c for c in self.choices if c.disabled is None]


@dataclass(frozen=True)
class EnterText(Question):
    """A value: free text, or a secret (never shown, registered with the redactor at once)."""

    name: str = "value"
    default: str | None = None
    pattern: str | None = None
    secret: bool = False
    placeholder: str = ""
    #: with ``secret``: the secret parts of the answer, registered instead of all of it
    #: (a pasted redirect URL's code, not its ``http://host:port/path``, which would mask
    #: every other URL of that host by prefix); None: the whole answer is the secret
    secret_parts: Callable[[str], list[str]] | None = None


@dataclass(frozen=True)
class TypeToConfirm(Question):
    """Type ``expected`` (an environment's name) to let ``action`` go ahead."""

    expected: str = ""
    action: str = ""
    simulate: bool = False


@dataclass(frozen=True)
class ApprovePlan(Question):
    """Approve a resolved plan (commands, requests) before it runs."""

    plan: tuple[str, ...] = ()
    #: where the plan runs, in operator words ("this machine", "host db-1")
    where: str = ""
    #: the working directory it runs in ("" when it does not apply)
    directory: str = ""


@dataclass(frozen=True)
class ApproveInBrowser(Question):
    """Approve a sign-in in a browser (OAuth device flow) while the step polls.

    Answered with "approved" (the operator says it is done: polling goes on at its
    interval), "restart" (a new code, when ``restart``) or cancelled. Also asked by a
    trigger with ``approve`` (a connect approved on the server's authorize page: no code).
    The simulated operator answers it only through a browser the sandbox lends it
    (:attr:`HeadlessOperator.browser`)."""

    user_code: str = ""
    verification_uri: str = ""
    verification_uri_complete: str = ""
    #: when the code expires (wall-clock epoch seconds); for an approval without a code,
    #: when the step stops waiting
    expires_at: float = 0.0
    #: may the operator ask for a new code ("restart")? Not when approving a connect the
    #: server started: starting it again is a new action
    restart: bool = True

    @property
    def url(self) -> str:
        """The URL to open: the complete one (code filled in) when there is one."""
        return self.verification_uri_complete or self.verification_uri


@dataclass(frozen=True)
class Reply:
    """The operator's answer. ``value`` is a choice key, the text entered, or "yes"/"no"."""

    value: str | None = None
    note: str = ""
    #: who answered: "operator", "command line", "simulated", "unattended"
    source: str = "operator"

    @property
    def simulated(self) -> bool:
        return self.source == "simulated"

    @property
    def by(self) -> str:
        """Who answered, for a result's summary ("checked by the operator")."""
        return {
            "operator": "by the operator",
            "command line": "on the command line",
            "simulated": "by the sandbox's simulated operator",
            "unattended": "by the unattended run",
        }.get(self.source, f"by {self.source}")


# -- events --------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """Something a running step reports; ``merge_key`` events replace earlier ones."""

    #: events with the same non-empty merge key supersede each other (progress, countdown)
    @property
    def merge_key(self) -> str:
        return ""


@dataclass(frozen=True)
class Started(Event):
    """The session has started the step (confirmations given, intent audited)."""


@dataclass(frozen=True)
class Note(Event):
    """A line for the progress log."""

    text: str = ""


@dataclass(frozen=True)
class OutputLine(Event):
    """One line of a command's output."""

    text: str = ""


@dataclass(frozen=True)
class Progress(Event):
    """How far along: a fraction and/or x of y."""

    label: str = ""
    fraction: float | None = None
    done: int | None = None
    total: int | None = None

    @property
    def merge_key(self) -> str:
        return "progress"


@dataclass(frozen=True)
class StateChange(Event):
    """A followed thing moved to a new state (queued → running → succeeded)."""

    state: str = ""
    detail: str = ""


@dataclass(frozen=True)
class Countdown(Event):
    """Time left until something expires or the next poll (wall-clock epoch seconds)."""

    label: str = ""
    until: float = 0.0

    @property
    def merge_key(self) -> str:
        return "countdown:" + self.label


# -- who answers ---------------------------------------------------------------------


class Operator(Protocol):
    """Whoever answers a session's questions and watches its events."""

    async def ask(self, step: Step, question: Question) -> Reply:
        """The answer, or raise :class:`NoAnswer` / :class:`StepCancelled`."""
        ...

    def event(self, step: Step, event: Event) -> None:
        """Already redacted; must not block."""
        ...


def simulated_reply(question: Question) -> Reply | None:
    """The sandbox's stand-in for a person: says yes, ticks checks, decides gates honestly.

    Honesty comes from the question: a choice that is disabled (go, while the phase has
    failed steps) is never taken, so a simulated gate says no-go exactly when a person
    would have to.
    """
    if not question.simulate:
        return None
    note = "answered by the sandbox's simulated operator"
    if isinstance(question, Choose):
        wanted = question.yes or question.default
        picked = question.choice(wanted) if wanted else None
        if picked is None or picked.disabled is not None:
            enabled = question.enabled()
            picked = next((c for c in enabled if c.tone != "positive"), None) or (
                enabled[0] if enabled else None
            )
        if picked is None:
            return None
        why = ""
        if question.yes and picked.key != question.yes:
            blocked = question.choice(question.yes)
            why = f": {blocked.disabled}" if blocked and blocked.disabled else ""
        return Reply(picked.key, f"{note}{why}", "simulated")
    if isinstance(question, EnterText):
        return Reply(question.default or f"sandbox-{question.name}", note, "simulated")
    if isinstance(question, ApprovePlan):
        return Reply("yes", note, "simulated")
    return None


class Browser(Protocol):
    """The simulated operator's browser (the sandbox's :class:`~opsconsole.sandbox.browser.
    SandboxBrowser`): it approves a sign-in on a page, or presses a button and says where
    the browser is sent."""

    def __call__(self, url: str) -> Awaitable[str]: ...

    def press(self, url: str, button: str = "approve") -> Awaitable[str]: ...


async def _visit_in_sandbox_browser(question: Question, browser: Browser) -> Reply:
    """What a person would paste: open the page, press the button, copy the address bar."""
    from .sandbox.browser import BrowserError

    assert question.visit is not None
    try:
        where = await browser.press(question.visit, question.visit_button)
    except BrowserError as exc:
        raise NoAnswer(f"the sandbox's simulated operator could not use the page: {exc}") from None
    except OSError as exc:
        raise NoAnswer(f"the sandbox's simulated operator could not open the page: {exc}") from None
    note = f"the sandbox's simulated operator pressed {question.visit_button!r} in its browser"
    return Reply(where, note, "simulated")


@dataclass
class HeadlessOperator:
    """Answers for ``opsconsole check``: the command line first, then ``--yes``, then the
    simulated operator (``--sandbox``), else :class:`NoAnswer` with the question's reason."""

    answers: Mapping[str, str] = field(default_factory=dict)
    yes: bool = False
    simulate: bool = False
    protected: bool = False
    #: where events go (the CLI prints notes to stderr); None drops them
    sink: Callable[[Step, Event], None] | None = None
    used: set[str] = field(default_factory=set)
    #: the simulated operator's browser (the sandbox's, :class:`Browser`): approves a
    #: sign-in on a page ("approved", "refused on the page"), presses a button for a
    #: question with ``visit``. None: it has none.
    browser: Browser | None = None

    async def ask(self, step: Step, question: Question) -> Reply:
        for key in (f"{step.id}.{question.key}", step.id):
            if key in self.answers:
                self.used.add(key)
                return Reply(self.answers[key], "given on the command line", "command line")
        if question.unattended is not None:
            return Reply(question.unattended, "decided by the unattended run", "unattended")
        if self.yes and question.confirmation and not self.protected:
            value = question.yes if isinstance(question, Choose) and question.yes else "yes"
            return Reply(value, "confirmed with --yes", "command line")
        if self.simulate and isinstance(question, ApproveInBrowser):
            if self.browser is None:
                raise NoAnswer(question.unattended_reason)
            did = await self.browser(question.url)
            return Reply(
                "approved",
                f"{did} in the sandbox's browser by the sandbox's simulated operator",
                "simulated",
            )
        if self.simulate and question.visit and question.simulate:
            if self.browser is None:  # only a sandbox lends the simulated operator a browser
                raise NoAnswer(question.unattended_reason)
            where = await _visit_in_sandbox_browser(question, self.browser)
            if isinstance(question, EnterText):
                return where
        if self.simulate:
            reply = simulated_reply(question)
            if reply is not None:
                return reply
        raise NoAnswer(question.unattended_reason)

    def event(self, step: Step, event: Event) -> None:
        if self.sink is not None:
            self.sink(step, event)
