"""The dashboard: every ``watch: true`` check of the current environment, a tile per service.

Rounds of checks run in a worker (never two at once); the next round is armed by a
timer only after the last one finished, and not at all while the screen is hidden.
A check that hangs shows as timed out (the watcher's per-check timeout); keys are
never waiting on a check. Between rounds nothing on screen changes, so an idle
dashboard writes nothing to the terminal.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Header, OptionList, Static
from textual.widgets.option_list import Option

from opsconsole.run import StepStatus

from .banner import EnvironmentBanner
from .status import STATUS_ICON, STATUS_STYLE, visible

if TYPE_CHECKING:
    from opsconsole.model import Runbook
    from opsconsole.watch import Reading, Watch, Watcher

    from .app import OpsConsoleApp

__all__ = ["DashboardScreen", "Tile", "sparkline"]

_BARS = "▁▂▃▄▅▆▇█"
#: worst first: the tile takes the state of its worst check
_SEVERITY = {
    StepStatus.FAILED: 0,
    StepStatus.INCONCLUSIVE: 1,
    StepStatus.SKIPPED: 2,
    StepStatus.PENDING: 3,
    StepStatus.PASSED: 4,
}


def sparkline(values: list[float], width: int = 12) -> str:
    """The last ``width`` values as bars (empty when fewer than two)."""
    values = values[-width:]
    if len(values) < 2:
        return ""
    low, high = min(values), max(values)
    span = high - low
    if span == 0:
        return _BARS[0] * len(values)
    return "".join(_BARS[min(7, int((v - low) / span * 7.999))] for v in values)


def age_text(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f}s ago"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m ago"
    return f"{seconds / 3600:.0f}h ago"


def reading_line(watch: Watch, reading: Reading | None, now: float) -> Content:
    """One check: state and title; then latency, age and sparkline; then what it measured
    against its threshold (the assertions), at most four lines."""
    title = visible(watch.step.title)
    if reading is None:
        return Content.assemble(
            ("· ", "$text-muted"), title, ("\n  waiting for the first check", "$text-muted")
        )
    status = StepStatus.INCONCLUSIVE if reading.timed_out else reading.status
    glyph = STATUS_ICON.get(status, "?")
    style = STATUS_STYLE.get(status, "")
    facts = []
    if reading.timed_out:
        facts.append("TIMED OUT")
    elif reading.latency_ms is not None:
        facts.append(f"{reading.latency_ms:.0f} ms")
    facts.append(age_text(now - reading.at))
    second = Content.assemble("  ", (" · ".join(facts), "$text-muted"))
    spark = sparkline(reading.series)
    if spark:
        second = Content.assemble(second, "  ", (spark, "$accent"))
    lines = [Content.assemble((f"{glyph} ", style), title), second]
    details = reading.details or [reading.summary]
    detail_style = "$text-muted" if status is StepStatus.PASSED else style
    for detail in details[:4]:
        lines.append(Content.assemble("  ", (visible(detail), detail_style)))
    return Content("\n").join(lines)


class Tile(OptionList):
    """One service: its checks, one option each; enter opens the runbook at that check."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select", "Open runbook", tooltip="Open the runbook at this check"),
    ]

    def __init__(self, service: str, items: list[Watch], **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.service = service
        self.items = items
        self.border_title = visible(service)

    def show(self, readings: dict[str, Reading], now: float) -> None:
        highlighted = self.highlighted
        self.set_options(
            Option(reading_line(item, readings.get(item.key), now), id=item.key)
            for item in self.items
        )
        if self.items:
            self.highlighted = min(highlighted or 0, len(self.items) - 1)
        states = [readings[item.key] for item in self.items if item.key in readings]
        worst = min(
            (StepStatus.INCONCLUSIVE if r.timed_out else r.status for r in states),
            key=lambda status: _SEVERITY.get(status, 3),
            default=StepStatus.PENDING,
        )
        for status in (StepStatus.FAILED, StepStatus.INCONCLUSIVE, StepStatus.PASSED):
            self.set_class(worst is status, f"-{status.value}")
        counts = sum(1 for r in states if r.status is StepStatus.PASSED and not r.timed_out)
        self.border_subtitle = f"{counts}/{len(self.items)} ok"


class DashboardScreen(Screen[None]):
    """Health of the current environment, from the runbooks' watched checks."""

    CSS_PATH = "dashboard.tcss"
    AUTO_FOCUS = "Tile"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back", tooltip="Back to the runbooks"),
        Binding("r", "refresh_now", "Check now", tooltip="Run every check again now"),
    ]

    def __init__(
        self,
        runbooks: list[Runbook],
        *,
        watcher_factory: Callable[[list[Watch]], Watcher] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        from opsconsole.watch import watches

        self.items = watches(runbooks)
        self._watcher_factory = watcher_factory
        self._watcher: Watcher | None = None
        self._clock = clock
        self._timer: Timer | None = None
        self._readings: dict[str, Reading] = {}
        self._rounds = 0

    @property
    def ops_app(self) -> OpsConsoleApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Header()
        yield EnvironmentBanner(id="dashboard-environment")
        yield Static(Content(""), id="dashboard-status", markup=False)
        notes = self._notes()
        yield Static(
            Content("\n".join(visible(note) for note in notes)),
            id="dashboard-notes",
            markup=False,
            classes="" if notes else "-empty",
        )
        with VerticalScroll(id="tiles"):
            services: dict[str, list[Watch]] = {}
            for item in self.items:
                services.setdefault(item.service, []).append(item)
            for service, items in services.items():
                yield Tile(service, items)
            if not services:
                yield Static(
                    Content(
                        "No runbook marks a check for the dashboard. Add `watch: true` to a "
                        "read-only ops step (http, metrics, promql) to see it here."
                    ),
                    id="dashboard-empty",
                )
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "dashboard"
        app = self.ops_app
        banner = self.query_one(EnvironmentBanner)
        environment = app.environment
        banner.environment_name = environment.name
        banner.protected = environment.protected
        banner.faults = app.active_faults
        self.set_class(environment.protected, "-protected")
        self._show()
        if self.items:
            self.check_round()

    def _notes(self) -> list[str]:
        """What the sandbox wants said (no Prometheus installed, …); nothing outside one."""
        try:
            sandbox = self.app.settings.sandbox  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001 - no app yet (a bare screen in a test)
            return []
        notes = getattr(sandbox, "notes", None) if sandbox is not None else None
        return [str(note) for note in notes] if isinstance(notes, list) else []

    # -- rounds ----------------------------------------------------------------------

    def _watcher_for(self) -> Watcher:
        if self._watcher is None:
            if self._watcher_factory is not None:
                self._watcher = self._watcher_factory(self.items)
            else:
                from opsconsole.watch import Watcher

                settings = self.ops_app.settings.config.dashboard
                self._watcher = Watcher(
                    self.ops_app.environment,
                    self.items,
                    concurrency=settings.concurrency,
                    timeout=settings.timeout,
                )
        return self._watcher

    @property
    def interval(self) -> float:
        return self.ops_app.settings.config.dashboard.interval

    @work(exclusive=True, group="dashboard", exit_on_error=False)
    async def check_round(self) -> None:
        watcher = self._watcher_for()
        self._set_status("checking…")
        readings = await watcher.round()
        self._readings = readings
        self._rounds += 1
        self._show()
        if self.is_current:
            self._arm()

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(self.interval, self._due)

    def _due(self) -> None:
        self._timer = None
        if self.is_current:
            self.check_round()

    def on_screen_suspend(self) -> None:
        # hidden: no checks, no timer (nothing is sent while nobody looks)
        if self._timer is not None:
            self._timer.stop()
            self._timer = None

    def on_screen_resume(self) -> None:
        if self.items and self._timer is None and self._rounds:
            self.check_round()

    async def on_unmount(self) -> None:
        if self._watcher is not None:
            await self._watcher.aclose()

    def action_refresh_now(self) -> None:
        if self.items:
            self.check_round()

    # -- showing ---------------------------------------------------------------------

    def _set_status(self, text: str) -> None:
        problems = self._watcher.problems if self._watcher is not None else []
        parts = [text]
        if problems:
            parts.append(f"{len(problems)} secret(s) not available: {problems[0]}")
        self.query_one("#dashboard-status", Static).update(Content(" · ".join(parts)))

    def _show(self) -> None:
        now = self._clock()
        for tile in self.query(Tile):
            tile.show(self._readings, now)
        if not self.items:
            self._set_status("nothing to watch")
        elif not self._rounds:
            self._set_status("checking…")
        else:
            failed = sum(
                1
                for r in self._readings.values()
                if r.status in (StepStatus.FAILED, StepStatus.INCONCLUSIVE) or r.timed_out
            )
            every = f"every {self.interval:g} s"
            state = f"{failed} check(s) need attention" if failed else "all checks ok"
            self._set_status(f"{len(self.items)} checks · {state} · re-checked {every}")

    @on(OptionList.OptionSelected)
    def _open(self, event: OptionList.OptionSelected) -> None:
        key = event.option.id or ""
        for item in self.items:
            if item.key == key:
                self.ops_app.open_runbook(item.runbook.path, focus_step=item.step.id)
                return
