"""``ops promql``: query Prometheus; one measurement or an analysis run (Argo Rollouts).

Each measurement is an instant query through prometheus-api-client
(synchronous, so it runs in a daemon thread; the step waits at most
``timeout`` for it: a hung Prometheus may keep the thread, never the step).
A value is judged by ``success`` and ``failure`` as Argo Rollouts does:

- both set: failure met → Failed, success met → Successful, neither → Inconclusive;
- only ``success``: met → Successful, else Failed;
- only ``failure``: met → Failed, else Successful.

"No data" is never a number: an empty vector, NaN or ±Inf is Inconclusive, an
unreachable Prometheus (or a query it rejects) is Error; the step then ends
*inconclusive*, never passed and never read as 0. With ``analysis`` the
measurements run through :mod:`opsconsole.analysis` (interval, count and the
failure / inconclusive / consecutive-error limits). ``range`` adds a range
query drawn as a sparkline. Read-only.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import Field, model_validator

from ..analysis import AnalysisPolicy, AnalysisRun, Measurement, Phase, run_analysis
from ..artifacts import (
    Artifact,
    KeyValuesArtifact,
    MeasurementRow,
    MeasurementsArtifact,
    SeriesArtifact,
)
from ..errors import TemplateError
from ..model import Duration, StrDict
from ..operator import Countdown, Progress
from ..run import StepStatus
from ..template import REFERENCE, secrets_used
from ..thresholds import Threshold, ThresholdField, format_value
from . import register
from .base import Outcome, StepContext, StepSpec, StepType

if TYPE_CHECKING:
    from prometheus_api_client import PrometheusConnect

__all__ = [
    "AnalysisSpec",
    "PromqlSpec",
    "PromqlStep",
    "QueryTimeout",
    "call_with_deadline",
    "judge_value",
    "render_promql",
]

T = TypeVar("T")


class QueryTimeout(Exception):
    """The thread did not answer within the deadline (it may linger; nobody waits for it)."""


class AnalysisSpec(StepSpec):
    """Argo Rollouts' measurement policy: every ``interval``, ``count`` measurements."""

    interval: Duration | None = None
    count: int | None = Field(default=None, ge=1)
    failure_limit: int = Field(default=0, ge=0)
    inconclusive_limit: int = Field(default=0, ge=0)
    consecutive_error_limit: int = Field(default=4, ge=0)
    initial_delay: Duration = 0.0

    @model_validator(mode="after")
    def _bounded(self) -> AnalysisSpec:
        if self.interval is not None and self.count is None:
            raise ValueError("an analysis with an interval needs a count (it must end)")
        return self


class PromqlSpec(StepSpec):
    prometheus: str
    query: str
    success: ThresholdField | None = None
    failure: ThresholdField | None = None
    #: a range query over the last ``range`` seconds, every ``step``, drawn as a sparkline
    range: Duration | None = None
    step: Duration = 15.0
    analysis: AnalysisSpec | None = None
    headers: StrDict = Field(default_factory=dict)
    #: deadline of each query (the step never waits longer for one)
    timeout: Duration = 10.0

    @model_validator(mode="after")
    def _conditions(self) -> PromqlSpec:
        if self.success is None and self.failure is None:
            raise ValueError("a promql step needs success, failure or both (like \"< 0.01\")")
        if self.range is not None and self.step <= 0:
            raise ValueError("step must be positive")
        if self.range is not None and self.range / self.step > 11_000:
            raise ValueError("range / step gives more than 11,000 points (Prometheus' limit)")
        return self


# -- pieces that do not need a step ----------------------------------------------------


async def call_with_deadline(fn: Callable[[], T], deadline: float) -> T:
    """``fn()`` in a daemon thread; QueryTimeout after ``deadline`` seconds (the thread may
    go on, but nothing waits for it, and it cannot keep the process alive)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(value: Any, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)

    def work() -> None:
        try:
            value, error = fn(), None
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting coroutine
            value, error = None, exc
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is waiting
            loop.call_soon_threadsafe(settle, value, error)

    threading.Thread(target=work, name="opsconsole-promql", daemon=True).start()
    try:
        async with asyncio.timeout(deadline):
            return await future
    except TimeoutError:
        raise QueryTimeout(f"no answer within {deadline:g}s") from None


def _promql_string(value: str) -> str:
    """A value as the inside of a double-quoted PromQL string."""
    return (
        value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    )


def render_promql(ctx: StepContext[Any], query: str) -> str:
    """Fill ``{{ }}`` in a query; data never becomes PromQL.

    An environment variable (config) or a ``| raw`` reference goes in as it is; any other
    run value (a capture, an operator's input) only inside a double-quoted string, escaped.
    Secrets are refused: a query is logged by Prometheus."""
    out: list[str] = []
    position = 0
    for match in REFERENCE.finditer(query):
        name, raw = match.group(1), match.group(2) == "raw"
        if name.startswith("secrets."):
            raise TemplateError(f"a secret may not go into a PromQL query ({match.group(0)})")
        value = ctx.render(match.group(0).replace("| raw", "").replace("|raw", ""))
        before = query[position : match.start()]
        out.append(before)
        inside_string = _in_double_quotes(query[: match.start()])
        if raw or (name in ctx.trusted and not inside_string):
            out.append(value)
        elif inside_string:
            out.append(_promql_string(value))
        else:
            raise TemplateError(
                f"{match.group(0)} is a run value: put it inside a quoted label value "
                f'(job="{match.group(0)}"), or mark it {{{{ {name} | raw }}}} if it is PromQL'
            )
        position = match.end()
    out.append(query[position:])
    return "".join(out)


def _in_double_quotes(prefix: str) -> bool:
    inside, escaped = False, False
    for char in prefix:
        if escaped:
            escaped = False
        elif char == "\\" and inside:
            escaped = True
        elif char == '"':
            inside = not inside
    return inside


def judge_value(
    value: float, success: Threshold | None, failure: Threshold | None
) -> tuple[Phase, str]:
    """Argo Rollouts' reading of one finite value against the conditions."""
    shown = format_value(value)
    if failure is not None and failure.met(value):
        return Phase.FAILED, f"{shown} meets the failure condition {failure}"
    if success is not None and failure is not None:
        if success.met(value):
            return Phase.SUCCESSFUL, f"{shown} meets the success condition {success}"
        return Phase.INCONCLUSIVE, f"{shown} meets neither {success} nor failure {failure}"
    if success is not None:
        if success.met(value):
            return Phase.SUCCESSFUL, f"{shown} meets the success condition {success}"
        return Phase.FAILED, f"{shown}, expected {success}"
    assert failure is not None
    return Phase.SUCCESSFUL, f"{shown} does not meet the failure condition {failure}"


def _number(text: Any) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def read_instant(result: Any) -> tuple[float | None, str]:
    """(value, "") or (None, why there is no data) from a query's ``result``."""
    if isinstance(result, list) and len(result) == 2 and not isinstance(result[0], dict):
        sample = result  # a scalar: [time, "value"]
    elif not result:
        return None, "no data: the query returned an empty vector"
    elif not isinstance(result, list) or not isinstance(result[0], dict):
        return None, "no data: Prometheus answered with something that is not a vector"
    elif len(result) > 1:
        return None, (
            f"no single value: the query returned {len(result)} series; aggregate it "
            "(sum, max, ...) to one"
        )
    else:
        sample = result[0].get("value") or []
    value = _number(sample[1]) if isinstance(sample, list) and len(sample) == 2 else None
    if value is None:
        return None, "no data: the sample has no number"
    if math.isnan(value):
        return None, "no data: the value is NaN (nothing to divide, or no samples in the window)"
    if math.isinf(value):
        return None, f"no data: the value is {format_value(value)}"
    return value, ""


def _problem(exc: BaseException, where: str) -> str:
    """A failed query in operator words."""
    text = str(exc)
    if isinstance(exc, QueryTimeout):
        return f"no data: Prometheus at {where} gave {text}"
    error = re.search(r'"error"\s*:\s*"((?:[^"\\]|\\.)*)"', text)
    if error:
        return f"Prometheus rejected the query: {error.group(1)}"
    status = re.search(r"HTTP Status Code (\d+)", text)
    if status:
        return f"no data: Prometheus at {where} answered HTTP {status.group(1)}"
    lowered = text.lower()
    if "refused" in lowered:
        return f"no data: Prometheus at {where} is unreachable (connection refused)"
    if "timed out" in lowered or "timeout" in lowered:
        return f"no data: Prometheus at {where} did not answer in time"
    return f"no data: cannot query Prometheus at {where} ({type(exc).__name__})"


def _connect(url: str, headers: dict[str, str], timeout: float) -> PrometheusConnect:
    import requests
    from prometheus_api_client import PrometheusConnect
    from urllib3.util.retry import Retry

    session = requests.Session()
    session.trust_env = False  # no proxy or .netrc from the environment
    return PrometheusConnect(
        url=url,
        headers=headers or None,
        session=session,
        retry=Retry(total=0, raise_on_status=False),
        timeout=max(1, math.ceil(timeout)),
    )


def _close(client: PrometheusConnect) -> None:
    client._session.close()  # noqa: SLF001 - the library offers no close


def _where(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).netloc or url


# -- the step type ---------------------------------------------------------------------


@register
class PromqlStep(StepType[PromqlSpec]):
    kind = "promql"
    spec = PromqlSpec
    description = "query Prometheus: a value against success / failure, or an analysis run"

    def is_mutating(self, spec: PromqlSpec) -> bool:
        return False

    def default_title(self, spec: PromqlSpec, section_title: str) -> str:
        return f"PromQL {spec.query}"

    def describe(self, spec: PromqlSpec, render: Callable[..., str]) -> str:
        return f"PromQL {spec.query} on {render(spec.prometheus, 'url')} ({_conditions(spec)})"

    async def run(self, ctx: StepContext[PromqlSpec]) -> Outcome:
        spec = ctx.spec
        url = ctx.render(spec.prometheus, "url").rstrip("/")
        if not url.startswith(("http://", "https://")):
            return Outcome(
                StepStatus.INCONCLUSIVE,
                "no data: no Prometheus to ask ("
                + (f"{spec.prometheus} is empty in this environment" if not url
                   else f"{url!r} is not an http(s) URL")
                + ")",
            )
        query = render_promql(ctx, spec.query)
        headers = {k: ctx.render(str(v)) for k, v in spec.headers.items()}
        if ctx.secret_policy is not None:
            refusal = ctx.secret_policy.check_destination(secrets_used(spec.headers), url)
            if refusal is not None:
                raise TemplateError(refusal)
        key = hashlib.sha256(repr(sorted(headers.items())).encode()).hexdigest()[:16]
        client = ctx.clients.get(
            f"prometheus {url} {key}", lambda: _connect(url, headers, spec.timeout), _close
        )
        where = _where(url)
        facts = KeyValuesArtifact(
            title="PromQL",
            items=[("query", query), ("prometheus", url), ("condition", _conditions(spec))],
        )
        policy = _policy(spec)
        total = policy.effective_count
        history = MeasurementsArtifact(title="Measurements", phase=Phase.RUNNING.value)
        started = time.monotonic()

        async def measure() -> Measurement:
            try:
                result = await call_with_deadline(
                    lambda: client.custom_query(query, timeout=spec.timeout), spec.timeout
                )
            except Exception as exc:  # noqa: BLE001 - every failure is "no data", in words
                return Measurement(Phase.ERROR, message=_problem(exc, where))
            value, why = read_instant(result)
            if value is None:
                return Measurement(Phase.INCONCLUSIVE, message=why)
            phase, message = judge_value(value, spec.success, spec.failure)
            return Measurement(phase, format_value(value), message)

        def measured(measurement: Measurement, run: AnalysisRun) -> None:
            history.rows.append(
                MeasurementRow(
                    phase=measurement.phase.value,
                    value=measurement.value,
                    message=measurement.message,
                    at=measurement.at,
                )
            )
            if total is not None and total > 1:
                ctx.emit(Progress(label="measurements", done=run.count, total=total))
            ctx.note(
                f"measurement {len(run.measurements)}: {measurement.phase.value}"
                + (f" {measurement.value}" if measurement.value else "")
                + (f" ({measurement.message})" if measurement.message else "")
            )
            ctx.checkpoint([facts, history])

        def waiting(seconds: float) -> None:
            ctx.emit(Countdown(label="next measurement", until=time.time() + seconds))

        ctx.acting()
        run = await run_analysis(
            measure, policy, clock=ctx.clock, on_measurement=measured, on_wait=waiting
        )
        history.phase, history.message = run.phase.value, run.message
        last = run.last
        if last is not None and last.value:
            facts.items.append(("value", last.value))
        artifacts: list[Artifact] = [facts, history]
        if spec.range is not None:
            artifacts.append(await _series(client, query, spec, where))
        elapsed = (time.monotonic() - started) * 1000
        return Outcome(
            _STATUS[run.phase],
            _summary(spec, query, run),
            artifacts=artifacts,
            duration_ms=elapsed,
        )


_STATUS = {
    Phase.SUCCESSFUL: StepStatus.PASSED,
    Phase.FAILED: StepStatus.FAILED,
    Phase.INCONCLUSIVE: StepStatus.INCONCLUSIVE,
    # an error is no data: never a pass, never a verdict on the system
    Phase.ERROR: StepStatus.INCONCLUSIVE,
    Phase.RUNNING: StepStatus.INCONCLUSIVE,
}


def _conditions(spec: PromqlSpec) -> str:
    parts = []
    if spec.success is not None:
        parts.append(f"success {spec.success}")
    if spec.failure is not None:
        parts.append(f"failure {spec.failure}")
    return ", ".join(parts)


def _policy(spec: PromqlSpec) -> AnalysisPolicy:
    if spec.analysis is None:
        # one measurement; an error is final at once (no silent 10 s retries)
        return AnalysisPolicy(count=1, consecutive_error_limit=0)
    a = spec.analysis
    return AnalysisPolicy(
        interval=a.interval,
        count=a.count,
        failure_limit=a.failure_limit,
        inconclusive_limit=a.inconclusive_limit,
        consecutive_error_limit=a.consecutive_error_limit,
        initial_delay=a.initial_delay,
    )


def _summary(spec: PromqlSpec, query: str, run: AnalysisRun) -> str:
    last = run.last
    short = query if len(query) <= 60 else query[:57] + "…"
    if spec.analysis is None and last is not None:
        if last.value:
            return f"{short} = {last.message}"
        return last.message or run.message
    counts = (
        f"{run.successful} successful, {run.failed} failed, {run.inconclusive} inconclusive, "
        f"{run.errors} errors"
    )
    verdict = f"analysis {run.phase.value.lower()}: {counts}"
    if run.phase is not Phase.SUCCESSFUL and run.message:
        verdict += f" ({run.message})"
    return verdict


async def _series(
    client: PrometheusConnect, query: str, spec: PromqlSpec, where: str
) -> SeriesArtifact:
    assert spec.range is not None
    end = datetime.now(UTC)
    start = end - timedelta(seconds=spec.range)
    series = SeriesArtifact(
        title=f"Last {_duration(spec.range)}", query=query, step_s=spec.step,
        threshold=_conditions(spec),
    )
    try:
        result = await call_with_deadline(
            lambda: client.custom_query_range(
                query, start_time=start, end_time=end, step=f"{spec.step:g}s",
                timeout=spec.timeout,
            ),
            spec.timeout,
        )
    except Exception as exc:  # noqa: BLE001 - the sparkline is extra: say why it is missing
        series.title += f" (no series: {_problem(exc, where)})"
        return series
    first = result[0] if isinstance(result, list) and result else None
    values = first.get("values", []) if isinstance(first, dict) else []
    slots = max(int(spec.range // spec.step), 1) + 1
    points: list[float | None] = [None] * slots
    origin = start.timestamp()
    for pair in values:
        if isinstance(pair, list) and len(pair) == 2:
            at, number = _number(pair[0]), _number(pair[1])
            if at is None or number is None or not math.isfinite(number):
                continue
            index = round((at - origin) / spec.step)
            if 0 <= index < slots:
                points[index] = number
    series.points = points
    if isinstance(result, list) and len(result) > 1:
        series.title += f" (first of {len(result)} series)"
    return series


def _duration(seconds: float) -> str:
    if seconds % 3600 == 0:
        return f"{seconds / 3600:g}h"
    if seconds % 60 == 0:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"
