"""Shared fixtures: every test runs with its own state dir and config, never the user's."""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Generator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
RUNBOOKS = REPO / "runbooks"
V2_RUNBOOK = RUNBOOKS / "v2-control-plane.md"
#: the V2 runbook's steps that talk to the sandbox, unchanged: a fault walks only these
V2_LIVE_STEPS = REPO / "tests" / "runbooks" / "v2-live-steps.md"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require_tool(name: str) -> str:
    """The tool's path; a missing tool skips the test (in CI that fails it, see below)."""
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (.ci/run installs it)")
    return path


def pytest_configure(config: pytest.Config) -> None:
    # Under nohup (or a CI runner that ignores SIGHUP) children would inherit an ignored
    # SIGHUP, and opsconsole rightly keeps it ignored: tests start from the default.
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """In CI a skipped test fails with its reason, whatever skipped it (an xfail stays)."""
    report = yield
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"CI must not skip a test: {str(reason).removeprefix('Skipped: ')}"
    return report


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
