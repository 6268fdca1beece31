"""The sandbox's Harmony Download Manager (source runbook 001) over real loopback HTTP.

Every endpoint, status code, error code, exit code and metric asserted here is
one the seed (or Harmony's conventions, where the seed names none) gives: the
go-live checks, the manual sync result, the Spotify PRO OAuth recovery with a
pasted redirect URL, and the self-check's 78/71/69/70.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import prometheus_client
import pytest
from prometheus_client.parser import text_string_to_metric_families

from opsconsole.sandbox import Sandbox
from opsconsole.sandbox.hdm import OAUTH_STATE_TTL_SECONDS, HarmonyDownloadManager

REPO_ROOT = Path(__file__).resolve().parents[2]


class FakeClock:
    """Monotonic seconds that move only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(services=["hdm"]) as running:
        yield running


@pytest.fixture
def hdm(sandbox: Sandbox) -> HarmonyDownloadManager:
    (service,) = sandbox.services
    assert isinstance(service, HarmonyDownloadManager)
    return service


@pytest.fixture
def client(sandbox: Sandbox) -> Iterator[httpx.Client]:
    headers = {"X-API-Key": sandbox.secret_values["hdm_api_key"]}
    with httpx.Client(base_url=sandbox.variables["hdm_url"], headers=headers, timeout=10) as http:
        yield http


@contextlib.contextmanager
def fault(sandbox: Sandbox, name: str) -> Iterator[None]:
    sandbox.set_fault(name, True)
    try:
        yield
    finally:
        sandbox.set_fault(name, False)


def metric(client: httpx.Client, name: str, **labels: str) -> float:
    text = client.get("/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    raise AssertionError(f"no sample {name} {labels} in /metrics")


def approve(sandbox: Sandbox, authorization_url: str, decision: str = "approve") -> str:
    """What the operator's browser does on the sandbox Spotify page: the redirect URL."""
    consent = httpx.get(authorization_url, timeout=10)
    assert consent.status_code == 200 and "Approve" in consent.text
    query = {k: v[0] for k, v in parse_qs(urlsplit(authorization_url).query).items()}
    answer = httpx.post(
        f"{sandbox.variables['hdm_spotify_url']}/authorize",
        data={**query, "decision": decision},
        timeout=10,
    )
    assert answer.status_code == 303
    return answer.headers["location"]


def start_oauth(client: httpx.Client) -> dict[str, Any]:
    started = client.post("/api/v1/spotify/pro/oauth/start")
    assert started.status_code == 200, started.text
    body: dict[str, Any] = started.json()
    return body


def manual(client: httpx.Client, redirect_url: str) -> httpx.Response:
    return client.post("/api/v1/oauth/manual", json={"redirect_url": redirect_url})


def error_code(response: httpx.Response) -> str:
    code: str = response.json()["error"]["code"]
    return code


# --------------------------------------------------------------------------- health


@pytest.mark.parametrize("path", ["/live", "/api/health/live"])
def test_live_and_its_alias_answer_ok(client: httpx.Client, path: str) -> None:
    reply = httpx.get(client.base_url.join(path))  # no API key: health is open
    assert reply.status_code == 200
    assert reply.json() == {"status": "ok"}


def test_ready_verbose_lists_every_check_ok(client: httpx.Client) -> None:
    reply = httpx.get(client.base_url.join("/api/health/ready"), params={"verbose": "1"})
    assert reply.status_code == 200
    body = reply.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {
        "database",
        "downloads_dir",
        "music_dir",
        "oauth_state_store",
        "slskd",
    }
    assert {check["status"] for check in body["checks"].values()} == {"ok"}
    assert "checks" not in httpx.get(client.base_url.join("/api/health/ready")).json()


def test_slskd_down_fails_the_ready_check_naming_slskd(
    sandbox: Sandbox, client: httpx.Client
) -> None:
    with fault(sandbox, "hdm-slskd-down"):
        reply = client.get("/api/health/ready", params={"verbose": "1"})
        assert reply.status_code == 503
        body = reply.json()
        assert body["status"] == "fail"
        assert body["detail"] == "readiness check failed: slskd"
        assert body["checks"]["slskd"]["status"] == "fail"
        others = {name: c["status"] for name, c in body["checks"].items() if name != "slskd"}
        assert set(others.values()) == {"ok"}
    assert client.get("/api/health/ready").status_code == 200


# --------------------------------------------------------------------------- API key


def test_api_key_missing_is_401_and_wrong_is_403_as_problem_details(client: httpx.Client) -> None:
    url = client.base_url.join("/api/v1/sync")
    missing = httpx.post(url)
    assert missing.status_code == 401
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert "X-API-Key" in missing.json()["detail"]
    wrong = httpx.post(url, headers={"X-API-Key": "not-the-key"})
    assert wrong.status_code == 403
    assert wrong.json()["detail"] == "The API key is not valid."
    for path in ("/spotify/status", "/api/v1/backfill/status"):
        assert httpx.get(client.base_url.join(path)).status_code == 401
    bearer = {"Authorization": f"Bearer {client.headers['X-API-Key']}"}
    assert httpx.get(client.base_url.join("/spotify/status"), headers=bearer).status_code == 200


# --------------------------------------------------------------------------- sync


def test_sync_success_reports_sources_and_counters(client: httpx.Client) -> None:
    before = metric(client, "ui_action_dashboard_sync_total", status="success")
    body = client.post("/api/v1/sync").json()
    assert body["status"] == "success"
    assert set(body["results"]) == {"playlists", "library_scan", "auto_sync"}
    assert {result["status"] for result in body["results"].values()} == {"ok"}
    assert body["counters"] == {"tracks_synced": 128, "tracks_skipped": 4, "errors": 0}
    assert body["errors"] == []
    assert metric(client, "ui_action_dashboard_sync_total", status="success") == before + 1


def test_sync_partial_when_one_source_reports_an_error(
    sandbox: Sandbox, client: httpx.Client
) -> None:
    with fault(sandbox, "hdm-sync-partial"):
        body = client.post("/api/v1/sync").json()
    assert body["status"] == "partial"
    assert body["results"]["auto_sync"]["status"] == "error"
    assert body["results"]["playlists"]["status"] == "ok"
    assert body["counters"]["errors"] == 1
    assert body["errors"][0]["source"] == "auto_sync"
    assert "SLSKD_API_KEY" in body["errors"][0]["message"]


def test_sync_failed_when_every_source_fails(sandbox: Sandbox, client: httpx.Client) -> None:
    before = metric(client, "spotify_api_errors_total")
    with fault(sandbox, "hdm-sync-failed"):
        body = client.post("/api/v1/sync").json()
    assert body["status"] == "error"
    assert {result["status"] for result in body["results"].values()} == {"error"}
    assert body["counters"] == {"tracks_synced": 0, "tracks_skipped": 0, "errors": 3}
    assert metric(client, "spotify_api_errors_total") == before + 1
    assert metric(client, "ui_action_dashboard_sync_total", status="error") >= 1


def test_backfill_status_and_backlog(sandbox: Sandbox, client: httpx.Client) -> None:
    body = client.get("/api/v1/backfill/status").json()
    assert body["jobs"]["queued"] < 200 and body["jobs"]["failed"] == 0
    assert body["oauth_errors"] == 0
    with fault(sandbox, "hdm-backfill-backlog"):
        assert client.get("/api/v1/backfill/status").json()["jobs"]["queued"] == 250
        assert metric(client, "backfill_jobs_queued") == 250


# --------------------------------------------------------------------------- metrics


def test_metrics_are_text_format_with_help_in_a_registry_of_their_own(
    client: httpx.Client, hdm: HarmonyDownloadManager
) -> None:
    reply = client.get("/metrics")
    assert reply.headers["content-type"].startswith("text/plain")
    families = {family.name: family for family in text_string_to_metric_families(reply.text)}
    for name in (
        "oauth_transactions_active",
        "oauth_exchange_success",
        "oauth_exchange_error",
        "spotify_api_errors",
        "backfill_jobs_queued",
        "ui_action_dashboard_sync",
    ):
        assert families[name].documentation, f"{name} has no # HELP"
    assert HarmonyDownloadManager.metrics_path == "/metrics"
    # never the process-global registry: two sandboxes would share (and clash on) it
    global_names = {f.name for f in prometheus_client.REGISTRY.collect()}
    assert "oauth_transactions_active" not in global_names


@pytest.mark.parametrize(
    ("name", "leaked"),
    [("hdm-oauth-transactions-leak", 12), ("hdm-oauth-transactions-flood", 64)],
)
def test_leak_faults_raise_open_transactions_past_the_thresholds(
    sandbox: Sandbox, client: httpx.Client, name: str, leaked: int
) -> None:
    before = metric(client, "oauth_transactions_active")
    with fault(sandbox, name):
        assert metric(client, "oauth_transactions_active") == before + leaked
    assert metric(client, "oauth_transactions_active") == before


# --------------------------------------------------------------------------- OAuth


def test_oauth_start_points_at_the_authorize_page_with_a_fresh_state(
    sandbox: Sandbox, client: httpx.Client
) -> None:
    first, second = start_oauth(client), start_oauth(client)
    assert first["state"] != second["state"] and len(first["state"]) >= 32
    url = urlsplit(first["authorization_url"])
    assert f"{url.scheme}://{url.netloc}" == sandbox.variables["hdm_spotify_url"]
    assert url.path == "/authorize"
    query = parse_qs(url.query)
    port = sandbox.variables["hdm_callback_port"]
    assert query["redirect_uri"] == [f"http://127.0.0.1:{port}/callback"]
    assert query["state"] == [first["state"]]
    assert query["response_type"] == ["code"]
    assert first["redirect_uri"] == f"http://127.0.0.1:{port}/callback"


def test_callback_never_arrives_then_the_pasted_url_authorizes(
    sandbox: Sandbox, client: httpx.Client
) -> None:
    with fault(sandbox, "hdm-spotify-unauthorized"):
        assert client.get("/spotify/status").json()["authorized"] is False
        open_before = metric(client, "oauth_transactions_active")
        success_before = metric(client, "oauth_exchange_success_total")
        started = start_oauth(client)
        assert metric(client, "oauth_transactions_active") == open_before + 1
        redirect = approve(sandbox, started["authorization_url"])
        pasted = parse_qs(urlsplit(redirect).query)
        assert pasted["state"] == [started["state"]] and pasted["code"][0]
        # the callback port is bound and never listened on: the remote case
        with pytest.raises(httpx.ConnectError):
            httpx.get(redirect, timeout=5)
        done = manual(client, redirect)
        assert done.status_code == 200, done.text
        assert done.json()["data"]["authorized"] is True
        status = client.get("/spotify/status").json()
        assert status["authorized"] is True and status["status"] == "authorized"
        assert metric(client, "oauth_transactions_active") == open_before
        assert metric(client, "oauth_exchange_success_total") == success_before + 1
        # the same state again: used once only
        again = manual(client, redirect)
        assert again.status_code == 400 and error_code(again) == "OAUTH_STATE_UNKNOWN"


def test_a_state_this_server_never_issued_is_refused(
    sandbox: Sandbox, client: httpx.Client
) -> None:
    started = start_oauth(client)
    redirect = approve(sandbox, started["authorization_url"])
    forged = redirect.replace(started["state"], "not-a-state-we-issued")
    refused = manual(client, forged)
    assert refused.status_code == 400 and error_code(refused) == "OAUTH_STATE_UNKNOWN"
    assert manual(client, redirect).status_code == 200  # the real one still works


@pytest.mark.parametrize(
    ("pasted", "code", "words"),
    [
        ("not a url", "OAUTH_INVALID_REDIRECT", "not a valid URL"),
        ("http://127.0.0.1:8888/callback?code=abc", "OAUTH_INVALID_REDIRECT", "no state"),
        ("http://127.0.0.1:8888/callback?state={state}", "OAUTH_INVALID_REDIRECT", "no code"),
    ],
)
def test_a_malformed_redirect_url_is_refused_without_using_the_state(
    sandbox: Sandbox, client: httpx.Client, pasted: str, code: str, words: str
) -> None:
    started = start_oauth(client)
    refused = manual(client, pasted.format(state=started["state"]))
    assert refused.status_code == 400
    assert error_code(refused) == code and words in refused.json()["error"]["message"]
    assert manual(client, approve(sandbox, started["authorization_url"])).status_code == 200


def test_missing_body_is_a_validation_error(client: httpx.Client) -> None:
    refused = client.post("/api/v1/oauth/manual", content=b"[]")
    assert refused.status_code == 422 and error_code(refused) == "VALIDATION_ERROR"


def test_denied_consent_shows_the_error_and_its_description(
    sandbox: Sandbox, client: httpx.Client
) -> None:
    started = start_oauth(client)
    redirect = approve(sandbox, started["authorization_url"], decision="deny")
    assert parse_qs(urlsplit(redirect).query)["error"] == ["access_denied"]
    denied = manual(client, redirect + "&" + urlencode({"error_description": "user said no"}))
    assert denied.status_code == 400
    assert error_code(denied) == "OAUTH_AUTHORIZATION_DENIED"
    assert "access_denied (user said no)" in denied.json()["error"]["message"]


def test_state_ttl_is_ten_minutes_on_the_injected_clock(
    sandbox: Sandbox, client: httpx.Client, hdm: HarmonyDownloadManager
) -> None:
    clock = FakeClock()
    saved, hdm.state.clock = hdm.state.clock, clock
    try:
        open_before = metric(client, "oauth_transactions_active")
        in_time, too_late = start_oauth(client), start_oauth(client)
        assert metric(client, "oauth_transactions_active") == open_before + 2
        clock.advance(OAUTH_STATE_TTL_SECONDS - 1)
        assert manual(client, approve(sandbox, in_time["authorization_url"])).status_code == 200
        redirect = approve(sandbox, too_late["authorization_url"])
        clock.advance(1)
        assert metric(client, "oauth_transactions_active") == open_before
        expired = manual(client, redirect)
        assert expired.status_code == 400 and error_code(expired) == "OAUTH_STATE_EXPIRED"
        assert "10 minutes" in expired.json()["error"]["message"]
    finally:
        hdm.state.clock = saved


def test_code_expired_fault_is_oauth_code_expired(sandbox: Sandbox, client: httpx.Client) -> None:
    started = start_oauth(client)
    redirect = approve(sandbox, started["authorization_url"])
    before = metric(client, "oauth_exchange_error_total", code="OAUTH_CODE_EXPIRED")
    with fault(sandbox, "hdm-oauth-code-expired"):
        refused = manual(client, redirect)
    assert refused.status_code == 400 and error_code(refused) == "OAUTH_CODE_EXPIRED"
    assert "start the authorization again" in refused.json()["error"]["message"]
    assert metric(client, "oauth_exchange_error_total", code="OAUTH_CODE_EXPIRED") == before + 1


def test_token_endpoint_down_is_oauth_token_exchange_failed(
    sandbox: Sandbox, client: httpx.Client
) -> None:
    started = start_oauth(client)
    redirect = approve(sandbox, started["authorization_url"])
    with fault(sandbox, "hdm-oauth-token-exchange-fails"):
        refused = manual(client, redirect)
    assert refused.status_code == 502
    assert error_code(refused) == "OAUTH_TOKEN_EXCHANGE_FAILED"
    assert "Spotify answered 503" in refused.json()["error"]["message"]


def test_a_code_spotify_never_issued_is_oauth_token_exchange_failed(
    sandbox: Sandbox, client: httpx.Client
) -> None:
    started = start_oauth(client)
    redirect = approve(sandbox, started["authorization_url"])
    code = parse_qs(urlsplit(redirect).query)["code"][0]
    refused = manual(client, redirect.replace(code, "made-up-code"))
    assert refused.status_code == 400
    assert error_code(refused) == "OAUTH_TOKEN_EXCHANGE_FAILED"
    assert "Invalid authorization code" in refused.json()["error"]["message"]


def test_consent_page_escapes_what_it_echoes_and_checks_the_redirect(sandbox: Sandbox) -> None:
    spotify = sandbox.variables["hdm_spotify_url"]
    port = sandbox.variables["hdm_callback_port"]
    hostile = '"><script>alert(1)</script>'
    page = httpx.get(
        f"{spotify}/authorize",
        params={
            "client_id": "hdm-sandbox-client",
            "response_type": "code",
            "redirect_uri": f"http://127.0.0.1:{port}/callback",
            "state": hostile,
        },
    )
    assert page.status_code == 200
    assert "<script>" not in page.text and "&lt;script&gt;" in page.text
    elsewhere = httpx.get(
        f"{spotify}/authorize",
        params={
            "client_id": "hdm-sandbox-client",
            "response_type": "code",
            "redirect_uri": "http://attacker.example/callback",
            "state": "x",
        },
    )
    assert elsewhere.status_code == 400 and "Invalid redirect URI" in elsewhere.text


# --------------------------------------------------------------------------- self-check


def selfcheck(sandbox: Sandbox, *, secrets: bool = True) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ["PATH"]}
    if secrets:
        env["HARMONY_API_KEY"] = sandbox.secret_values["hdm_api_key"]
        env["SPOTIFY_CLIENT_SECRET"] = sandbox.secret_values["hdm_spotify_client_secret"]
    return subprocess.run(
        sandbox.variables["hdm_selfcheck_cmd"],
        shell=True,
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_selfcheck_passes_with_the_sandbox_settings(sandbox: Sandbox) -> None:
    done = selfcheck(sandbox)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "startup checks passed" in done.stdout


def test_selfcheck_without_the_secrets_is_78_naming_them_never_showing_values(
    sandbox: Sandbox,
) -> None:
    done = selfcheck(sandbox, secrets=False)
    assert done.returncode == 78
    assert "EX_CONFIG" in done.stderr
    assert "HARMONY_API_KEY is not set" in done.stderr
    assert "SPOTIFY_CLIENT_SECRET is not set" in done.stderr


@pytest.mark.parametrize(
    ("name", "status", "words"),
    [
        ("hdm-selfcheck-config-missing", 78, "SPOTIFY_CLIENT_ID is not set"),
        ("hdm-selfcheck-dir-missing", 71, "MUSIC_DIR"),
        ("hdm-slskd-down", 69, "slskd is not reachable"),
        ("hdm-selfcheck-invalid-config", 70, "HEALTH_READY_REQUIRE_DB must be true or false"),
    ],
)
def test_selfcheck_exit_codes_follow_the_faults(
    sandbox: Sandbox, name: str, status: int, words: str
) -> None:
    with fault(sandbox, name):
        done = selfcheck(sandbox)
    assert done.returncode == status, done.stdout + done.stderr
    assert words in done.stderr
    for secret in sandbox.secret_values.values():
        assert secret not in done.stdout + done.stderr
    assert selfcheck(sandbox).returncode == 0  # cleared: back to normal


def test_callback_port_refuses_connections(sandbox: Sandbox) -> None:
    port = int(sandbox.variables["hdm_callback_port"])
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), 2):
        pass


def test_a_16_kb_pasted_redirect_url_is_accepted_whole(
    sandbox: Sandbox, client: httpx.Client
) -> None:
    started = start_oauth(client)
    redirect = approve(sandbox, started["authorization_url"])
    pasted = redirect + "&" + urlencode({"padding": "x" * 16 * 1024})
    assert len(pasted) > 16 * 1024
    done = manual(client, pasted)
    assert done.status_code == 200, done.text


def test_each_sandbox_counts_its_own_metrics(client: httpx.Client) -> None:
    client.post("/api/v1/sync")
    assert metric(client, "ui_action_dashboard_sync_total", status="success") >= 1
    with Sandbox(services=["hdm"]) as other:
        with httpx.Client(base_url=other.variables["hdm_url"], timeout=10) as fresh:
            assert metric(fresh, "ui_action_dashboard_sync_total", status="success") == 0
            assert metric(fresh, "oauth_transactions_active") == 0
