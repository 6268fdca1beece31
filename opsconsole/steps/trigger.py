"""The trigger step: a mutating request, then follow the job to a terminal state."""

from __future__ import annotations

import asyncio
import json
import time
from collections import ChainMap

from ..errors import TemplateError
from ..expectations import evaluate_http, search_json
from ..model import TriggerSpec
from ..run import Assertion, StepStatus
from . import Outcome, StepContext
from .http import capture_values, perform_request, render_expect

__all__ = ["MAX_POLL_ERRORS", "run_trigger"]

#: consecutive failed polls before following gives up (one blip is not a failure)
MAX_POLL_ERRORS = 3


def _text(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


async def run_trigger(spec: TriggerSpec, ctx: StepContext) -> Outcome:
    started = time.perf_counter()
    try:
        expect, labels = render_expect(ctx, spec.expect)
        request, response, error = await perform_request(ctx, spec)
    except TemplateError as exc:
        return Outcome(StepStatus.FAILED, f"cannot build the request: {exc}")
    if response is None:
        return Outcome(StepStatus.FAILED, error or "request failed", request=request)
    assertions = evaluate_http(expect, response, secret_phrases=labels)
    captures, secrets, problems = capture_values(spec, response)
    assertions.extend(problems)
    if not all(a.ok for a in assertions):
        return Outcome.judged(
            assertions,
            "",
            request=request,
            response=response,
            captures=captures,
            secret_captures=secrets,
        )
    ctx.progress(f"triggered: {response['status']} {response['reason']}")

    follow = spec.follow
    states: list[str] = []
    initial = search_json(follow.state, response.get("json")) if response.get("is_json") else None
    if isinstance(initial, str):
        states.append(initial)
    variables = ChainMap(captures, dict(ctx.variables))
    follow_ctx = StepContext(
        variables=variables,
        secret=ctx.secret,
        redactor=ctx.redactor,
        client=ctx.client,
        progress=ctx.progress,
        secret_labels=ctx.secret_labels,
    )
    deadline = time.monotonic() + follow.deadline
    errors_in_a_row = 0
    last = response

    def stop(detail: str, shown: dict | None = None, duration_ms: float | None = None) -> Outcome:
        """Following ended badly: the reason is the step's detail and a failed assertion."""
        assertions.append(Assertion(name="follow", ok=False, detail=detail))
        return Outcome(
            StepStatus.FAILED,
            detail,
            request=request,
            response=shown or last,
            assertions=assertions,
            states=states,
            captures=captures,
            secret_captures=secrets,
            duration_ms=duration_ms,
        )

    while True:
        try:
            _, polled, error = await perform_request(follow_ctx, follow, purpose="follow")
        except TemplateError as exc:
            return stop(f"cannot follow: {exc}")
        if polled is None or polled["status"] >= 400 or not polled.get("is_json"):
            errors_in_a_row += 1
            reason = error or (
                f"read-back returned {polled['status']} {polled['reason']}"
                if polled and polled["status"] >= 400
                else "read-back is not JSON"
            )
            ctx.progress(f"poll failed ({errors_in_a_row}/{MAX_POLL_ERRORS}): {reason}")
            if errors_in_a_row >= MAX_POLL_ERRORS:
                return stop(f"lost track of the job: {reason}", polled)
        else:
            errors_in_a_row = 0
            last = polled
            state = search_json(follow.state, polled["json"])
            state_text = _text(state) if state is not None else "(no state)"
            if not states or states[-1] != state_text:
                states.append(state_text)
                ctx.progress(f"state: {state_text}")
            if state_text in follow.succeeded or state_text in follow.failed:
                break
        if time.monotonic() >= deadline:
            current = states[-1] if states else "unknown"
            return stop(f"still {current} after {follow.deadline:g}s; stopped following")
        await asyncio.sleep(follow.interval)

    final = states[-1]
    elapsed = (time.perf_counter() - started) * 1000
    trail = " → ".join(states)
    if final in follow.failed:
        why = search_json(follow.error, last["json"]) if follow.error else None
        detail = (
            f"job {final}" + (f": {_text(why)}" if why not in (None, "") else "") + f" ({trail})"
        )
        return stop(detail, duration_ms=elapsed)
    assertions.append(Assertion(name="follow", ok=True, detail=f"job {final} ({trail})"))
    if follow.expect is not None:
        try:
            final_expect, final_labels = render_expect(follow_ctx, follow.expect)
        except TemplateError as exc:
            assertions.append(Assertion(name="follow expect", ok=False, detail=str(exc)))
        else:
            assertions.extend(evaluate_http(final_expect, last, secret_phrases=final_labels))
    result = search_json(follow.result, last["json"]) if follow.result else None
    summary = f"job {final} in {elapsed / 1000:.1f}s ({trail})"
    if result is not None:
        summary += f"; result: {_text(result)[:200]}"
    return Outcome.judged(
        assertions,
        summary,
        request=request,
        response=last,
        states=states,
        captures=captures,
        secret_captures=secrets,
        duration_ms=elapsed,
    )
