"""http steps against real loopback servers: every failure has a readable reason."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse
from starlette.routing import Route

from opsconsole.config import Environment
from opsconsole.loader import load_runbook
from opsconsole.run import StepStatus
from opsconsole.sandbox.server import LoopbackServers
from opsconsole.session import open_session


async def html_500(request: Request) -> HTMLResponse:
    return HTMLResponse("<html><body><h1>Internal Server Error</h1></body></html>", status_code=500)


async def plain_200(request: Request) -> PlainTextResponse:
    return PlainTextResponse("OK but not JSON")


async def slow(request: Request) -> JSONResponse:
    await asyncio.sleep(3)
    return JSONResponse({"status": "late"})


async def echo(request: Request) -> JSONResponse:
    return JSONResponse(
        {
            "status": "ok",
            "key_seen": request.headers.get("x-ops-key") is not None,
            "token": request.headers.get("x-ops-key"),
        }
    )


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    app = Starlette(
        routes=[
            Route("/html500", html_500),
            Route("/plain", plain_200),
            Route("/slow", slow),
            Route("/echo", echo),
        ]
    )
    with LoopbackServers() as servers:
        port = servers.serve("failures", app)
        yield f"http://127.0.0.1:{port}"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


RUNBOOK = """\
---
variables: [base_url, closed_url]
secrets: [ops_key]
---
# Failure modes

```ops http
id: closed
url: "{{ closed_url }}/health"
```

```ops http
id: timeout
url: "{{ base_url }}/slow"
timeout: 500ms
```

```ops http
id: html500
url: "{{ base_url }}/html500"
expect:
  json:
    - path: status
      equals: ok
```

```ops http
id: plain
url: "{{ base_url }}/plain"
expect:
  status: 200
  json:
    - path: status
      equals: ok
```

```ops http
id: echo
url: "{{ base_url }}/echo"
headers:
  X-Ops-Key: "{{ secrets.ops_key }}"
expect:
  json:
    - path: key_seen
      equals: true
```
"""


async def walk(tmp_path: Path, base_url: str, monkeypatch: pytest.MonkeyPatch) -> tuple:
    secret = "test-" + __import__("secrets").token_urlsafe(16)
    monkeypatch.setenv("OPSCONSOLE_SECRET_OPS_KEY", secret)
    path = tmp_path / "failures.md"
    path.write_text(RUNBOOK)
    runbook = load_runbook(path)
    env = Environment(
        name="test",
        secrets=["ops_key"],
        variables={"base_url": base_url, "closed_url": f"http://127.0.0.1:{closed_port()}"},
    )
    session = open_session(runbook, env, tmp_path / "home")
    assert await session.start() == []
    results = {}
    try:
        for step in runbook.steps:
            results[step.id] = await session.execute(step.id)
    finally:
        await session.close()
    return session, results, secret


async def test_each_failure_reads_as_what_happened(
    tmp_path: Path, base_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    session, results, secret = await walk(tmp_path, base_url, monkeypatch)
    detail = {step_id: result.detail for step_id, result in results.items()}
    assert results["closed"].status is StepStatus.FAILED
    assert detail["closed"].startswith("connection refused: nothing is listening at 127.0.0.1:")
    assert detail["timeout"].endswith("within 0.5s (total deadline)")
    assert detail["html500"].startswith(
        "expected status 2xx, got 500 Internal Server Error (text/html"
    )
    assert detail["plain"] == "response is not JSON (text/plain; charset=utf-8: OK but not JSON)"
    assert results["echo"].status is StepStatus.PASSED, detail["echo"]

    # the secret went over the wire but never into what we keep
    echoed = results["echo"]
    assert echoed.artifact("request").headers["X-Ops-Key"] == "***"
    assert secret not in echoed.artifact("response").body
    saved = (tmp_path / "home" / "runs" / f"{session.run.id}.json").read_text()
    assert secret not in saved and '"token": "***"' in saved.replace('\\"', '"')


async def test_one_failed_request_does_not_stop_the_next(
    tmp_path: Path, base_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    session, results, _ = await walk(tmp_path, base_url, monkeypatch)
    assert [r.status for r in results.values()].count(StepStatus.FAILED) == 4
    assert session.run.status.value == "completed"
