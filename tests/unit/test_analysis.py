"""The analysis runner follows Argo Rollouts' semantics, driven by a clock that never waits."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from opsconsole.analysis import AnalysisPolicy, Measurement, Phase, run_analysis


class FakeClock:
    """Time moves only when the runner sleeps; every sleep is recorded."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def script(*phases: Phase) -> tuple[list[int], object]:
    """A measure() that returns the given phases in order (and counts its calls)."""
    calls: list[int] = []
    queue = list(phases)

    async def measure() -> Measurement:
        calls.append(1)
        phase = queue.pop(0) if queue else Phase.SUCCESSFUL
        return Measurement(phase, value=str(len(calls)))

    return calls, measure


async def run(policy: AnalysisPolicy, phases: Iterable[Phase], clock: FakeClock | None = None):
    clock = clock or FakeClock()
    calls, measure = script(*phases)
    result = await run_analysis(measure, policy, clock=clock)  # type: ignore[arg-type]
    return result, len(calls), clock


S, F, I, E, R = (  # noqa: E741 - the phases' initials read best in tables
    Phase.SUCCESSFUL,
    Phase.FAILED,
    Phase.INCONCLUSIVE,
    Phase.ERROR,
    Phase.RUNNING,
)


async def test_one_measurement_without_count_or_interval() -> None:
    result, calls, clock = await run(AnalysisPolicy(), [S])
    assert (result.phase, calls, clock.sleeps) == (S, 1, [])


async def test_count_reached_is_successful_and_waits_the_interval_between() -> None:
    result, calls, clock = await run(AnalysisPolicy(interval=5, count=3), [S, S, S])
    assert (result.phase, calls) == (S, 3)
    assert clock.sleeps == [5, 5]
    assert result.message == "3 of 3 measurements taken"


async def test_failures_up_to_the_limit_still_succeed() -> None:
    result, calls, _ = await run(AnalysisPolicy(interval=1, count=4, failure_limit=2), [F, S, F, S])
    assert (result.phase, calls, result.failed) == (S, 4, 2)


async def test_failure_limit_exceeded_fails_at_once() -> None:
    result, calls, _ = await run(
        AnalysisPolicy(interval=1, count=10, failure_limit=1), [F, S, F, S, S]
    )
    assert (result.phase, calls) == (F, 3)
    assert result.message.startswith("2 failed (limit 1)")


async def test_inconclusive_limit_exceeded_is_inconclusive() -> None:
    result, calls, _ = await run(
        AnalysisPolicy(interval=1, count=10, inconclusive_limit=1), [I, S, I]
    )
    assert (result.phase, calls, result.inconclusive) == (I, 3, 2)


async def test_failed_and_inconclusive_are_counted_against_their_own_limits() -> None:
    result, _, _ = await run(AnalysisPolicy(interval=1, count=5), [I, F])
    assert result.phase is I  # one inconclusive is already over inconclusive_limit 0
    result, calls, _ = await run(
        AnalysisPolicy(interval=1, count=5, failure_limit=1, inconclusive_limit=3), [I, F, I, F]
    )
    assert (result.phase, calls, result.inconclusive, result.failed) == (F, 4, 2, 2)


async def test_consecutive_errors_over_the_limit_end_in_error() -> None:
    result, calls, _ = await run(
        AnalysisPolicy(interval=1, count=5, consecutive_error_limit=2), [E, E, E]
    )
    assert (result.phase, calls, result.consecutive_errors) == (E, 3, 3)
    assert result.message.startswith("3 errors in a row (limit 2)")


async def test_an_error_between_successes_resets_the_streak_and_is_not_counted() -> None:
    result, calls, _ = await run(
        AnalysisPolicy(interval=1, count=3, consecutive_error_limit=1), [E, S, E, S, E, S]
    )
    assert (result.phase, calls) == (S, 6)
    assert (result.count, result.errors, result.consecutive_errors) == (3, 3, 0)


async def test_error_without_interval_is_retried_after_ten_seconds() -> None:
    result, calls, clock = await run(AnalysisPolicy(), [E, S])
    assert (result.phase, calls, clock.sleeps) == (S, 2, [10.0])


async def test_running_measurements_are_polled_until_terminal_and_not_counted() -> None:
    result, calls, clock = await run(AnalysisPolicy(interval=2, count=1), [R, R, R, S])
    assert (result.phase, calls, result.count) == (S, 4, 1)
    assert clock.sleeps == [2, 2, 2]


async def test_deadline_makes_an_undecided_run_inconclusive_after_a_last_look() -> None:
    result, calls, clock = await run(AnalysisPolicy(interval=4, count=1, deadline=10), [R] * 10)
    assert result.phase is I
    assert result.message == "still 4 after 10s"  # the last measurement's value
    assert clock.sleeps == [4, 4, 2]  # the last wait is cut to land on the deadline
    assert calls == 4


async def test_initial_delay_comes_first() -> None:
    result, _, clock = await run(AnalysisPolicy(initial_delay=30), [S])
    assert (result.phase, clock.sleeps) == (S, [30])


@pytest.mark.parametrize("phases", [[S], [R, S], [E, E, S]])
async def test_measurements_never_overlap(phases: list[Phase]) -> None:
    active = 0
    seen_overlap = False
    queue = list(phases)

    async def measure() -> Measurement:
        nonlocal active, seen_overlap
        active += 1
        seen_overlap = seen_overlap or active > 1
        clock.now += 0.5  # a measurement takes time
        active -= 1
        return Measurement(queue.pop(0))

    clock = FakeClock()
    await run_analysis(
        measure, AnalysisPolicy(interval=1, count=1, consecutive_error_limit=5), clock=clock
    )
    assert not seen_overlap
