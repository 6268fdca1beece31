"""Snapshots of the device-flow sign-in and of failure triage, at 80x24 and 120x40.

Fixed data only: the sign-in dialog gets a fixed clock and a fixed code and URL, the
walkthroughs are saved runs of the bundled broker runbook with fixed results.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot

from opsconsole.artifacts import KeyValuesArtifact, RequestArtifact, ResponseArtifact
from opsconsole.config import ConsoleSettings
from opsconsole.operator import ApproveInBrowser, Countdown, Progress
from opsconsole.run import Assertion, StepResult, StepStatus
from screens import OpsConsoleApp
from tests.snapshots.bundled import bundled_settings, bundled_workdir, save_bundled_run
from tests.snapshots.test_screens import SIZES, at, open_walkthrough, steady_cursors
from tests.ui.pilot_support import settle

BROKER = "discogs-broker.md"
RUN_ID = "20250314T031209Z-b0b0b0"
NOW = 1_741_922_000.0  # the dialog's fixed clock
AUTH_URL = (
    "https://broker.example.workers.dev/v1/discogs/oauth/authorize"
    "?device_id=3f2a9c0d5e7b41c6a8d2e0f4b6c8a1d3"
)

CONFIG = """\
default_environment = "staging"

[environments.staging]
description = "Staging broker"
secrets = ["broker_client_token"]

[environments.staging.variables]
local_broker_url = "http://127.0.0.1:8787"
broker_url = "https://broker.example.workers.dev"
"""


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return bundled_workdir(
        tmp_path,
        monkeypatch,
        CONFIG,
        {"broker_client_token": "snapshot-broker-token-0000"},
    )


def settings(workdir: Path) -> ConsoleSettings:
    return bundled_settings(workdir, BROKER)


def broker_run(workdir: Path, results: list[StepResult], cursor: str) -> None:
    save_bundled_run(workdir, BROKER, RUN_ID, cursor, results)


def facts(polls: int, *extra: tuple[str, str]) -> KeyValuesArtifact:
    return KeyValuesArtifact(
        title="Device authorization",
        items=[("verification URL", AUTH_URL), ("expires in", "10m00s"), *extra,
               ("polls", str(polls)), ("interval", "5s")],
    )


def flow_result(state: str) -> StepResult:
    finalize = RequestArtifact(
        method="POST", url="https://broker.example.workers.dev/v1/device/session/finalize",
        headers={"content-type": "application/json", "x-reklawdbox-broker-token": "***"},
        document={"device_id": "3f2a9c0d5e7b41c6a8d2e0f4b6c8a1d3", "pending_token": "***"},
    )
    if state == "authorized":
        return StepResult(
            step_id="deployed-device-session", status=StepStatus.PASSED,
            detail="authorized after 3 poll(s); token kept as secret deployed_session_token "
                   "in this run, expires in 720h00m",
            started_at=at(20), finished_at=at(21, 5), duration_ms=65_000.0, attempts=1,
            artifacts=[
                facts(3, ("states", "pending → authorized"),
                      ("secret deployed_session_token", "*** (expires in 720h00m)"),
                      ("kept in", "this run")),
                finalize,
                ResponseArtifact(
                    status=200, reason="OK", elapsed_ms=41.0, is_json=True,
                    headers={"content-type": "application/json"},
                    body='{"session_token":"***","expires_at":"2025-04-13T03:21:05Z"}',
                    document={"session_token": "***", "expires_at": "2025-04-13T03:21:05Z"},
                ),
            ],
        )
    if state == "denied":
        return StepResult(
            step_id="deployed-device-session", status=StepStatus.FAILED,
            detail="Discogs sign-in was denied in the browser: open auth_url again and "
                   "approve (200: status is denied)",
            started_at=at(20), finished_at=at(20, 40), duration_ms=40_000.0, attempts=1,
            artifacts=[facts(2, ("states", "pending → denied"))],
        )
    return StepResult(
        step_id="deployed-device-session", status=StepStatus.FAILED,
        detail="device session expired; restart auth (start a new device session and "
               "re-auth) (410 device session expired; restart auth)",
        started_at=at(20), finished_at=at(30), duration_ms=600_000.0, attempts=1,
        artifacts=[
            facts(118, ("states", "pending")),
            ResponseArtifact(
                status=410, reason="Gone", elapsed_ms=38.0, is_json=True,
                headers={"content-type": "application/json"},
                body='{"error":"device session expired; restart auth"}',
                document={"error": "device session expired; restart auth"},
            ),
        ],
    )


def open_run(*keys: str, then: Callable[[Pilot[object]], object] | None = None):
    async def run_before(pilot: Pilot[object]) -> None:
        await settle(pilot)
        await open_walkthrough(pilot, RUN_ID)
        for key in keys:
            await pilot.press(key)
            await settle(pilot)
        if then is not None:
            result = then(pilot)
            if result is not None:
                await result  # type: ignore[misc]
            await settle(pilot)
        await steady_cursors(pilot)

    return run_before


@pytest.mark.parametrize("size", SIZES)
def test_device_flow_pending(snap_compare, workdir: Path, size: tuple[int, int]) -> None:
    """Waiting for approval: the URL (and at 120x40 its QR code), the countdown, the polls.
    At 80x24 the QR code does not fit: the dialog says so, the URL is there."""
    from screens.device_flow import DeviceFlowDialog

    broker_run(workdir, [], cursor="deployed-device-session")

    async def show_dialog(pilot: Pilot[object]) -> None:
        from screens.walkthrough import WalkthroughScreen

        screen = pilot.app.screen
        assert isinstance(screen, WalkthroughScreen)
        step = screen.session.runbook.step("deployed-device-session")
        question = ApproveInBrowser(
            prompt="Approve this sign-in in a browser", key="approve",
            verification_uri=AUTH_URL, expires_at=NOW + 583,
        )
        dialog = DeviceFlowDialog(step, question, clock=lambda: NOW, environ={})
        await pilot.app.push_screen(dialog)
        await pilot.pause()
        dialog.step_events([
            Progress(label="waiting for approval: 3 poll(s) so far, polling every 10s "
                           "(next in 10s)", done=3),
            Countdown(label="next poll", until=NOW + 7),
        ])

    app = OpsConsoleApp(settings(workdir))
    assert snap_compare(app, terminal_size=size, run_before=open_run(then=show_dialog))


@pytest.mark.parametrize("size", SIZES)
def test_device_flow_with_user_code(snap_compare, workdir: Path, size: tuple[int, int]) -> None:
    """An RFC 8628 server: the user code, the plain verification URL, the complete URL as QR."""
    from screens.device_flow import DeviceFlowDialog

    broker_run(workdir, [], cursor="deployed-device-session")

    async def show_dialog(pilot: Pilot[object]) -> None:
        from screens.walkthrough import WalkthroughScreen

        screen = pilot.app.screen
        assert isinstance(screen, WalkthroughScreen)
        step = screen.session.runbook.step("deployed-device-session")
        question = ApproveInBrowser(
            prompt="Approve this sign-in in a browser", key="approve", user_code="WDJB-MJHT",
            verification_uri="https://example.test/device",
            verification_uri_complete="https://example.test/device?user_code=WDJB-MJHT",
            expires_at=NOW + 1799,
        )
        await pilot.app.push_screen(DeviceFlowDialog(step, question, clock=lambda: NOW,
                                                     environ={}))

    app = OpsConsoleApp(settings(workdir))
    assert snap_compare(app, terminal_size=size, run_before=open_run(then=show_dialog))


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("state", ["authorized", "denied", "expired"])
def test_device_flow_outcome(
    snap_compare, workdir: Path, size: tuple[int, int], state: str
) -> None:
    """The sign-in's result: the token as *** with its expiry; denied; expired with the
    runbook's triage row beside it."""
    broker_run(workdir, [flow_result(state)], cursor="deployed-device-session")
    app = OpsConsoleApp(settings(workdir))
    assert snap_compare(app, terminal_size=size, run_before=open_run())


@pytest.mark.parametrize("size", SIZES)
def test_failed_step_with_triage_row(snap_compare, workdir: Path, size: tuple[int, int]) -> None:
    """A failed http step whose failure is a row of the runbook's triage table."""
    failed = StepResult(
        step_id="local-start-contract", status=StepStatus.FAILED,
        detail='expected status 200, got 401 Unauthorized (application/json: '
               '{"error":"invalid broker client token"})',
        started_at=at(12), finished_at=at(12, 1), duration_ms=8.0, attempts=1,
        assertions=[Assertion(name="status", ok=False,
                              detail="expected status 200, got 401 Unauthorized")],
        artifacts=[
            RequestArtifact(method="POST",
                            url="http://127.0.0.1:8787/v1/device/session/start",
                            headers={"content-type": "application/json",
                                     "x-reklawdbox-broker-token": "***"}),
            ResponseArtifact(status=401, reason="Unauthorized", elapsed_ms=8.0, is_json=True,
                             headers={"content-type": "application/json"},
                             body='{"error":"invalid broker client token"}',
                             document={"error": "invalid broker client token"}),
        ],
    )
    broker_run(workdir, [failed], cursor="local-start-contract")
    app = OpsConsoleApp(settings(workdir))
    assert snap_compare(app, terminal_size=size, run_before=open_run())
