"""Helpers for the Pilot tests: settle the app, type like an operator."""

from __future__ import annotations

import asyncio

from textual.pilot import Pilot
from textual.screen import ModalScreen

from opsconsole.config import bundled_runbooks_dir

V2 = bundled_runbooks_dir() / "v2-control-plane.md"


async def settle(pilot: Pilot[object], *, timeout: float = 30.0) -> None:
    """Wait until workers are done (a worker waiting on a dialog counts as done)."""
    app = pilot.app
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        await pilot.pause()
        running = [worker for worker in app.workers if worker.is_running]
        if not running:
            break
        if isinstance(app.screen, ModalScreen) and all(
            worker.group in {"open", "step"} for worker in running
        ):
            break
        await asyncio.sleep(0.02)
    else:
        raise AssertionError(f"still busy after {timeout}s: {list(app.workers)}")
    await pilot.pause()


async def type_text(pilot: Pilot[object], text: str) -> None:
    await pilot.press(*("space" if char == " " else char for char in text))
