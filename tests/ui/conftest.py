"""Fixtures for the Pilot tests: a real sandbox on loopback, always stopped."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hostile_server import hostile_server  # noqa: F401  (a fixture: tests ask for it by name)
from pilot_support import V2

from opsconsole.config import ConsoleSettings, load_config
from opsconsole.sandbox import Sandbox


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    sb = Sandbox(faults=())
    try:
        sb.start()
        sb.install_keyring()
        yield sb
    finally:
        sb.stop()


@pytest.fixture
def make_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("OPSCONSOLE_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)

    def make(
        config_path: Path,
        *,
        environment: str | None = "sandbox",
        runbook_paths: list[Path] | None = None,
        sandbox: Sandbox | None = None,
    ) -> ConsoleSettings:
        return ConsoleSettings(
            config=load_config(config_path),
            home=tmp_path / "state",
            runbook_paths=runbook_paths if runbook_paths is not None else [V2],
            environment=environment,
            sandbox=sandbox,
        )

    return make


