"""The sandbox's V2 control plane and runner (source runbook 004) over real loopback HTTP.

Every status code, header and message asserted here is one the runbook
documents; the operator's curl commands and grep checks must behave as written.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError

from opsconsole.sandbox import FAULTS, Sandbox, SandboxKeyring
from opsconsole.sandbox.registry import SERVICES
from opsconsole.sandbox.v2 import SLOW_RESPONSE_SECONDS

REPO_ROOT = Path(__file__).resolve().parents[2]
PREFIXES = ("/api/v1/ops", "/api/ops")
DEFAULT_ALLOWLIST = ("nearsight_collect_refresh", "captorator_compose", "metrics_refresh")
LEAK_PATTERN = re.compile(r"token|url|key", re.IGNORECASE)
V2_VARIABLES = (
    "APP_ENV",
    "DATABASE_URL",
    "SECRET_KEY",
    "OPS_API_KEY",
    "RUNNER_URL",
    "RUNNER_TOKEN_OUTBOUND",
    "RUNNER_TOKEN",
    "RUNNER_ALLOWLIST",
    "PORT",
    "NEARSIGHT_ENABLED",
    "CAPTORATOR_ENABLED",
    "JOBS_ENABLED",
    "NOTION_ENABLED",
    "RUNNER_ENABLED",
    "FEATURE_METRICS",
)
POSTGRES_URL = "postgresql://opsconsole@127.0.0.1:5432/opsconsole_test"


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(job_seconds=0.15) as running:
        yield running


@pytest.fixture
def client(sandbox: Sandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.variables["base_url"], timeout=10) as http:
        yield http


@pytest.fixture
def runner(sandbox: Sandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.variables["runner_url"], timeout=10) as http:
        yield http


@pytest.fixture
def ops_headers(sandbox: Sandbox) -> dict[str, str]:
    return {"X-Ops-Key": sandbox.secret_values["ops_key"]}


@contextlib.contextmanager
def fault(sandbox: Sandbox, name: str) -> Iterator[None]:
    sandbox.set_fault(name, True)
    try:
        yield
    finally:
        sandbox.set_fault(name, False)


def wait_for_job(
    client: httpx.Client, headers: dict[str, str], job_id: str, *, timeout: float = 5.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = client.get(f"/api/v1/ops/jobs/{job_id}", headers=headers).json()
        if job["status"] in ("succeeded", "failed") or time.monotonic() > deadline:
            return job
        time.sleep(0.05)  # the runner finishes a job in job_seconds; poll, don't spin


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def refuses_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return False
    except ConnectionRefusedError:
        return True


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def service_env(**variables: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name not in V2_VARIABLES}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.update(variables)
    return env


def run_service(service: str, **variables: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "opsconsole.sandbox", "serve", service, "--port", str(free_port())],
        env=service_env(**variables),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=15,
    )


# --------------------------------------------------------------------------- auth


@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize("presented", [None, "not-the-key"], ids=["missing", "wrong"])
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/jobs"),
        ("POST", "/jobs"),
        ("GET", "/jobs/00000000-0000-0000-0000-000000000000"),
        ("POST", "/trigger_runner"),
        ("GET", "/debug/env"),
    ],
)
def test_every_ops_route_needs_the_ops_key(
    client: httpx.Client, prefix: str, presented: str | None, method: str, path: str
) -> None:
    headers = {} if presented is None else {"X-Ops-Key": presented}
    body = {"job_type": "test_job", "payload": {}} if method == "POST" else None
    response = client.request(method, prefix + path, headers=headers, json=body)
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid or missing X-Ops-Key"}


def test_rejected_request_creates_no_job(client: httpx.Client, ops_headers: dict[str, str]) -> None:
    before = client.get("/api/ops/debug/env", headers=ops_headers).json()["jobs"]["total"]
    client.post("/api/ops/jobs", json={"job_type": "test_job"})
    client.post("/api/ops/trigger_runner", json={"job_type": "metrics_refresh"})
    after = client.get("/api/ops/debug/env", headers=ops_headers).json()["jobs"]["total"]
    assert after == before


# --------------------------------------------------------------------------- jobs


@pytest.mark.parametrize("prefix", PREFIXES)
def test_create_job_is_queued_and_reads_back(
    client: httpx.Client, ops_headers: dict[str, str], prefix: str
) -> None:
    created = client.post(
        f"{prefix}/jobs",
        headers=ops_headers,
        json={"job_type": "test_job", "payload": {"test": True}},
    )
    assert created.status_code == 201
    job = created.json()
    assert set(job) == {
        "id", "job_type", "status", "payload", "created_at", "updated_at", "result", "error"
    }  # fmt: skip
    assert job["job_type"] == "test_job"
    assert job["status"] == "queued"
    assert job["payload"] == {"test": True}
    assert job["result"] is None and job["error"] is None

    for reader in PREFIXES:
        read = client.get(f"{reader}/jobs/{job['id']}", headers=ops_headers)
        assert read.status_code == 200
        assert read.json()["status"] == "queued"
        assert [event["status"] for event in read.json()["events"]] == ["queued"]


def test_list_is_newest_first_and_limited(
    client: httpx.Client, ops_headers: dict[str, str]
) -> None:
    ids = [
        client.post("/api/ops/jobs", headers=ops_headers, json={"job_type": f"list_{n}"}).json()[
            "id"
        ]
        for n in range(3)
    ]
    listed = client.get("/api/v1/ops/jobs", headers=ops_headers, params={"limit": 2})
    assert listed.status_code == 200
    assert [job["id"] for job in listed.json()["jobs"]] == ids[::-1][:2]
    assert len(client.get("/api/ops/jobs", headers=ops_headers).json()["jobs"]) <= 20
    bad = client.get("/api/ops/jobs", headers=ops_headers, params={"limit": "lots"})
    assert bad.status_code == 422


def test_unknown_job_is_404(client: httpx.Client, ops_headers: dict[str, str]) -> None:
    response = client.get("/api/v1/ops/jobs/no-such-job", headers=ops_headers)
    assert response.status_code == 404
    assert response.json() == {"detail": "Job not found"}


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        (b"not json", "JSON"),
        (b'["job_type"]', "JSON object"),
        (b'{"payload": {}}', "job_type"),
        (b'{"job_type": ""}', "job_type"),
        (b'{"job_type": "x", "payload": [1]}', "payload"),
    ],
)
def test_bad_job_body_is_422_with_a_reason(
    client: httpx.Client, ops_headers: dict[str, str], content: bytes, complaint: str
) -> None:
    for path in ("/api/v1/ops/jobs", "/api/v1/ops/trigger_runner"):
        response = client.post(
            path, headers={**ops_headers, "Content-Type": "application/json"}, content=content
        )
        assert response.status_code == 422
        assert complaint in response.json()["detail"]


def test_unknown_path_answers_json(client: httpx.Client) -> None:
    response = client.get("/api/v2/nothing")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}


# --------------------------------------------------------------------------- runner


@pytest.mark.parametrize("job_type", DEFAULT_ALLOWLIST)
def test_trigger_runner_walks_queued_running_succeeded(
    client: httpx.Client, ops_headers: dict[str, str], job_type: str
) -> None:
    triggered = client.post(
        "/api/v1/ops/trigger_runner",
        headers=ops_headers,
        json={"job_type": job_type, "payload": {}},
    )
    assert triggered.status_code == 202
    accepted = triggered.json()
    assert accepted["job_type"] == job_type
    assert accepted["status"] == "running"

    job = wait_for_job(client, ops_headers, accepted["job_id"])
    assert job["status"] == "succeeded"
    assert [event["status"] for event in job["events"]] == ["queued", "running", "succeeded"]
    assert job["result"]["job_type"] == job_type
    assert job["result"]["items_processed"] == 42
    assert job["error"] is None


def test_trigger_runner_with_type_outside_allowlist_is_403(
    client: httpx.Client, ops_headers: dict[str, str]
) -> None:
    response = client.post(
        "/api/ops/trigger_runner", headers=ops_headers, json={"job_type": "test_job"}
    )
    assert response.status_code == 403
    body = response.json()
    assert body["detail"] == "Job type 'test_job' is not in RUNNER_ALLOWLIST"
    job = client.get(f"/api/ops/jobs/{body['job_id']}", headers=ops_headers).json()
    assert job["status"] == "failed"
    assert [event["status"] for event in job["events"]] == ["queued", "failed"]


@pytest.mark.parametrize("presented", [None, "not-the-token"], ids=["missing", "wrong"])
def test_runner_rejects_missing_or_wrong_token(runner: httpx.Client, presented: str | None) -> None:
    headers = {} if presented is None else {"X-Runner-Token": presented}
    response = runner.post("/jobs", headers=headers, json={"job_type": "metrics_refresh"})
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid or missing X-Runner-Token"}


def test_runner_refuses_job_type_outside_allowlist(sandbox: Sandbox, runner: httpx.Client) -> None:
    response = runner.post(
        "/jobs",
        headers={"X-Runner-Token": sandbox.secret_values["runner_token"]},
        json={"job_type": "drop_database", "payload": {}},
    )
    assert response.status_code == 403
    assert response.json() == {"detail": "Job type 'drop_database' is not in RUNNER_ALLOWLIST"}


@pytest.mark.parametrize("job_type", DEFAULT_ALLOWLIST)
def test_runner_accepts_allowlisted_job_into_the_shared_store(
    sandbox: Sandbox,
    runner: httpx.Client,
    client: httpx.Client,
    ops_headers: dict[str, str],
    job_type: str,
) -> None:
    response = runner.post(
        "/jobs",
        headers={"X-Runner-Token": sandbox.secret_values["runner_token"]},
        json={"job_type": job_type, "payload": {"direct": True}},
    )
    assert response.status_code == 202
    assert response.json()["status"] == "running"
    # Both services write the same ops_jobs: the control plane sees the runner's job.
    job = wait_for_job(client, ops_headers, response.json()["job_id"])
    assert job["status"] == "succeeded"
    assert job["payload"] == {"direct": True}


# --------------------------------------------------------------------------- faults


def test_unknown_fault_names_the_valid_ones(sandbox: Sandbox) -> None:
    with pytest.raises(ValueError, match="runner-down") as raised:
        Sandbox(faults=["disk-full"])
    assert "disk-full" in str(raised.value)
    with pytest.raises(ValueError, match="job-fails"):
        sandbox.set_fault("disk-full", True)
    v2 = {"runner-down", "runner-rejects-token", "job-fails", "debug-leaks-token",
          "slow-control-plane"}  # fmt: skip
    assert v2 <= set(FAULTS)
    # every registered service's faults, and nothing else
    assert set(FAULTS) == {fault.name for service in SERVICES for fault in service.faults}


def test_runner_down_is_502_unreachable_until_cleared(
    sandbox: Sandbox, client: httpx.Client, ops_headers: dict[str, str]
) -> None:
    runner_url = sandbox.variables["runner_url"]
    with fault(sandbox, "runner-down"):
        assert sandbox.active_faults == {"runner-down"}
        assert refuses_connections(port_of(runner_url))
        response = client.post(
            "/api/v1/ops/trigger_runner", headers=ops_headers, json={"job_type": "metrics_refresh"}
        )
        assert response.status_code == 502
        assert response.json()["detail"] == "Runner unreachable"
        job = client.get(f"/api/ops/jobs/{response.json()['job_id']}", headers=ops_headers).json()
        assert job["status"] == "failed"
        assert job["error"] == "Runner unreachable"

    assert sandbox.active_faults == frozenset()
    assert httpx.get(f"{runner_url}/health", timeout=5).json() == {"status": "ok"}
    response = client.post(
        "/api/v1/ops/trigger_runner", headers=ops_headers, json={"job_type": "metrics_refresh"}
    )
    assert response.status_code == 202


def test_runner_down_from_the_start_then_restored() -> None:
    with Sandbox(faults=["runner-down"], job_seconds=0.05) as down:
        runner_port = port_of(down.variables["runner_url"])
        assert refuses_connections(runner_port)
        down.set_fault("runner-down", False)
        assert httpx.get(f"{down.variables['runner_url']}/health", timeout=5).status_code == 200


def test_rotated_runner_token_is_a_502_and_a_failed_job(
    sandbox: Sandbox, client: httpx.Client, runner: httpx.Client, ops_headers: dict[str, str]
) -> None:
    with fault(sandbox, "runner-rejects-token"):
        response = client.post(
            "/api/ops/trigger_runner", headers=ops_headers, json={"job_type": "metrics_refresh"}
        )
        assert response.status_code == 502
        assert response.json()["detail"] == "Runner rejected the request (401 Unauthorized)"
        job = client.get(f"/api/ops/jobs/{response.json()['job_id']}", headers=ops_headers).json()
        assert job["status"] == "failed"
        assert job["error"] == "Runner rejected the token (401)"

        direct = runner.post(
            "/jobs",
            headers={"X-Runner-Token": sandbox.secret_values["runner_token"]},
            json={"job_type": "metrics_refresh"},
        )
        assert direct.status_code == 401


def test_job_fails_fault_ends_in_failed_with_the_error(
    sandbox: Sandbox, client: httpx.Client, ops_headers: dict[str, str]
) -> None:
    with fault(sandbox, "job-fails"):
        response = client.post(
            "/api/ops/trigger_runner", headers=ops_headers, json={"job_type": "metrics_refresh"}
        )
        assert response.status_code == 202
        job = wait_for_job(client, ops_headers, response.json()["job_id"])
    assert job["status"] == "failed"
    assert job["error"] == "metrics_refresh failed: upstream returned 503"
    assert job["result"] is None
    assert [event["status"] for event in job["events"]] == ["queued", "running", "failed"]


def test_debug_env_passes_the_secret_leakage_grep(
    sandbox: Sandbox, client: httpx.Client, ops_headers: dict[str, str]
) -> None:
    for prefix in PREFIXES:
        response = client.get(f"{prefix}/debug/env", headers=ops_headers)
        assert response.status_code == 200
        assert LEAK_PATTERN.search(response.text) is None, response.text
        for secret in sandbox.secret_values.values():
            assert secret not in response.text
        assert sandbox.variables["runner_url"] not in response.text
        assert response.json()["database"] == "postgresql"
        assert response.json()["features"]["JOBS_ENABLED"] is True


def test_debug_leaks_token_fault_is_caught_by_the_grep(
    sandbox: Sandbox, client: httpx.Client, ops_headers: dict[str, str]
) -> None:
    with fault(sandbox, "debug-leaks-token"):
        response = client.get("/api/v1/ops/debug/env", headers=ops_headers)
    assert LEAK_PATTERN.search(response.text) is not None
    assert sandbox.secret_values["runner_token"] in response.text


def test_no_ops_response_leaks_a_secret_or_the_runner_url(
    sandbox: Sandbox, client: httpx.Client, ops_headers: dict[str, str]
) -> None:
    bodies = [
        client.get("/api/ops/jobs").text,
        client.post("/api/ops/jobs", headers=ops_headers, json={"job_type": "t"}).text,
        client.get("/api/ops/jobs", headers=ops_headers).text,
        client.post(
            "/api/ops/trigger_runner", headers=ops_headers, json={"job_type": "metrics_refresh"}
        ).text,
        client.post("/api/ops/trigger_runner", headers=ops_headers, json={"job_type": "t"}).text,
    ]
    for name in ("runner-down", "runner-rejects-token"):
        with fault(sandbox, name):
            triggered = client.post(
                "/api/ops/trigger_runner", headers=ops_headers, json={"job_type": "metrics_refresh"}
            )
            bodies += [
                triggered.text,
                client.get(f"/api/ops/jobs/{triggered.json()['job_id']}", headers=ops_headers).text,
            ]
    forbidden = [*sandbox.secret_values.values(), sandbox.variables["runner_url"]]
    for body in bodies:
        assert not [value for value in forbidden if value in body], body


def test_slow_control_plane_delays_every_response(sandbox: Sandbox) -> None:
    # What an operator's client sees: with a read timeout of half the fault's delay the
    # control plane never answers while the fault is on, the runner is not affected, and the
    # control plane answers again once the fault is cleared. (Durations belong in
    # benchmarks/; here the client's own timeout is the observable.)
    patience = SLOW_RESPONSE_SECONDS / 2
    base, runner_url = sandbox.variables["base_url"], sandbox.variables["runner_url"]
    with httpx.Client(timeout=patience) as http:
        with fault(sandbox, "slow-control-plane"):
            with pytest.raises(httpx.ReadTimeout):
                http.get(f"{base}/api/ops/jobs")
            assert http.get(f"{runner_url}/health").status_code == 200
        assert http.get(f"{base}/api/ops/jobs").status_code == 401


# ---------------------------------------------------------------- config, keyring, lifecycle


def test_config_is_the_engine_schema(sandbox: Sandbox) -> None:
    document = tomllib.loads(sandbox.config_path.read_text(encoding="utf-8"))
    assert list(document) == ["environments"]
    assert list(document["environments"]) == ["sandbox", "sandbox-prod"]
    for name, protected in (("sandbox", False), ("sandbox-prod", True)):
        environment = document["environments"][name]
        assert set(environment) == {"description", "protected", "secrets", "variables"}
        assert environment["protected"] is protected
        assert environment["secrets"][:2] == ["ops_key", "runner_token"]
        assert set(environment["secrets"]) == {
            name for service in sandbox.services for name in service.secrets
        }
        assert environment["variables"] == sandbox.variables
    assert {
        "base_url", "runner_url", "database_url", "control_plane_cmd", "runner_cmd",
        "prometheus_url",
    } <= set(sandbox.variables)  # fmt: skip
    assert set(sandbox.variables) == {
        name for service in sandbox.services for name in service.variables
    }
    assert sandbox.variables["base_url"].startswith("http://127.0.0.1:")
    assert sys.executable in sandbox.variables["control_plane_cmd"]
    text = sandbox.config_path.read_text(encoding="utf-8")
    for secret in sandbox.secret_values.values():
        assert secret not in text

    from opsconsole.config import load_config

    config = load_config(sandbox.config_path)
    assert config.environment("sandbox-prod").protected is True
    assert config.environment("sandbox").variables == sandbox.variables


def test_the_command_variable_fails_fast_as_the_runbook_runs_it(sandbox: Sandbox) -> None:
    result = subprocess.run(
        f'APP_ENV=prod DATABASE_URL="" {sandbox.variables["control_plane_cmd"]}',
        shell=True,
        env=service_env(),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=15,
    )
    assert result.returncode == 78
    assert "ValidationError" in result.stderr
    assert "DATABASE_URL" in result.stderr


def test_install_keyring_serves_the_secrets_and_stop_restores() -> None:
    previous = keyring.get_keyring()
    box = Sandbox().start()
    try:
        box.install_keyring()
        for environment in ("sandbox", "sandbox-prod"):
            for name, value in box.secret_values.items():
                assert keyring.get_password(f"opsconsole:{environment}", name) == value
        assert isinstance(keyring.get_keyring(), SandboxKeyring)
    finally:
        box.stop()
    assert keyring.get_keyring() is previous


def test_sandbox_keyring_stays_out_of_discovery() -> None:
    assert SandboxKeyring not in set(KeyringBackend.get_viable_backends())
    ring = SandboxKeyring()
    assert ring.priority >= 1
    ring.set_password("opsconsole:sandbox", "ops_key", "value-1")
    assert ring.get_password("opsconsole:sandbox", "ops_key") == "value-1"
    ring.delete_password("opsconsole:sandbox", "ops_key")
    assert ring.get_password("opsconsole:sandbox", "ops_key") is None
    with pytest.raises(PasswordDeleteError):
        ring.delete_password("opsconsole:sandbox", "ops_key")


def test_stop_leaves_nothing_running() -> None:
    threads_before = set(threading.enumerate())
    box = Sandbox()
    assert box.start() is box.start()  # a second start is a no-op, not a second set of servers
    ports = [port_of(box.variables["base_url"]), port_of(box.variables["runner_url"])]
    temp_dir = box.config_path.parent
    secrets_before = dict(box.secret_values)
    assert all(not refuses_connections(port) for port in ports)
    box.stop()
    box.stop()
    assert all(refuses_connections(port) for port in ports)
    assert not temp_dir.exists()
    assert set(threading.enumerate()) <= threads_before
    with Sandbox() as again:
        assert again.secret_values != secrets_before


# --------------------------------------------------------------------------- fail-fast startup


@pytest.mark.parametrize(
    ("service", "variables", "expected"),
    [
        (
            "control-plane",
            {"APP_ENV": "prod", "DATABASE_URL": ""},
            ["DATABASE_URL", "SECRET_KEY", "OPS_API_KEY"],
        ),
        (
            "control-plane",
            {"DATABASE_URL": "sqlite:///test.db", "SECRET_KEY": "s3cret-value"},
            ["DATABASE_URL", "ValueError", "DATABASE_URL must point to PostgreSQL (got sqlite)"],
        ),
        (
            "control-plane",
            {"APP_ENV": "prod", "DATABASE_URL": POSTGRES_URL, "SECRET_KEY": "s3cret-value"},
            ["OPS_API_KEY"],
        ),
        ("runner", {"DATABASE_URL": "", "RUNNER_TOKEN": ""}, ["DATABASE_URL", "RUNNER_TOKEN"]),
        ("runner", {"DATABASE_URL": POSTGRES_URL, "RUNNER_TOKEN": ""}, ["RUNNER_TOKEN"]),
    ],
    ids=[
        "cp-empty-db-prod",
        "cp-sqlite",
        "cp-prod-without-ops-key",
        "runner-empty",
        "runner-token",
    ],
)
def test_bad_settings_fail_fast_with_ex_config(
    service: str, variables: dict[str, str], expected: list[str]
) -> None:
    result = run_service(service, **variables)  # bounded: a hang fails on its timeout
    assert result.returncode == 78, result.stderr
    assert "ValidationError" in result.stderr
    for text in expected:
        assert text in result.stderr
    assert "Traceback" not in result.stderr
    assert "s3cret-value" not in result.stderr
    assert result.stdout == ""


def test_settings_error_never_echoes_the_database_url() -> None:
    password = secrets.token_urlsafe(12)
    result = run_service(
        "runner", DATABASE_URL=f"mysql://ops:{password}@db/ops", RUNNER_TOKEN="t0ken-value"
    )
    assert result.returncode == 78
    assert "DATABASE_URL must point to PostgreSQL (got mysql)" in result.stderr
    assert password not in result.stderr
    assert "t0ken-value" not in result.stderr


@contextlib.contextmanager
def serving(service: str, **variables: str) -> Iterator[str]:
    port = free_port()
    with subprocess.Popen(
        [sys.executable, "-m", "opsconsole.sandbox", "serve", service],
        env=service_env(PORT=str(port), **variables),
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            deadline = time.monotonic() + 15
            while refuses_connections(port):
                assert process.poll() is None, process.communicate()[1]
                assert time.monotonic() < deadline, "the service did not start listening"
                time.sleep(0.05)  # waiting for another process to bind its port
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            process.communicate(timeout=10)
    assert refuses_connections(port)


def test_control_plane_with_valid_settings_serves_until_stopped() -> None:
    ops_key = secrets.token_urlsafe(16)
    with (
        serving(
            "control-plane", DATABASE_URL=POSTGRES_URL, SECRET_KEY="a-secret", OPS_API_KEY=ops_key
        ) as base_url,
        httpx.Client(base_url=base_url, timeout=5) as http,
    ):
        assert http.get("/api/v1/ops/jobs").status_code == 401
        # "Default: all features disabled"
        jobs = http.get("/api/v1/ops/jobs", headers={"X-Ops-Key": ops_key})
        assert jobs.status_code == 404
        assert jobs.json() == {"detail": "Feature disabled: JOBS_ENABLED"}
        trigger = http.post(
            "/api/ops/trigger_runner",
            headers={"X-Ops-Key": ops_key},
            json={"job_type": "metrics_refresh"},
        )
        assert trigger.json() == {"detail": "Feature disabled: RUNNER_ENABLED"}
        report = http.get("/api/ops/debug/env", headers={"X-Ops-Key": ops_key})
        assert report.status_code == 200
        assert report.json()["features"] == dict.fromkeys(
            [
                "NEARSIGHT_ENABLED",
                "CAPTORATOR_ENABLED",
                "JOBS_ENABLED",
                "NOTION_ENABLED",
                "RUNNER_ENABLED",
                "FEATURE_METRICS",
            ],
            False,
        )


def test_runner_with_valid_settings_serves_its_allowlist() -> None:
    token = secrets.token_urlsafe(16)
    with (
        serving(
            "runner",
            DATABASE_URL=POSTGRES_URL,
            RUNNER_TOKEN=token,
            RUNNER_ALLOWLIST="metrics_refresh, custom_job",
        ) as base_url,
        httpx.Client(base_url=base_url, timeout=5) as http,
    ):
        headers = {"X-Runner-Token": token}
        accepted = http.post("/jobs", headers=headers, json={"job_type": "custom_job"})
        assert accepted.status_code == 202
        refused = http.post("/jobs", headers=headers, json={"job_type": "captorator_compose"})
        assert refused.status_code == 403
        assert json.loads(refused.text)["detail"] == (
            "Job type 'captorator_compose' is not in RUNNER_ALLOWLIST"
        )
