"""Snapshots of the dashboard from fixed readings (the watcher itself is tested on loopback
in tests/integration/test_watch.py): all green, and a failing check beside a timed-out one."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.pilot import Pilot

from opsconsole.loader import load_runbook
from opsconsole.run import StepStatus
from opsconsole.watch import Reading, Watch
from screens import OpsConsoleApp
from screens.dashboard import DashboardScreen
from tests.snapshots.test_screens import SIZES, V2, settings_for
from tests.ui.pilot_support import settle

NOW = 1_700_000_000.0


class FixedWatcher:
    """Hands out the same readings every round (what the screen shows is all we test here)."""

    def __init__(self, readings: dict[str, Reading]) -> None:
        self.readings = readings
        self.problems: list[str] = []

    async def round(self) -> dict[str, Reading]:
        return dict(self.readings)

    async def aclose(self) -> None:
        return None


def green(items: list[Watch]) -> dict[str, Reading]:
    return {
        item.key: Reading(
            StepStatus.PASSED,
            "passed",
            details=["401 Unauthorized"] if n == 0 else ["200 OK", "no token, URL or key"],
            latency_ms=11.0 + n,
            at=NOW - 4 - n,
            series=[11.0, 12.0, 11.5, 14.0, 12.0, 11.0 + n],
        )
        for n, item in enumerate(items)
    }


def troubled(items: list[Watch]) -> dict[str, Reading]:
    readings = green(items)
    readings[items[1].key] = Reading(
        StepStatus.FAILED,
        "body matches '(?i)token|url|key'",
        details=["200 OK", "body matches '(?i)token|url|key' (it must not): 'RUNNER_TOKEN'"],
        latency_ms=13.0,
        at=NOW - 5,
    )
    readings[items[2].key] = Reading(
        StepStatus.INCONCLUSIVE, "timed out: no answer within 10 s", at=NOW - 5, timed_out=True
    )
    return readings


def _open(workdir: Path, readings_for) -> OpsConsoleApp:  # type: ignore[no-untyped-def]
    app = OpsConsoleApp(settings_for(workdir, runbook_paths=[Path("runbooks") / V2]))
    runbooks = [load_runbook(workdir / "runbooks" / V2)]

    async def run_before(pilot: Pilot[object]) -> None:
        await settle(pilot)
        screen = DashboardScreen(
            runbooks,
            watcher_factory=lambda items: FixedWatcher(readings_for(items)),  # type: ignore[arg-type,return-value]
            clock=lambda: NOW,
        )
        await pilot.app.push_screen(screen)
        await settle(pilot)

    app._snapshot_run_before = run_before  # type: ignore[attr-defined]
    return app


@pytest.mark.parametrize("size", SIZES)
def test_dashboard_all_green(snap_compare, workdir: Path, size: tuple[int, int]) -> None:
    app = _open(workdir, green)
    assert snap_compare(app, terminal_size=size, run_before=app._snapshot_run_before)  # type: ignore[attr-defined]


@pytest.mark.parametrize("size", SIZES)
def test_dashboard_failing_and_timed_out(
    snap_compare, workdir: Path, size: tuple[int, int]
) -> None:
    app = _open(workdir, troubled)
    assert snap_compare(app, terminal_size=size, run_before=app._snapshot_run_before)  # type: ignore[attr-defined]


class NotedSandbox:
    """What the console sees of a sandbox without a Prometheus binary (its notes)."""

    def __init__(self, notes: list[str]) -> None:
        self.notes = notes
        self.active_faults: frozenset[str] = frozenset()

    def faults(self) -> tuple[object, ...]:
        return ()

    def set_fault(self, name: str, active: bool) -> None:
        return None


def breached(items: list[Watch]) -> dict[str, Reading]:
    readings = {
        item.key: Reading(
            StepStatus.PASSED, "passed", details=["200 OK"], latency_ms=9.0, at=NOW - 3
        )
        for item in items
    }
    for item in items:
        if item.step.id == "hdm-monitoring":
            readings[item.key] = Reading(
                StepStatus.FAILED,
                "oauth_transactions_active = 64, expected < 5",
                details=[
                    "oauth_transactions_active = 64, expected < 5",
                    "backfill_jobs_queued = 12, expected < 200",
                ],
                latency_ms=7.0,
                at=NOW - 3,
            )
        elif item.step.kind == "promql":
            readings[item.key] = Reading(
                StepStatus.INCONCLUSIVE,
                "no data: no Prometheus is configured (prometheus_url is empty)",
                at=NOW - 3,
            )
    return readings


@pytest.mark.parametrize("size", SIZES)
def test_dashboard_breached_threshold_and_no_prometheus(
    snap_compare, workdir: Path, size: tuple[int, int]
) -> None:
    from opsconsole.prometheus import ABSENT_NOTE

    names = ["harmony-download-manager.md", "discord-canary-deploy.md"]
    app = OpsConsoleApp(settings_for(workdir, runbook_paths=[Path("runbooks") / V2]))
    app.settings.sandbox = NotedSandbox([ABSENT_NOTE])  # type: ignore[assignment]
    runbooks = [load_runbook(workdir / "runbooks" / name) for name in names]

    async def run_before(pilot: Pilot[object]) -> None:
        await settle(pilot)
        screen = DashboardScreen(
            runbooks,
            watcher_factory=lambda items: FixedWatcher(breached(items)),  # type: ignore[arg-type,return-value]
            clock=lambda: NOW,
        )
        await pilot.app.push_screen(screen)
        await settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


class HeldWatcher(FixedWatcher):
    """The first round answers at once; every later one stays in flight (never answers)."""

    def __init__(self, readings: dict[str, Reading]) -> None:
        super().__init__(readings)
        self.rounds = 0

    async def round(self) -> dict[str, Reading]:
        import asyncio

        self.rounds += 1
        if self.rounds > 1:
            await asyncio.Event().wait()  # cancelled with the screen
        return dict(self.readings)


@pytest.mark.parametrize("size", SIZES)
def test_dashboard_while_a_round_is_in_flight(
    snap_compare, workdir: Path, size: tuple[int, int]
) -> None:
    """"r" starts a round that has not answered yet: the tiles keep the last readings, the
    status line says a round is running."""
    app = OpsConsoleApp(settings_for(workdir, runbook_paths=[Path("runbooks") / V2]))
    runbooks = [load_runbook(workdir / "runbooks" / V2)]
    watchers: list[HeldWatcher] = []

    def factory(items: list[Watch]) -> HeldWatcher:
        watchers.append(HeldWatcher(troubled(items)))
        return watchers[-1]

    async def run_before(pilot: Pilot[object]) -> None:
        await settle(pilot)
        screen = DashboardScreen(
            runbooks,
            watcher_factory=factory,  # type: ignore[arg-type]
            clock=lambda: NOW,
        )
        await pilot.app.push_screen(screen)
        await settle(pilot)
        await pilot.press("r")
        # not settle(): it waits for workers, and this round's worker never ends
        for _ in range(200):
            await pilot.pause(0.01)
            if watchers[0].rounds == 2:
                break
        assert watchers[0].rounds == 2  # the second round is in flight
        await pilot.pause()
        await pilot.wait_for_animation()

    assert snap_compare(app, terminal_size=size, run_before=run_before)
