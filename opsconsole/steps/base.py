"""What a step kind is: its spec, its defaults, how it describes itself, how it runs.

A step kind is one module in ``opsconsole/steps/`` holding a :class:`StepType`
subclass, registered with :func:`opsconsole.steps.register`. The loader, the
session, ``check`` and the console ask the step type; nothing else switches
on the kind.

``run(ctx)`` never touches the screen and never writes state: it asks through
``ctx.ask``, reports through ``ctx.emit``, saves partial results with
``ctx.checkpoint`` and returns an :class:`Outcome`, which the session
redacts, records, audits and saves.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, field_validator

from ..run import Assertion, StepStatus

if TYPE_CHECKING:
    from ..analysis import Clock
    from ..artifacts import Artifact
    from ..clients import Clients
    from ..model import Step
    from ..operator import Event, Question, Reply
    from ..run import StepResult
    from ..secrets import Redactor, SecretPolicy
    from ..template import RenderContext

__all__ = [
    "Outcome",
    "Produces",
    "RunView",
    "StepContext",
    "StepSpec",
    "StepType",
]

_STEP_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


class StepSpec(BaseModel):
    """Fields every ``ops <kind>`` block may have; unknown keys are errors (typos are reported)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    id: str | None = None
    title: str | None = None
    #: None means "the kind decides" (StepType.mutates)
    mutating: bool | None = None
    #: on the dashboard: checked again and again outside any run (read-only steps only)
    watch: bool = False

    @field_validator("id")
    @classmethod
    def _id_shape(cls, value: str | None) -> str | None:
        if value is not None and (not _STEP_ID.fullmatch(value) or ".." in value):
            raise ValueError(
                "a step id uses letters, digits, '-', '_' and '.' (at most 100, no '..')"
            )
        return value


SpecT = TypeVar("SpecT", bound=StepSpec)


@dataclass(frozen=True)
class Produces:
    """Run variables and secrets a step makes available to the steps after it."""

    variables: frozenset[str] = frozenset()
    secrets: frozenset[str] = frozenset()


@dataclass
class Outcome:
    """What one attempt of a step came to; the session turns it into the StepResult."""

    status: StepStatus
    summary: str
    assertions: list[Assertion] = field(default_factory=list)
    artifacts: list[Artifact] = field(default_factory=list)
    captures: dict[str, str] = field(default_factory=dict)
    secret_captures: dict[str, str] = field(default_factory=dict)
    duration_ms: float | None = None
    #: a human step's answer as recorded ("checked", "go", a value, "***")
    answer: str | None = None
    note: str = ""
    #: the run ends here (a no-go gate)
    stop_run: bool = False
    #: extra fields for this step's audit record (human steps: what was decided)
    audit: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def judged(cls, assertions: list[Assertion], summary: str, **kwargs: Any) -> Outcome:
        """Failed (with the first failed assertion as summary) unless every assertion held."""
        failed = [a for a in assertions if not a.ok]
        if failed:
            return cls(StepStatus.FAILED, failed[0].detail, assertions=assertions, **kwargs)
        return cls(StepStatus.PASSED, summary, assertions=assertions, **kwargs)


class RunView(Protocol):
    """What a step may read of the run it is part of (a gate reads its phase)."""

    def result(self, step_id: str) -> StepResult: ...

    def phase_of(self, step_id: str) -> list[Step]: ...

    def gate_blockers(self, step: Step) -> list[Step]: ...


class StepContext(Generic[SpecT]):
    """Everything a running step may use; built by the session for one attempt."""

    def __init__(
        self,
        *,
        step: Step,
        spec: SpecT,
        variables: Mapping[str, str],
        secret: Callable[[str], str],
        render: Callable[..., str],
        redactor: Redactor,
        clients: Clients,
        clock: Clock,
        run: RunView,
        ask: Callable[[Question], Any],
        emit: Callable[[Event], None],
        checkpoint: Callable[[list[Artifact]], None],
        secret_labels: Mapping[str, str],
        mutating: bool,
        on_acting: Callable[[], None] = lambda: None,
        secret_policy: SecretPolicy | None = None,
        trusted: frozenset[str] = frozenset(),
    ) -> None:
        self.step = step
        self.spec = spec
        self.variables = variables
        self.secret = secret
        self._render = render
        self.redactor = redactor
        self.clients = clients
        self.clock = clock
        self.run = run
        self._ask = ask
        self._emit = emit
        self._checkpoint = checkpoint
        self.secret_labels = secret_labels
        self.mutating = mutating
        self._on_acting = on_acting
        #: which hosts may receive which secrets (None: no policy, e.g. in tests)
        self.secret_policy = secret_policy
        #: configuration variables (a base URL may start a URL template unescaped)
        self.trusted = trusted
        #: the step's action may have reached the outside world (set by :meth:`acting`)
        self.acted = False

    def render(self, text: str, context: RenderContext = "text") -> str:
        """``{{ }}`` references filled with run variables and secrets (raises TemplateError).

        ``context`` says where the text goes: "text", "url", "shell" or "pattern"; values
        from the run are escaped for it, so data never becomes code."""
        return self._render(text, context=context)

    async def ask(self, question: Question) -> Reply:
        """Ask the operator; raises NoAnswer (nobody can answer here) or StepCancelled."""
        reply: Reply = await self._ask(question)
        return reply

    def emit(self, event: Event) -> None:
        self._emit(event)

    def note(self, text: str) -> None:
        """A line for the progress log (shorthand for emitting a Note)."""
        from ..operator import Note

        self._emit(Note(text=text))

    def checkpoint(self, artifacts: list[Artifact]) -> None:
        """Save what the step has so far, so a crash keeps it (throttled by the session)."""
        self._checkpoint(artifacts)

    def acting(self) -> None:
        """Say the action is about to go out. The session writes the audit intent first
        (raising AuditUnavailable when it cannot: the step must not act) and marks the step
        running on disk; from here a cancel or a crash is 'unknown'."""
        self._on_acting()
        self.acted = True


class StepType(ABC, Generic[SpecT]):
    """One kind of step. Subclasses set the class attributes and implement ``run``."""

    #: the word after ``ops`` in the fence's info string
    kind: ClassVar[str]
    #: the pydantic model of the block's YAML body
    spec: ClassVar[type[StepSpec]]
    #: one line for ``lint``'s list of known kinds and the docs
    description: ClassVar[str] = ""
    #: needs an operator's answer rather than I/O (manual checks, inputs, gates)
    human: ClassVar[bool] = False
    #: mutates by default (a spec's ``mutating:`` overrides it)
    mutates: ClassVar[bool] = False
    #: ends a phase: go / no-go over the steps before it
    closes_phase: ClassVar[bool] = False
    #: calls ``ctx.acting()`` right before its action; when False, a mutating step that
    #: started is assumed to have acted (cancel or crash → unknown)
    tracks_action: ClassVar[bool] = False
    #: audit event written for a human step's answer
    audit_event: ClassVar[str] = "step.answer"

    def is_mutating(self, spec: SpecT) -> bool:
        return self.mutates if spec.mutating is None else spec.mutating

    def default_title(self, spec: SpecT, section_title: str) -> str:
        return f"{self.kind}: {section_title}"

    def produces(self, spec: SpecT) -> Produces:
        return Produces()

    def checks_references(self, spec: SpecT) -> bool:
        """Whether ``{{ }}`` in the block are references the loader must check."""
        return True

    def block_variables(self, spec: SpecT) -> frozenset[str]:
        """Variables that exist only inside this step's own block (a burst's
        ``burst_user``); no later step sees them."""
        return frozenset()

    def own_values_visible_from(self, source: str) -> int | None:
        """0-based line of the block from which the step's own captures may be referenced
        (a trigger's ``follow:`` block reads what the trigger captured); None: never."""
        return None

    def lint(self, spec: SpecT, source: str) -> list[tuple[int, str]]:
        """Kind-specific problems beyond the spec's validation: (0-based line of the
        block's body, message)."""
        return []

    def describe(self, spec: SpecT, render: Callable[..., str]) -> str:
        """The exact action, resolved: ``render(text, context)`` fills references as the
        step itself would ("url", "shell", ...), with every secret shown as ***.

        Shown for confirmation and dry-run and written to the audit intent."""
        return spec.title or self.kind

    @abstractmethod
    async def run(self, ctx: StepContext[SpecT]) -> Outcome:
        """Do the step; return its outcome (never raise for a failed check)."""
