"""``ops trigger``: a mutating request, then its result or the job followed to its end.

Before acting, ``confirm`` asks the runbook's own question ("Trigger a manual
sync run now?"). ``idempotency_key`` names a header that carries one fresh key
per action; re-running an action whose outcome is *unknown* sends the same key
again, so an API that honours it does the work once. A synchronous result is
read with ``result`` (overall status, per-source statuses, key metrics,
warnings) into a badge: Success, Partial (a source reported warnings or
errors) or Failed. A long job is followed (``follow``), with ``progress``
shown as x of y and a rate.

Following is a measurement run (:mod:`opsconsole.analysis`): every poll is a
measurement — the job's terminal success state is Successful, its failure
state Failed, any other state Running (polled again after ``interval``), a
poll that fails Error. Three failed polls in a row lose track of the job; a
job still running at ``deadline`` is left running. Either way the outcome of
the mutating action is *unknown*, never "failed": the job may still finish.
"""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from collections import ChainMap
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator, model_validator

from ..analysis import (
    AnalysisPolicy,
    AnalysisRun,
    Clock,
    Measurement,
    Phase,
    run_analysis,
)
from ..artifacts import (
    Artifact,
    JobResultArtifact,
    MeasurementRow,
    MeasurementsArtifact,
    ProgressArtifact,
    ResponseArtifact,
    StatesArtifact,
)
from ..errors import SecretUnavailable, TemplateError
from ..model import Duration, StrList
from ..operator import Choice, Choose, Progress, StateChange, StepCancelled
from ..run import Assertion, StepStatus
from . import register
from .approval import ApproveSpec, approval_url, ask_to_approve, follow_while_asking
from .base import Outcome, Produces, StepContext, StepSpec, StepType
from .http import (
    HttpExpect,
    HttpSpec,
    RequestFields,
    exchange,
    render_expect,
    send_and_judge,
)

if TYPE_CHECKING:
    from ..template import RenderContext

__all__ = [
    "FOLLOW_ERROR_LIMIT",
    "FollowSpec",
    "ProgressSpec",
    "ProgressTracker",
    "ResultSpec",
    "TriggerSpec",
    "TriggerStep",
    "judge_result",
    "with_values",
]

#: polls that may fail in a row before following gives up (one blip is not a failure)
FOLLOW_ERROR_LIMIT = 2


def _jmespath(value: str | None) -> str | None:
    if value is None:
        return None
    import jmespath
    from jmespath.exceptions import JMESPathError

    try:
        jmespath.compile(value)
    except JMESPathError as exc:
        raise ValueError(f"invalid JMESPath {value!r}: {exc}") from None
    return value


class ProgressSpec(StepSpec):
    """Where a followed job says how far it got: JMESPaths to "done" and "total"."""

    done: str
    total: str | None = None
    label: str = "Progress"
    #: polls in a row with the same count after which the job has stalled: the step fails
    stalled_after: int | None = Field(default=None, ge=1)

    @field_validator("done", "total")
    @classmethod
    def _paths(cls, value: str | None) -> str | None:
        return _jmespath(value)


class ResultSpec(StepSpec):
    """How to read a job's result: the seed's badge, sources, key metrics and warnings."""

    #: JMESPath to the overall status
    status: str | None = None
    succeeded: StrList = Field(default_factory=lambda: ["success", "succeeded", "ok", "completed"])
    failed: StrList = Field(default_factory=lambda: ["failed", "error"])
    #: JMESPath to per-source results: {source: status | {status, errors, warnings}} or a list
    sources: str | None = None
    #: source statuses that are fine
    ok: StrList = Field(
        default_factory=lambda: ["ok", "success", "succeeded", "completed", "skipped"]
    )
    #: JMESPaths of the key metrics (shown by their path: tracks_synced, …)
    metrics: StrList = Field(default_factory=list)
    #: JMESPath to the warnings (a list, a string or a number of them)
    warnings: str | None = None
    #: what a Partial result makes the step: "fail" (default) or "pass" (with the warnings)
    partial: Literal["fail", "pass"] = "fail"

    @field_validator("status", "sources", "warnings")
    @classmethod
    def _paths(cls, value: str | None) -> str | None:
        return _jmespath(value)

    @field_validator("metrics")
    @classmethod
    def _metric_paths(cls, values: list[str]) -> list[str]:
        for value in values:
            _jmespath(value)
        return values


class FollowSpec(RequestFields):
    """Poll a read-back URL until the state reaches a terminal value."""

    state: str = "status"
    succeeded: StrList = Field(default_factory=lambda: ["succeeded"])
    failed: StrList = Field(default_factory=lambda: ["failed"])
    interval: Duration = 1.0
    deadline: Duration = 60.0
    #: JMESPath to the result breakdown / error message shown to the operator
    result: str | None = None
    error: str | None = None
    expect: HttpExpect | None = None
    #: how far the job got, shown as x of y and a rate while following
    progress: ProgressSpec | None = None


class TriggerSpec(HttpSpec):
    method: str = "POST"
    follow: FollowSpec | None = None
    #: the runbook's own confirmation question, asked before the request goes out
    confirm: str | None = None
    #: a header carrying one fresh key per action (the same key when an unknown action is
    #: re-run)
    idempotency_key: str | None = None
    #: read the result (of the response, or of the last read-back when following)
    result: ResultSpec | None = None
    #: the response names a URL a person must approve in a browser (a connect whose OAuth
    #: dance the server owns): shown while following, see :mod:`.approval`
    approve: ApproveSpec | None = None

    @model_validator(mode="after")
    def _approve_needs_follow(self) -> TriggerSpec:
        if self.approve is not None and self.follow is None:
            raise ValueError("approve needs follow: the server's state says when it is approved")
        return self

    @field_validator("idempotency_key")
    @classmethod
    def _header_name(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+", value):
            raise ValueError(f"idempotency_key must be a header name, not {value!r}")
        return value


def _text(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


@register
class TriggerStep(StepType[TriggerSpec]):
    kind = "trigger"
    spec = TriggerSpec
    description = "a mutating request, then follow the job to a terminal state"
    mutates = True
    tracks_action = True

    def default_title(self, spec: TriggerSpec, section_title: str) -> str:
        return f"{spec.method} {spec.url}"

    def produces(self, spec: TriggerSpec) -> Produces:
        return Produces(frozenset(spec.capture), frozenset(spec.capture_secret))

    def own_values_visible_from(self, source: str) -> int | None:
        for offset, text in enumerate(source.splitlines()):
            if text.startswith("follow:"):
                return offset
        return None

    def describe(self, spec: TriggerSpec, render: Callable[..., str]) -> str:
        text = f"{spec.method} {render(spec.url, 'url')}"
        if spec.idempotency_key:
            text += f" ({spec.idempotency_key}: a fresh key)"
        if spec.follow is not None:
            text += f", then follow {render(spec.follow.url, 'url')}"
        if spec.approve is not None:
            text += f" while you approve in a browser (the URL at {spec.approve.where})"
        return text

    async def run(self, ctx: StepContext[TriggerSpec]) -> Outcome:
        from ..expectations import describe_body, evaluate_http, search_json

        spec = ctx.spec
        if spec.confirm:
            await _confirm(ctx, spec.confirm)
        if spec.idempotency_key:
            key = _action_key(ctx)
            headers = {
                k: v for k, v in spec.headers.items() if k.lower() != spec.idempotency_key.lower()
            }
            spec = spec.model_copy(update={"headers": {**headers, spec.idempotency_key: key}})
        started = ctx.clock.monotonic()
        sent = await send_and_judge(ctx, spec)
        if isinstance(sent, Outcome):
            return sent
        request, response, assertions = sent.request, sent.response, sent.assertions
        captures, secrets = sent.captures, sent.secrets
        if not all(a.ok for a in assertions):
            return Outcome.judged(
                assertions,
                "",
                artifacts=[request, response],
                captures=captures,
                secret_captures=secrets,
            )
        # what follows (state changes on screen, checkpoints) is redacted before the session
        # records this step: a captured secret is masked from now on, not from the end
        for value in secrets.values():
            with contextlib.suppress(SecretUnavailable):  # too short: the session refuses it
                ctx.redactor.register(value)
        ctx.note(f"triggered: {response.status} {response.reason}")

        follow = spec.follow
        if follow is None:
            return _synchronous(ctx, spec, request, response, assertions, captures, secrets)
        approve_at = approval_url(spec.approve, response) if spec.approve else None
        if spec.approve is not None and approve_at is None:
            assertions.append(Assertion(
                name="approve", ok=False,
                detail=f"the response has no URL to approve at {spec.approve.where}",
            ))
            return Outcome.judged(assertions, "", artifacts=[request, response],
                                  captures=captures, secret_captures=secrets)
        states: list[str] = []
        initial = search_json(follow.state, response.document) if response.is_json else None
        if isinstance(initial, str):
            states.append(initial)
            ctx.emit(StateChange(state=initial))
        follow_ctx = _with_captures(ctx, captures, secrets)
        last: ResponseArtifact = response
        history = MeasurementsArtifact(title="Follow", phase=Phase.RUNNING.value)
        progress = (
            ProgressTracker(follow.progress, ctx.emit, ctx.clock) if follow.progress else None
        )

        async def poll() -> Measurement:
            nonlocal last
            try:
                _, polled, poll_error, _ = await exchange(follow_ctx, follow)
            except TemplateError as exc:
                return Measurement(Phase.ERROR, message=f"cannot follow: {exc}")
            if polled is None:
                return Measurement(Phase.ERROR, message=poll_error or "poll failed")
            if polled.status >= 400:
                return Measurement(
                    Phase.ERROR, message=f"read-back returned {polled.status} {polled.reason}"
                )
            if not polled.is_json:
                reason = polled.json_error or describe_body(polled)
                return Measurement(Phase.ERROR, message=f"read-back is not JSON ({reason})")
            last = polled
            state = search_json(follow.state, polled.document)
            state_text = _text(state) if state is not None else "(no state)"
            if progress is not None:
                progress.update(polled.document)
            if not states or states[-1] != state_text:
                states.append(state_text)
                ctx.emit(StateChange(state=state_text))
            if state_text in follow.succeeded:
                return Measurement(Phase.SUCCESSFUL, state_text)
            if state_text in follow.failed:
                why = search_json(follow.error, polled.document) if follow.error else None
                message = _text(why) if why not in (None, "") else ""
                return Measurement(Phase.FAILED, state_text, message)
            if progress is not None and progress.stalled:
                return Measurement(Phase.FAILED, state_text, progress.stalled)
            return Measurement(Phase.RUNNING, state_text)

        def followed() -> list[Artifact]:
            shown: list[Artifact] = [StatesArtifact(states=list(states)), history]
            return shown

        def measured(measurement: Measurement, run: AnalysisRun) -> None:
            history.rows.append(
                MeasurementRow(
                    phase=measurement.phase.value,
                    value=measurement.value,
                    message=measurement.message,
                    at=measurement.at,
                )
            )
            if measurement.phase is Phase.ERROR:
                ctx.note(
                    f"poll failed ({run.consecutive_errors}/{FOLLOW_ERROR_LIMIT + 1}): "
                    f"{measurement.message}"
                )
            ctx.checkpoint(
                [*([progress.artifact] if progress else []), request, *followed()]
            )

        policy = AnalysisPolicy(
            interval=follow.interval,
            count=1,
            consecutive_error_limit=FOLLOW_ERROR_LIMIT,
            deadline=follow.deadline,
        )
        following = run_analysis(poll, policy, clock=ctx.clock, on_measurement=measured)
        if spec.approve is not None and approve_at is not None:
            asking = ask_to_approve(ctx, spec.approve, approve_at, follow.deadline)
            run = await follow_while_asking(following, asking)
        else:
            run = await following
        history.phase, history.message = run.phase.value, run.message
        if progress is not None:
            progress.artifact.finished = run.phase is Phase.SUCCESSFUL
        elapsed = (ctx.clock.monotonic() - started) * 1000
        path = " → ".join(states)
        artifacts: list[Artifact] = [request, last, *followed()]
        if progress is not None:
            artifacts.insert(0, progress.artifact)

        def outcome(status: StepStatus, summary: str) -> Outcome:
            return Outcome(
                status,
                summary,
                assertions=assertions,
                artifacts=artifacts,
                captures=captures,
                secret_captures=secrets,
                duration_ms=elapsed,
            )

        if run.phase is Phase.SUCCESSFUL:
            final = states[-1]
            assertions.append(Assertion(name="follow", ok=True, detail=f"job {final} ({path})"))
            if follow.expect is not None:
                try:
                    final_expect, final_labels = render_expect(follow_ctx, follow.expect)
                except TemplateError as exc:
                    assertions.append(Assertion(name="follow expect", ok=False, detail=str(exc)))
                else:
                    assertions.extend(
                        evaluate_http(final_expect, last, secret_phrases=final_labels)
                    )
            summary = f"job {final} in {elapsed / 1000:.1f}s ({path})"
            if spec.approve is not None and spec.approve.account:
                who = search_json(spec.approve.account, last.document)
                if who not in (None, ""):
                    summary = f"approved for {_text(who)}; {summary}"
            breakdown = search_json(follow.result, last.document) if follow.result else None
            if breakdown is not None:
                summary += f"; result: {_text(breakdown)}"
            if spec.result is not None:
                judged, status, said = judge_result(spec.result, last.document)
                artifacts.insert(0, judged)
                assertions.append(Assertion(name="result", ok=status is StepStatus.PASSED,
                                            detail=said))
                summary = f"{said}; {summary}"
            failed = [a for a in assertions if not a.ok]
            if failed:
                return outcome(StepStatus.FAILED, failed[0].detail)
            return outcome(StepStatus.PASSED, summary)
        if run.phase is Phase.FAILED and progress is not None and progress.stalled:
            detail = (
                f"{progress.stalled}, still {states[-1]}: the {spec.method} was accepted, but "
                "the job is not progressing; look at what runs it before triggering it again"
            )
            assertions.append(Assertion(name="progress", ok=False, detail=detail))
            return outcome(StepStatus.FAILED, detail)
        if run.phase is Phase.FAILED:
            final = states[-1]
            why = run.last.message if run.last is not None else ""
            detail = f"job {final}" + (f": {why}" if why else "") + f" ({path})"
            assertions.append(Assertion(name="follow", ok=False, detail=detail))
            if spec.result is not None:
                judged, _, said = judge_result(spec.result, last.document, failed=True)
                artifacts.insert(0, judged)
            return outcome(StepStatus.FAILED, detail)
        # Error (lost track) or Inconclusive (deadline): the job may still finish
        if run.phase is Phase.ERROR:
            reason = run.last.message if run.last is not None else "polls failed"
            detail = f"lost track of the job: {reason}"
        else:
            current = states[-1] if states else "unknown"
            detail = f"still {current} after {follow.deadline:g}s; stopped following"
        assertions.append(Assertion(name="follow", ok=False, detail=detail))
        status = StepStatus.UNKNOWN if ctx.mutating else StepStatus.INCONCLUSIVE
        if status is StepStatus.UNKNOWN:
            detail += " (the job may still finish: check it before running this again)"
        return outcome(status, detail)


async def _confirm(ctx: StepContext[TriggerSpec], prompt: str) -> None:
    """The runbook's own question; "no" (or escape) stops before anything is sent."""
    reply = await ctx.ask(
        Choose(
            prompt=ctx.render(prompt),
            key="confirm",
            detail=ctx.step.title,
            choices=(
                Choice("yes", "Yes", tone="positive"),
                Choice("no", "No", tone="negative"),
            ),
            default="no",
            yes="yes",
            note=False,
            confirmation=True,
            unattended_reason="asks before acting; answer it with --yes or "
            f"--answer {ctx.step.id}.confirm=yes",
        )
    )
    if reply.value != "yes":
        raise StepCancelled("not triggered: the operator answered no")


#: attempts whose outcome is known: the next run of the step is a new action
_KNOWN = frozenset({StepStatus.PASSED, StepStatus.FAILED, StepStatus.INCONCLUSIVE})
_KEY_NAMESPACE = uuid.UUID("6f1d3c52-8a0e-4f7b-9a41-2b7c0e5d9a13")


def _action_key(ctx: StepContext[TriggerSpec]) -> str:
    """The idempotency key of this action: the same for every re-run of an attempt whose
    outcome is unknown (even after a crash, when nothing of it was saved), a new one once
    an attempt's outcome is known. Derived from the run's id, the step and the action's
    number, so nothing has to be saved before the request goes out."""
    history = ctx.run.result(ctx.step.id).history
    action = 1 + sum(1 for attempt in history if attempt.status in _KNOWN)
    run_id = ctx.variables.get("run_id", "")
    return str(uuid.uuid5(_KEY_NAMESPACE, f"{run_id}/{ctx.step.id}/{action}"))


class ProgressTracker:
    """x of y and the rate since following began, from each read-back; and whether the
    count has stalled (not moved for ``spec.stalled_after`` polls in a row)."""

    def __init__(
        self, spec: ProgressSpec, emit: Callable[[Progress], None], clock: Clock
    ) -> None:
        self.spec = spec
        self.emit = emit
        self.clock = clock
        self.artifact = ProgressArtifact(label=spec.label)
        self._first: tuple[float, int] | None = None
        #: when the count last moved (or was first seen), and polls since with the same count
        self._moved: tuple[float, int] | None = None
        self._still = 0
        #: why the job has stalled, in plain words ("" while it moves)
        self.stalled = ""

    def update(self, document: Any) -> None:
        from ..expectations import search_json

        done = _count(search_json(self.spec.done, document))
        total = _count(search_json(self.spec.total, document)) if self.spec.total else None
        if done is None:
            return
        now = self.clock.monotonic()
        if self._first is None:
            self._first = (now, done)
        first_at, first_done = self._first
        rate = (done - first_done) / (now - first_at) if now - first_at >= 0.5 else None
        if self._moved is None or self._moved[1] != done:
            self._moved, self._still = (now, done), 0
        else:
            self._still += 1
        limit = self.spec.stalled_after
        # every item done but the job not finished yet (finalising): the deadline decides
        finishing = total is not None and done >= total
        if limit is not None and self._still >= limit and not self.stalled and not finishing:
            of = f" of {total:,}" if total else ""
            polls = "poll" if limit == 1 else "polls"
            self.stalled = (
                f"{self.spec.label} stalled at {done:,}{of} for {self._still} {polls} "
                f"({now - self._moved[0]:.0f} s)"
            )
        self.artifact = self.artifact.model_copy(
            update={"done": done, "total": total, "rate": rate, "stalled": self.stalled}
        )
        label = self.spec.label + (f" · {rate:,.1f}/s" if rate is not None else "")
        self.emit(
            Progress(
                label=label,
                done=done,
                total=total,
                fraction=min(done / total, 1.0) if total else None,
            )
        )


def _count(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value == value and abs(value) < 1e15:
        return int(value)
    return None


def _synchronous(
    ctx: StepContext[TriggerSpec],
    spec: TriggerSpec,
    request: Artifact,
    response: ResponseArtifact,
    assertions: list[Assertion],
    captures: dict[str, str],
    secrets: dict[str, str],
) -> Outcome:
    """No follow: the response is the result."""
    summary = f"{response.status} {response.reason} in {response.elapsed_ms:.0f} ms"
    artifacts: list[Artifact] = [request, response]
    if spec.result is not None:
        judged, status, said = judge_result(spec.result, response.document)
        artifacts.insert(0, judged)
        assertions.append(Assertion(name="result", ok=status is StepStatus.PASSED, detail=said))
        summary = f"{said} ({summary})"
    return Outcome.judged(
        assertions,
        summary,
        artifacts=artifacts,
        captures=captures,
        secret_captures=secrets,
        duration_ms=response.elapsed_ms,
    )


def _problems(entry: Any) -> list[str]:
    """Warnings / errors a source or a job reported, as text."""
    if entry is None or entry is False or entry == 0 or entry == "":
        return []
    if isinstance(entry, list):
        return [_text(item) for item in entry if item not in (None, "")]
    if isinstance(entry, dict):
        return [f"{k}: {_text(v)}" for k, v in entry.items()]
    if isinstance(entry, int | float) and not isinstance(entry, bool):
        return [f"{_text(entry)} reported"]
    return [_text(entry)]


def judge_result(
    spec: ResultSpec, document: Any, *, failed: bool = False
) -> tuple[JobResultArtifact, StepStatus, str]:
    """The badge (Success / Partial / Failed), the step status it makes, and why."""
    from ..expectations import search_json

    def find(path: str | None) -> Any:
        if path is None or document is None:
            return None
        try:
            return search_json(path, document)
        except ValueError:
            return None

    overall = find(spec.status)
    overall_text = _text(overall) if overall is not None else ""
    sources: list[list[str]] = []
    for name, entry in _source_items(find(spec.sources)):
        if isinstance(entry, dict):
            state = _text(entry.get("status", entry.get("state", "")))
            reported = _problems(entry.get("errors")) + _problems(entry.get("warnings"))
        else:
            state, reported = _text(entry), []
        problem = bool(reported) or state.lower() not in {s.lower() for s in spec.ok}
        detail = ""
        if reported:
            detail = f"{len(reported)} reported: " + "; ".join(reported[:2])
        sources.append([name, state, detail[:200], "problem" if problem else "ok"])
    metrics = [
        (path, _text(value) if (value := find(path)) is not None else "-") for path in spec.metrics
    ]
    warnings = _problems(find(spec.warnings))
    troubled = [row[0] for row in sources if row[3] == "problem"]
    badge: Literal["Success", "Partial", "Failed"]
    if failed or (overall_text and overall_text.lower() in {s.lower() for s in spec.failed}):
        badge = "Failed"
    elif (
        troubled
        or warnings
        or (overall_text and overall_text.lower() not in {s.lower() for s in spec.succeeded})
    ):
        badge = "Partial"
    else:
        badge = "Success"
    artifact = JobResultArtifact(
        badge=badge, status=overall_text, sources=sources, metrics=metrics, warnings=warnings
    )
    said: str = badge
    if overall_text:
        said += f" (status {overall_text})"
    if badge != "Success":
        reasons = []
        if troubled:
            reasons.append(
                f"{', '.join(troubled[:3])} reported warnings or errors"
                if len(troubled) <= 3 else f"{len(troubled)} sources reported warnings or errors"
            )
        if warnings:
            reasons.append(f"{len(warnings)} warning(s): {warnings[0][:120]}")
        if reasons:
            said += ": " + "; ".join(reasons)
    shown = ", ".join(f"{k} {v}" for k, v in metrics)
    if shown:
        said += f" — {shown}"
    status = {"Success": StepStatus.PASSED, "Failed": StepStatus.FAILED}.get(
        badge, StepStatus.PASSED if spec.partial == "pass" else StepStatus.FAILED
    )
    return artifact, status, said


def _source_items(value: Any) -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [(str(k), v) for k, v in value.items()]
    if isinstance(value, list):
        items = []
        for index, entry in enumerate(value, start=1):
            name = None
            if isinstance(entry, dict):
                name = entry.get("source") or entry.get("name") or entry.get("id")
            items.append((str(name) if name is not None else f"#{index}", entry))
        return items
    return []


def _with_captures(
    ctx: StepContext[TriggerSpec], captures: dict[str, str], secrets: dict[str, str]
) -> StepContext[Any]:
    """The follow request may use what the trigger captured (``{{ job_id }}``)."""
    return with_values(ctx, captures, secrets)


def with_values(
    ctx: StepContext[Any], values: Mapping[str, str], secrets: Mapping[str, str] | None = None
) -> StepContext[Any]:
    """A read-only copy of ``ctx`` whose templates also see ``values`` (and ``secrets``):
    a follow reads the trigger's captures, a burst its ``burst_user`` / ``burst_index``.
    Values given here are never trusted (never raw at the start of a URL)."""
    extra_secrets = dict(secrets or {})
    variables = ChainMap(dict(values), dict(ctx.variables))
    ctx_trusted = frozenset(ctx.trusted) - frozenset(values)

    def secret(name: str) -> str:
        return extra_secrets[name] if name in extra_secrets else ctx.secret(name)

    def render(text: str, context: RenderContext = "text") -> str:
        from ..template import render as render_template

        return render_template(
            text, variables, secret, context=context, trusted=ctx_trusted
        )

    copy: StepContext[Any] = StepContext(
        step=ctx.step,
        spec=ctx.spec,
        variables=variables,
        secret=secret,
        render=render,
        redactor=ctx.redactor,
        clients=ctx.clients,
        clock=ctx.clock,
        run=ctx.run,
        ask=ctx.ask,
        emit=ctx.emit,
        checkpoint=ctx.checkpoint,
        secret_labels=ctx.secret_labels,
        mutating=False,
        secret_policy=ctx.secret_policy,
        trusted=ctx_trusted,
    )
    return copy
