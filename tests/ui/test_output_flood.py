"""A step that prints 100,000 lines: the console keeps answering keys and the progress log
stays bounded, because output reaches the screen as a few merged messages, not one a line.

One flood comes from a step kind registered here (it floods until the test has pressed its
keys, so the keys are provably answered mid-flood); the other from a real ``seq 100000``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import pytest
from pilot_support import settle
from test_long_steps import open_only_runbook, until
from textual.widgets import RichLog

from opsconsole.operator import OutputLine, Progress
from opsconsole.run import StepStatus
from opsconsole.sandbox import Sandbox
from opsconsole.steps import register, unregister
from opsconsole.steps.base import Outcome, StepContext, StepSpec, StepType
from screens import OpsConsoleApp
from screens.walkthrough import WalkthroughScreen

LINES = 100_000
#: "well under" one message a line: what reaches the screen must not grow with the output
MESSAGE_BOUND = 1_000


class FloodSpec(StepSpec):
    lines: int = LINES


@dataclass
class FloodControl:
    """Shared with the test: how far the flood got, and when it may stop."""

    release: asyncio.Event = field(default_factory=asyncio.Event)
    emitted: int = 0


class FloodStep(StepType[FloodSpec]):
    """Prints at least ``lines`` lines and keeps printing until the test releases it."""

    kind = "flood"
    spec = FloodSpec
    description = "print a great many lines (a test kind)"
    control: ClassVar[FloodControl]

    async def run(self, ctx: StepContext[FloodSpec]) -> Outcome:
        control = self.control
        total = ctx.spec.lines
        while control.emitted < total or not control.release.is_set():
            control.emitted += 1
            ctx.emit(OutputLine(text=f"line {control.emitted}"))
            if control.emitted % 50 == 0:
                ctx.emit(Progress(label="printing", done=control.emitted, total=total))
                await asyncio.sleep(0)
        return Outcome(StepStatus.PASSED, f"printed {control.emitted} lines")


@pytest.fixture
def flood() -> Iterator[FloodControl]:
    FloodStep.control = FloodControl()
    register(FloodStep)
    try:
        yield FloodStep.control
    finally:
        unregister("flood")


def runbook(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "flood.md"
    path.write_text(
        f"---\nid: flood\ntitle: Flood\n---\n\n# Flood\n\n{body}\n"
        "```ops http\nid: afterwards\ntitle: Something to select\n"
        "url: http://127.0.0.1:9/never-run\n```\n",
        encoding="utf-8",
    )
    return path


def shown_lines(screen: WalkthroughScreen) -> tuple[RichLog, list[str]]:
    log = screen.query_one("#walk-progress", RichLog)
    return log, [strip.text.strip() for strip in log.lines]


def not_shown(lines: list[str]) -> list[int]:
    counts = []
    for line in lines:
        match = re.search(r"… ([\d,]+) lines not shown", line)
        if match:
            counts.append(int(match.group(1).replace(",", "")))
    return counts


async def test_keys_are_answered_while_a_step_prints_100000_lines(
    sandbox: Sandbox, make_settings, tmp_path: Path, flood: FloodControl
) -> None:
    path = runbook(tmp_path, "```ops flood\nid: flood\ntitle: Print a lot\n```\n")
    app = OpsConsoleApp(make_settings(sandbox.config_path, runbook_paths=[path]))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_only_runbook(pilot)
        assert screen.selected_step is not None and screen.selected_step.id == "flood"
        await pilot.press("enter")
        await until(pilot, lambda: flood.emitted >= 1_000, "the flood to start")

        # mid-flood (it only stops once released): the keys still work
        await pilot.press("f1")
        await until(pilot, lambda: type(app.screen).__name__ == "HelpScreen", "help")
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen, "help to close")
        await pilot.press("down")
        await until(
            pilot,
            lambda: screen.selected_step is not None and screen.selected_step.id == "afterwards",
            "the cursor to move",
        )
        assert screen.session.running == "flood"
        assert not flood.release.is_set()

        await until(pilot, lambda: flood.emitted >= LINES, "100,000 lines")
        flood.release.set()
        await until(pilot, lambda: screen.session.running is None, "the step to finish")
        await settle(pilot)

        result = screen.session.result("flood")
        assert result.status is StepStatus.PASSED, result.detail
        assert flood.emitted >= LINES
        assert 0 < screen.operator.messages < MESSAGE_BOUND, screen.operator.messages
        log, lines = shown_lines(screen)
        assert log.max_lines is not None and len(log.lines) <= log.max_lines
        assert not_shown(lines), "the log must say that lines were left out"
        # the newest output is what the operator sees
        assert f"line {flood.emitted}" in lines
        assert screen.running_step is None


async def test_a_real_command_printing_100000_lines_stays_bounded(
    sandbox: Sandbox, make_settings, tmp_path: Path
) -> None:
    path = runbook(
        tmp_path, f"```ops command\nid: count\nrun: seq {LINES}\nmutating: false\n```\n"
    )
    app = OpsConsoleApp(make_settings(sandbox.config_path, runbook_paths=[path]))
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_only_runbook(pilot)
        await pilot.press("enter")
        await until(pilot, lambda: screen.session.result("count").status is StepStatus.PASSED,
                    "seq to finish")
        await settle(pilot)
        output = screen.session.result("count").artifact("output")
        assert output.lines_total == LINES
        assert 0 < screen.operator.messages < MESSAGE_BOUND, screen.operator.messages
        log, lines = shown_lines(screen)
        assert log.max_lines is not None and len(log.lines) <= log.max_lines
        assert str(LINES) in lines
        assert not_shown(lines)
        # the walk moved on, and the keys move the cursor back
        assert screen.selected_step is not None and screen.selected_step.id == "afterwards"
        await pilot.press("up")
        await pilot.pause()
        assert screen.selected_step is not None and screen.selected_step.id == "count"
