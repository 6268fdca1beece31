"""A followed job's progress count that stops moving: the tracker says so, in plain words,
after exactly ``stalled_after`` polls with the same count (a controlled clock and sequence)."""

from __future__ import annotations

from typing import Any

import pytest

from opsconsole.operator import Progress
from opsconsole.steps.trigger import ProgressSpec, ProgressTracker


class StepClock:
    """One second per poll, moved by the test."""

    def __init__(self) -> None:
        self.now = 100.0

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def feed(tracker: ProgressTracker, clock: StepClock, counts: list[Any]) -> list[str]:
    """Each count as one read-back, a second apart; the stall reason after each."""
    said = []
    for count in counts:
        tracker.update({"data": {"processed": count, "total": 1497}})
        said.append(tracker.stalled)
        clock.now += 1.0
    return said


def tracker(stalled_after: int | None) -> tuple[ProgressTracker, StepClock, list[Progress]]:
    clock = StepClock()
    events: list[Progress] = []
    spec = ProgressSpec(
        done="data.processed", total="data.total", label="Enrichment",
        stalled_after=stalled_after,
    )
    return ProgressTracker(spec, events.append, clock), clock, events


def test_a_count_that_stops_moving_stalls_after_exactly_n_polls() -> None:
    progress, clock, _ = tracker(5)
    said = feed(progress, clock, [0, 150, 412, 412, 412, 412, 412, 412])
    # 412 first seen on the third poll; five more polls with 412 make the stall
    assert said[:7] == [""] * 7
    assert said[7] == "Enrichment stalled at 412 of 1,497 for 5 polls (5 s)"
    assert progress.artifact.stalled == said[7]
    assert (progress.artifact.done, progress.artifact.total) == (412, 1497)
    assert "Enrichment stalled at 412 of 1,497" in progress.artifact.blocks()[0].text
    assert progress.artifact.markdown().endswith("— Enrichment stalled at 412 of 1,497 for 5 "
                                                 "polls (5 s)")


def test_any_movement_restarts_the_count() -> None:
    progress, clock, _ = tracker(3)
    said = feed(progress, clock, [10, 10, 10, 11, 11, 11, 12])
    assert said == [""] * 7


def test_polls_without_a_count_do_not_count_as_stalled() -> None:
    progress, clock, _ = tracker(2)
    said = feed(progress, clock, [5, None, None, None, 5])
    assert said == ["", "", "", "", ""]
    said = feed(progress, clock, [5])
    assert said == ["Enrichment stalled at 5 of 1,497 for 2 polls (5 s)"]


def test_without_stalled_after_nothing_stalls() -> None:
    progress, clock, events = tracker(None)
    assert feed(progress, clock, [7] * 50) == [""] * 50
    assert len(events) == 50 and events[-1].done == 7


def test_the_rate_uses_the_injected_clock() -> None:
    progress, clock, events = tracker(None)
    feed(progress, clock, [0, 20, 40])
    assert progress.artifact.rate == pytest.approx(20.0)
    assert events[-1].label == "Enrichment · 20.0/s"


def test_stalled_after_must_be_at_least_one() -> None:
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        ProgressSpec(done="processed", stalled_after=0)


def test_a_job_with_everything_done_is_finishing_not_stalled() -> None:
    progress, clock, _ = tracker(2)
    assert feed(progress, clock, [1000, 1497, 1497, 1497, 1497]) == [""] * 5
