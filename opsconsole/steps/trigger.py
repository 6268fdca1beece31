"""``ops trigger``: a mutating request, then follow the job to a terminal state.

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
from collections import ChainMap
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import Field

from ..analysis import AnalysisPolicy, AnalysisRun, Measurement, Phase, run_analysis
from ..artifacts import (
    Artifact,
    MeasurementRow,
    MeasurementsArtifact,
    ResponseArtifact,
    StatesArtifact,
)
from ..errors import SecretUnavailable, TemplateError
from ..model import Duration, StrList
from ..operator import StateChange
from ..run import Assertion, StepStatus
from . import register
from .base import Outcome, Produces, StepContext, StepType
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

__all__ = ["FOLLOW_ERROR_LIMIT", "FollowSpec", "TriggerSpec", "TriggerStep", "with_values"]

#: polls that may fail in a row before following gives up (one blip is not a failure)
FOLLOW_ERROR_LIMIT = 2


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


class TriggerSpec(HttpSpec):
    method: str = "POST"
    follow: FollowSpec


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
        follow = render(spec.follow.url, "url")
        return f"{spec.method} {render(spec.url, 'url')}, then follow {follow}"

    async def run(self, ctx: StepContext[TriggerSpec]) -> Outcome:
        from ..expectations import describe_body, evaluate_http, search_json

        spec = ctx.spec
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
        states: list[str] = []
        initial = search_json(follow.state, response.document) if response.is_json else None
        if isinstance(initial, str):
            states.append(initial)
            ctx.emit(StateChange(state=initial))
        follow_ctx = _with_captures(ctx, captures, secrets)
        last: ResponseArtifact = response
        history = MeasurementsArtifact(title="Follow", phase=Phase.RUNNING.value)

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
            if not states or states[-1] != state_text:
                states.append(state_text)
                ctx.emit(StateChange(state=state_text))
            if state_text in follow.succeeded:
                return Measurement(Phase.SUCCESSFUL, state_text)
            if state_text in follow.failed:
                why = search_json(follow.error, polled.document) if follow.error else None
                message = _text(why) if why not in (None, "") else ""
                return Measurement(Phase.FAILED, state_text, message)
            return Measurement(Phase.RUNNING, state_text)

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
            ctx.checkpoint([request, StatesArtifact(states=list(states)), history])

        policy = AnalysisPolicy(
            interval=follow.interval,
            count=1,
            consecutive_error_limit=FOLLOW_ERROR_LIMIT,
            deadline=follow.deadline,
        )
        run = await run_analysis(poll, policy, clock=ctx.clock, on_measurement=measured)
        history.phase, history.message = run.phase.value, run.message
        elapsed = (ctx.clock.monotonic() - started) * 1000
        path = " → ".join(states)
        artifacts: list[Artifact] = [request, last, StatesArtifact(states=states), history]

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
            breakdown = search_json(follow.result, last.document) if follow.result else None
            if breakdown is not None:
                summary += f"; result: {_text(breakdown)}"
            failed = [a for a in assertions if not a.ok]
            if failed:
                return outcome(StepStatus.FAILED, failed[0].detail)
            return outcome(StepStatus.PASSED, summary)
        if run.phase is Phase.FAILED:
            final = states[-1]
            why = run.last.message if run.last is not None else ""
            detail = f"job {final}" + (f": {why}" if why else "") + f" ({path})"
            assertions.append(Assertion(name="follow", ok=False, detail=detail))
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
