"""Shared fixtures: every test runs with its own state dir and config, never the user's."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
RUNBOOKS = REPO / "runbooks"
V2_RUNBOOK = RUNBOOKS / "v2-control-plane.md"
#: the V2 runbook's steps that talk to the sandbox, unchanged: a fault walks only these
V2_LIVE_STEPS = REPO / "tests" / "runbooks" / "v2-live-steps.md"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require_tool(name: str) -> str:
    """The tool's path; outside CI a missing tool skips, in CI it fails loudly."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (.ci/run installs it)"
        if IN_CI:
            pytest.fail(f"CI must not skip: {message}")
        pytest.skip(message)
    return path


@pytest.fixture(autouse=True)
def isolated_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    home = tmp_path_factory.mktemp("opsconsole-home")
    monkeypatch.setenv("OPSCONSOLE_HOME", str(home))
    # platformdirs reads XDG_CONFIG_HOME: the user's real config is never picked up
    monkeypatch.delenv("OPSCONSOLE_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    for name in list(os.environ):
        if name.startswith("OPSCONSOLE_SECRET_"):
            monkeypatch.delenv(name)
    return home


@pytest.fixture
def sandbox():
    from opsconsole.sandbox import Sandbox

    with Sandbox() as running:
        running.install_keyring()
        yield running
