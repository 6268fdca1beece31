"""Snapshots hold still: a text cursor is drawn the same however long the test took.

An ``Input`` blinks its cursor every 0.5 s. On a busy machine (or beside other
pytest-xdist workers) the keys before a snapshot can take longer than that, and
the picture then shows the cursor off instead of on. Every ``snap_compare`` here
stops the blinking, cursor on, after the test's own ``run_before``.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from tests.snapshots.test_screens import workdir  # noqa: F401  (a fixture for every snapshot file)

RunBefore = Callable[[Pilot[Any]], Awaitable[None] | None]


@pytest.fixture
def snap_compare(snap_compare: Callable[..., bool]) -> Callable[..., bool]:
    """pytest-textual-snapshot's ``snap_compare``, with every text cursor held on."""

    def compare(app: object, *, run_before: RunBefore | None = None, **options: Any) -> bool:
        async def then_hold_the_cursor(pilot: Pilot[Any]) -> None:
            if run_before is not None:
                result = run_before(pilot)
                if inspect.isawaitable(result):
                    await result
            for field in pilot.app.screen.query(Input):
                field.cursor_blink = False  # shown, steadily (drawn only when focused)

        return snap_compare(app, run_before=then_hold_the_cursor, **options)

    return compare
