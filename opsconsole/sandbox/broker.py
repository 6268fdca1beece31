"""The Discogs auth broker (source runbook 000): device sessions and the proxy search.

The contract, in the seed's words: ``POST /v1/device/session/start`` returns
``device_id``, ``pending_token``, ``auth_url``, ``poll_interval_seconds`` and
``expires_at``; ``GET /v1/device/session/status?device_id=&pending_token=``
says whether the browser OAuth is done; ``POST /v1/device/session/finalize``
trades an authorized session for a ``session_token``; ``POST
/v1/discogs/proxy/search`` with ``authorization: Bearer <session_token>``
answers ``result``, ``match_quality`` (exact, fuzzy, none) and ``cache_hit``.
When the broker has a client token, start/status/finalize need it in
``x-reklawdbox-broker-token``. Every refusal carries the seed's exact message
in ``{"error": ...}``.

The ``auth_url`` opens a sandbox page standing in for Discogs' own approval
page (approve / deny); approving there is what the OAuth callback does in the
real broker: it marks the session authorized.
"""

from __future__ import annotations

import hmac
import html
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from .device_auth import read_form
from .service import Fault, FaultSwitches, SandboxService, ServiceHost

__all__ = [
    "INVALID_CLIENT_TOKEN",
    "SESSION_TTL_SECONDS",
    "BrokerState",
    "DiscogsBroker",
    "create_broker_app",
]

INVALID_CLIENT_TOKEN = "invalid broker client token"
NOT_FOUND = "device session not found"
NOT_AUTHORIZED = "device session is not authorized yet"
EXPIRED = "device session expired; restart auth"
MISSING_BEARER = "missing bearer session token"
INVALID_SESSION = "invalid or expired broker session"
ARTIST_TITLE_REQUIRED = "artist and title are required"

#: how long a device session waits for the browser approval
SESSION_TTL_SECONDS = 600
#: how long a finalized broker session (the bearer token) lives
SESSION_TOKEN_TTL_SECONDS = 30 * 24 * 3600
_MAX_BODY = 64 * 1024

#: a tiny stand-in for Discogs' database: (artist, title) -> release
CATALOGUE: dict[tuple[str, str], dict[str, Any]] = {
    ("daft punk", "one more time"): {
        "id": 1203, "artist": "Daft Punk", "title": "One More Time",
        "label": "Virgin", "year": 2000, "format": "12\"",
    },
    ("aphex twin", "windowlicker"): {
        "id": 2280, "artist": "Aphex Twin", "title": "Windowlicker",
        "label": "Warp Records", "year": 1999, "format": "12\"",
    },
}


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace(
        "+00:00", "Z"
    )


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


@dataclass
class DeviceSession:
    device_id: str
    pending_token: str
    created: float
    expires: float
    status: str = "pending"  # pending | authorized | denied
    finalized: bool = False


class BrokerState:
    """Device sessions, broker sessions and the lookup cache (the Worker's D1 tables)."""

    def __init__(self, client_token: str | None, faults: FaultSwitches,
                 poll_interval: int = 1) -> None:
        self.client_token = client_token
        self.faults = faults
        self.poll_interval = poll_interval
        self.devices: dict[str, DeviceSession] = {}
        #: session_token -> expiry (epoch)
        self.sessions: dict[str, float] = {}
        self.cache: dict[tuple[str, str], dict[str, Any]] = {}
        self.base_url = ""
        self.lock = threading.Lock()

    def client_refused(self, request: Request) -> JSONResponse | None:
        if not self.client_token:
            return None
        expected = self.client_token
        if "broker-token-mismatch" in self.faults:
            expected = "rotated-" + expected  # the broker's env no longer matches the client
        sent = request.headers.get("x-reklawdbox-broker-token", "")
        if not hmac.compare_digest(sent.encode(), expected.encode()):
            return _error(401, INVALID_CLIENT_TOKEN)
        return None

    def find(self, device_id: str, pending_token: str) -> DeviceSession | JSONResponse:
        session = self.devices.get(device_id)
        if session is None or not hmac.compare_digest(
            session.pending_token.encode(), pending_token.encode()
        ):
            return _error(404, NOT_FOUND)
        if self.expired(session):
            return _error(410, EXPIRED)
        return session

    def expired(self, session: DeviceSession) -> bool:
        return time.time() >= session.expires

    # -- endpoints ---------------------------------------------------------------------

    async def start(self, request: Request) -> Response:
        refused = self.client_refused(request)
        if refused is not None:
            return refused
        now = time.time()
        session = DeviceSession(
            device_id=secrets.token_hex(16),
            pending_token=secrets.token_urlsafe(32),
            created=now,
            expires=now + SESSION_TTL_SECONDS,
        )
        with self.lock:
            self.devices[session.device_id] = session
        return JSONResponse({
            "device_id": session.device_id,
            "pending_token": session.pending_token,
            "auth_url": f"{self.base_url}/v1/discogs/oauth/authorize?device_id="
                        f"{session.device_id}",
            "poll_interval_seconds": self.poll_interval,
            "expires_at": _iso(session.expires),
        })

    async def status(self, request: Request) -> Response:
        refused = self.client_refused(request)
        if refused is not None:
            return refused
        found = self.find(request.query_params.get("device_id", ""),
                          request.query_params.get("pending_token", ""))
        if isinstance(found, Response):
            return found
        return JSONResponse({"status": found.status, "expires_at": _iso(found.expires)})

    async def finalize(self, request: Request) -> Response:
        refused = self.client_refused(request)
        if refused is not None:
            return refused
        body = await _json_body(request)
        device_id = body.get("device_id") if isinstance(body, dict) else None
        pending = body.get("pending_token") if isinstance(body, dict) else None
        if not isinstance(device_id, str) or not isinstance(pending, str):
            return _error(404, NOT_FOUND)
        found = self.find(device_id, pending)
        if isinstance(found, Response):
            return found
        if found.status != "authorized" or found.finalized:
            return _error(409, NOT_AUTHORIZED)
        token = secrets.token_urlsafe(32)
        expires = time.time() + SESSION_TOKEN_TTL_SECONDS
        with self.lock:
            found.finalized = True
            self.sessions[token] = expires
        return JSONResponse({"session_token": token, "expires_at": _iso(expires)})

    async def search(self, request: Request) -> Response:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _error(401, MISSING_BEARER)
        expires = self.sessions.get(token.strip())
        if expires is None or time.time() >= expires:
            return _error(401, INVALID_SESSION)
        body = await _json_body(request)
        artist = body.get("artist") if isinstance(body, dict) else None
        title = body.get("title") if isinstance(body, dict) else None
        if not (isinstance(artist, str) and artist.strip() and isinstance(title, str)
                and title.strip()):
            return _error(400, ARTIST_TITLE_REQUIRED)
        key = (artist.strip(), title.strip())
        with self.lock:
            hit = key in self.cache
            if not hit:
                self.cache[key] = _lookup(artist, title)
            entry = self.cache[key]
        return JSONResponse({**entry, "cache_hit": hit})

    async def authorize_page(self, request: Request) -> Response:
        """The approval page (Discogs' in the real flow); POST is the operator's click."""
        device_id = request.query_params.get("device_id", "")
        session = self.devices.get(device_id)
        if session is None:
            return HTMLResponse("<h1>Unknown device session</h1>", status_code=404)
        if self.expired(session):
            return HTMLResponse("<h1>This sign-in has expired</h1>", status_code=410)
        if request.method == "POST" and "broker-session-expires-early" in self.faults:
            # the operator took longer than the session's TTL: it is gone when they approve
            session.expires = time.time()
            return HTMLResponse("<h1>This sign-in has expired</h1>", status_code=410)
        if request.method == "POST":
            form = await read_form(request)
            decision = str(form.get("decision", ""))
            with self.lock:
                if decision == "approve" and "broker-denied" not in self.faults:
                    session.status = "authorized"
                    said = "Approved: you can close this window."
                else:
                    session.status = "denied"
                    said = "Access denied."
            return HTMLResponse(f"<h1>{html.escape(said)}</h1>")
        return HTMLResponse(
            "<h1>Authorize reklawdbox to use your Discogs account?</h1>"
            "<form method='post'><button name='decision' value='approve'>Approve</button>"
            "<button name='decision' value='deny'>Deny</button></form>"
        )


async def _json_body(request: Request) -> Any:
    import json

    raw = await request.body()
    if len(raw) > _MAX_BODY:
        return None
    try:
        return json.loads(raw or b"null")
    except ValueError:
        return None


def _lookup(artist: str, title: str) -> dict[str, Any]:
    """Discogs-normalised result: exact, fuzzy (case/space/partial), or none."""
    wanted = (artist.strip(), title.strip())
    for release in CATALOGUE.values():
        if (release["artist"], release["title"]) == wanted:
            return {"result": release, "match_quality": "exact"}
    folded = (wanted[0].casefold(), wanted[1].casefold())
    for (known_artist, known_title), release in CATALOGUE.items():
        if known_artist in folded[0] and (known_title in folded[1] or folded[1] in known_title):
            return {"result": release, "match_quality": "fuzzy"}
    return {"result": None, "match_quality": "none"}


def create_broker_app(state: BrokerState) -> Starlette:
    app = Starlette(routes=[
        Route("/v1/device/session/start", state.start, methods=["POST"]),
        Route("/v1/device/session/status", state.status, methods=["GET"]),
        Route("/v1/device/session/finalize", state.finalize, methods=["POST"]),
        Route("/v1/discogs/proxy/search", state.search, methods=["POST"]),
        Route("/v1/discogs/oauth/authorize", state.authorize_page, methods=["GET", "POST"]),
    ])
    app.state.broker = state
    return app


class DiscogsBroker(SandboxService):
    """The broker Worker (source runbook 000), with a client token enforced: one as
    ``npm run dev`` runs it (``local_broker_url``), one as deployed (``broker_url``),
    each with its own D1 (sessions, cache)."""

    name = "discogs-broker"
    title = "Discogs auth broker (device sessions, proxy search)"
    variables = ("local_broker_url", "broker_url")
    secrets = ("broker_client_token",)
    faults = (
        Fault("broker-token-mismatch",
              "the broker's BROKER_CLIENT_TOKEN no longer matches the client's "
              "(401 invalid broker client token)"),
        Fault("broker-denied", "Discogs denies the sign-in on the approval page"),
        Fault("broker-session-expires-early",
              "the device session's TTL elapses while the operator approves in the browser "
              "(410 device session expired; restart auth)"),
    )

    def __init__(self) -> None:
        #: the brokers' state by variable name (tests read sessions and the cache)
        self.states: dict[str, BrokerState] = {}

    def start(self, host: ServiceHost) -> dict[str, str]:
        urls = {}
        for variable in self.variables:
            state = BrokerState(host.secrets["broker_client_token"], host.faults)
            urls[variable] = state.base_url = host.serve(variable, create_broker_app(state))
            self.states[variable] = state
        return urls
