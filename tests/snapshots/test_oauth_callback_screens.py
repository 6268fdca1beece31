"""Snapshots of ``ops oauth_callback`` (the HDM runbook's token recovery), at 80x24 and 120x40.

Fixed data only: a saved run of the bundled HDM runbook; the paste dialog is the step's
own question (:func:`paste_question`) for a fixed authorization URL and tunnel command,
and the refusals are what :func:`check_redirect` says about fixed pastes.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

import pytest
from textual.pilot import Pilot

from opsconsole.artifacts import KeyValuesArtifact, RequestArtifact, ResponseArtifact
from opsconsole.config import ConsoleSettings
from opsconsole.run import Assertion, StepResult, StepStatus
from opsconsole.steps.callback import check_redirect, paste_question, refusal
from screens import OpsConsoleApp
from tests.snapshots.bundled import bundled_settings, bundled_workdir, save_bundled_run
from tests.snapshots.test_screens import SIZES, at, open_walkthrough, steady_cursors
from tests.ui.pilot_support import settle

HDM = "harmony-download-manager.md"
STEP = "hdm-oauth-recover"
RUN_ID = "20250314T031209Z-c0c0c0"
HDM_URL = "http://harmony.internal:8080"
STATE = "q3Xc8RkV0tYw2LmN5pHs7dJf"
REDIRECT = "http://127.0.0.1:8888/callback"
AUTH_URL = "https://accounts.spotify.com/authorize?" + urlencode({
    "client_id": "hdm-client", "response_type": "code", "redirect_uri": REDIRECT,
    "scope": "user-library-read playlist-read-private playlist-read-collaborative",
    "state": STATE,
})
TUNNEL = "ssh -N -L 8888:127.0.0.1:8888 ops@hdm-1"

CONFIG = f"""\
default_environment = "staging"

[environments.staging]
description = "Staging HDM"
secrets = ["hdm_api_key", "hdm_spotify_client_secret"]

[environments.staging.variables]
hdm_url = "{HDM_URL}"
hdm_selfcheck_cmd = "docker exec harmony python -m app.ops.selfcheck --assert-startup"
"""


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return bundled_workdir(
        tmp_path,
        monkeypatch,
        CONFIG,
        {
            "hdm_api_key": "snapshot-hdm-api-key-0000",
            "hdm_spotify_client_secret": "snapshot-client-0000",
        },
    )


def settings(workdir: Path) -> ConsoleSettings:
    return bundled_settings(workdir, HDM)


def hdm_run(workdir: Path, results: list[StepResult]) -> None:
    save_bundled_run(workdir, HDM, RUN_ID, STEP, results)


def json_response(document: dict[str, object], status: int = 200,
                  reason: str = "OK") -> ResponseArtifact:
    import json

    body = json.dumps(document, separators=(",", ":"))
    return ResponseArtifact(status=status, reason=reason, elapsed_ms=31.0, is_json=True,
                            headers={"content-type": "application/json"}, body=body,
                            document=document)


def started() -> list[RequestArtifact | ResponseArtifact | KeyValuesArtifact]:
    return [
        RequestArtifact(method="POST", url=f"{HDM_URL}/api/v1/spotify/pro/oauth/start",
                        headers={"X-API-Key": "***"}),
        json_response({"authorization_url": AUTH_URL, "state": STATE, "redirect_uri": REDIRECT,
                       "expires_at": "2025-03-14T03:30:09Z",
                       "manual_completion_available": True,
                       "manual_completion_url": "/api/v1/oauth/manual"}),
        KeyValuesArtifact(title="Authorization", items=[
            ("open in your browser", AUTH_URL), ("redirect URI", REDIRECT),
            ("tunnel (run on your machine)", TUNNEL),
        ]),
    ]


def paste_dialog(refused: str = ""):
    """Open the run at the step and show the step's own paste question."""

    async def run_before(pilot: Pilot[object]) -> None:
        from screens.dialogs import InputDialog
        from screens.walkthrough import WalkthroughScreen

        await settle(pilot)
        await open_walkthrough(pilot, RUN_ID)
        screen = pilot.app.screen
        assert isinstance(screen, WalkthroughScreen)
        step = screen.session.runbook.step(STEP)
        await pilot.app.push_screen(InputDialog(step, paste_question(AUTH_URL, TUNNEL, refused)))
        await settle(pilot)
        await steady_cursors(pilot)

    return run_before


def result_shown():
    async def run_before(pilot: Pilot[object]) -> None:
        await settle(pilot)
        await open_walkthrough(pilot, RUN_ID)
        await settle(pilot)
        await steady_cursors(pilot)

    return run_before


@pytest.mark.parametrize("size", SIZES)
def test_oauth_callback_waiting_for_the_paste(
    snap_compare, workdir: Path, size: tuple[int, int]
) -> None:
    """The authorization URL to open and the tunnel command, above the (secret) paste field."""
    hdm_run(workdir, [])
    app = OpsConsoleApp(settings(workdir))
    assert snap_compare(app, terminal_size=size, run_before=paste_dialog())


@pytest.mark.parametrize("size", SIZES)
def test_oauth_callback_paste_refused_wrong_state(
    snap_compare, workdir: Path, size: tuple[int, int]
) -> None:
    """A paste from another authorization: refused with the reason, asked again."""
    verdict = check_redirect(f"{REDIRECT}?code=c0de&state=an-older-tab", STATE, REDIRECT)
    (problem,) = verdict.problems
    hdm_run(workdir, [])
    app = OpsConsoleApp(settings(workdir))
    assert snap_compare(app, terminal_size=size, run_before=paste_dialog(problem))


@pytest.mark.parametrize("size", SIZES)
def test_oauth_callback_refused_by_the_server(
    snap_compare, workdir: Path, size: tuple[int, int]
) -> None:
    """A pasted redirect with ``error`` and ``error_description``: the step ends with both,
    nothing submitted."""
    pasted = f"{REDIRECT}?" + urlencode({
        "error": "access_denied", "error_description": "The user denied access", "state": STATE,
    })
    verdict = check_redirect(pasted, STATE, REDIRECT)
    assert verdict.error is not None
    failed = StepResult(
        step_id=STEP, status=StepStatus.FAILED, detail=refusal(*verdict.error),
        started_at=at(20), finished_at=at(21, 5), duration_ms=65_000.0, attempts=1,
        artifacts=started(),
    )
    hdm_run(workdir, [failed])
    app = OpsConsoleApp(settings(workdir))
    assert snap_compare(app, terminal_size=size, run_before=result_shown())


@pytest.mark.parametrize("size", SIZES)
def test_oauth_callback_authorized(snap_compare, workdir: Path, size: tuple[int, int]) -> None:
    """Handed over and verified: ``authorized = true``; the code in what was sent is ***."""
    passed = StepResult(
        step_id=STEP, status=StepStatus.PASSED,
        detail="authorized: the pasted callback was accepted and verified",
        started_at=at(20), finished_at=at(21, 12), duration_ms=72_000.0, attempts=1,
        assertions=[
            Assertion(name="redirect URL", ok=True, detail="state matches; code present"),
            Assertion(name="submit status", ok=True, detail="200 OK"),
            Assertion(name="verify status", ok=True, detail="200 OK"),
            Assertion(name="verify json authorized", ok=True, detail="authorized = true"),
        ],
        artifacts=[
            *started(),
            RequestArtifact(method="POST", url=f"{HDM_URL}/api/v1/oauth/manual",
                            headers={"X-API-Key": "***"},
                            document={"redirect_url": f"{REDIRECT}?code=***&state={STATE}"}),
            json_response({"ok": True, "data": {"status": "authorized", "authorized": True}}),
            RequestArtifact(method="GET", url=f"{HDM_URL}/spotify/status",
                            headers={"X-API-Key": "***"}),
            json_response({"authorized": True, "scopes": ["user-library-read"]}),
        ],
    )
    hdm_run(workdir, [passed])
    app = OpsConsoleApp(settings(workdir))
    assert snap_compare(app, terminal_size=size, run_before=result_shown())
