"""RunSession: one operator walking one runbook in one environment.

The session is the single place where steps are executed, so every rule lives
here once: secrets are loaded and registered with the redactor, mutating steps
write an audit intent before acting and an outcome after (and are refused when
the audit log cannot be written), protected environments require typed
confirmation, run state is saved atomically after every change, and an
interrupted mutating step comes back as *unknown*, never silently re-run.

The TUI and the headless ``check`` command both drive a session; neither
executes anything itself.
"""

from __future__ import annotations

import time
from collections import ChainMap
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .audit import AuditLog
from .config import Environment
from .errors import (
    AuditUnavailable,
    ConfirmationRequired,
    OpsConsoleError,
    RunStateError,
    SecretUnavailable,
    TemplateError,
)
from .model import InputSpec, Runbook, Step, StepKind
from .run import FINISHED, Run, RunStatus, RunStore, StepResult, StepStatus, now_iso
from .secrets import Redactor, SecretStore
from .steps import Outcome, StepContext

if TYPE_CHECKING:
    import httpx

__all__ = ["Answer", "ProgressCallback", "RunSession", "StepRefused", "abandon_run", "open_session"]

ProgressCallback = Callable[[str, str], None]


@dataclass(frozen=True)
class Answer:
    """What the operator said to a step that needs a human.

    manual check: ``yes`` = ticked; input: ``value``; confirm: ``yes``;
    gate: ``yes`` = go, ``no`` = no-go; ``note`` is recorded with it.
    """

    yes: bool = True
    value: str | None = None
    note: str = ""


class StepRefused(OpsConsoleError):
    """The step cannot run now; the message says why and what to do."""


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
    ) -> None:
        self.runbook = runbook
        self.environment = environment
        self.store = store
        self.redactor = redactor or audit.redactor
        audit.redactor = self.redactor
        self.audit = audit
        self.secrets = SecretStore(environment.name, self.redactor)
        self.operator = operator
        self.warnings: list[str] = []
        self.resumed = run is not None
        self.running: str | None = None
        self._client: httpx.AsyncClient | None = None
        self._secret_labels: dict[str, str] = {}
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
        """Interrupted steps: read-only ones can simply run again; mutating ones are unknown."""
        if run.runbook_digest != self.runbook.digest:
            self.warnings.append(
                "the runbook changed since this run started; results are kept by step id"
            )
        known = {step.id: step for step in self.runbook.steps}
        for step_id, result in run.results.items():
            if result.status is not StepStatus.RUNNING:
                continue
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
        """Load the environment's secrets; returns problems to show (empty when all is well)."""
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
        if not self.resumed:
            self._audit_soft("run.start", runbook=self.runbook.id, title=self.runbook.title)
        self.save()
        return problems

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def missing_variables(self) -> list[str]:
        return [
            name
            for name in self.runbook.variables
            if name not in self.environment.variables
            and name not in self.run.captures
            and not any(
                isinstance(step.spec, InputSpec) and step.spec.name == name
                for step in self.runbook.steps
            )
        ]

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            import httpx

            self._client = httpx.AsyncClient(follow_redirects=False)
        return self._client

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
            raise TemplateError(f"secret {name!r} is not available (see the start-up warning)")
        return secret.reveal()

    def next_step_id(self) -> str | None:
        for step in self.runbook.steps:
            if self.run.result(step.id).status not in FINISHED:
                return step.id
        return None

    def save(self) -> None:
        """Persist a redacted copy (results are redacted when recorded; this is the backstop)."""
        snapshot = Run.model_validate(self.redactor.redact_obj(self.run.model_dump()))
        self.store.save(snapshot)
        self.run.updated_at = snapshot.updated_at

    def record_event(self, event: str, **fields: Any) -> str | None:
        """Audit a non-mutating event (an export, a note); returns the problem if it failed."""
        return self._audit_soft(event, **fields)

    def _audit_soft(self, event: str, **fields: Any) -> str | None:
        """Audit a non-mutating event; a failure is reported, not fatal."""
        try:
            self.audit.append(
                event,
                run=self.run.id,
                environment=self.environment.name,
                operator=self.operator,
                **fields,
            )
        except AuditUnavailable as exc:
            self.warnings.append(str(exc))
            return str(exc)
        return None

    @property
    def finished(self) -> bool:
        return self.run.status is not RunStatus.IN_PROGRESS

    def _advance(self) -> None:
        self.run.cursor = self.next_step_id()
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

    # -- operator actions ----------------------------------------------------------

    def skip(self, step_id: str, reason: str) -> StepResult:
        if not reason.strip():
            raise StepRefused("a skip needs a reason (it goes into the evidence)")
        result = self.run.result(step_id)
        result.status = StepStatus.SKIPPED
        result.note = self.redactor.redact(reason.strip())
        result.detail = f"skipped: {result.note}"
        result.finished_at = now_iso()
        self._audit_soft("step.skip", step=step_id, reason=reason.strip())
        self._advance()
        self.save()
        return result

    def gate_blockers(self, step: Step) -> list[Step]:
        """Steps of the gate's phase that stop a 'go'."""
        if step.spec.require == "none":
            return []
        return [
            s
            for s in self.runbook.phase_of(step.id)
            if self.run.result(s.id).status not in {StepStatus.PASSED, StepStatus.SKIPPED}
        ]

    async def execute(
        self,
        step_id: str,
        answer: Answer | None = None,
        *,
        confirmed: bool = False,
        rerun_unknown: bool = False,
        progress: ProgressCallback | None = None,
    ) -> StepResult:
        """Run (or answer) one step, record it, audit it, save the run.

        Raises :class:`StepRefused` when the step cannot run now (another step is
        running, an unknown outcome not acknowledged, a human step without an
        answer) and :class:`ConfirmationRequired` for an unconfirmed mutating
        step in a protected environment. Never raises for a failed check: that
        is a failed result.
        """
        step = self.runbook.step(step_id)
        result = self.run.result(step_id)
        if self.running is not None:
            raise StepRefused(f"step {self.running!r} is still running")
        if self.finished:
            raise StepRefused("this run is finished; start a new run to go again")
        if result.status is StepStatus.UNKNOWN and not rerun_unknown:
            raise StepRefused(
                "this step was interrupted and its outcome is unknown; check the system, "
                "then re-run it explicitly or skip it with a reason"
            )
        if step.needs_human:
            if answer is None:
                raise StepRefused("this step needs the operator's answer")
            return self._answer(step, result, answer)
        if step.mutating and self.environment.protected and not confirmed:
            raise ConfirmationRequired(
                f"{self.environment.name} is a protected environment: type the environment "
                "name to confirm this mutating step"
            )

        result.status = StepStatus.RUNNING
        result.started_at = now_iso()
        result.finished_at = None
        result.attempts += 1
        result.detail = "running"
        self.running = step_id
        started = time.perf_counter()
        try:
            if step.mutating:
                try:
                    self.audit.append(
                        "step.intent",
                        run=self.run.id,
                        environment=self.environment.name,
                        protected=self.environment.protected,
                        operator=self.operator,
                        step=step.id,
                        kind=step.kind.value,
                        title=step.title,
                        action=self._resolve_action(step),
                    )
                except AuditUnavailable as exc:
                    outcome = Outcome(StepStatus.FAILED, f"refused: {exc}")
                    self._record(result, outcome, started)
                    self.save()
                    return result
            self.save()  # a crash from here on leaves RUNNING behind, which resume reads
            outcome = await self._perform(step, progress)
            self._record(result, outcome, started)
            if step.mutating:
                try:
                    self.audit.append(
                        "step.outcome",
                        run=self.run.id,
                        environment=self.environment.name,
                        operator=self.operator,
                        step=step.id,
                        status=result.status.value,
                        detail=result.detail,
                    )
                except AuditUnavailable as exc:
                    result.detail += f" (outcome NOT audited: {exc})"
        finally:
            self.running = None
        self._advance()
        self.save()
        return result

    def describe_action(self, step: Step) -> str:
        """The exact action a step will take, resolved and redacted: what the operator confirms."""
        return self.redactor.redact(self._resolve_action(step))

    def _resolve_action(self, step: Step) -> str:
        try:
            if step.kind in {StepKind.HTTP, StepKind.TRIGGER}:
                from .template import render

                url = render(step.spec.url, self.variables, self.secret_value)
                return f"{step.spec.method} {url}"
            if step.kind is StepKind.COMMAND:
                from .template import render

                if step.spec.plain:
                    return step.spec.run
                return render(step.spec.run, self.variables, self.secret_value)
        except TemplateError as exc:
            return f"{step.title} (unresolved: {exc})"
        return step.title

    async def _perform(self, step: Step, progress: ProgressCallback | None) -> Outcome:
        def report(line: str) -> None:
            if progress is not None:
                progress(step.id, self.redactor.redact(line))

        context = StepContext(
            variables=self.variables,
            secret=self.secret_value,
            redactor=self.redactor,
            client=self.client,
            progress=report,
            secret_labels=self._secret_labels,
        )
        try:
            if step.kind is StepKind.HTTP:
                from .steps.http import run_http

                return await run_http(step.spec, context)
            if step.kind is StepKind.TRIGGER:
                from .steps.trigger import run_trigger

                return await run_trigger(step.spec, context)
            if step.kind is StepKind.COMMAND:
                from .steps.command import run_command

                return await run_command(step.spec, context)
        except (OpsConsoleError, OSError, ValueError) as exc:
            return Outcome(StepStatus.FAILED, f"{type(exc).__name__}: {exc}")
        return Outcome(StepStatus.FAILED, f"no executor for step kind {step.kind.value!r}")

    def _record(self, result: StepResult, outcome: Outcome, started: float) -> None:
        for name, value in outcome.secret_captures.items():
            try:
                self.secrets.put(name, value)
                self._secret_labels[value] = f"secret {name}"
            except SecretUnavailable as exc:
                outcome.status = StepStatus.FAILED
                outcome.detail = str(exc)
        for name, value in outcome.captures.items():
            self.run.captures[name] = self.redactor.redact(value)
        redact = self.redactor.redact_obj
        result.status = outcome.status
        result.detail = self.redactor.redact(outcome.detail)
        result.request = redact(outcome.request)
        result.response = redact(outcome.response)
        result.assertions = [
            a.model_copy(update={"detail": self.redactor.redact(a.detail)})
            for a in outcome.assertions
        ]
        result.output = self.redactor.redact(outcome.output)
        result.exit_code = outcome.exit_code
        result.states = list(outcome.states)
        result.finished_at = now_iso()
        result.duration_ms = (
            outcome.duration_ms
            if outcome.duration_ms is not None
            else round((time.perf_counter() - started) * 1000, 1)
        )

    def _answer(self, step: Step, result: StepResult, answer: Answer) -> StepResult:
        self._validate_answer(step, answer)
        note = self.redactor.redact(answer.note.strip())
        result.started_at = result.started_at or now_iso()
        result.finished_at = now_iso()
        result.attempts += 1
        result.note = note
        kind = step.kind
        if kind is StepKind.MANUAL:
            result.status = StepStatus.PASSED if answer.yes else StepStatus.FAILED
            result.answer = "checked" if answer.yes else "not ok"
            result.detail = "checked by the operator" if answer.yes else "operator marked it NOT OK"
            self._audit_soft(
                "manual.check", step=step.id, title=step.title, ok=answer.yes, note=note
            )
        elif kind is StepKind.CONFIRM:
            result.status = StepStatus.PASSED if answer.yes else StepStatus.FAILED
            result.answer = "yes" if answer.yes else "no"
            result.detail = "confirmed" if answer.yes else "operator answered no"
            self._audit_soft("confirm", step=step.id, title=step.title, yes=answer.yes, note=note)
        elif kind is StepKind.INPUT:
            spec: InputSpec = step.spec
            value = answer.value if answer.value is not None else (spec.default or "")
            if spec.secret:
                self.secrets.put(spec.name, value)
                self._secret_labels[value] = f"secret {spec.name}"
                result.answer = "***"
            else:
                self.run.captures[spec.name] = value
                result.answer = value
            result.status = StepStatus.PASSED
            result.detail = f"{spec.name} = {result.answer}"
            self._audit_soft("input", step=step.id, name=spec.name, value=result.answer)
        elif kind is StepKind.GATE:
            result.status = StepStatus.PASSED if answer.yes else StepStatus.FAILED
            result.answer = "go" if answer.yes else "no-go"
            result.detail = ("GO" if answer.yes else "NO-GO") + (f": {note}" if note else "")
            self._audit_soft(
                "gate", step=step.id, title=step.title, decision=result.answer, note=note
            )
            if not answer.yes:
                self.run.status = RunStatus.ABORTED
                self.run.finished_at = now_iso()
        self._advance()
        self.save()
        return result

    def _validate_answer(self, step: Step, answer: Answer) -> None:
        if step.kind is StepKind.INPUT:
            spec: InputSpec = step.spec
            value = answer.value if answer.value is not None else (spec.default or "")
            if not value:
                raise StepRefused("an empty answer is not a value; type one or skip with a reason")
            if spec.pattern:
                import re

                if not re.fullmatch(spec.pattern, value):
                    shown = "the value" if spec.secret else repr(value)
                    raise StepRefused(f"{shown} does not match the expected form /{spec.pattern}/")
        elif step.kind is StepKind.GATE and answer.yes:
            blockers = self.gate_blockers(step)
            if blockers:
                names = ", ".join(s.id for s in blockers[:4]) + ("…" if len(blockers) > 4 else "")
                raise StepRefused(
                    f"cannot go: {len(blockers)} step(s) of this phase not passed ({names})"
                )

    # -- reading back --------------------------------------------------------------

    def summary(self) -> dict[str, int]:
        counts = {status.value: 0 for status in StepStatus}
        for step in self.runbook.steps:
            counts[self.run.result(step.id).status.value] += 1
        return counts


def abandon_run(run: Run, home: Path, reason: str, *, operator: str = "operator") -> Run:
    """Close a run the operator chose not to resume: kept, audited, not offered again."""
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
) -> RunSession:
    """A session with the standard store and audit log under ``home``."""
    redactor = Redactor()
    store = RunStore(home)
    audit = AuditLog(home / "audit.jsonl", redactor)
    if resume is not None and resume.runbook_id != runbook.id:
        raise RunStateError(f"run {resume.id} belongs to runbook {resume.runbook_id!r}")
    return RunSession(runbook, environment, store=store, audit=audit, run=resume, redactor=redactor)
