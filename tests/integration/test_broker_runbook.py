"""The bundled broker runbook against the sandbox broker: it passes; each fault fails the
right step in the seed's words with its triage row; and no token — session tokens,
pending tokens, the broker client token — reaches audit, evidence, run state, events,
JSON, JUnit or the text report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from leak_forms import assert_no_leak

from opsconsole.config import bundled_runbooks_dir, load_config
from opsconsole.evidence import export_evidence
from opsconsole.headless import run_check
from opsconsole.loader import load_runbook
from opsconsole.model import Step
from opsconsole.operator import Event, HeadlessOperator
from opsconsole.sandbox import Sandbox
from opsconsole.sandbox.broker import DiscogsBroker
from opsconsole.session import open_session

RUNBOOK = bundled_runbooks_dir() / "discogs-broker.md"


def check_cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    code = "import sys; from opsconsole.cli import main; sys.exit(main())"
    return subprocess.run(
        [sys.executable, "-c", code, "check", "--sandbox", "--json", str(RUNBOOK), *args],
        capture_output=True, text=True, timeout=300,
        env={"OPSCONSOLE_HOME": str(home), "PATH": "/usr/bin:/bin", "HOME": str(home)},
    )


def failures(report: dict) -> dict[str, tuple[str, dict | None]]:
    return {
        step["id"]: (step["detail"], step.get("triage"))
        for step in report["steps"] if step["status"] == "failed"
    }


def test_check_sandbox_passes(tmp_path: Path) -> None:
    done = check_cli(home=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    report = json.loads(done.stdout)
    passed = {s["id"] for s in report["steps"] if s["status"] == "passed"}
    assert {"local-start-contract", "local-status-contract", "deployed-device-session",
            "deployed-proxy-search", "local-device-session", "local-proxy-search",
            "local-proxy-search-cached"} <= passed


@pytest.mark.parametrize(
    ("fault", "step", "words", "meaning"),
    [
        ("broker-token-mismatch", "local-start-contract",
         "got 401 Unauthorized", "BROKER_CLIENT_TOKEN mismatch"),
        ("broker-session-expires-early", "deployed-device-session",
         "(410 device session expired; restart auth)", "session TTL elapsed"),
        ("broker-denied", "deployed-device-session",
         "Discogs sign-in was denied in the browser", None),
    ],
)
def test_each_fault_fails_the_right_step_with_its_triage_row(
    tmp_path: Path, fault: str, step: str, words: str, meaning: str | None
) -> None:
    done = check_cli("--fault", fault, home=tmp_path)
    assert done.returncode == 1, done.stderr[-2000:]
    failed = failures(json.loads(done.stdout))
    first = next(iter(failed))
    assert first == step, failed
    detail, triage = failed[step]
    assert words in detail
    assert (triage or {}).get("meaning") == meaning


def test_a_bad_proxy_request_is_refused_in_the_seeds_words() -> None:
    with Sandbox(services=["discogs-broker"]) as box:
        url = box.variables["local_broker_url"] + "/v1/discogs/proxy/search"
        no_bearer = httpx.post(url, json={"artist": "a", "title": "b"})
        assert (no_bearer.status_code, no_bearer.json()) == (
            401, {"error": "missing bearer session token"})
        stale = httpx.post(url, json={"artist": "a", "title": "b"},
                           headers={"authorization": "Bearer not-a-session"})
        assert (stale.status_code, stale.json()) == (
            401, {"error": "invalid or expired broker session"})
        status = httpx.get(box.variables["local_broker_url"] + "/v1/device/session/status",
                           params={"device_id": "x", "pending_token": "y"},
                           headers={"x-reklawdbox-broker-token":
                                    box.secret_values["broker_client_token"]})
        assert (status.status_code, status.json()) == (
            404, {"error": "device session not found"})


async def test_no_token_reaches_any_output(tmp_path: Path) -> None:
    runbook = load_runbook(RUNBOOK)
    events: list[str] = []

    def watch(step: Step, event: Event) -> None:
        events.append(repr(event))

    with Sandbox(services=["discogs-broker"]) as box:
        box.install_keyring()
        environment = load_config(box.config_path).environment(box.environment_name)

        def operator() -> HeadlessOperator:
            return HeadlessOperator(simulate=True, browser=box.simulated_browser, sink=watch)

        report = await run_check(runbook, environment, tmp_path / "check", operator=operator())
        assert report.exit_code == 0, report.to_text()

        session = open_session(runbook, environment, tmp_path / "session")
        assert await session.start() == []
        walker = operator()
        for step in runbook.steps:
            if not session.finished:
                await session.execute(step.id, operator=walker)
        assert session.result("local-proxy-search-cached").status.value == "passed"
        evidence = export_evidence(session, tmp_path / "evidence")
        await session.close()

        broker = next(s for s in box.services if isinstance(s, DiscogsBroker))
        values = {"broker client token": box.secret_values["broker_client_token"]}
        for name, state in broker.states.items():
            for n, token in enumerate(state.sessions):
                values[f"{name} session token {n}"] = token
            for n, device in enumerate(state.devices.values()):
                values[f"{name} pending token {n}"] = device.pending_token
    # two runs, each with two device sessions finalized (and a start contract check)
    assert sum("session token" in name for name in values) == 4

    places: list[tuple[str, str | Path]] = [
        ("check state (runs, audit)", tmp_path / "check"),
        ("session state (runs, audit)", tmp_path / "session"),
        ("check --json", report.to_json()),
        ("JUnit", report.to_junit()),
        ("text report", report.to_text()),
        ("evidence", evidence),
        ("events a screen shows", "\n".join(events)),
    ]
    assert "***" in evidence.read_text() and "***" in report.to_json()
    leaks = []
    for what, target in places:
        for name, value in values.items():
            try:
                assert_no_leak(target, value)
            except AssertionError as leak:
                leaks.append(f"{name} in {what}: {leak}")
    assert not leaks, "\n".join(leaks)


async def test_a_fault_shows_its_triage_row_in_the_evidence(tmp_path: Path) -> None:
    runbook = load_runbook(RUNBOOK)
    with Sandbox(faults=["broker-token-mismatch"], services=["discogs-broker"]) as box:
        box.install_keyring()
        environment = load_config(box.config_path).environment(box.environment_name)
        session = open_session(runbook, environment, tmp_path / "home")
        assert await session.start() == []
        await session.execute("local-start-contract", operator=HeadlessOperator())
        evidence = export_evidence(session, tmp_path / "evidence").read_text()
        await session.close()
    assert ("- Triage (401 invalid broker client token): BROKER_CLIENT_TOKEN mismatch → "
            "Fix token in broker env and MCP env/header.") in evidence


def test_the_broker_contract_end_to_end_over_http() -> None:
    """start → 409 before approval → approve → status authorized → finalize → proxy search:
    exact, fuzzy, none, a repeat is a cache hit, a bad body is 400."""
    with Sandbox(services=["discogs-broker"]) as box:
        base = box.variables["local_broker_url"]
        client_token = {"x-reklawdbox-broker-token": box.secret_values["broker_client_token"]}
        with httpx.Client(base_url=base, headers=client_token, trust_env=False) as http:
            started = http.post("/v1/device/session/start").json()
            assert set(started) == {"device_id", "pending_token", "auth_url",
                                    "poll_interval_seconds", "expires_at"}
            pair = {"device_id": started["device_id"],
                    "pending_token": started["pending_token"]}
            early = http.post("/v1/device/session/finalize", json=pair)
            assert (early.status_code, early.json()) == (
                409, {"error": "device session is not authorized yet"})
            wrong = http.post("/v1/device/session/start",
                              headers={"x-reklawdbox-broker-token": "not-it"})
            assert (wrong.status_code, wrong.json()) == (
                401, {"error": "invalid broker client token"})
            assert http.post(started["auth_url"], data={"decision": "approve"}).status_code == 200
            status = http.get("/v1/device/session/status", params=pair).json()
            assert status["status"] == "authorized"
            final = http.post("/v1/device/session/finalize", json=pair).json()
            bearer = {"authorization": f"Bearer {final['session_token']}"}

            def search(artist: str, title: str) -> dict:
                found = http.post("/v1/discogs/proxy/search", headers=bearer,
                                  json={"artist": artist, "title": title})
                assert found.status_code == 200, found.text
                return found.json()

            exact = search("Daft Punk", "One More Time")
            assert (exact["match_quality"], exact["cache_hit"]) == ("exact", False)
            assert exact["result"]["title"] == "One More Time"
            assert search("Daft Punk", "One More Time")["cache_hit"] is True
            assert search("daft punk", "one more time (radio edit)")["match_quality"] == "fuzzy"
            nothing = search("Nobody", "Nothing")
            assert (nothing["match_quality"], nothing["result"]) == ("none", None)
            empty = http.post("/v1/discogs/proxy/search", headers=bearer,
                              json={"artist": " ", "title": "x"})
            assert (empty.status_code, empty.json()) == (
                400, {"error": "artist and title are required"})


async def test_a_step_whose_token_was_never_made_is_skipped_naming_the_step(
    tmp_path: Path,
) -> None:
    """Denied sign-in: the proxy search after it did not fail (nothing was wrong with it),
    it was not run, and it says which step would have made its token."""
    runbook = load_runbook(RUNBOOK)
    with Sandbox(faults=["broker-denied"], services=["discogs-broker"]) as box:
        box.install_keyring()
        environment = load_config(box.config_path).environment(box.environment_name)
        operator = HeadlessOperator(simulate=True, browser=box.simulated_browser)
        session = open_session(runbook, environment, tmp_path / "home")
        assert await session.start() == []
        for step_id in ("deployed-device-session", "deployed-proxy-search"):
            await session.execute(step_id, operator=operator)
        await session.close()
    assert session.result("deployed-device-session").status.value == "failed"
    skipped = session.result("deployed-proxy-search")
    assert skipped.status.value == "skipped", skipped.detail
    assert ("needs secrets.deployed_session_token, which step 'deployed-device-session' "
            "produces, and that step is failed") in skipped.detail
