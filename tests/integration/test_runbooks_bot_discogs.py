"""The bot canary and Discogs collection runbooks under `opsconsole check --sandbox`.

Real processes, the real sandbox: every automated step passes on a healthy
sandbox, and each fault fails the step that checks it, with the value and the
threshold in the reason.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from tests.conftest import REPO, RUNBOOKS

BOT = RUNBOOKS / "discord-canary-deploy.md"
DISCOGS = RUNBOOKS / "discogs-collection.md"

#: runbook, fault -> the first failing step and the words its reason must hold
FAULT_FAILS: dict[tuple[str, str], tuple[str, list[str]]] = {
    ("bot", "bot-redis-down"): (
        "smoke-redis", ["redis expected ok, got error: connection refused"]
    ),
    ("bot", "bot-slow-health"): ("smoke-health-up", ["(budget 2000 ms)"]),
    ("discogs", "discogs-sync-partial"): (
        "discogs-sync",
        ["job partial", "1397 of 1497 releases synced", "page 9 of 15"],
    ),
    ("discogs", "discogs-sync-failed"): ("discogs-sync", ["job failed: Failed to sync collection"]),
    ("discogs", "discogs-slow-stats"): ("discogs-stats", ["(budget 3000 ms)"]),
    ("discogs", "discogs-connect-denied"): (
        "discogs-connect",
        ["job denied: Access was denied on the Discogs authorize page"],
    ),
}


def check(runbook: str, *args: str) -> tuple[int, dict[str, Any]]:
    path = BOT if runbook == "bot" else DISCOGS
    done = subprocess.run(
        [sys.executable, "-m", "opsconsole.cli", "check", str(path), "--sandbox", "--json", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout)


def statuses(report: dict[str, Any]) -> dict[str, str]:
    return {step["id"]: step["status"] for step in report["steps"]}


def test_bot_smoke_steps_pass_in_the_sandbox() -> None:
    code, report = check("bot")
    assert code == 0, report
    passed = {step for step, status in statuses(report).items() if status == "passed"}
    assert {
        "smoke-health-up", "smoke-gateway", "smoke-db", "smoke-redis", "smoke-lavalink",
        "smoke-metrics", "smoke-db-ping", "smoke-db-ping-needs-auth",
    } <= passed
    assert report["summary"]["failed"] == 0


def test_discogs_collection_steps_pass_in_the_sandbox() -> None:
    code, report = check("discogs")
    assert code == 0, report
    found = statuses(report)
    for step in (
        "discogs-connect-state", "discogs-connect", "discogs-sync-started-after-connect",
        "discogs-sync", "discogs-enrichment-started-after-sync", "discogs-enrich",
        "discogs-stats", "discogs-disconnect", "discogs-disconnected",
    ):
        assert found[step] == "passed", (step, found)
    sync = next(step for step in report["steps"] if step["id"] == "discogs-sync")
    assert '"releases": 1497, "pages": 15' in sync["detail"]


@pytest.mark.parametrize(("runbook", "fault"), sorted(FAULT_FAILS))
def test_each_fault_fails_its_step_with_value_and_threshold(runbook: str, fault: str) -> None:
    code, report = check(runbook, "--fault", fault)
    assert code == 1
    failed = {step["id"]: step["detail"] for step in report["steps"] if step["status"] == "failed"}
    step, words = FAULT_FAILS[(runbook, fault)]
    assert next(iter(failed)) == step, failed
    for word in words:
        assert word in failed[step], (word, failed[step])
