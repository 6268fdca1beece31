"""Clients come from the session: per-environment settings, injectable transports."""

from __future__ import annotations

import socket
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from opsconsole.clients import Clients
from opsconsole.config import ConfigError, load_config
from opsconsole.loader import load_runbook
from opsconsole.run import StepStatus
from opsconsole.sandbox.server import LoopbackServers
from opsconsole.session import open_session

RUNBOOK = textwrap.dedent("""\
    ---
    variables: [base_url]
    ---
    # Ping

    ```ops http
    id: ping
    url: "{{ base_url }}/ping"
    expect:
      json:
        - path: seen_by
          equals: app
    ```
""")


async def ping(request: Request) -> JSONResponse:
    return JSONResponse({"seen_by": "app", "path": request.url.path})


APP = Starlette(routes=[Route("/ping", ping)])


@pytest.fixture
def served() -> Iterator[str]:
    with LoopbackServers() as servers:
        yield f"http://127.0.0.1:{servers.serve('app', APP)}"


class RecordingProxy:
    """A loopback HTTP proxy that answers every request itself and remembers the targets."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.targets: list[str] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                self.targets.append(data.split(b"\r\n", 1)[0].decode())
                body = b'{"seen_by": "proxy"}'
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body)
                )

    def close(self) -> None:
        self.sock.close()


def write(tmp_path: Path, config: str) -> tuple[Path, Path]:
    runbook = tmp_path / "ping.md"
    runbook.write_text(RUNBOOK, encoding="utf-8")
    path = tmp_path / "config.toml"
    path.write_text(config, encoding="utf-8")
    return runbook, path


async def run_ping(tmp_path: Path, config: Path, runbook: Path, clients: Clients | None = None):
    environment = load_config(config).environment("lab")
    session = open_session(load_runbook(runbook), environment, tmp_path / "state",
                           clients=clients)
    await session.start()
    try:
        return await session.execute("ping")
    finally:
        await session.close()


async def test_a_transport_can_be_passed_in(tmp_path: Path) -> None:
    runbook, config = write(
        tmp_path, '[environments.lab.variables]\nbase_url = "http://app.test"\n'
    )
    clients = Clients(http_transport=httpx.ASGITransport(app=APP))
    result = await run_ping(tmp_path, config, runbook, clients)
    assert result.status is StepStatus.PASSED, result.detail
    assert result.artifact("response").document == {"seen_by": "app", "path": "/ping"}


async def test_the_process_proxy_variables_are_never_used(
    tmp_path: Path, served: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = RecordingProxy()
    try:
        for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY"):
            monkeypatch.setenv(name, f"http://127.0.0.1:{proxy.port}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        runbook, config = write(tmp_path, f'[environments.lab.variables]\nbase_url = "{served}"\n')
        result = await run_ping(tmp_path, config, runbook)
    finally:
        proxy.close()
    assert result.status is StepStatus.PASSED, result.detail
    assert proxy.targets == []


async def test_the_environment_proxy_is_used(tmp_path: Path, served: str) -> None:
    proxy = RecordingProxy()
    try:
        runbook, config = write(
            tmp_path,
            textwrap.dedent(f"""\
                [environments.lab.variables]
                base_url = "{served}"
                [environments.lab.http]
                proxy = "http://127.0.0.1:{proxy.port}"
                connect_timeout = 2
            """),
        )
        result = await run_ping(tmp_path, config, runbook)
    finally:
        proxy.close()
    assert proxy.targets == [f"GET {served}/ping HTTP/1.1"]
    assert result.status is StepStatus.FAILED  # the proxy, not the app, answered
    assert result.detail == "seen_by expected app, got proxy"


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('verify = ""', "verify: expected true, false or a CA bundle path"),
        ('proxy = "ftp://proxy"', "proxy: expected a proxy URL"),
        ("connect_timeout = 0", "connect_timeout: expected seconds between 0 and 300"),
        ("retries = 3", "unknown setting 'retries'"),
    ],
)
def test_http_settings_are_checked(tmp_path: Path, table: str, message: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f"[environments.lab.http]\n{table}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_config(path)
