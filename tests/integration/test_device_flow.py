"""The device_flow step against real loopback servers, its polling rules on a clock that
never waits: first poll after the interval, slow_down +5 s for every later poll, no poll
after the code expires, never two polls at once, distinct stops in the runbook's words."""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from opsconsole.config import Environment
from opsconsole.loader import load_runbook
from opsconsole.model import Step
from opsconsole.operator import ApproveInBrowser, Event, NoAnswer, Note, Question, Reply
from opsconsole.run import StepResult, StepStatus
from opsconsole.sandbox.server import LoopbackServers
from opsconsole.session import RunSession, open_session


class FakeClock:
    """Time moves only when the step sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


@dataclass
class Script:
    """What the scripted RFC 8628 server answers, and what it saw."""

    clock: FakeClock
    answers: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    start: dict[str, Any] = field(default_factory=dict)
    #: clock times of every poll, relative to the start request
    polls: list[float] = field(default_factory=list)
    started_at: float = 0.0
    starts: int = 0
    in_flight: int = 0
    most_in_flight: int = 0
    token: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def device_authorization(self, request: Request) -> Response:
        self.starts += 1
        self.started_at = self.clock.now
        body = {
            "device_code": secrets.token_urlsafe(24),
            "user_code": "WDJB-MJHT",
            "verification_uri": "https://example.test/device",
            "verification_uri_complete": "https://example.test/device?user_code=WDJB-MJHT",
            "expires_in": 600,
            "interval": 2,
        }
        body.update(self.start)
        return JSONResponse({k: v for k, v in body.items() if v is not None})

    async def token_endpoint(self, request: Request) -> Response:
        with self.lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            form = (await request.body()).decode()
            assert "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code" in form
            self.polls.append(round(self.clock.now - self.started_at, 3))
            await asyncio.sleep(0.01)  # a slow answer: a second poll now would overlap
            status, body = self.answers.pop(0) if self.answers else (
                400, {"error": "authorization_pending"})
            if status == 200 and body.get("access_token") == "TOKEN":
                body = {**body, "access_token": self.token}
            return JSONResponse(body, status_code=status)
        finally:
            with self.lock:
                self.in_flight -= 1


PENDING = (400, {"error": "authorization_pending"})
SLOW_DOWN = (400, {"error": "slow_down"})
GRANTED = (200, {"access_token": "TOKEN", "token_type": "Bearer", "expires_in": 3600})


@pytest.fixture
def script() -> Iterator[Script]:
    scripted = Script(FakeClock(), token="tok-" + secrets.token_urlsafe(24))
    app = Starlette(routes=[
        Route("/device_authorization", scripted.device_authorization, methods=["POST"]),
        Route("/token", scripted.token_endpoint, methods=["POST"]),
    ])
    with LoopbackServers() as servers:
        port = servers.serve("rfc8628", app)
        scripted.start["_base"] = None
        scripted.base = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
        yield scripted


def runbook_text(messages: str = "") -> str:
    return f"""\
---
variables: [auth_url]
---
# Device flow

```ops device_flow
id: sign-in
start:
  url: "{{{{ auth_url }}}}/device_authorization"
  method: POST
  form:
    client_id: opsconsole
poll:
  url: "{{{{ auth_url }}}}/token"
  form:
    grant_type: urn:ietf:params:oauth:grant-type:device_code
    device_code: "{{{{ secrets.device_code }}}}"
    client_id: opsconsole
secret: access_token
{messages}
```
"""


class WaitingOperator:
    """A console with the approval dialog open: never answers unless told to restart."""

    def __init__(self, replies: list[str] | None = None) -> None:
        self.replies = list(replies or [])
        self.questions: list[ApproveInBrowser] = []
        self.events: list[Event] = []

    async def ask(self, step: Step, question: Question) -> Reply:
        assert isinstance(question, ApproveInBrowser)
        self.questions.append(question)
        if self.replies:
            return Reply(self.replies.pop(0))
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    def event(self, step: Step, event: Event) -> None:
        self.events.append(event)


async def run_flow(
    tmp_path: Path, script: Script, operator: Any = None, messages: str = ""
) -> tuple[StepResult, RunSession, Any]:
    path = tmp_path / "flow.md"
    path.write_text(runbook_text(messages))
    runbook = load_runbook(path)
    env = Environment(name="test", variables={"auth_url": script.base})  # type: ignore[attr-defined]
    session = open_session(runbook, env, tmp_path / "home")
    session.clock = script.clock
    operator = operator or WaitingOperator()
    try:
        assert await session.start() == []
        result = await session.execute("sign-in", operator=operator)
    finally:
        await session.close()
    return result, session, operator


async def test_first_poll_waits_the_interval_and_slow_down_adds_five_seconds(
    tmp_path: Path, script: Script
) -> None:
    script.answers = [PENDING, SLOW_DOWN, SLOW_DOWN, PENDING, GRANTED]
    result, session, operator = await run_flow(tmp_path, script)
    assert result.status is StepStatus.PASSED, result.detail
    # interval 2: first poll at 2 (not at once), then 4; slow_down → 7 s, then → 12 s
    assert script.polls == [2, 4, 11, 23, 35]
    assert script.most_in_flight == 1
    assert "authorized after 5 poll(s)" in result.detail
    assert session.secrets.cached("access_token").reveal() == script.token
    question = operator.questions[0]
    assert question.user_code == "WDJB-MJHT"
    assert question.verification_uri == "https://example.test/device"
    assert question.url.endswith("?user_code=WDJB-MJHT")


async def test_without_an_interval_the_first_poll_waits_five_seconds(
    tmp_path: Path, script: Script
) -> None:
    script.start["interval"] = None
    script.answers = [PENDING, GRANTED]
    result, _, _ = await run_flow(tmp_path, script)
    assert result.status is StepStatus.PASSED, result.detail
    assert script.polls == [5, 10]


async def test_no_poll_is_sent_after_the_code_expires(tmp_path: Path, script: Script) -> None:
    script.start.update(expires_in=12, interval=5)
    result, _, _ = await run_flow(tmp_path, script)
    assert script.polls == [5, 10]  # the next one (15 s) would be after the expiry (12 s)
    assert result.status is StepStatus.FAILED
    assert result.detail.startswith("the code expired before it was approved")
    assert script.clock.now - script.started_at <= 12


async def test_repeated_slow_down_is_reported_as_clock_drift(
    tmp_path: Path, script: Script
) -> None:
    script.start.update(expires_in=60, interval=1)
    script.answers = [SLOW_DOWN] * 10
    result, _, operator = await run_flow(tmp_path, script)
    assert script.polls == [1, 7, 18, 34, 55]  # +6, +11, +16, +21; the next (81 s) is late
    assert result.status is StepStatus.FAILED
    assert "clocks of this host and the server likely drift apart" in result.detail
    notes = [e.text for e in operator.events if isinstance(e, Note)]
    assert any("likely drift" in note for note in notes)


MESSAGES = """\
messages:
  denied: "Sign-in refused by the approver"
  expired: "Code ran out: start a new device session"
  not_found: "Session gone: restart at the start endpoint"
"""


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        ((400, {"error": "access_denied"}), "Sign-in refused by the approver (400 access_denied)"),
        ((400, {"error": "expired_token"}), "Code ran out: start a new device session "
                                            "(400 expired_token)"),
        ((410, {"error": "gone"}), "Code ran out: start a new device session (410 gone)"),
        ((404, {"message": "no such session"}), "Session gone: restart at the start endpoint "
                                                "(404 no such session)"),
        ((401, {"error": "invalid_client", "error_description": "bad client"}),
         "poll refused: 401 bad client"),
    ],
)
async def test_each_stop_has_its_own_message_in_the_runbooks_words(
    tmp_path: Path, script: Script, answer: tuple[int, dict[str, Any]], words: str
) -> None:
    script.answers = [PENDING, answer, GRANTED]
    result, _, _ = await run_flow(tmp_path, script, messages=MESSAGES)
    assert result.status is StepStatus.FAILED
    assert result.detail == words
    assert script.polls == [2, 4]  # polling stopped there


async def test_restart_asks_for_a_new_code(tmp_path: Path, script: Script) -> None:
    script.answers = [PENDING, PENDING, GRANTED]
    result, _, operator = await run_flow(tmp_path, script, WaitingOperator(["restart"]))
    assert result.status is StepStatus.PASSED, result.detail
    assert script.starts == 2
    assert len(operator.questions) == 2


async def test_nobody_to_approve_skips_the_step(tmp_path: Path, script: Script) -> None:
    class Nobody(WaitingOperator):
        async def ask(self, step: Step, question: Question) -> Reply:
            raise NoAnswer("needs a person to approve the sign-in in a browser")

    result, _, _ = await run_flow(tmp_path, script, Nobody())
    assert result.status is StepStatus.SKIPPED
    assert "needs a person" in result.detail
    assert script.polls == []


async def test_keep_keyring_stores_the_token_in_the_environments_keyring(
    tmp_path: Path, script: Script
) -> None:
    import keyring

    from opsconsole.sandbox.keyring_backend import SandboxKeyring

    saved = keyring.get_keyring()
    keyring.set_keyring(SandboxKeyring({}))
    try:
        script.answers = [GRANTED]
        result, _, _ = await run_flow(tmp_path, script, messages="keep: keyring")
        assert result.status is StepStatus.PASSED, result.detail
        assert keyring.get_password("opsconsole:test", "access_token") == script.token
        assert "the keyring (opsconsole:test) and this run" in result.detail
    finally:
        keyring.set_keyring(saved)


async def test_a_token_shorter_than_the_redactor_accepts_is_refused(
    tmp_path: Path, script: Script
) -> None:
    script.token = "abc"  # cannot be masked reliably: never kept, the step fails
    script.answers = [GRANTED]
    result, session, _ = await run_flow(tmp_path, script)
    assert result.status is StepStatus.FAILED
    assert "shorter than" in result.detail
    assert session.secrets.cached("access_token") is None
