"""The bot canary and Discogs collection runbooks under `opsconsole check --sandbox`.

Real processes, the real sandbox: every automated step passes on a healthy
sandbox, and each fault fails the step that checks it, with the value and the
threshold in the reason.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opsconsole.sandbox import Sandbox
from tests.conftest import REPO, RUNBOOKS, require_tool

BOT = RUNBOOKS / "discord-canary-deploy.md"
DISCOGS = RUNBOOKS / "discogs-collection.md"

#: runbook, fault -> the first failing step and the words its reason must hold
FAULT_FAILS: dict[tuple[str, str], tuple[str, list[str]]] = {
    ("bot", "bot-redis-down"): (
        "smoke-redis", ["redis expected ok, got error: connection refused"]
    ),
    ("bot", "bot-slow-health"): ("smoke-health-up", ["(budget 2000 ms)"]),
    # the sandbox's real Prometheus scrapes the bot
    ("bot", "bot-error-spike"): ("staging-error-rate", ["expected < 0.01"]),
    ("bot", "bot-latency-spike"): ("staging-p99-latency", ["expected < 2"]),
    ("discogs", "discogs-sync-partial"): (
        "discogs-sync",
        ["data.releaseCount expected 1497, got 1397"],
    ),
    ("discogs", "discogs-sync-failed"): ("discogs-sync", ["job failed: Failed to sync collection"]),
    ("discogs", "discogs-slow-stats"): ("discogs-stats", ["(budget 3000 ms)"]),
    # a stalled enrichment fails (it is known not to progress), not unknown after 30 minutes
    ("discogs", "discogs-enrich-stalls"): (
        "discogs-enrich",
        ["Enrichment stalled at ", " of 1,497 for 10 polls", "the POST was accepted"],
    ),
    ("discogs", "discogs-connect-denied"): (
        "discogs-connect",
        ["job denied: Access was denied on the Discogs authorize page"],
    ),
}


def check(runbook: str, *args: str, timeout: float = 300) -> tuple[int, dict[str, Any]]:
    path = BOT if runbook == "bot" else DISCOGS
    done = subprocess.run(
        [sys.executable, "-m", "opsconsole.cli", "check", str(path), "--sandbox", "--json", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout)


def statuses(report: dict[str, Any]) -> dict[str, str]:
    return {step["id"]: step["status"] for step in report["steps"]}


def test_bot_runbook_passes_in_the_sandbox() -> None:
    require_tool("prometheus")
    code, report = check("bot")
    assert code == 0, report
    found = statuses(report)
    for step in (
        "smoke-health-up", "smoke-gateway", "smoke-db", "smoke-redis", "smoke-lavalink",
        "smoke-metrics", "smoke-db-ping", "smoke-db-ping-needs-auth",
        "rate-limit-mod", "rate-limit-user", "rate-limit-admin", "rate-limit-ai",
        "post-deploy-health", "rollback-health",
    ):
        assert found[step] == "passed", (step, found)
    burst = next(step for step in report["steps"] if step["id"] == "rate-limit-mod")
    assert "#11 got 429 (Retry-After 10)" in burst["detail"]
    assert "users isolated, limit resets" in burst["detail"]
    # the sandbox's Prometheus scrapes the bot: monitoring and rollback triggers verified
    for step in PROMQL_STEPS:
        assert found[step] == "passed", (step, found)
    assert report["summary"]["failed"] == report["summary"]["inconclusive"] == 0


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
    assert sync["detail"].startswith("Success (status completed)")
    assert "data.releaseCount 1497" in sync["detail"] and "data.pagesFetched 15" in sync["detail"]


@pytest.mark.parametrize(("runbook", "fault"), sorted(FAULT_FAILS))
def test_each_fault_fails_its_step_with_value_and_threshold(runbook: str, fault: str) -> None:
    code, report = check(runbook, "--fault", fault)
    assert code == 1
    failed = {step["id"]: step["detail"] for step in report["steps"] if step["status"] == "failed"}
    step, words = FAULT_FAILS[(runbook, fault)]
    assert next(iter(failed)) == step, failed
    for word in words:
        assert word in failed[step], (word, failed[step])


def test_a_stalled_enrichment_fails_in_seconds_with_where_it_stopped() -> None:
    """Without the stall rule the step follows to its 30-minute deadline (the bound below
    is a hang guard, not a measurement); with it, eleven polls and the progress says why."""
    from opsconsole.sandbox.discogs_collection import STALL_AT

    code, report = check("discogs", "--fault", "discogs-enrich-stalls", timeout=240)
    assert code == 1
    step = next(step for step in report["steps"] if step["id"] == "discogs-enrich")
    assert step["status"] == "failed", step["detail"]
    progress = next(a for a in step["artifacts"] if a["type"] == "progress")
    assert STALL_AT <= progress["done"] < 1497 and not progress["finished"]
    # ten polls a second apart: at least ten seconds (more on a busy machine)
    said = re.fullmatch(
        rf"Enrichment stalled at {progress['done']:,} of 1,497 for 10 polls \((\d+) s\)",
        progress["stalled"],
    )
    assert said is not None and int(said[1]) >= 10, progress["stalled"]
    follow = next(a for a in step["artifacts"] if a["type"] == "measurements")
    assert follow["phase"] == "Failed" and len(follow["rows"]) < 20
    # the other steps are unaffected
    assert {s["id"] for s in report["steps"] if s["status"] == "failed"} == {
        "discogs-enrich", "discogs-collection-gate"
    }


# --------------------------------------------------------------------------- real Prometheus

#: fault -> the gate step and the rollback trigger it fails, each with its threshold and the
#: least value the reason must show
PROMQL_FAULTS: dict[str, list[tuple[str, str, float]]] = {
    "bot-error-spike": [
        ("staging-error-rate", "expected < 0.01", 0.05),
        ("trigger-command-error-rate", "> 0.05", 0.05),
    ],
    "bot-latency-spike": [
        ("staging-p99-latency", "expected < 2", 5.0),
        ("trigger-p99-latency", "> 5", 5.0),
    ],
}


@contextlib.contextmanager
def bot_with_prometheus(*faults: str) -> Iterator[tuple[Sandbox, str]]:
    """The sandbox bot scraped every second by a real Prometheus, once it has data."""
    binary = require_tool("prometheus")
    from prometheus_api_client import PrometheusConnect

    from opsconsole.prometheus import PrometheusServer, ScrapeTarget

    with Sandbox(faults, services=["discord-bot"]) as bot:
        target = ScrapeTarget("discord-bot", bot.variables["bot_url"])
        with PrometheusServer([target], binary=binary) as server:
            client = PrometheusConnect(server.url)
            # bounded readiness wait (two scrapes make a rate), not a timed assertion
            for _ in range(300):
                if client.custom_query("count_over_time(chopsticks_gateway_connected[1m]) >= 3"):
                    break
                time.sleep(0.1)
            else:
                pytest.fail("Prometheus never scraped the bot")
            yield bot, server.url


def check_against(bot: Sandbox, prometheus_url: str, tmp_path: Path) -> dict[str, Any]:
    """check in an environment of its own: the sandbox bot plus the given Prometheus."""
    variables = {**bot.variables, "prometheus_url": prometheus_url}
    config = tmp_path / "config.toml"
    config.write_text(
        "[environments.bot-staging]\n"
        'secrets = ["admin_api_secret", "e2e_test_secret"]\n'
        "[environments.bot-staging.variables]\n"
        + "".join(f"{name} = {json.dumps(value)}\n" for name, value in variables.items()),
        encoding="utf-8",
    )
    secrets = {
        f"OPSCONSOLE_SECRET_{name.upper()}": value for name, value in bot.secret_values.items()
    }
    done = subprocess.run(
        [sys.executable, "-m", "opsconsole.cli", "--config", str(config), "check", str(BOT),
         "--env", "bot-staging", "--json", "--answer", "smoke-gate=go",
         "--answer", "staging-gate=go"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), **secrets},
    )
    assert done.stdout, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


PROMQL_STEPS = (
    "staging-error-rate", "staging-p99-latency", "staging-no-alerts",
    "trigger-command-error-rate", "trigger-p99-latency", "trigger-gateway-offline",
    "trigger-db-error-rate", "trigger-p1-alert",
)


def test_monitoring_and_rollback_triggers_pass_against_a_real_prometheus(
    tmp_path: Path,
) -> None:
    with bot_with_prometheus() as (bot, url):
        report = check_against(bot, url, tmp_path)
    found = statuses(report)
    for step in PROMQL_STEPS:
        assert found[step] == "passed", (step, report)


@pytest.mark.parametrize("fault", sorted(PROMQL_FAULTS))
def test_metric_faults_fail_the_gate_and_the_rollback_trigger(fault: str, tmp_path: Path) -> None:
    with bot_with_prometheus(fault) as (bot, url):
        report = check_against(bot, url, tmp_path)
    failed = {step["id"]: step["detail"] for step in report["steps"] if step["status"] == "failed"}
    expected = PROMQL_FAULTS[fault]
    assert next(iter(failed)) == expected[0][0], failed
    for step, threshold, least in expected:
        assert threshold in failed[step], (step, failed)
        shown = re.search(r"= (-?[0-9.e+-]+)", failed[step])
        assert shown is not None and float(shown[1]) > least, (step, failed[step])
    # nothing else fails: the other checks do not cry wolf
    assert set(failed) <= {step for step, _, _ in expected} | {"staging-gate"}, failed


def test_prometheus_down_is_inconclusive_never_passed(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    with Sandbox(services=["discord-bot"]) as bot:
        report = check_against(bot, closed, tmp_path)
    found = statuses(report)
    for step in PROMQL_STEPS:
        assert found[step] == "inconclusive", (step, found[step])
