"""`opsconsole check --sandbox` on the HDM runbook: every check the seed states is a step.

The bundled runbook passes against the sandbox HDM, and each fault fails the
step that checks its contract, with the value and the threshold in the reason
(nothing else fails but the gate closing that phase).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from opsconsole.config import load_config
from opsconsole.headless import run_check
from opsconsole.loader import load_runbook
from opsconsole.operator import HeadlessOperator
from opsconsole.sandbox import Sandbox
from opsconsole.sandbox.hdm import HarmonyDownloadManager
from tests.conftest import REPO, RUNBOOKS
from tests.leak_forms import assert_no_leak

HDM_RUNBOOK = RUNBOOKS / "harmony-download-manager.md"

#: every automated step of the go-live and standard-operation sections, in run order
AUTOMATED = [
    "hdm-selfcheck",
    "hdm-live",
    "hdm-live-alias",
    "hdm-ready",
    "hdm-spotify-status",
    "hdm-backfill-status",
    "hdm-sync-requires-api-key",
    "hdm-manual-sync",
    "hdm-monitoring",
    "hdm-oauth-recover",
]

#: fault -> the failing steps, each with the reason it must give (value and threshold)
FAULT_FAILS = {
    "hdm-slskd-down": [
        ("hdm-selfcheck", "expected exit 0, got exit 69 (EX_UNAVAILABLE"),
        ("hdm-ready", "expected status 200, got 503 Service Unavailable"),
    ],
    "hdm-slow-ready": [("hdm-ready", "(budget 2000 ms): over budget")],
    "hdm-selfcheck-config-missing": [
        ("hdm-selfcheck", "expected exit 0, got exit 78 (EX_CONFIG: Pflicht-ENV/Secrets fehlen")
    ],
    "hdm-selfcheck-dir-missing": [
        ("hdm-selfcheck", "expected exit 0, got exit 71 (EX_OSERR: Verzeichnisse")
    ],
    "hdm-selfcheck-invalid-config": [
        ("hdm-selfcheck", "expected exit 0, got exit 70 (EX_SOFTWARE: interne Fehlkonfiguration")
    ],
    "hdm-spotify-unauthorized": [("hdm-spotify-status", "authorized expected true, got false")],
    "hdm-sync-partial": [
        ("hdm-manual-sync", "Partial (status partial): auto_sync reported warnings or errors")
    ],
    "hdm-sync-failed": [
        ("hdm-manual-sync", "Failed (status error): playlists, library_scan, auto_sync"),
        ("hdm-monitoring", "ui_action_dashboard_sync_total = 1, expected == 0"),
    ],
    "hdm-backfill-backlog": [("hdm-monitoring", "backfill_jobs_queued = 250, expected < 200")],
    "hdm-oauth-code-expired": [
        (
            "hdm-oauth-recover",
            'got 400 Bad Request (application/json: {"ok":false,"error":'
            '{"code":"OAUTH_CODE_EXPIRED"',
        )
    ],
    "hdm-oauth-token-exchange-fails": [
        (
            "hdm-oauth-recover",
            'got 502 Bad Gateway (application/json: {"ok":false,"error":'
            '{"code":"OAUTH_TOKEN_EXCHANGE_FAILED',
        )
    ],
    "hdm-oauth-transactions-flood": [
        ("hdm-monitoring", "oauth_transactions_active = 64, expected < 5")
    ],
}
GATES = {"golive-gate", "operations-gate"}


def check(*args: str) -> tuple[int, dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "opsconsole.cli", "check", str(HDM_RUNBOOK), "--sandbox", "--json"]
        + list(args),
        capture_output=True,
        text=True,
        timeout=180,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        report: dict[str, Any] = json.loads(done.stdout)
    except ValueError:
        raise AssertionError(done.stdout + done.stderr) from None
    return done.returncode, report


def test_check_sandbox_passes_with_every_seed_check_automated() -> None:
    status, report = check()
    assert status == 0, report
    steps = {step["id"]: step for step in report["steps"]}
    assert report["summary"]["failed"] == 0
    for step_id in AUTOMATED:
        assert steps[step_id]["status"] == "passed", steps[step_id]
        assert steps[step_id]["human"] is False
    automated_passed = [s["id"] for s in report["steps"] if s["status"] == "passed"]
    assert automated_passed == AUTOMATED
    assert steps["golive-gate"]["status"] == "answered"
    assert steps["operations-gate"]["status"] == "answered"


@pytest.mark.parametrize("fault", sorted(FAULT_FAILS))
def test_each_fault_fails_the_right_step_with_value_and_threshold(fault: str) -> None:
    status, report = check("--fault", fault)
    assert status == 1, report
    failed = {s["id"]: s["detail"] for s in report["steps"] if s["status"] == "failed"}
    expected = FAULT_FAILS[fault]
    assert next(iter(failed)) == expected[0][0], failed
    for step_id, reason in expected:
        assert reason in failed[step_id], (step_id, failed)
    assert set(failed) - {step_id for step_id, _ in expected} <= GATES, failed
    # every automated step the fault does not touch, and that ran, still passed
    ran = {s["id"]: s["status"] for s in report["steps"] if s["id"] in AUTOMATED}
    broken = {step_id for step_id, _ in expected}
    assert all(st in ("passed", "skipped") for i, st in ran.items() if i not in broken), ran


def test_a_transactions_leak_under_50_is_a_warning_not_a_failure() -> None:
    """The seed: < 5 in normal operation, and the store stays under 50."""
    status, report = check("--fault", "hdm-oauth-transactions-leak")
    assert status == 0, report
    (step,) = [s for s in report["steps"] if s["id"] == "hdm-monitoring"]
    assert step["status"] == "passed"
    assert (
        "oauth_transactions_active = 12: warning, expected < 5 (within warn < 50)"
        in (step["detail"])
    )


def test_no_secret_or_oauth_code_reaches_state_audit_json_junit_or_text(tmp_path: Path) -> None:
    """The API key, the client secret and the code inside the pasted redirect URL."""
    runbook = load_runbook(HDM_RUNBOOK)
    with Sandbox.for_runbooks([runbook]) as sandbox:
        sandbox.install_keyring()
        environment = load_config(sandbox.config_path).environment("sandbox")
        operator = HeadlessOperator(simulate=True, browser=sandbox.simulated_browser)
        report = asyncio.run(run_check(runbook, environment, tmp_path, operator=operator))
        (hdm,) = [s for s in sandbox.services if isinstance(s, HarmonyDownloadManager)]
        codes = list(hdm.state.codes)
        values = [*sandbox.secret_values.values(), *codes]
    steps = {step["id"]: step["status"] for step in report.steps}
    assert steps["hdm-oauth-recover"] == "passed" and steps["hdm-selfcheck"] == "passed"
    assert len(codes) == 1  # the simulated operator approved once; its code was pasted
    outputs = [report.to_json(), report.to_junit(), report.to_text(), tmp_path]
    for value in values:
        for output in outputs:
            assert_no_leak(output, value)
