"""RunSession: one operator walking one runbook in one environment.

The session is the single place where steps are executed, so every rule lives
here once: secrets are loaded and registered with the redactor, protected
environments require typed confirmation (asked on the operator channel),
mutating steps write an audit intent before acting and an outcome after (and
are refused when the audit log cannot be written), results are redacted and
then capped, run state is saved atomically after every change and at every
checkpoint, and an interrupted or cancelled mutating step whose action may
have gone out comes back as *unknown*, never silently re-run.

What a step *does* is its step type's business (``opsconsole/steps/``); the
session never asks which kind a step is. The console and ``check`` both drive
a session; neither executes anything itself.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import ChainMap
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .analysis import Clock, SystemClock
from .artifacts import redact_and_cap
from .audit import AuditHead, AuditLog, verify
from .clients import Clients, ClientSettings
from .config import Environment
from .errors import (
    AuditUnavailable,
    ConfigError,
    OpsConsoleError,
    RunStateError,
    SecretUnavailable,
    StepRefused,
    TemplateError,
)
from .operator import (
    Choose,
    Countdown,
    EnterText,
    Event,
    NoAnswer,
    Note,
    Operator,
    OutputLine,
    Progress,
    Question,
    Reply,
    Started,
    StateChange,
    StepCancelled,
    TypeToConfirm,
)
from .run import CLEARED, FINISHED, Run, RunStatus, RunStore, StepResult, StepStatus, now_iso
from .secrets import Redactor, SecretPolicy, SecretStore, undeclared_secrets
from .steps.base import Outcome, StepContext

if TYPE_CHECKING:
    from .artifacts import Artifact
    from .model import Runbook, Step
    from .runlock import RunLock
    from .template import RenderContext

__all__ = ["Answer", "RunSession", "StepRefused", "abandon_run", "open_session"]

#: at most one checkpoint save per this many seconds (the final result always saves)
CHECKPOINT_INTERVAL = 0.5


@dataclass(frozen=True)
class Answer:
    """A scripted answer to a step's question, for callers without an operator (tests,
    scripts): ``yes`` takes the question's affirmative choice, ``value`` is text entered,
    ``note`` is recorded with it."""

    yes: bool = True
    value: str | None = None
    note: str = ""


class _AnswerOperator:
    """Answers every question of one step from an :class:`Answer`."""

    def __init__(self, answer: Answer, confirm: str | None = None) -> None:
        self.answer = answer
        self.confirm = confirm

    async def ask(self, step: Step, question: Question) -> Reply:
        answer = self.answer
        if isinstance(question, TypeToConfirm):
            if self.confirm is None:
                return await _NoOperator().ask(step, question)
            return Reply(self.confirm, answer.note)
        if isinstance(question, Choose):
            wanted = question.yes if answer.yes else None
            if wanted is None or not answer.yes:
                negative = [c for c in question.choices if c.tone == "negative"]
                wanted = negative[0].key if negative else None
            return Reply(wanted, answer.note)
        if isinstance(question, EnterText):
            return Reply(answer.value, answer.note)
        return Reply("yes" if answer.yes else "no", answer.note)

    def event(self, step: Step, event: Event) -> None:
        return None


class _NoOperator:
    async def ask(self, step: Step, question: Question) -> Reply:
        if isinstance(question, TypeToConfirm):
            raise StepRefused(
                f"{question.expected} is a protected environment: type the environment "
                "name to confirm this mutating step"
            )
        raise StepRefused("this step needs the operator's answer")

    def event(self, step: Step, event: Event) -> None:
        return None


#: why a break-glass is refused in read-only mode asked for on the command line
GLASS_REFUSED = (
    "started with --read-only: break-glass does not lift it; restart without it to run "
    "steps that change something"
)


class RunSession:
    def __init__(
        self,
        runbook: Runbook,
        environment: Environment,
        *,
        store: RunStore,
        audit: AuditLog,
        run: Run | None = None,
        redactor: Redactor | None = None,
        operator: str = "operator",
        clients: Clients | None = None,
        clock: Clock | None = None,
        lock: RunLock | None = None,
        read_only: bool = False,
        mutations_off: str | None = None,
        glass: bool = True,
    ) -> None:
        self.runbook = runbook
        #: a break-glass may lift ``mutations_off`` (False: the operator asked for read-only
        #: mode on the command line, and only a restart without it lifts it)
        self.glass = glass
        #: read-only mode: why steps that change something do not run (None: they run).
        #: Unlike ``read_only`` the run is written, and a break-glass lifts it for a while.
        self.mutations_off = mutations_off
        self._glass_until: float | None = None
        #: this console holds the run (None: read-only, or a caller that does not lock)
        self.lock = lock
        #: looking only: nothing runs, nothing is written (another console holds the run)
        self.read_only = read_only
        self.environment = environment
        self.store = store
        self.redactor = redactor or audit.redactor
        audit.redactor = self.redactor
        self.audit = audit
        self.secrets = SecretStore(environment.name, self.redactor, allowed=environment.secrets)
        self.secret_policy = SecretPolicy(environment)
        self.operator = operator
        self.clients = clients or Clients(ClientSettings.for_environment(environment))
        self.clock = clock or SystemClock()
        self.warnings: list[str] = []
        self.resumed = run is not None
        self.running: str | None = None
        self._secret_labels: dict[str, str] = {}
        self._last_checkpoint = 0.0
        if run is None:
            run = Run(
                id=Run.new_id(),
                runbook_path=str(runbook.path),
                runbook_id=runbook.id,
                runbook_title=runbook.title,
                runbook_digest=runbook.digest,
                environment=environment.name,
                protected=environment.protected,
            )
        else:
            self._recover(run)
        self.run = run
        for step in runbook.steps:
            run.result(step.id)
        if run.cursor is None or run.cursor not in {s.id for s in runbook.steps}:
            run.cursor = self.next_step_id()

    # -- lifecycle -----------------------------------------------------------------

    def _recover(self, run: Run) -> None:
        """Interrupted steps: read-only ones can simply run again; mutating ones are unknown.

        Whatever a step checkpointed before the crash (output so far, polls) is kept."""
        if run.runbook_digest != self.runbook.digest:
            self.warnings.append(
                "the runbook changed since this run started; results are kept by step id"
            )
        known = {step.id: step for step in self.runbook.steps}
        for step_id, result in run.results.items():
            if result.status is not StepStatus.RUNNING:
                continue
            run.cursor = step_id  # resume lands on the step that was running
            step = known.get(step_id)
            if step is not None and step.mutating:
                result.status = StepStatus.UNKNOWN
                result.detail = (
                    "interrupted while running: it may or may not have acted. "
                    "Check the system before running it again."
                )
            else:
                result.status = StepStatus.PENDING
                result.detail = "interrupted while running; safe to run again"

    async def start(self) -> list[str]:
        """Load the environment's secrets; returns problems to show (empty when all is well).

        Raises ConfigError when the runbook needs a secret the environment does not list:
        a runbook never reads a secret its environment does not allow."""
        refused = undeclared_secrets(
            self.runbook.secrets, self.environment, runbook=self.runbook.id
        )
        if refused:
            raise ConfigError("; ".join(refused))
        names = list(dict.fromkeys([*self.environment.secrets, *self.runbook.secrets]))
        problems = await self.secrets.load(names)
        for name in names:
            secret = self.secrets.cached(name)
            if secret is not None:
                self._secret_labels[secret.reveal()] = f"secret {name}"
        missing = self.missing_variables()
        if missing:
            problems.append(
                f"environment {self.environment.name!r} does not define "
                + ", ".join(repr(name) for name in missing)
                + " (needed by this runbook)"
            )
        if self.resumed and self.run.audit_head:
            problem = await asyncio.to_thread(self._check_anchor)
            if problem:
                problems.append(problem)
        if self.read_only:
            return problems
        if not self.resumed:
            self._audit_soft("run.start", runbook=self.runbook.id, title=self.runbook.title)
        self.save()
        return problems

    def _check_anchor(self) -> str | None:
        """The audit log must still reach the head this run saw last (truncation, rewrites)."""
        try:
            anchor = AuditHead.parse(self.run.audit_head or "")
        except ValueError:
            return None
        verdict = verify(self.audit.path, anchor)
        if verdict.ok:
            return None
        problem = (
            f"the audit log {self.audit.path} no longer matches this run's records: "
            f"{verdict.message} — it may have been cut or rewritten (opsconsole audit verify)"
        )
        self._audit_soft("audit.anchor_mismatch", anchor=str(anchor), problem=verdict.message)
        return problem

    async def close(self) -> None:
        try:
            await self.clients.aclose()
        finally:
            if self.lock is not None:
                self.lock.release()
                self.lock = None

    def missing_variables(self) -> list[str]:
        asked = {
            name for step in self.runbook.steps for name in step.type.produces(step.spec).variables
        }
        return [
            name
            for name in self.runbook.variables
            if name not in self.environment.variables
            and name not in self.run.captures
            and name not in asked
        ]

    # -- state ---------------------------------------------------------------------

    def result(self, step_id: str) -> StepResult:
        return self.run.result(step_id)

    @property
    def variables(self) -> Mapping[str, str]:
        builtins = {"run_id": self.run.id, "environment": self.environment.name}
        return ChainMap(self.run.captures, dict(self.environment.variables), builtins)

    def secret_value(self, name: str) -> str:
        secret = self.secrets.cached(name)
        if secret is None:
            raise TemplateError(
                f"secret {name!r} is not available (see the start-up warning)", f"secrets.{name}"
            )
        return secret.reveal()

    def next_step_id(self, start: int = 0) -> str | None:
        """The first unfinished step (from index ``start``, when every step before it is
        known to be finished: keeps a walk through a long runbook linear)."""
        steps = self.runbook.steps
        for index in range(start, len(steps)):
            if self.run.result(steps[index].id).status not in FINISHED:
                return steps[index].id
        return None

    def save(self, result: StepResult | None = None) -> None:
        """Persist a redacted copy: one step's change (``result``), or the whole run.

        Results are redacted when recorded; this is the backstop. A step's save costs the
        same in a 2,000-step run as in a 10-step one (the store journals it)."""
        if self.read_only:
            return
        if self.lock is not None and not self.lock.still_ours():
            # taken over by another console: this one stops writing, from now on
            self.read_only = True
            self.lock.ensure_ours()
        if result is None:
            snapshot = Run.model_validate(self.redactor.redact_obj(self.run.model_dump()))
            self.store.save(snapshot)
            self.run.updated_at = snapshot.updated_at
            return
        cleaned = StepResult.model_validate(self.redactor.redact_obj(result.model_dump()))
        self.run.captures = self.redactor.redact_obj(self.run.captures)
        self.store.save_step(self.run, cleaned)

    def _save_step(self, result: StepResult) -> None:
        """One step changed: journal it, or write the whole run when the run just ended."""
        self.save(None if self.finished else result)

    def record_event(self, event: str, **fields: Any) -> str | None:
        """Audit a non-mutating event (an export, a note); returns the problem if it failed."""
        return self._audit_soft(event, **fields)

    def _audit_soft(self, event: str, **fields: Any) -> str | None:
        """Audit a non-mutating event; a failure is reported, not fatal."""
        if self.read_only:
            return None
        try:
            self._head(
                self.audit.append(
                    event,
                    run=self.run.id,
                    environment=self.environment.name,
                    operator=self.operator,
                    **fields,
                )
            )
        except AuditUnavailable as exc:
            self.warnings.append(str(exc))
            return str(exc)
        return None

    def _head(self, head: AuditHead) -> None:
        """Keep the chain's head in the run state: a log cut short later is detected."""
        self.run.audit_head = str(head)

    @property
    def finished(self) -> bool:
        return self.run.status is not RunStatus.IN_PROGRESS

    def _advance(self, step_id: str | None = None) -> None:
        """Move the cursor to the first unfinished step. Every step before the old cursor
        was finished, so the search starts there, or at the step that just changed."""
        start = 0
        cursor = self.run.cursor
        if cursor is not None and step_id is not None:
            start = min(self.runbook.index_of(cursor), self.runbook.index_of(step_id))
        self.run.cursor = self.next_step_id(start)
        if self.run.cursor is None and self.run.status is RunStatus.IN_PROGRESS:
            self.run.status = RunStatus.COMPLETED
            self.run.finished_at = now_iso()
            counts = self.run.counts()
            self._audit_soft("run.finish", status="completed", counts=counts)

    def abort(self, reason: str) -> None:
        self.run.status = RunStatus.ABORTED
        self.run.finished_at = now_iso()
        self._audit_soft("run.abort", reason=reason)
        self.save()

    # -- what steps may read of the run (RunView) ------------------------------------

    def phase_of(self, step_id: str) -> list[Step]:
        return self.runbook.phase_of(step_id)

    def gate_blockers(self, step: Step) -> list[Step]:
        """Steps of the gate's phase that stop a 'go'."""
        if getattr(step.spec, "require", "passed") == "none":
            return []
        return [
            s for s in self.runbook.phase_of(step.id) if self.run.result(s.id).status not in CLEARED
        ]

    # -- operator actions ----------------------------------------------------------

    def skip(self, step_id: str, reason: str) -> StepResult:
        self._refuse_if_read_only()
        if not reason.strip():
            raise StepRefused("a skip needs a reason (it goes into the evidence)")
        result = self.run.result(step_id)
        result.archive()
        self._mark_skipped(result, reason)
        self._audit_soft("step.skip", step=step_id, reason=reason.strip())
        self._advance(step_id)
        self._save_step(result)
        return result

    def _not_produced(self, step: Step, name: str) -> str | None:
        """Why ``step`` could not be built when an earlier step that produces ``name``
        (a capture, an input) has not passed; None when no step produces it."""
        if not name:
            return None
        wanted = name.removeprefix("secrets.")
        for earlier in self.runbook.steps[: self.runbook.index_of(step.id)]:
            made = earlier.type.produces(earlier.spec)
            if wanted in made.variables or wanted in made.secrets:
                status = self.run.result(earlier.id).status.value
                return (
                    f"not run: it needs {name}, which step {earlier.id!r} produces, and that "
                    f"step is {status}"
                )
        return None

    # -- read-only mode and break-glass ------------------------------------------------

    def mutations_blocked(self) -> str | None:
        """Why a mutating step may not run now (None: it may): read-only mode, unless a
        break-glass is in force."""
        if self.mutations_off is None or self.break_glass_left() is not None:
            return None
        return self.mutations_off

    def break_glass_left(self) -> float | None:
        """Seconds left of the break-glass in force (None: none, or it expired)."""
        if self._glass_until is None:
            return None
        left = self._glass_until - self.clock.monotonic()
        return left if left > 0 else None

    def break_glass(self, reason: str, minutes: int) -> str:
        """Lift read-only mode for ``minutes``: audited first (``break_glass``, with the
        reason, operator and expiry); if that record cannot be written nothing is lifted.
        Returns the expiry (UTC, ISO)."""
        from datetime import UTC, datetime, timedelta

        reason = reason.strip()
        if not reason:
            raise StepRefused("a break-glass needs a reason (it goes into the audit log)")
        if self.mutations_off is None:
            raise StepRefused("this run is not read-only: there is no glass to break")
        if not self.glass:
            raise StepRefused(GLASS_REFUSED)
        self._refuse_if_read_only()
        expires = (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat(
            timespec="seconds"
        ).replace("+00:00", "Z")
        self._head(
            self.audit.append(
                "break_glass",
                run=self.run.id,
                environment=self.environment.name,
                protected=self.environment.protected,
                operator=self.operator,
                reason=self.redactor.redact(reason),
                minutes=minutes,
                expires=expires,
            )
        )
        self._glass_until = self.clock.monotonic() + minutes * 60
        return expires

    def _refuse_if_read_only(self) -> None:
        if self.read_only:
            raise StepRefused(
                "this run is open read-only (another console holds it): nothing can be run "
                "or skipped here"
            )
        if self.lock is not None and not self.lock.still_ours():
            self.read_only = True
            self.lock.ensure_ours()

    def _mark_skipped(self, result: StepResult, reason: str) -> None:
        result.status = StepStatus.SKIPPED
        result.note = self.redactor.redact(reason.strip())
        result.detail = f"skipped: {result.note}"
        result.finished_at = now_iso()

    @property
    def trusted_variables(self) -> frozenset[str]:
        """Variables that are configuration (the environment's, not captured): a base URL at
        the start of a URL template is taken as it is; everything else is escaped."""
        return frozenset(n for n in self.environment.variables if n not in self.run.captures)

    def describe_action(self, step: Step) -> str:
        """The exact action a step will take, resolved and redacted: what the operator confirms."""
        trusted = self.trusted_variables

        def render(text: str, context: RenderContext = "text") -> str:
            from .template import render as render_template

            return render_template(
                text, self.variables, lambda name: "***", context=context, trusted=trusted
            )

        try:
            return self.redactor.redact(step.type.describe(step.spec, render))
        except TemplateError as exc:
            return f"{step.title} (unresolved: {exc})"

    async def execute(
        self,
        step_id: str,
        answer: Answer | None = None,
        *,
        operator: Operator | None = None,
        rerun_unknown: bool = False,
        confirmed: str | None = None,
    ) -> StepResult:
        """Run (or answer) one step, record it, audit it, save the run.

        The step's questions go to ``operator`` (an :class:`Answer` is a one-step script;
        ``confirmed`` is the typed environment name for a protected environment). Raises
        :class:`StepRefused` when the step cannot run now (nothing is recorded); never
        raises for a failed check: that is a failed result. A cancelled step (the task is
        cancelled) is recorded as cancelled, or unknown when its action may have gone out,
        and the cancellation propagates.
        """
        step = self.runbook.step(step_id)
        result = self.run.result(step_id)
        self._refuse_if_read_only()
        if step.mutating and (why := self.mutations_blocked()):
            way = "break glass (b)" if self.glass else "restart without --read-only"
            raise StepRefused(f"not run: {why}. Skip it with a reason, or {way}.")
        if self.running is not None:
            raise StepRefused(f"step {self.running!r} is still running")
        if self.finished:
            raise StepRefused("this run is finished; start a new run to go again")
        if result.status is StepStatus.UNKNOWN and not rerun_unknown:
            raise StepRefused(
                "this step was interrupted and its outcome is unknown; check the system, "
                "then re-run it explicitly or skip it with a reason"
            )
        if operator is None:
            operator = (
                _AnswerOperator(answer or Answer(), confirmed)
                if answer is not None or confirmed is not None
                else _NoOperator()
            )
        self.running = step_id
        try:
            return await self._execute(step, result, operator)
        finally:
            self.running = None

    async def _execute(self, step: Step, result: StepResult, operator: Operator) -> StepResult:
        stype = step.type
        mutating = step.mutating
        simulated: list[bool] = []
        if mutating and self.environment.protected:
            try:
                reply = await self._ask(
                    step,
                    operator,
                    TypeToConfirm(
                        prompt="This step changes something in a protected environment.",
                        key="confirm-protected",
                        expected=self.environment.name,
                        action=self.describe_action(step),
                        unattended_reason=(
                            f"{self.environment.name} is protected: mutating steps need typed "
                            "confirmation in the console"
                        ),
                    ),
                    simulated,
                )
            except NoAnswer as exc:
                return self._skip_unanswered(result, str(exc))
            if (reply.value or "").strip() != self.environment.name:
                raise StepRefused(f"not confirmed: the environment name {self.environment.name!r}"
                                  " was not typed")

        before = result.model_copy(deep=True)
        attempt_started = now_iso()

        def mark_running() -> None:
            result.archive()
            result.status = StepStatus.RUNNING
            result.started_at = attempt_started
            result.finished_at = None
            result.attempts += 1
            result.detail = "running"

        if not step.needs_human:
            # a human step stays as it was while its question is open (nothing on screen
            # says "started"); its attempt is recorded with the answer
            mark_running()
        begun = False

        def begin() -> None:
            """The step is about to act: intent first (fail closed), then RUNNING on disk."""
            nonlocal begun
            if begun:
                return
            begun = True
            if mutating:
                self._head(self.audit.append(
                    "step.intent",
                    run=self.run.id,
                    environment=self.environment.name,
                    protected=self.environment.protected,
                    operator=self.operator,
                    step=step.id,
                    kind=step.kind,
                    title=step.title,
                    action=self.describe_action(step),
                ))
            if not step.needs_human:
                # a crash from here on leaves RUNNING behind, which resume reads
                self._save_step(result)
                # the step's first checkpoint (what it sent) is never held back by the
                # previous step's
                self._last_checkpoint = float("-inf")
                operator.event(step, Started())

        started = time.perf_counter()
        ctx = self._context(step, operator, simulated, begin)
        try:
            if not stype.tracks_action:
                begin()
            outcome = await stype.run(ctx)
        except AuditUnavailable as exc:
            # the intent could not be written: nothing was sent (fail closed)
            self._restore(result, before)
            result.archive()
            result.attempts += 1
            result.started_at = now_iso()
            self._record(result, Outcome(StepStatus.FAILED, f"refused: {exc}"), started)
            self._save_step(result)
            return result
        except StepRefused:
            self._restore(result, before)
            if begun and mutating:
                self._audit_outcome(step, "not run", "refused before acting")
            raise
        except StepCancelled as exc:
            if ctx.acted or (mutating and not stype.tracks_action):
                outcome = self._cancelled_outcome(step, result, ctx, str(exc) or "cancelled")
            else:
                self._restore(result, before)
                if begun and mutating:
                    self._audit_outcome(step, "not run", "cancelled before acting")
                self._save_step(result)
                return result
        except NoAnswer as exc:
            if ctx.acted and mutating:
                outcome = Outcome(
                    StepStatus.UNKNOWN,
                    f"stopped waiting for an answer after acting: {exc}",
                    artifacts=list(result.artifacts),
                )
            else:
                self._restore(result, before)
                return self._skip_unanswered(result, str(exc), audit=begun and mutating)
        except asyncio.CancelledError:
            if step.needs_human:
                self._restore(result, before)  # a question left open: nothing happened
                raise
            outcome = self._cancelled_outcome(step, result, ctx, "cancelled by the operator")
            self._record(result, outcome, started)
            if begun and mutating:
                self._audit_outcome(step, result.status.value, result.detail)
            self._advance(step.id)
            self._save_step(result)
            raise
        except TemplateError as exc:
            blocked = self._not_produced(step, exc.name)
            if blocked is None:
                outcome = Outcome(StepStatus.FAILED, str(exc))
            else:
                # an earlier step that would have produced the value did not pass: this one
                # was not run (it did not fail), and says which step to look at
                self._restore(result, before)
                return self._skip_unanswered(result, blocked, audit=begun and mutating)
        except (OpsConsoleError, OSError, ValueError) as exc:
            outcome = Outcome(StepStatus.FAILED, f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # noqa: BLE001 - one step's bug must not end the run
            outcome = self._unexpected(step, result, ctx, exc)
        if step.needs_human:
            mark_running()
        if any(simulated):
            self.run.rehearsal = True
            result.simulated = True
            if step.needs_human and outcome.status is StepStatus.PASSED:
                outcome.status = StepStatus.ANSWERED
            elif outcome.status is StepStatus.PASSED:
                outcome.summary += " (with answers from the simulated operator)"
        self._record(result, outcome, started)
        if step.needs_human:
            self._audit_soft(
                stype.audit_event,
                step=step.id,
                note=result.note,
                answered_by="simulated operator" if result.simulated else "operator",
                **outcome.audit,
            )
        if begun and mutating:
            self._audit_outcome(step, result.status.value, result.detail)
        if outcome.stop_run:
            self.run.status = RunStatus.ABORTED
            self.run.finished_at = now_iso()
        self._advance(step.id)
        self._save_step(result)
        return result

    # -- pieces of execute -----------------------------------------------------------

    def _context(
        self,
        step: Step,
        operator: Operator,
        simulated: list[bool],
        begin: Callable[[], None],
    ) -> StepContext[Any]:
        variables = self.variables
        trusted = self.trusted_variables

        def render(text: str, context: RenderContext = "text") -> str:
            from .template import render as render_template

            return render_template(
                text, variables, self.secret_value, context=context, trusted=trusted
            )

        async def ask(question: Question) -> Reply:
            return await self._ask(step, operator, question, simulated)

        def emit(event: Event) -> None:
            operator.event(step, self._redact_event(event))

        def checkpoint(artifacts: list[Artifact]) -> None:
            self._checkpoint(step, artifacts)

        return StepContext(
            step=step,
            spec=step.spec,
            variables=variables,
            secret=self.secret_value,
            render=render,
            redactor=self.redactor,
            clients=self.clients,
            clock=self.clock,
            run=self,
            ask=ask,
            emit=emit,
            checkpoint=checkpoint,
            secret_labels=self._secret_labels,
            mutating=step.mutating,
            on_acting=begin,
            secret_policy=self.secret_policy,
            trusted=trusted,
        )

    async def _ask(
        self, step: Step, operator: Operator, question: Question, simulated: list[bool]
    ) -> Reply:
        shown = self._redact_question(question)
        reply = await operator.ask(step, shown)
        if isinstance(question, EnterText) and question.secret and reply.value:
            # registered before anything else sees it: from here on it is *** everywhere
            if question.secret_parts is None:
                self.secrets.put(question.name, reply.value)
                self._secret_labels[reply.value] = f"secret {question.name}"
            else:
                for part in question.secret_parts(reply.value):
                    self.redactor.register(part)
                    self._secret_labels[part] = f"secret {question.name}"
        simulated.append(reply.simulated)
        return dataclasses.replace(reply, note=self.redactor.redact(reply.note.strip()))

    def _redact_question(self, question: Question) -> Question:
        changes: dict[str, Any] = {}
        for item in dataclasses.fields(question):
            value = getattr(question, item.name)
            if isinstance(value, str):
                changes[item.name] = self.redactor.redact(value)
            elif isinstance(value, tuple) and all(isinstance(v, str) for v in value):
                changes[item.name] = tuple(self.redactor.redact(v) for v in value)
        return dataclasses.replace(question, **changes)

    def _redact_event(self, event: Event) -> Event:
        redact = self.redactor.redact
        if isinstance(event, Note | OutputLine):
            return dataclasses.replace(event, text=redact(event.text))
        if isinstance(event, StateChange):
            return dataclasses.replace(event, state=redact(event.state),
                                       detail=redact(event.detail))
        if isinstance(event, Progress | Countdown):
            return dataclasses.replace(event, label=redact(event.label))
        return event

    def _checkpoint(self, step: Step, artifacts: list[Artifact]) -> None:
        now = time.monotonic()
        if now - self._last_checkpoint < CHECKPOINT_INTERVAL:
            return
        self._last_checkpoint = now
        result = self.run.result(step.id)
        if result.status is not StepStatus.RUNNING:
            return
        result.artifacts = [redact_and_cap(a, self.redactor.redact_obj) for a in artifacts]
        self._save_step(result)

    def _cancelled_outcome(
        self, step: Step, result: StepResult, ctx: StepContext[Any], why: str
    ) -> Outcome:
        acted = ctx.acted or not step.type.tracks_action
        if step.mutating and acted:
            status = StepStatus.UNKNOWN
            detail = (
                f"{why} while running: its action may have gone out. "
                "Check the system before running it again."
            )
        else:
            status = StepStatus.CANCELLED
            detail = f"{why}; nothing was changed" if not step.mutating else f"{why} before acting"
        return Outcome(status, detail, artifacts=list(result.artifacts))

    def _unexpected(
        self, step: Step, result: StepResult, ctx: StepContext[Any], exc: Exception
    ) -> Outcome:
        """A bug in a step: the details go to the (redacted) crash log, the run goes on."""
        from .crash import write_crash_log

        # the message is left out everywhere: it may carry response data holding a secret
        # the redactor does not know yet (a token this step was about to capture)
        where = write_crash_log(exc, with_message=False)
        detail = f"unexpected {type(exc).__name__} in this step (a bug: please report it)" + (
            f"; the stack is in {where}" if where else ""
        )
        if step.mutating and (ctx.acted or not step.type.tracks_action):
            return Outcome(
                StepStatus.UNKNOWN,
                f"{detail}; its action may have gone out: check the system before running it "
                "again",
                artifacts=list(result.artifacts),
            )
        return Outcome(StepStatus.FAILED, detail, artifacts=list(result.artifacts))

    def _restore(self, result: StepResult, before: StepResult) -> None:
        for name in StepResult.model_fields:
            setattr(result, name, getattr(before, name))

    def _skip_unanswered(self, result: StepResult, reason: str, audit: bool = False) -> StepResult:
        result.archive()
        self._mark_skipped(result, reason)
        if audit:
            self._audit_outcome_id(result.step_id, "skipped", reason)
        self._audit_soft("step.skip", step=result.step_id, reason=reason)
        self._advance(result.step_id)
        self._save_step(result)
        return result

    def _audit_outcome(self, step: Step, status: str, detail: str) -> None:
        self._audit_outcome_id(step.id, status, detail)

    def _audit_outcome_id(self, step_id: str, status: str, detail: str) -> None:
        result = self.run.result(step_id)
        try:
            self._head(
                self.audit.append(
                    "step.outcome",
                    run=self.run.id,
                    environment=self.environment.name,
                    operator=self.operator,
                    step=step_id,
                    status=status,
                    detail=detail,
                )
            )
        except AuditUnavailable as exc:
            result.detail += f" (outcome NOT audited: {exc})"

    def _record(self, result: StepResult, outcome: Outcome, started: float) -> None:
        for name, value in outcome.secret_captures.items():
            try:
                self.secrets.put(name, value)
                self._secret_labels[value] = f"secret {name}"
            except SecretUnavailable as exc:
                outcome.status = StepStatus.FAILED
                outcome.summary = str(exc)
        for name, value in outcome.captures.items():
            self.run.captures[name] = self.redactor.redact(value)
        redact = self.redactor.redact
        result.status = outcome.status
        result.detail = redact(outcome.summary)
        result.assertions = [
            a.model_copy(update={"detail": redact(a.detail)}) for a in outcome.assertions
        ]
        result.artifacts = [redact_and_cap(a, self.redactor.redact_obj) for a in outcome.artifacts]
        if outcome.answer is not None:
            result.answer = redact(outcome.answer)
        if outcome.note:
            result.note = redact(outcome.note)
        result.finished_at = now_iso()
        result.duration_ms = (
            outcome.duration_ms
            if outcome.duration_ms is not None
            else round((time.perf_counter() - started) * 1000, 1)
        )

    # -- reading back --------------------------------------------------------------

    def summary(self) -> dict[str, int]:
        counts = {status.value: 0 for status in StepStatus}
        for step in self.runbook.steps:
            counts[self.run.result(step.id).status.value] += 1
        return counts


def abandon_run(run: Run, home: Path, reason: str, *, operator: str = "operator") -> Run:
    """Close a run the operator chose not to resume: kept, audited, not offered again.

    Refused (RunHeld) while another live console holds the run."""
    from .runlock import RunLock

    with RunLock.acquire(home, run.id):
        run.status = RunStatus.ABORTED
        run.finished_at = now_iso()
        RunStore(home).save(run)
    try:
        AuditLog(home / "audit.jsonl").append(
            "run.abandon",
            run=run.id,
            environment=run.environment,
            operator=operator,
            runbook=run.runbook_id,
            reason=reason,
        )
    except AuditUnavailable:
        pass  # the run file says it was abandoned; nothing acted
    return run


def open_session(
    runbook: Runbook,
    environment: Environment,
    home: Path,
    *,
    resume: Run | None = None,
    clients: Clients | None = None,
    read_only: bool = False,
    lock: RunLock | None = None,
    mutations_off: str | None = None,
    glass: bool = True,
) -> RunSession:
    """A session with the standard store and audit log under ``home``.

    The run is locked to this console (:class:`~opsconsole.runlock.RunLock`): a run held by
    another live console raises ``RunHeld`` (open it ``read_only``, or take it over and pass
    the ``lock``). The lock is released by :meth:`RunSession.close`."""
    from .runlock import RunLock

    redactor = Redactor()
    store = RunStore(home)
    audit = AuditLog(home / "audit.jsonl", redactor)
    if resume is not None and resume.runbook_id != runbook.id:
        raise RunStateError(f"run {resume.id} belongs to runbook {resume.runbook_id!r}")
    if not read_only and lock is None and resume is not None:
        # before the session reads the run: an interrupted step must not be turned into
        # "unknown" while another console may still be running it
        lock = RunLock.acquire(home, resume.id)
    try:
        session = RunSession(
            runbook,
            environment,
            store=store,
            audit=audit,
            run=resume,
            redactor=redactor,
            clients=clients,
            lock=lock,
            read_only=read_only,
            mutations_off=mutations_off,
            glass=glass,
        )
        if not read_only and session.lock is None:
            session.lock = RunLock.acquire(home, session.run.id)
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    return session
