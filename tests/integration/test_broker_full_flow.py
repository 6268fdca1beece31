"""The bundled broker runbook's "Local Contract Smoke (Full Flow)", as written, in one shell
session against a loopback stub broker: DEVICE_ID, PENDING_TOKEN and SESSION_TOKEN flow from
start through status and finalize to proxy/search (real bash, real curl and jq)."""

from __future__ import annotations

import errno
import json
import secrets
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from opsconsole.config import Environment
from opsconsole.loader import load_runbook
from opsconsole.run import StepStatus
from opsconsole.session import open_session
from tests.conftest import RUNBOOKS, require_tool
from tests.integration.test_shell_session import Scripted

#: the runbook's blocks name this address; the stub must listen there
PORT = 8787


class StubBroker:
    """The broker's device-session contract, just enough of it, with what it saw."""

    def __init__(self, client_token: str) -> None:
        self.client_token = client_token
        self.device_id = "dev-" + secrets.token_hex(4)
        self.pending_token = "pend-" + secrets.token_hex(8)
        self.session_token = "sess-" + secrets.token_urlsafe(16)
        self.seen: list[tuple[str, str]] = []


def make_handler(broker: StubBroker) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            return None

        def reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def handle_any(self) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            broker.seen.append((f"{self.command} {url.path}", url.query + body))
            if url.path != "/v1/discogs/proxy/search" and (
                self.headers.get("x-reklawdbox-broker-token") != broker.client_token
            ):
                return self.reply(401, {"error": "invalid broker client token"})
            if url.path == "/v1/device/session/start" and self.command == "POST":
                return self.reply(200, {
                    "device_id": broker.device_id,
                    "pending_token": broker.pending_token,
                    "auth_url": "http://127.0.0.1:8787/auth",
                    "poll_interval_seconds": 5,
                    "expires_at": "2030-01-01T00:00:00Z",
                })
            pair = (broker.device_id, broker.pending_token)
            if url.path == "/v1/device/session/status":
                query = parse_qs(url.query)
                if (query.get("device_id"), query.get("pending_token")) != ([pair[0]], [pair[1]]):
                    return self.reply(404, {"error": "device session not found"})
                return self.reply(200, {"status": "authorized"})
            if url.path == "/v1/device/session/finalize":
                sent = json.loads(body or "{}")
                if (sent.get("device_id"), sent.get("pending_token")) != pair:
                    return self.reply(404, {"error": "device session not found"})
                return self.reply(200, {"session_token": broker.session_token})
            if url.path == "/v1/discogs/proxy/search":
                if self.headers.get("authorization") != f"Bearer {broker.session_token}":
                    return self.reply(401, {"error": "invalid or expired broker session"})
                return self.reply(200, {"result": {"title": "One More Time"},
                                        "match_quality": "exact", "cache_hit": False})
            return self.reply(404, {"error": "not found"})

        do_GET = do_POST = handle_any

    return Handler


@pytest.fixture
def stub_broker() -> Iterator[StubBroker]:
    broker = StubBroker(secrets.token_urlsafe(18))
    try:
        server = ThreadingHTTPServer(("127.0.0.1", PORT), make_handler(broker))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            pytest.skip(f"127.0.0.1:{PORT} (named by the runbook) is in use by something else")
        raise
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield broker
    finally:
        server.shutdown()
        server.server_close()


async def test_the_full_flow_runs_in_one_session_and_the_tokens_flow(
    tmp_path: Any, stub_broker: StubBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_tool("curl")
    require_tool("jq")
    runbook = load_runbook(RUNBOOKS / "discogs-broker.md")
    section = next(s for s in runbook.sections if s.title == "Local Contract Smoke (Full Flow)")
    # the npm blocks build and serve the real broker; the stub stands in for it
    flow = [
        runbook.step(step_id) for step_id in section.step_ids
        if "BROKER_URL" in getattr(runbook.step(step_id).spec, "run", "")
    ]
    assert len(flow) == 4
    # the runbook's ops steps use the client token as a secret of the environment
    monkeypatch.setenv("OPSCONSOLE_SECRET_BROKER_CLIENT_TOKEN", stub_broker.client_token)
    environment = Environment(name="local", secrets=["broker_client_token"])
    session = open_session(runbook, environment, tmp_path / "state")
    operator = Scripted({"BROKER_CLIENT_TOKEN_IF_ENABLED": stub_broker.client_token})
    try:
        await session.start()
        for step in flow:
            result = await session.execute(step.id, operator=operator)
            assert result.status is StepStatus.PASSED, (step.id, result.detail)
        paths = [path for path, _ in stub_broker.seen]
        assert paths == [
            "POST /v1/device/session/start",
            "GET /v1/device/session/status",
            "POST /v1/device/session/finalize",
            "POST /v1/discogs/proxy/search",
        ]
        # DEVICE_ID and PENDING_TOKEN from the start block reached status and finalize
        assert stub_broker.device_id in stub_broker.seen[1][1]
        assert stub_broker.pending_token in stub_broker.seen[2][1]
        search = next(a.text for a in session.result(flow[-1].id).artifacts if a.type == "output")
        assert json.loads(search)["match_quality"] == "exact"  # the bearer SESSION_TOKEN worked
        # the token the finalize block set is a secret: *** in the pane and the evidence
        variables = dict(
            next(a for a in session.result(flow[-1].id).artifacts if a.type == "keyvalues").items
        )
        assert variables["SESSION_TOKEN"] == "***"
        assert variables["DEVICE_ID"] == stub_broker.device_id
        state = "".join(
            p.read_text(errors="replace") for p in (tmp_path / "state").rglob("*") if p.is_file()
        )
        assert stub_broker.session_token not in state
        assert stub_broker.client_token not in state
        questions = [q for _, q in operator.asked if q.key.startswith("placeholder.")]
        assert len(questions) == 1 and getattr(questions[0], "secret", False)
    finally:
        await session.close()
