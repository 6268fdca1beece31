"""A standard RFC 8628 authorization server: the device flow as the RFC writes it.

- ``POST /device_authorization`` (form ``client_id``, ``scope``) returns
  ``device_code``, ``user_code``, ``verification_uri``,
  ``verification_uri_complete``, ``expires_in`` and ``interval`` (3.2).
- ``POST /token`` (form ``grant_type=urn:ietf:params:oauth:grant-type:device_code``,
  ``device_code``, ``client_id``) answers 400 ``authorization_pending``,
  ``slow_down`` (also whenever a client polls sooner than the interval since its
  last poll), ``access_denied`` or ``expired_token``, and 200 with the access
  token once the user approved (3.4, 3.5).
- ``GET /device`` is the verification page (``?user_code=`` fills the code in);
  ``POST /device`` with ``user_code`` and ``decision`` is the user's click.
- ``GET /userinfo`` with ``authorization: Bearer <token>`` proves the token works.
"""

from __future__ import annotations

import hmac
import html
import secrets
import threading
import time
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from .service import Fault, FaultSwitches, SandboxService, ServiceHost

__all__ = ["CLIENT_ID", "DEVICE_GRANT", "DeviceAuthServer", "DeviceAuthState",
           "create_device_auth_app", "read_form"]

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
#: the one client this server knows
CLIENT_ID = "opsconsole"
EXPIRES_IN = 600
TOKEN_LIFETIME = 3600
#: under the slow_down storm codes live this long, so a rehearsal of it ends in seconds
STORM_EXPIRES_IN = 20
#: RFC 8628 6.1: a user code from a base-20 alphabet without vowels, as 8 characters
_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"


def _user_code() -> str:
    chars = "".join(secrets.choice(_ALPHABET) for _ in range(8))
    return f"{chars[:4]}-{chars[4:]}"


def _oauth_error(error: str, status: int = 400, description: str = "") -> JSONResponse:
    body = {"error": error}
    if description:
        body["error_description"] = description
    return JSONResponse(body, status_code=status, headers={"cache-control": "no-store"})


@dataclass
class Grant:
    device_code: str
    user_code: str
    created: float
    interval: float
    status: str = "pending"  # pending | approved | denied | used
    last_poll: float | None = None
    expired: bool = False


class DeviceAuthState:
    def __init__(self, faults: FaultSwitches, interval: float = 1.0) -> None:
        self.faults = faults
        self.interval = interval
        self.grants: dict[str, Grant] = {}
        self.tokens: dict[str, float] = {}
        self.base_url = ""
        self.lock = threading.Lock()
        #: polls seen (device_code -> times, monotonic): tests read how a client polled
        self.polls: dict[str, list[float]] = {}

    def lifetime(self) -> float:
        return STORM_EXPIRES_IN if "device-slow-down-storm" in self.faults else EXPIRES_IN

    def expired(self, grant: Grant) -> bool:
        return grant.expired or time.monotonic() >= grant.created + self.lifetime()

    async def device_authorization(self, request: Request) -> Response:
        form = await read_form(request)
        if form.get("client_id") != CLIENT_ID:
            return _oauth_error("invalid_client", 401, "unknown client_id")
        grant = Grant(secrets.token_urlsafe(32), _user_code(), time.monotonic(), self.interval)
        with self.lock:
            self.grants[grant.device_code] = grant
        return JSONResponse({
            "device_code": grant.device_code,
            "user_code": grant.user_code,
            "verification_uri": f"{self.base_url}/device",
            "verification_uri_complete": f"{self.base_url}/device?user_code={grant.user_code}",
            "expires_in": self.lifetime(),
            "interval": self.interval,
        }, headers={"cache-control": "no-store"})

    async def token(self, request: Request) -> Response:
        form = await read_form(request)
        if form.get("grant_type") != DEVICE_GRANT:
            return _oauth_error("unsupported_grant_type")
        if form.get("client_id") != CLIENT_ID:
            return _oauth_error("invalid_client", 401)
        code = str(form.get("device_code", ""))
        now = time.monotonic()
        with self.lock:
            grant = next((g for c, g in self.grants.items()
                          if hmac.compare_digest(c.encode(), code.encode())), None)
            if grant is None or grant.status == "used":
                return _oauth_error("invalid_grant", description="unknown device_code")
            self.polls.setdefault(grant.device_code, []).append(now)
            early = grant.last_poll is not None and now - grant.last_poll < grant.interval
            grant.last_poll = now
            if self.expired(grant):
                return _oauth_error("expired_token")
            if "device-slow-down-storm" in self.faults or early:
                grant.interval += 5  # the client must add 5 s as well (RFC 8628 3.5)
                return _oauth_error("slow_down")
            if grant.status == "denied":
                return _oauth_error("access_denied")
            if grant.status != "approved":
                return _oauth_error("authorization_pending")
            grant.status = "used"
            token = secrets.token_urlsafe(32)
            self.tokens[token] = time.time() + TOKEN_LIFETIME
        return JSONResponse(
            {"access_token": token, "token_type": "Bearer", "expires_in": TOKEN_LIFETIME},
            headers={"cache-control": "no-store"},
        )

    async def device_page(self, request: Request) -> Response:
        if request.method == "POST":
            form = await read_form(request)
            code = str(form.get("user_code") or request.query_params.get("user_code", ""))
            decision = str(form.get("decision", ""))
            with self.lock:
                grant = next((g for g in self.grants.values()
                              if g.user_code == code.strip().upper()), None)
                if grant is None:
                    return HTMLResponse("<h1>Unknown code</h1>", status_code=404)
                if "device-code-expires-early" in self.faults:
                    grant.expired = True  # the user took longer than the code's lifetime
                if self.expired(grant):
                    return HTMLResponse("<h1>This code has expired</h1>", status_code=410)
                approve = decision == "approve" and "device-denied" not in self.faults
                grant.status = "approved" if approve else "denied"
            said = "Approved: return to your device." if approve else "Access denied."
            return HTMLResponse(f"<h1>{said}</h1>")
        code = html.escape(request.query_params.get("user_code", ""))
        return HTMLResponse(
            "<h1>Connect a device</h1><form method='post'>"
            f"<input name='user_code' value='{code}'>"
            "<button name='decision' value='approve'>Approve</button>"
            "<button name='decision' value='deny'>Deny</button></form>"
        )

    async def userinfo(self, request: Request) -> Response:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        expires = self.tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if expires is None or time.time() >= expires:
            return _oauth_error("invalid_token", 401)
        return JSONResponse({"sub": "sandbox-operator", "name": "Sandbox operator"})


async def read_form(request: Request) -> dict[str, str]:
    """A form-encoded body (no multipart: nothing here uploads files)."""
    from urllib.parse import parse_qsl

    raw = await request.body()
    if len(raw) > 64 * 1024:
        return {}
    return dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))


def create_device_auth_app(state: DeviceAuthState) -> Starlette:
    app = Starlette(routes=[
        Route("/device_authorization", state.device_authorization, methods=["POST"]),
        Route("/token", state.token, methods=["POST"]),
        Route("/device", state.device_page, methods=["GET", "POST"]),
        Route("/userinfo", state.userinfo, methods=["GET"]),
    ])
    app.state.device_auth = state
    return app


class DeviceAuthServer(SandboxService):
    """An RFC 8628 authorization server (any device-flow runbook can rehearse against it)."""

    name = "device-auth"
    title = "RFC 8628 device authorization server"
    variables = ("device_auth_url",)
    faults = (
        Fault("device-denied", "the user denies the sign-in on the verification page"),
        Fault("device-code-expires-early",
              "the code expires while the user approves it (expired_token)"),
        Fault("device-slow-down-storm",
              f"the token endpoint answers slow_down to every poll (codes live "
              f"{STORM_EXPIRES_IN} s)"),
    )

    def __init__(self) -> None:
        self.state: DeviceAuthState | None = None

    def start(self, host: ServiceHost) -> dict[str, str]:
        self.state = DeviceAuthState(host.faults)
        url = host.serve("device-auth", create_device_auth_app(self.state))
        self.state.base_url = url
        return {"device_auth_url": url}
