"""One runner for everything that polls or measures, with Argo Rollouts' semantics.

A *measurement* is Successful, Failed, Inconclusive or Error (or Running: an
in-flight measurement, e.g. a job not finished yet, that is taken again at
the next interval and not counted). After every measurement the run is
assessed exactly as Argo Rollouts' ``assessMetricStatus`` does:

1. failed > failure_limit                         → Failed
2. inconclusive > inconclusive_limit              → Inconclusive
3. consecutive errors > consecutive_error_limit   → Error
4. count reached (errors do not count)            → Successful
5. otherwise keep measuring after ``interval``

Without ``count`` and without ``interval`` one measurement is taken. Our one
addition is ``deadline``: a run still undecided when it passes ends
Inconclusive ("still running after 60s"), so nothing polls forever.

The clock is injected, so tests drive the runner without waiting.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

__all__ = [
    "AnalysisPolicy",
    "AnalysisRun",
    "Clock",
    "Measurement",
    "Phase",
    "SystemClock",
    "assess",
    "run_analysis",
]

#: Argo Rollouts' DefaultConsecutiveErrorLimit
DEFAULT_CONSECUTIVE_ERROR_LIMIT = 4
#: Argo Rollouts' DefaultErrorRetryInterval (an error without an interval is retried after it)
DEFAULT_ERROR_RETRY_INTERVAL = 10.0


class Phase(StrEnum):
    SUCCESSFUL = "Successful"
    FAILED = "Failed"
    INCONCLUSIVE = "Inconclusive"
    ERROR = "Error"
    #: not decided yet (a measurement in flight, or the run still measuring)
    RUNNING = "Running"


class Clock(Protocol):
    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@dataclass(frozen=True)
class AnalysisPolicy:
    interval: float | None = None
    count: int | None = None
    failure_limit: int = 0
    inconclusive_limit: int = 0
    consecutive_error_limit: int = DEFAULT_CONSECUTIVE_ERROR_LIMIT
    initial_delay: float = 0.0
    #: undecided after this many seconds → Inconclusive (None: no deadline)
    deadline: float | None = None

    @property
    def effective_count(self) -> int | None:
        if self.count is not None:
            return self.count
        return 1 if self.interval is None else None


@dataclass
class Measurement:
    phase: Phase
    #: the measured value as shown (a number, a state); "" when there is none
    value: str = ""
    message: str = ""
    #: seconds since the run started (runner clock)
    at: float = 0.0


@dataclass
class AnalysisRun:
    phase: Phase = Phase.RUNNING
    message: str = ""
    measurements: list[Measurement] = field(default_factory=list)
    successful: int = 0
    failed: int = 0
    inconclusive: int = 0
    errors: int = 0
    consecutive_errors: int = 0
    #: measurements counted toward ``count`` (Successful, Failed, Inconclusive)
    count: int = 0

    def record(self, measurement: Measurement) -> None:
        self.measurements.append(measurement)
        if measurement.phase is Phase.SUCCESSFUL:
            self.successful += 1
        elif measurement.phase is Phase.FAILED:
            self.failed += 1
        elif measurement.phase is Phase.INCONCLUSIVE:
            self.inconclusive += 1
        elif measurement.phase is Phase.ERROR:
            self.errors += 1
            self.consecutive_errors += 1
            return
        else:  # RUNNING: in flight, neither counted nor an error
            return
        self.count += 1
        self.consecutive_errors = 0

    @property
    def last(self) -> Measurement | None:
        return self.measurements[-1] if self.measurements else None


def assess(run: AnalysisRun, policy: AnalysisPolicy) -> tuple[Phase, str]:
    """The run's phase after its latest measurement, and why (Argo's order of checks)."""
    last = run.last
    if last is None or last.phase is Phase.RUNNING:
        return Phase.RUNNING, ""
    if run.failed > policy.failure_limit:
        return Phase.FAILED, f"{run.failed} failed (limit {policy.failure_limit})"
    if run.inconclusive > policy.inconclusive_limit:
        return (
            Phase.INCONCLUSIVE,
            f"{run.inconclusive} inconclusive (limit {policy.inconclusive_limit})",
        )
    if run.consecutive_errors > policy.consecutive_error_limit:
        return (
            Phase.ERROR,
            f"{run.consecutive_errors} errors in a row (limit {policy.consecutive_error_limit})",
        )
    count = policy.effective_count
    if count is not None and run.count >= count:
        return Phase.SUCCESSFUL, f"{run.count} of {count} measurements taken"
    return Phase.RUNNING, ""


async def run_analysis(
    measure: Callable[[], Awaitable[Measurement]],
    policy: AnalysisPolicy,
    *,
    clock: Clock | None = None,
    on_measurement: Callable[[Measurement, AnalysisRun], None] | None = None,
    on_wait: Callable[[float], None] | None = None,
) -> AnalysisRun:
    """Measure until the policy decides; never overlaps two measurements.

    ``on_measurement`` sees every measurement as it lands (checkpoint, emit);
    ``on_wait`` is told how long until the next one (a countdown).
    """
    clock = clock or SystemClock()
    started = clock.monotonic()
    run = AnalysisRun()
    if policy.initial_delay > 0:
        await clock.sleep(policy.initial_delay)
    while True:
        measurement = await measure()
        measurement.at = round(clock.monotonic() - started, 3)
        run.record(measurement)
        if on_measurement is not None:
            on_measurement(measurement, run)
        phase, why = assess(run, policy)
        if phase is not Phase.RUNNING:
            run.phase, run.message = phase, _message(phase, why, run)
            return run
        wait = policy.interval
        if wait is None:
            wait = DEFAULT_ERROR_RETRY_INTERVAL if measurement.phase is Phase.ERROR else 0.0
        elapsed = clock.monotonic() - started
        if policy.deadline is not None and elapsed + wait >= policy.deadline:
            if elapsed < policy.deadline:
                # one last look right at the deadline rather than giving up early
                wait = max(policy.deadline - elapsed, 0.0)
            else:
                last = run.last.value if run.last and run.last.value else "undecided"
                run.phase = Phase.INCONCLUSIVE
                run.message = f"still {last} after {policy.deadline:g}s"
                return run
        if on_wait is not None and wait > 0:
            on_wait(wait)
        await clock.sleep(wait)


def _message(phase: Phase, why: str, run: AnalysisRun) -> str:
    last = run.last
    detail = last.message if last is not None and last.message else ""
    if phase is Phase.SUCCESSFUL and last is not None and last.phase is Phase.SUCCESSFUL:
        return detail or why
    return f"{why}: {detail}" if detail else why
