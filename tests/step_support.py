"""Run a small runbook written in a test against real loopback servers."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from opsconsole.config import Environment
from opsconsole.loader import load_runbook
from opsconsole.run import StepResult
from opsconsole.session import RunSession, open_session


def open_runbook(
    tmp_path: Path,
    text: str,
    variables: Mapping[str, str],
    *,
    secrets: list[str] | None = None,
    name: str = "steps.md",
    **session_args: Any,
) -> RunSession:
    """A session over ``text`` in an unprotected test environment with ``variables``."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    runbook = load_runbook(path)
    environment = Environment(name="test", variables=dict(variables), secrets=secrets or [])
    return open_session(runbook, environment, tmp_path / "home", **session_args)


async def run_all(
    tmp_path: Path,
    text: str,
    variables: Mapping[str, str],
    **kwargs: Any,
) -> dict[str, StepResult]:
    """Every step of the runbook, in order, by id."""
    session = open_runbook(tmp_path, text, variables, **kwargs)
    assert await session.start() == []
    results: dict[str, StepResult] = {}
    try:
        for step in session.runbook.steps:
            results[step.id] = await session.execute(step.id)
    finally:
        await session.close()
    return results
