"""Snapshots of the browser-approval connect (``ops trigger`` with ``approve``) at 80x24 and
120x40: waiting for approval (the URL, and at 120x40 its QR code) and connected.

Fixed data only: the dialog gets a fixed clock, a fixed URL and no local display; the
connected step is a saved run of the bundled Discogs collection runbook."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot

from opsconsole.artifacts import RequestArtifact, ResponseArtifact, StatesArtifact
from opsconsole.config import ConsoleSettings
from opsconsole.operator import ApproveInBrowser, StateChange
from opsconsole.run import Assertion, StepResult, StepStatus
from screens import OpsConsoleApp
from tests.snapshots.bundled import bundled_settings, bundled_workdir, save_bundled_run
from tests.snapshots.test_screens import SIZES, at, open_walkthrough, steady_cursors
from tests.ui.pilot_support import settle

DISCOGS = "discogs-collection.md"
RUN_ID = "20250314T031209Z-d15c06"
STEP = "discogs-connect"
NOW = 1_741_922_000.0  # the dialog's fixed clock
AUTHORIZE_URL = "https://listentomore.com/oauth/authorize?oauth_token=Qm9yZGVzYWstcmVxdWVzdA"

CONFIG = """\
default_environment = "staging"

[environments.staging]
description = "Staging web app"
secrets = ["discogs_internal_token"]

[environments.staging.variables]
discogs_url = "https://listentomore.com"
discogs_user = "bordesak"
"""


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return bundled_workdir(
        tmp_path,
        monkeypatch,
        CONFIG,
        {"discogs_internal_token": "snapshot-internal-0000"},
    )


def settings(workdir: Path) -> ConsoleSettings:
    return bundled_settings(workdir, DISCOGS)


def save_run(workdir: Path, results: list[StepResult]) -> None:
    save_bundled_run(workdir, DISCOGS, RUN_ID, STEP, results)


def open_run(then: Callable[[Pilot[object]], object] | None = None):
    async def run_before(pilot: Pilot[object]) -> None:
        await settle(pilot)
        await open_walkthrough(pilot, RUN_ID)
        if then is not None:
            result = then(pilot)
            if result is not None:
                await result  # type: ignore[misc]
            await settle(pilot)
        await steady_cursors(pilot)

    return run_before


@pytest.mark.parametrize("size", SIZES)
def test_connect_waiting_for_approval(snap_compare, workdir: Path, size: tuple[int, int]) -> None:
    """The URL to approve (a QR code of it at 120x40; at 80x24 no room, said so), how long
    the step goes on waiting, the state the server reports; no "new code"."""
    from screens.device_flow import ConnectDialog

    save_run(workdir, [])

    async def show_dialog(pilot: Pilot[object]) -> None:
        from screens.walkthrough import WalkthroughScreen

        screen = pilot.app.screen
        assert isinstance(screen, WalkthroughScreen)
        step = screen.session.runbook.step(STEP)
        question = ApproveInBrowser(
            prompt="Open this URL in a browser and approve", key="approve",
            verification_uri=AUTHORIZE_URL, expires_at=NOW + 571, restart=False,
        )
        dialog = ConnectDialog(step, question, clock=lambda: NOW, environ={})
        await pilot.app.push_screen(dialog)
        await pilot.pause()
        dialog.step_events([StateChange(state="pending")])

    app = OpsConsoleApp(settings(workdir))
    assert snap_compare(app, terminal_size=size, run_before=open_run(then=show_dialog))


@pytest.mark.parametrize("size", SIZES)
def test_connect_connected(snap_compare, workdir: Path, size: tuple[int, int]) -> None:
    """Connected: the Discogs username in the result, the states the server went through."""
    status = {"username": "bordesak", "connected": True,
              "discogs_username": "elezea-records", "state": "connected"}
    connected = StepResult(
        step_id=STEP, status=StepStatus.PASSED,
        detail="approved for elezea-records; job connected in 41.3s (pending → connected)",
        started_at=at(14), finished_at=at(14, 41), duration_ms=41_300.0, attempts=1,
        assertions=[
            Assertion(name="status", ok=True, detail="status 302"),
            Assertion(name="follow", ok=True, detail="job connected (pending → connected)"),
            Assertion(name="json connected", ok=True, detail="connected equals true"),
        ],
        artifacts=[
            RequestArtifact(method="GET", url="https://listentomore.com/api/auth/discogs/connect",
                            params={"username": "bordesak"}),
            ResponseArtifact(
                status=200, reason="OK", elapsed_ms=38.0, is_json=True,
                headers={"content-type": "application/json"},
                body='{"username":"bordesak","connected":true,'
                     '"discogs_username":"elezea-records","state":"connected"}',
                document=status,
            ),
            StatesArtifact(states=["pending", "connected"]),
        ],
    )
    save_run(workdir, [connected])
    app = OpsConsoleApp(settings(workdir))
    assert snap_compare(app, terminal_size=size, run_before=open_run())
