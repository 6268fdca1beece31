"""The sandbox's real Prometheus: it scrapes every service with ``metrics_path``, gives
``prometheus_url``, says plainly when there is none, and "prometheus-down" makes PromQL
steps inconclusive (never passed) until it is cleared."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from step_support import run_all

from opsconsole.prometheus import ABSENT_NOTE
from opsconsole.run import StepStatus
from opsconsole.sandbox import Sandbox
from opsconsole.sandbox.prometheus_service import PrometheusService
from opsconsole.sandbox.service import SandboxService, ServiceHost
from tests.conftest import require_tool


class ExporterService(SandboxService):
    """A sandbox service with metrics, as HDM and the bot will have."""

    name = "exporter"
    title = "Test exporter"
    variables = ("exporter_url",)
    metrics_path: ClassVar[str | None] = "/metrics"

    def start(self, host: ServiceHost) -> dict[str, str]:
        from prometheus_client import CollectorRegistry, Gauge, generate_latest

        registry = CollectorRegistry()
        Gauge("oauth_transactions_active", "OAuth transactions in flight.",
              registry=registry).set(2)

        async def metrics(request: Request) -> Response:
            return Response(generate_latest(registry), media_type="text/plain; version=0.0.4")

        return {"exporter_url": host.serve("api", Starlette(routes=[Route("/metrics", metrics)]))}


RUNBOOK = """\
---
variables: [prometheus_url]
---
# Monitoring

```ops promql
id: oauth
prometheus: "{{ prometheus_url }}"
query: oauth_transactions_active
success: "< 5"
timeout: 2s
```
"""


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    require_tool("prometheus")
    with Sandbox(services=[PrometheusService, ExporterService]) as running:
        yield running


def wait_for_scrape(url: str) -> None:
    from prometheus_api_client import PrometheusConnect

    client = PrometheusConnect(url)
    for _ in range(300):  # a readiness wait, not a timed assertion
        if client.custom_query("oauth_transactions_active"):
            return
        time.sleep(0.1)
    pytest.fail("the sandbox's Prometheus never scraped the exporter")


async def test_sandbox_prometheus_scrapes_services_and_goes_down_on_a_fault(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    # started after the services it scrapes, whatever order it was named in
    assert [s.name for s in sandbox.services] == ["exporter", "prometheus"]
    url = sandbox.variables["prometheus_url"]
    assert url.startswith("http://127.0.0.1:")
    assert sandbox.notes == [f"Prometheus at {url} scrapes exporter every second."]
    wait_for_scrape(url)
    got = await run_all(tmp_path / "up", RUNBOOK, sandbox.variables)
    assert got["oauth"].status is StepStatus.PASSED, got["oauth"].detail

    sandbox.set_fault("prometheus-down", True)
    got = await run_all(tmp_path / "down", RUNBOOK, sandbox.variables)
    assert got["oauth"].status is StepStatus.INCONCLUSIVE
    assert "unreachable (connection refused)" in got["oauth"].detail

    sandbox.set_fault("prometheus-down", False)
    assert sandbox.variables["prometheus_url"] == url  # back on the same port
    wait_for_scrape(url)
    got = await run_all(tmp_path / "again", RUNBOOK, sandbox.variables)
    assert got["oauth"].status is StepStatus.PASSED, got["oauth"].detail


def test_stopping_the_sandbox_stops_prometheus(tmp_path: Path) -> None:
    require_tool("prometheus")
    from opsconsole.sandbox import prometheus_service

    with Sandbox(services=[ExporterService, PrometheusService]) as running:
        server = next(iter(prometheus_service._SERVERS.values()))  # noqa: SLF001
        assert server._process is not None  # noqa: SLF001
        pgid = server._process.pid  # noqa: SLF001 - the guard leads the process group
        data = server._directory  # noqa: SLF001
        assert running.variables["prometheus_url"]
    with pytest.raises(ProcessLookupError):
        os.killpg(pgid, 0)
    assert data is not None and not data.exists()


async def test_without_a_binary_the_sandbox_says_so_and_promql_has_no_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with Sandbox(services=[ExporterService, PrometheusService]) as running:
        assert running.notes == [ABSENT_NOTE]
        assert running.variables["prometheus_url"] == ""
        running.set_fault("prometheus-down", True)  # nothing to stop: no error either
        got = await run_all(tmp_path, RUNBOOK, running.variables)
    assert got["oauth"].status is StepStatus.INCONCLUSIVE
    assert got["oauth"].detail.startswith("no data: no Prometheus to ask")


def test_prometheus_goes_when_opsconsole_is_killed(tmp_path: Path) -> None:
    """SIGKILL leaves no Prometheus behind: the lifeline guard takes its group down."""
    import signal
    import subprocess
    import sys

    from tests.conftest import REPO

    require_tool("prometheus")
    script = (
        "import sys, time\n"
        "from opsconsole.prometheus import PrometheusServer\n"
        "server = PrometheusServer([]).start()\n"
        "print(server._process.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert child.stdout is not None
        pgid = int(child.stdout.readline())
        os.killpg(pgid, 0)  # running
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        for _ in range(200):  # the guard's grace is 3 s; poll for the group to go
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            pytest.fail("Prometheus outlived the process that started it")
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=10)
        if child.stdout is not None:
            child.stdout.close()
