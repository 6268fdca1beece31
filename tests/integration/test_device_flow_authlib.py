"""The device_flow step, unchanged, against a second and independent RFC 8628 server:
Authlib's device authorization endpoint and device-code grant, served on loopback.

Nothing of opsconsole's sandbox is used: if the step only worked with the server we
wrote ourselves, this test would show it. The runbook is the standard-RFC one the
sandbox uses (tests/runbooks/device-flow-rfc8628.md), pointed at this server.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("authlib", reason="Authlib is the independent RFC 8628 server here")

from authlib.oauth2.rfc6749 import AuthorizationServer, ClientMixin, OAuth2Request  # noqa: E402
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload  # noqa: E402
from authlib.oauth2.rfc8628 import (  # noqa: E402
    DEVICE_CODE_GRANT_TYPE,
    DeviceAuthorizationEndpoint,
    DeviceCodeGrant,
    DeviceCredentialDict,
)
from starlette.applications import Starlette  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import JSONResponse, Response  # noqa: E402
from starlette.routing import Route  # noqa: E402

from opsconsole.config import Environment  # noqa: E402
from opsconsole.loader import load_runbook  # noqa: E402
from opsconsole.model import Step  # noqa: E402
from opsconsole.operator import ApproveInBrowser, Event, Question, Reply  # noqa: E402
from opsconsole.run import StepStatus  # noqa: E402
from opsconsole.sandbox.server import LoopbackServers  # noqa: E402
from opsconsole.session import open_session  # noqa: E402

RUNBOOK = Path(__file__).parents[1] / "runbooks" / "device-flow-rfc8628.md"


class Client(ClientMixin):
    def get_client_id(self) -> str:
        return "opsconsole"

    def get_allowed_scope(self, scope: str) -> str:
        return scope or ""

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == "none"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == DEVICE_CODE_GRANT_TYPE

    def check_client_secret(self, client_secret: str) -> bool:
        return False


class Store:
    """What Authlib leaves to the application: credentials, the user's grant, tokens."""

    def __init__(self) -> None:
        self.credentials: dict[str, DeviceCredentialDict] = {}
        self.grants: dict[str, bool] = {}  # user_code -> approved
        self.tokens: dict[str, dict[str, Any]] = {}
        self.last_poll: dict[str, float] = {}
        self.slow_downs = 0


class Server(AuthorizationServer):  # type: ignore[misc]
    def __init__(self, store: Store) -> None:
        super().__init__()
        self.store = store

    def query_client(self, client_id: str) -> Client | None:
        return Client() if client_id == "opsconsole" else None

    def save_token(self, token: dict[str, Any], request: Any) -> None:
        self.store.tokens[token["access_token"]] = token

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        return request

    def handle_response(self, status: int, body: Any, headers: Any) -> tuple[int, Any, Any]:
        return status, body, headers

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None


def build(store: Store, base: list[str]) -> Server:
    server = Server(store)

    class Endpoint(DeviceAuthorizationEndpoint):  # type: ignore[misc]
        CLIENT_AUTH_METHODS = ["none"]  # noqa: RUF012 - Authlib's own class attribute
        INTERVAL = 1

        def get_verification_uri(self) -> str:
            return base[0] + "/device"

        def save_device_credential(self, client_id: str, scope: str, data: dict) -> None:
            store.credentials[data["device_code"]] = DeviceCredentialDict(
                client_id=client_id, scope=scope, expires_at=int(time.time()) + 600, **data
            )

    class Grant(DeviceCodeGrant):  # type: ignore[misc]
        def query_device_credential(self, device_code: str) -> DeviceCredentialDict | None:
            return store.credentials.get(device_code)

        def query_user_grant(self, user_code: str) -> tuple[dict, bool] | None:
            if user_code not in store.grants:
                return None
            return {"sub": "operator"}, store.grants[user_code]

        def should_slow_down(self, credential: DeviceCredentialDict) -> bool:
            now = time.monotonic()
            last = store.last_poll.get(credential["device_code"])
            store.last_poll[credential["device_code"]] = now
            early = last is not None and now - last < 1.0
            store.slow_downs += early
            return early

    server.register_grant(Grant)
    server.register_endpoint(Endpoint)
    server.register_token_generator(
        "default",
        lambda **kw: {"token_type": "Bearer", "access_token": secrets.token_urlsafe(32),
                      "expires_in": 3600},
    )
    return server


class FormRequest(OAuth2Request):  # type: ignore[misc]
    """An OAuth2Request from a Starlette request (what Authlib's Flask integration does)."""

    def __init__(self, request: Request, form: dict[str, str]) -> None:
        super().__init__(request.method, str(request.url), headers=dict(request.headers))
        self._form = form
        self._args = dict(request.query_params)
        self.payload = BasicOAuth2Payload(form)

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


async def authlib_request(request: Request) -> OAuth2Request:
    from urllib.parse import parse_qsl

    return FormRequest(request, dict(parse_qsl((await request.body()).decode())))


def reply(answer: tuple[int, Any, Any]) -> Response:
    status, body, headers = answer
    return JSONResponse(body, status_code=status, headers=dict(headers or []))


@pytest.fixture
def authlib_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Store]]:
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")  # plain HTTP, loopback only
    store = Store()
    base: list[str] = []
    server = build(store, base)

    async def device_authorization(request: Request) -> Response:
        built = await authlib_request(request)
        return reply(server.create_endpoint_response("device_authorization", built))

    async def token(request: Request) -> Response:
        return reply(server.create_token_response(await authlib_request(request)))

    app = Starlette(routes=[
        Route("/device_authorization", device_authorization, methods=["POST"]),
        Route("/token", token, methods=["POST"]),
    ])
    with LoopbackServers() as servers:
        base.append(f"http://127.0.0.1:{servers.serve('authlib', app)}")
        yield base[0], store


class ApprovingPerson:
    """Someone who reads the code off the screen and approves it on the server's page."""

    def __init__(self, store: Store, approve: bool = True) -> None:
        self.store = store
        self.approve = approve
        self.question: ApproveInBrowser | None = None

    async def ask(self, step: Step, question: Question) -> Reply:
        assert isinstance(question, ApproveInBrowser)
        self.question = question
        await asyncio.sleep(0.2)  # reading the code, typing it on a phone
        self.store.grants[question.user_code] = self.approve
        return Reply("approved")

    def event(self, step: Step, event: Event) -> None:
        return None


@pytest.mark.parametrize("approve", [True, False], ids=["approved", "denied"])
async def test_device_flow_against_authlib(
    tmp_path: Path, authlib_server: tuple[str, Store], approve: bool
) -> None:
    base, store = authlib_server
    runbook = load_runbook(RUNBOOK)
    env = Environment(name="test", variables={"device_auth_url": base})
    session = open_session(runbook, env, tmp_path / "home")
    person = ApprovingPerson(store, approve)
    try:
        assert await session.start() == []
        result = await session.execute("sign-in", operator=person)
    finally:
        await session.close()
    assert person.question is not None
    assert person.question.verification_uri == base + "/device"
    assert person.question.url == f"{base}/device?user_code={person.question.user_code}"
    assert store.slow_downs == 0  # never polled before the interval
    if approve:
        assert result.status is StepStatus.PASSED, result.detail
        (token,) = store.tokens
        assert session.secrets.cached("access_token").reveal() == token
        saved = (tmp_path / "home" / "runs" / f"{session.run.id}.json").read_text()
        assert token not in saved
    else:
        assert result.status is StepStatus.FAILED
        # the runbook's words, then the server's own (Authlib sends an error_description)
        assert result.detail == (
            "access was denied in the browser; start again if that was a mistake "
            "(400 The resource owner or authorization server denied the request)"
        )
