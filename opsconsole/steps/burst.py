"""``ops burst``: a rate-limit test — N requests as one user, the Nth must be limited.

As the seed's burst tests say: the first ``count - 1`` requests pass (2xx),
the ``count``-th gets ``429`` with a ``Retry-After`` header; one request as
``other_user`` right after still passes (buckets are per user); and, with
``reset_after``, after that long one more request as ``user`` passes again.

Each request may use ``{{ burst_user }}`` (the user it is sent as) and
``{{ burst_index }}`` (1, 2, … for the burst; ``other`` and ``reset`` for the
two extra requests) in its URL, headers and body. Requests go one after the
other; the result is a table of every request.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import Field, model_validator

from ..artifacts import Artifact, RequestArtifact, TableArtifact
from ..errors import TemplateError
from ..model import Duration
from ..operator import Countdown, Progress
from ..run import Assertion, StepStatus
from . import register
from .base import Outcome, StepContext, StepType
from .http import SAFE_METHODS, RequestFields, exchange
from .trigger import with_values

__all__ = ["BurstSpec", "BurstStep"]

#: the names a burst's request templates may use
BURST_VARIABLES = frozenset({"burst_user", "burst_index"})


class BurstSpec(RequestFields):
    method: str = "POST"
    user: str
    count: int = Field(ge=2, le=1000)
    #: the whole burst must be sent within this long (else the limiter may have refilled)
    window: Duration | None = None
    other_user: str | None = None
    reset_after: Duration | None = None
    limited_status: int = Field(default=429, ge=400, le=599)
    #: the limited answer must carry a Retry-After header
    retry_after: bool = True

    @model_validator(mode="after")
    def _distinct_users(self) -> BurstSpec:
        if self.other_user is not None and self.other_user == self.user:
            raise ValueError("other_user must differ from user (it proves buckets are per user)")
        return self


@dataclass
class Sent:
    index: str
    user: str
    status: int | None
    retry_after: str
    elapsed_ms: float
    expected: str
    ok: bool
    error: str = ""

    def row(self) -> list[str]:
        status = str(self.status) if self.status is not None else "no answer"
        return [
            self.index,
            self.user,
            status,
            self.retry_after or "-",
            f"{self.elapsed_ms:.0f}",
            "ok" if self.ok else f"✗ expected {self.expected}",
        ]


@register
class BurstStep(StepType[BurstSpec]):
    kind = "burst"
    spec = BurstSpec
    description = "rate-limit test: N requests as one user, the Nth gets 429 + Retry-After"
    tracks_action = True

    def is_mutating(self, spec: BurstSpec) -> bool:
        if spec.mutating is not None:
            return spec.mutating
        return spec.method not in SAFE_METHODS

    def default_title(self, spec: BurstSpec, section_title: str) -> str:
        return f"burst of {spec.count} × {spec.method} {spec.url}"

    def block_variables(self, spec: BurstSpec) -> frozenset[str]:
        return BURST_VARIABLES

    def describe(self, spec: BurstSpec, render: Callable[..., str]) -> str:
        text = (
            f"{spec.count} × {spec.method} {render(spec.url, 'url')} as {render(spec.user)}: "
            f"the first {spec.count - 1} pass, #{spec.count} gets {spec.limited_status}"
        )
        if spec.other_user:
            text += f"; then one as {render(spec.other_user)} passes"
        if spec.reset_after:
            text += f"; after {spec.reset_after:g}s one as {render(spec.user)} passes again"
        return text

    async def run(self, ctx: StepContext[BurstSpec]) -> Outcome:
        spec = ctx.spec
        user = ctx.render(spec.user)
        other = ctx.render(spec.other_user) if spec.other_user else None
        sent: list[Sent] = []
        first_request: RequestArtifact | None = None
        assertions: list[Assertion] = []
        table = TableArtifact(
            title="Burst",
            columns=["#", "user", "got", "retry", "ms", "check"],
        )
        ctx.acting()  # one intent for the whole burst

        async def one(index: str, as_user: str, limited: bool) -> Sent:
            nonlocal first_request
            local = with_values(ctx, {"burst_user": as_user, "burst_index": index})
            try:
                request, response, error, _ = await exchange(local, spec)
            except TemplateError as exc:
                raise TemplateError(f"cannot build request {index}: {exc}", exc.name) from None
            first_request = first_request or request
            expected = f"{spec.limited_status} + Retry-After" if limited else "2xx"
            if response is None:
                item = Sent(index, as_user, None, "", 0.0, expected, False, error or "failed")
            else:
                retry = next(
                    (v for k, v in response.headers.items() if k.lower() == "retry-after"), ""
                )
                if limited:
                    ok = response.status == spec.limited_status and (
                        bool(retry.strip()) or not spec.retry_after
                    )
                else:
                    ok = 200 <= response.status < 300
                item = Sent(index, as_user, response.status, retry, response.elapsed_ms,
                            expected, ok)
            sent.append(item)
            table.rows.append(item.row())
            ctx.checkpoint([table])
            return item

        started = time.monotonic()
        early: Sent | None = None
        for n in range(1, spec.count + 1):
            item = await one(str(n), user, limited=n == spec.count)
            ctx.emit(Progress(label=f"burst as {user}", done=n, total=spec.count))
            if item.status is None:
                return self._no_answer(ctx, item, table, first_request)
            if n < spec.count and not item.ok:
                early = item
                break
        took = time.monotonic() - started
        last = sent[-1]
        if early is None and spec.window is not None and took > spec.window:
            return Outcome(
                StepStatus.INCONCLUSIVE,
                f"the burst took {took:.1f}s, longer than its {spec.window:g}s window: the "
                "limiter may have refilled, so the limit was not tested",
                artifacts=[a for a in (first_request, table) if a is not None],
                duration_ms=took * 1000,
            )
        if early is not None:
            why = (
                f"request {early.index} of {spec.count} as {user} got {early.status}"
                + (" (rejected early)" if early.status == spec.limited_status else "")
                + f": the first {spec.count - 1} should pass"
            )
            assertions.append(Assertion(name="burst", ok=False, detail=why))
        else:
            assertions.append(
                Assertion(
                    name="first requests pass",
                    ok=True,
                    detail=f"requests 1–{spec.count - 1} as {user} passed",
                )
            )
            assertions.append(self._judge_limited(spec, user, last))
        if early is None and other is not None:
            item = await one("other", other, limited=False)
            if item.status is None:
                return self._no_answer(ctx, item, table, first_request)
            assertions.append(
                Assertion(
                    name="users isolated",
                    ok=item.ok,
                    detail=f"{other} right after: {item.status}"
                    + ("" if item.ok else f", expected 2xx: {user}'s limit reached {other}"),
                )
            )
        if early is None and spec.reset_after is not None and all(a.ok for a in assertions):
            ctx.emit(Countdown(label="limit window resets", until=time.time() + spec.reset_after))
            ctx.note(f"waiting {spec.reset_after:g}s for the limit window to reset")
            await ctx.clock.sleep(spec.reset_after)
            item = await one("reset", user, limited=False)
            if item.status is None:
                return self._no_answer(ctx, item, table, first_request)
            assertions.append(
                Assertion(
                    name="limit resets",
                    ok=item.ok,
                    detail=f"{user} after {spec.reset_after:g}s: {item.status}"
                    + ("" if item.ok else ", expected 2xx: the counter did not reset"),
                )
            )
        artifacts: list[Artifact] = [table]
        if first_request is not None:
            artifacts.insert(0, first_request)
        summary = (
            f"{spec.count - 1} passed, #{spec.count} got {last.status} "
            f"(Retry-After {last.retry_after or '-'}) in {took:.1f}s"
        )
        extra = [a.name for a in assertions[2:] if a.ok]
        if extra:
            summary += "; " + ", ".join(extra)
        return Outcome.judged(assertions, summary, artifacts=artifacts, duration_ms=took * 1000)

    @staticmethod
    def _judge_limited(spec: BurstSpec, user: str, last: Sent) -> Assertion:
        if last.ok:
            detail = f"request {spec.count} as {user} got {last.status}"
            if last.retry_after:
                detail += f" with Retry-After {last.retry_after}"
            return Assertion(name="limited", ok=True, detail=detail)
        if last.status == spec.limited_status:
            detail = f"request {spec.count} got {last.status} without a Retry-After header"
        else:
            detail = (
                f"request {spec.count} of {spec.count} as {user} got {last.status}, expected "
                f"{spec.limited_status} with Retry-After: the limit was not enforced"
            )
        return Assertion(name="limited", ok=False, detail=detail)

    @staticmethod
    def _no_answer(
        ctx: StepContext[Any], item: Sent, table: TableArtifact, request: RequestArtifact | None
    ) -> Outcome:
        artifacts: list[Artifact] = [table] if request is None else [request, table]
        detail = f"request {item.index} as {item.user}: {item.error}"
        if ctx.mutating:
            return Outcome(
                StepStatus.UNKNOWN,
                detail + "; earlier requests were sent: check the system before running it again",
                artifacts=artifacts,
            )
        return Outcome(StepStatus.FAILED, detail, artifacts=artifacts)
