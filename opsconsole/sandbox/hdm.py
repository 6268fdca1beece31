"""Harmony Download Manager (source runbook 001): the sandbox service.

:class:`HarmonyDownloadManager` serves three apps on loopback:

- **HDM** itself: ``/live`` and ``/api/health/live``; ``/api/health/ready``
  (``?verbose=1``: every check; ``503`` naming the failing one);
  ``/spotify/status``; ``POST /api/v1/sync`` (per-source ``results``,
  ``counters``, ``errors``); ``GET /api/v1/backfill/status``; ``/metrics``
  (Prometheus text format, its own registry); the Spotify PRO OAuth endpoints
  ``POST /api/v1/spotify/pro/oauth/start`` and ``POST /api/v1/oauth/manual``.
  ``/api/v1/*`` and ``/spotify/status`` need the API key (``X-API-Key`` or
  ``Authorization: Bearer``): missing ``401``, wrong ``403``, both as RFC 7807
  problem details, as Harmony answers them.
- **Spotify accounts** (which cannot run here): ``/authorize`` (a consent page
  with Approve / Deny that redirects to the callback with ``code`` and
  ``state``) and ``/api/token`` (the code exchange HDM makes over real HTTP).
- **slskd**: ``/health`` only; the ready check and the self-check probe it.

The OAuth callback port is bound but never listened on: a browser's redirect
to it is refused, which is the seed's normal remote case ("Callback-Port remote
nicht erreichbar"); the operator pastes the redirect URL into
``POST /api/v1/oauth/manual`` instead. OAuth states live 10 minutes on an
injectable clock (:attr:`HdmState.clock`) and are used once.

``hdm_selfcheck_cmd`` runs ``hdm_selfcheck.py`` with a settings file in the
service's private folder (no secret in it: the runbook passes
``HARMONY_API_KEY`` and ``SPOTIFY_CLIENT_SECRET`` in the command's ``env``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import html
import json
import shlex
import socket
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from secrets import token_urlsafe
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from ..files import atomic_write
from .server import HOST
from .service import Fault, FaultSwitches, SandboxService, ServiceHost

__all__ = [
    "CALLBACK_PATH",
    "LEAKED_TRANSACTIONS",
    "OAUTH_STATE_TTL_SECONDS",
    "SLOW_READY_SECONDS",
    "HarmonyDownloadManager",
    "HdmState",
    "create_hdm_app",
    "create_slskd_app",
    "create_spotify_app",
]

#: "die konfigurierte TTL (Default: 10 Minuten)"
OAUTH_STATE_TTL_SECONDS = 600.0
#: the ready check's probe of slskd
PROBE_TIMEOUT_SECONDS = 2.0
#: the code exchange with Spotify's token endpoint
EXCHANGE_TIMEOUT_SECONDS = 10.0
#: past the runbook's 2 s readiness budget
SLOW_READY_SECONDS = 3.0
#: open OAuth transactions the leak faults add: over the seed's "< 5", and over 50
LEAKED_TRANSACTIONS = {"hdm-oauth-transactions-leak": 12, "hdm-oauth-transactions-flood": 64}
#: states remembered at most (used and expired ones are dropped first)
MAX_STATES = 1000
CALLBACK_PATH = "/callback"
SPOTIFY_CLIENT_ID = "hdm-sandbox-client"
SCOPES = "user-library-read playlist-read-private playlist-read-collaborative"
SOURCES = ("playlists", "library_scan", "auto_sync")
_MAX_BODY_BYTES = 1024 * 1024

Clock = Callable[[], float]


# --------------------------------------------------------------------------- state


@dataclass
class _Transaction:
    created: float
    used: bool = False


@dataclass
class _Code:
    redirect_uri: str
    used: bool = False


@dataclass
class HdmState:
    """What HDM and its Spotify stand-in remember; shared by the apps, read by tests.

    ``clock`` (monotonic seconds) decides OAuth state expiry; tests swap it for
    one they move by hand.
    """

    clock: Clock = time.monotonic
    #: a token from an earlier authorization: HDM starts authorized, as a live one would
    stored_token: bool = True
    #: a token obtained through the OAuth flow while this sandbox runs
    fresh_token: bool = False
    transactions: dict[str, _Transaction] = field(default_factory=dict)
    codes: dict[str, _Code] = field(default_factory=dict)
    last_sync: dict[str, Any] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def open_transactions(self) -> int:
        now = self.clock()
        with self.lock:
            return sum(
                1
                for tx in self.transactions.values()
                if not tx.used and now - tx.created < OAUTH_STATE_TTL_SECONDS
            )

    def new_state(self) -> str:
        state = token_urlsafe(24)
        with self.lock:
            if len(self.transactions) >= MAX_STATES:
                now = self.clock()
                for key in [
                    key
                    for key, tx in self.transactions.items()
                    if tx.used or now - tx.created >= OAUTH_STATE_TTL_SECONDS
                ]:
                    del self.transactions[key]
            self.transactions[state] = _Transaction(created=self.clock())
        return state

    def take_state(self, state: str) -> str | None:
        """Use ``state`` once: None when valid, else the error code."""
        with self.lock:
            tx = self.transactions.get(state)
            if tx is None or tx.used:
                return "OAUTH_STATE_UNKNOWN"
            tx.used = True
            if self.clock() - tx.created >= OAUTH_STATE_TTL_SECONDS:
                return "OAUTH_STATE_EXPIRED"
        return None


class _Metrics:
    """The seed's signals, in a registry of their own (never the process-global one)."""

    def __init__(self, state: HdmState, faults: FaultSwitches) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        active = Gauge(
            "oauth_transactions_active",
            "Open Spotify OAuth transactions (issued states not yet used or expired)",
            registry=self.registry,
        )
        active.set_function(
            lambda: (
                state.open_transactions()
                + sum(n for name, n in LEAKED_TRANSACTIONS.items() if name in faults)
            )
        )
        self.exchange_success = Counter(
            "oauth_exchange_success",
            "Successful OAuth code-for-token exchanges with Spotify",
            registry=self.registry,
        )
        self.exchange_error = Counter(
            "oauth_exchange_error",
            "Failed OAuth code-for-token exchanges with Spotify",
            ["code"],
            registry=self.registry,
        )
        for code in ("OAUTH_CODE_EXPIRED", "OAUTH_TOKEN_EXCHANGE_FAILED"):
            self.exchange_error.labels(code=code)
        self.spotify_api_errors = Counter(
            "spotify_api_errors",
            "Errors returned by the Spotify API",
            registry=self.registry,
        )
        queued = Gauge(
            "backfill_jobs_queued",
            "Backfill jobs waiting in the orchestrator queue",
            registry=self.registry,
        )
        queued.set_function(lambda: _backfill(faults)["jobs"]["queued"])
        self.dashboard_sync = Counter(
            "ui_action_dashboard_sync",
            "Manual sync runs (POST /api/v1/sync) by result status",
            ["status"],
            registry=self.registry,
        )
        for status in ("success", "partial", "error"):
            self.dashboard_sync.labels(status=status)


# --------------------------------------------------------------------------- HTTP bits


def _problem(status: int, title: str, detail: str) -> JSONResponse:
    """RFC 7807 problem details, as Harmony answers 401/403."""
    return JSONResponse(
        {"type": "about:blank", "title": title, "status": status, "detail": detail},
        status_code=status,
        media_type="application/problem+json",
    )


def _error(status: int, code: str, message: str) -> JSONResponse:
    """Harmony's error envelope: ``{"ok": false, "error": {"code", "message"}}``."""
    return JSONResponse({"ok": False, "error": {"code": code, "message": message}}, status)


def _same(presented: str | None, expected: str) -> bool:
    return bool(presented) and hmac.compare_digest(str(presented).encode(), expected.encode())


def _presented_key(request: Request) -> str | None:
    key = request.headers.get("x-api-key")
    if key:
        return key
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


Endpoint = Callable[[Request], Awaitable[Response]]


def _with_key(api_key: str, endpoint: Endpoint) -> Endpoint:
    async def guarded(request: Request) -> Response:
        presented = _presented_key(request)
        if presented is None:
            return _problem(
                401,
                "Unauthorized",
                "An API key is required: send it in the X-API-Key header "
                "(or as Authorization: Bearer).",
            )
        if not _same(presented, api_key):
            return _problem(403, "Forbidden", "The API key is not valid.")
        return await endpoint(request)

    return guarded


async def _form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body, first value per name."""
    try:
        text = (await request.body()).decode()
    except UnicodeDecodeError:
        return {}
    return {name: values[0] for name, values in parse_qs(text, keep_blank_values=True).items()}


async def _json_object(request: Request) -> dict[str, Any] | None:
    try:
        data = json.loads(await request.body() or b"{}")
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _stamp(offset_seconds: float = 0.0) -> str:
    moment = datetime.now(UTC) + timedelta(seconds=offset_seconds)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _backfill(faults: FaultSwitches) -> dict[str, Any]:
    backlog = "hdm-backfill-backlog" in faults
    return {
        "status": "running",
        "jobs": {"queued": 250 if backlog else 3, "running": 1, "completed": 412, "failed": 0},
        "oauth_errors": 0,
        "dlq_items": 0,
        "last_completed_at": _stamp(-90),
    }


# --------------------------------------------------------------------------- sync


def _sync_result(faults: FaultSwitches) -> dict[str, Any]:
    results: dict[str, dict[str, Any]] = {
        "playlists": {"status": "ok", "message": "12 playlists synced", "tracks": 96},
        "library_scan": {"status": "ok", "message": "library scanned", "tracks": 31},
        "auto_sync": {"status": "ok", "message": "auto sync finished", "tracks": 1},
    }
    errors: list[dict[str, str]] = []
    if "hdm-sync-failed" in faults:
        message = "Spotify API unavailable (503 Service Unavailable)"
        for source in SOURCES:
            results[source] = {"status": "error", "message": message, "tracks": 0}
            errors.append({"source": source, "code": "DEPENDENCY_ERROR", "message": message})
        status, skipped = "error", 0
    elif "hdm-sync-partial" in faults:
        message = "Soulseek credentials missing (SLSKD_API_KEY): auto sync skipped"
        results["auto_sync"] = {"status": "error", "message": message, "tracks": 0}
        errors.append({"source": "auto_sync", "code": "MISSING_SECRET", "message": message})
        status, skipped = "partial", 7
    else:
        status, skipped = "success", 4
    synced = sum(int(result["tracks"]) for result in results.values())
    return {
        "status": status,
        "started_at": _stamp(-1),
        "finished_at": _stamp(),
        "results": results,
        "counters": {"tracks_synced": synced, "tracks_skipped": skipped, "errors": len(errors)},
        "errors": errors,
    }


# --------------------------------------------------------------------------- HDM


@dataclass(frozen=True)
class HdmSettings:
    api_key: str
    client_id: str
    client_secret: str
    spotify_url: str
    slskd_url: str
    redirect_uri: str
    directory: Path


def create_hdm_app(settings: HdmSettings, state: HdmState, faults: FaultSwitches) -> Starlette:
    metrics = _Metrics(state, faults)

    async def live(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def probe_slskd() -> dict[str, str]:
        try:
            async with httpx.AsyncClient(timeout=PROBE_TIMEOUT_SECONDS) as client:
                reply = await client.get(f"{settings.slskd_url}/health")
        except httpx.HTTPError:
            return {"status": "fail", "detail": "slskd unreachable (SLSKD_BASE_URL)"}
        if reply.status_code != 200:
            return {"status": "fail", "detail": f"slskd answered {reply.status_code}"}
        return {"status": "ok"}

    def probe_dir(name: str, folder: Path) -> dict[str, str]:
        if folder.is_dir():
            return {"status": "ok"}
        return {"status": "fail", "detail": f"{name} does not exist"}

    async def ready(request: Request) -> Response:
        if "hdm-slow-ready" in faults:
            await asyncio.sleep(SLOW_READY_SECONDS)
        checks = {
            "database": {"status": "ok"},
            "downloads_dir": probe_dir("DOWNLOADS_DIR", settings.directory / "downloads"),
            "music_dir": probe_dir("MUSIC_DIR", settings.directory / "music"),
            "oauth_state_store": {"status": "ok"},
            "slskd": await probe_slskd(),
        }
        failing = [name for name, check in checks.items() if check["status"] != "ok"]
        body: dict[str, Any] = {"status": "fail" if failing else "ok"}
        if failing:
            body["detail"] = f"readiness check failed: {', '.join(failing)}"
        if request.query_params.get("verbose") in ("1", "true"):
            body["checks"] = checks
        return JSONResponse(body, status_code=503 if failing else 200)

    def authorized() -> bool:
        revoked = "hdm-spotify-unauthorized" in faults
        return state.fresh_token or (state.stored_token and not revoked)

    async def spotify_status(request: Request) -> Response:
        ok = authorized()
        return JSONResponse(
            {
                "status": "authorized" if ok else "unauthorized",
                "authorized": ok,
                "free_available": True,
                "pro_available": ok,
            }
        )

    async def sync(request: Request) -> Response:
        result = _sync_result(faults)
        metrics.dashboard_sync.labels(status=result["status"]).inc()
        if result["status"] == "error":
            metrics.spotify_api_errors.inc()
        state.last_sync = result
        return JSONResponse(result)

    async def backfill_status(request: Request) -> Response:
        return JSONResponse(_backfill(faults))

    async def prometheus(request: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def oauth_start(request: Request) -> Response:
        issued = state.new_state()
        query = urlencode(
            {
                "client_id": settings.client_id,
                "response_type": "code",
                "redirect_uri": settings.redirect_uri,
                "scope": SCOPES,
                "state": issued,
            }
        )
        return JSONResponse(
            {
                "authorization_url": f"{settings.spotify_url}/authorize?{query}",
                "state": issued,
                "redirect_uri": settings.redirect_uri,
                "expires_at": _stamp(OAUTH_STATE_TTL_SECONDS),
                "manual_completion_available": True,
                "manual_completion_url": "/api/v1/oauth/manual",
            }
        )

    async def exchange(code: str) -> Response | None:
        """Trade the code at Spotify's token endpoint: None when it worked."""
        try:
            async with httpx.AsyncClient(timeout=EXCHANGE_TIMEOUT_SECONDS) as client:
                reply = await client.post(
                    f"{settings.spotify_url}/api/token",
                    data={
                        "grant_type": "authorization_code",
                        "code": code,
                        "redirect_uri": settings.redirect_uri,
                    },
                    auth=(settings.client_id, settings.client_secret),
                )
        except httpx.HTTPError:
            reply = None
        if reply is not None and reply.status_code == 200:
            return None
        detail = _oauth_error(reply)
        if detail == "Authorization code expired":
            metrics.exchange_error.labels(code="OAUTH_CODE_EXPIRED").inc()
            return _error(
                400,
                "OAUTH_CODE_EXPIRED",
                "The authorization code has expired: start the authorization again "
                "(POST /api/v1/spotify/pro/oauth/start).",
            )
        metrics.exchange_error.labels(code="OAUTH_TOKEN_EXCHANGE_FAILED").inc()
        why = f"Spotify answered {reply.status_code}" if reply is not None else "no answer"
        return _error(
            502 if reply is None or reply.status_code >= 500 else 400,
            "OAUTH_TOKEN_EXCHANGE_FAILED",
            f"The token exchange with Spotify failed ({why}"
            + (f": {detail}" if detail else "")
            + "): start the authorization again.",
        )

    async def oauth_manual(request: Request) -> Response:
        body = await _json_object(request)
        url = body.get("redirect_url") if body is not None else None
        if not isinstance(url, str) or not url.strip():
            return _error(
                422,
                "VALIDATION_ERROR",
                'Send {"redirect_url": "<the full URL the browser was redirected to>"}.',
            )
        try:
            parts = urlsplit(url.strip())
            query = parse_qs(parts.query, keep_blank_values=True)
        except ValueError:
            query, parts = {}, None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            return _error(400, "OAUTH_INVALID_REDIRECT", "The redirect URL is not a valid URL.")
        pasted_state = (query.get("state") or [""])[0]
        if not pasted_state:
            return _error(400, "OAUTH_INVALID_REDIRECT", "The redirect URL has no state.")
        if query.get("error"):
            refused = state.take_state(pasted_state)
            reason = query["error"][0]
            more = (query.get("error_description") or [""])[0]
            return _error(
                400,
                "OAUTH_AUTHORIZATION_DENIED" if refused is None else refused,
                f"Spotify returned an error: {reason}" + (f" ({more})" if more else ""),
            )
        code = (query.get("code") or [""])[0]
        if not code:
            return _error(400, "OAUTH_INVALID_REDIRECT", "The redirect URL has no code.")
        refused = state.take_state(pasted_state)
        if refused == "OAUTH_STATE_EXPIRED":
            return _error(
                400,
                refused,
                "The OAuth state has expired (TTL 10 minutes): start the authorization again.",
            )
        if refused is not None:
            return _error(
                400,
                refused,
                "Unknown or already used OAuth state: start the authorization again.",
            )
        failed = await exchange(code)
        if failed is not None:
            return failed
        state.fresh_token = True
        metrics.exchange_success.inc()
        return JSONResponse({"ok": True, "data": {"status": "authorized", "authorized": True}})

    def keyed(endpoint: Endpoint) -> Endpoint:
        return _with_key(settings.api_key, endpoint)

    return Starlette(
        routes=[
            Route("/live", live, methods=["GET"]),
            Route("/api/health/live", live, methods=["GET"]),
            Route("/api/health/ready", ready, methods=["GET"]),
            Route("/metrics", prometheus, methods=["GET"]),
            Route("/spotify/status", keyed(spotify_status), methods=["GET"]),
            Route("/api/v1/sync", keyed(sync), methods=["POST"]),
            Route("/api/v1/backfill/status", keyed(backfill_status), methods=["GET"]),
            Route("/api/v1/spotify/pro/oauth/start", keyed(oauth_start), methods=["POST"]),
            Route("/api/v1/oauth/manual", keyed(oauth_manual), methods=["POST"]),
        ],
        max_body_size=_MAX_BODY_BYTES,
    )


def _oauth_error(reply: httpx.Response | None) -> str:
    if reply is None:
        return ""
    try:
        data = reply.json()
    except ValueError:
        return ""
    text = data.get("error_description") if isinstance(data, dict) else None
    return text if isinstance(text, str) else ""


# --------------------------------------------------------------------------- Spotify


_CONSENT_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Spotify (sandbox): authorize</title></head>
<body>
<h1>Spotify (sandbox)</h1>
<p><strong>Harmony Download Manager</strong> asks for access to: {scopes}</p>
<form method="post" action="/authorize">
{fields}
<button name="decision" value="approve" type="submit">Approve</button>
<button name="decision" value="deny" type="submit">Deny</button>
</form>
</body></html>
"""

_AUTHORIZE_FIELDS = ("client_id", "response_type", "redirect_uri", "scope", "state")


def create_spotify_app(settings: HdmSettings, state: HdmState, faults: FaultSwitches) -> Starlette:
    """Spotify's accounts service, as far as HDM's authorization-code flow needs it."""

    def invalid(params: dict[str, str]) -> Response | None:
        if params.get("client_id") != settings.client_id:
            return HTMLResponse("INVALID_CLIENT: Invalid client", status_code=400)
        if params.get("redirect_uri") != settings.redirect_uri:
            return HTMLResponse("INVALID_CLIENT: Invalid redirect URI", status_code=400)
        if params.get("response_type") != "code":
            return HTMLResponse("unsupported_response_type", status_code=400)
        return None

    async def consent(request: Request) -> Response:
        params = {name: request.query_params.get(name, "") for name in _AUTHORIZE_FIELDS}
        refused = invalid(params)
        if refused is not None:
            return refused
        fields = "\n".join(
            f'<input type="hidden" name="{name}" value="{html.escape(value, quote=True)}">'
            for name, value in params.items()
        )
        return HTMLResponse(
            _CONSENT_PAGE.format(scopes=html.escape(params["scope"]), fields=fields)
        )

    async def decide(request: Request) -> Response:
        form = await _form(request)
        params = {name: form.get(name, "") for name in _AUTHORIZE_FIELDS}
        refused = invalid(params)
        if refused is not None:
            return refused
        if form.get("decision") == "approve":
            code = token_urlsafe(32)
            with state.lock:
                state.codes[code] = _Code(redirect_uri=params["redirect_uri"])
            answer = {"code": code, "state": params["state"]}
        else:
            answer = {"error": "access_denied", "state": params["state"]}
        return RedirectResponse(f"{params['redirect_uri']}?{urlencode(answer)}", status_code=303)

    async def token(request: Request) -> Response:
        if "hdm-oauth-token-exchange-fails" in faults:
            return JSONResponse(
                {"error": "server_error", "error_description": "Service unavailable"}, 503
            )
        expected = httpx.BasicAuth(settings.client_id, settings.client_secret)
        presented = request.headers.get("authorization", "")
        wanted = next(expected.auth_flow(httpx.Request("POST", "http://x"))).headers[
            "authorization"
        ]
        if not _same(presented, wanted):
            return JSONResponse(
                {"error": "invalid_client", "error_description": "Invalid client"}, 400
            )
        form = await _form(request)
        code = form.get("code", "")
        with state.lock:
            issued = state.codes.get(code)
            usable = issued is not None and not issued.used
            if issued is not None:
                issued.used = True
        if form.get("grant_type") != "authorization_code" or not usable or issued is None:
            return JSONResponse(
                {"error": "invalid_grant", "error_description": "Invalid authorization code"}, 400
            )
        if "hdm-oauth-code-expired" in faults:
            return JSONResponse(
                {"error": "invalid_grant", "error_description": "Authorization code expired"}, 400
            )
        if form.get("redirect_uri") != issued.redirect_uri:
            return JSONResponse(
                {"error": "invalid_grant", "error_description": "Invalid redirect URI"}, 400
            )
        return JSONResponse(
            {
                "access_token": token_urlsafe(32),
                "token_type": "Bearer",
                "expires_in": 3600,
                "refresh_token": token_urlsafe(32),
                "scope": SCOPES,
            }
        )

    return Starlette(
        routes=[
            Route("/authorize", consent, methods=["GET"]),
            Route("/authorize", decide, methods=["POST"]),
            Route("/api/token", token, methods=["POST"]),
        ],
        max_body_size=_MAX_BODY_BYTES,
    )


def create_slskd_app() -> Starlette:
    async def health(request: Request) -> Response:
        return Response("Healthy", media_type="text/plain")

    return Starlette(routes=[Route("/health", health, methods=["GET"])])


# --------------------------------------------------------------------------- the service

_HDM, _SPOTIFY, _SLSKD = "hdm", "spotify", "slskd"
ENV_FILE = "hdm.env"
BASE_ENV_FILE = "hdm.base.env"
#: faults that change the settings the self-check reads, and how
ENV_FAULTS: dict[str, dict[str, str]] = {
    "hdm-selfcheck-config-missing": {"SPOTIFY_CLIENT_ID": ""},
    "hdm-selfcheck-dir-missing": {"MUSIC_DIR": "{directory}/music-missing"},
    "hdm-selfcheck-invalid-config": {"HEALTH_READY_REQUIRE_DB": "maybe"},
}


def _write_env(directory: Path, active: set[str]) -> None:
    """The self-check's settings file: the base settings with the active faults' changes."""
    from .hdm_selfcheck import read_env_file

    env = read_env_file(directory / BASE_ENV_FILE)
    for name in sorted(active & ENV_FAULTS.keys()):
        env.update(
            (key, value.format(directory=directory)) for key, value in ENV_FAULTS[name].items()
        )
    atomic_write(directory / ENV_FILE, "".join(f"{key}={value}\n" for key, value in env.items()))


def _env_switch(name: str) -> Callable[[ServiceHost, bool], None]:
    def switch(host: ServiceHost, active: bool) -> None:
        # Called before the flag flips: the new set is computed here.
        now = set(host.faults.active)
        now = now | {name} if active else now - {name}
        _write_env(host.directory, now)

    return switch


def _switch_slskd(host: ServiceHost, active: bool) -> None:
    if active:
        host.stop(_SLSKD)
    else:
        host.resume(_SLSKD)


class HarmonyDownloadManager(SandboxService):
    """HDM with its Spotify accounts and slskd stand-ins (source runbook 001)."""

    name = "hdm"
    title = "Harmony Download Manager (Spotify PRO OAuth)"
    variables = ("hdm_url", "hdm_selfcheck_cmd", "hdm_callback_port", "hdm_spotify_url")
    secrets = ("hdm_api_key", "hdm_spotify_client_secret")
    #: hsteps' Prometheus launcher scrapes services that have one
    metrics_path = "/metrics"
    faults = (
        Fault(
            "hdm-slskd-down",
            "slskd is not listening: HDM's ready check fails on slskd (503) "
            "and the self-check exits 69",
            switch=_switch_slskd,
        ),
        Fault("hdm-slow-ready", "/api/health/ready answers after 3 s (over the 2 s budget)"),
        Fault(
            "hdm-selfcheck-config-missing",
            "the container lost SPOTIFY_CLIENT_ID: the self-check exits 78",
            switch=_env_switch("hdm-selfcheck-config-missing"),
        ),
        Fault(
            "hdm-selfcheck-dir-missing",
            "MUSIC_DIR points at a folder that does not exist: the self-check exits 71",
            switch=_env_switch("hdm-selfcheck-dir-missing"),
        ),
        Fault(
            "hdm-selfcheck-invalid-config",
            "HEALTH_READY_REQUIRE_DB=maybe is not a boolean: the self-check exits 70",
            switch=_env_switch("hdm-selfcheck-invalid-config"),
        ),
        Fault(
            "hdm-spotify-unauthorized",
            "the stored Spotify token was revoked: /spotify/status says authorized: false "
            "until OAuth is completed again",
        ),
        Fault("hdm-sync-partial", "a manual sync ends partial: auto sync reports an error"),
        Fault("hdm-sync-failed", "a manual sync fails: every source reports an error"),
        Fault("hdm-backfill-backlog", "250 backfill jobs are queued (over the seed's 200)"),
        Fault(
            "hdm-oauth-code-expired",
            "Spotify refuses every code as expired: /api/v1/oauth/manual says OAUTH_CODE_EXPIRED",
        ),
        Fault(
            "hdm-oauth-token-exchange-fails",
            "Spotify's token endpoint answers 503: OAUTH_TOKEN_EXCHANGE_FAILED",
        ),
        Fault(
            "hdm-oauth-transactions-leak",
            "12 OAuth transactions are left open (oauth_transactions_active over 5)",
        ),
        Fault(
            "hdm-oauth-transactions-flood",
            "64 OAuth transactions are left open (oauth_transactions_active over 50)",
        ),
    )

    def __init__(self) -> None:
        self.state = HdmState()
        self._callback_socket: socket.socket | None = None

    def start(self, host: ServiceHost) -> dict[str, str]:
        self.state = HdmState()
        directory = host.directory
        for folder in ("downloads", "music"):
            (directory / folder).mkdir(exist_ok=True)
        # Bound and never listened on: connections to the callback port are refused, and
        # nothing else can take the port while the sandbox runs.
        self._callback_socket = socket.socket()
        self._callback_socket.bind((HOST, 0))
        callback_port = self._callback_socket.getsockname()[1]
        slskd_url = host.serve(_SLSKD, create_slskd_app())
        settings = HdmSettings(
            api_key=host.secrets["hdm_api_key"],
            client_id=SPOTIFY_CLIENT_ID,
            client_secret=host.secrets["hdm_spotify_client_secret"],
            spotify_url="",  # known once the Spotify stand-in serves
            slskd_url=slskd_url,
            redirect_uri=f"http://{HOST}:{callback_port}{CALLBACK_PATH}",
            directory=directory,
        )
        spotify_url = host.serve(_SPOTIFY, create_spotify_app(settings, self.state, host.faults))
        settings = dataclasses.replace(settings, spotify_url=spotify_url)
        hdm_url = host.serve(_HDM, create_hdm_app(settings, self.state, host.faults))
        base = {
            "SPOTIFY_CLIENT_ID": settings.client_id,
            "DOWNLOADS_DIR": str(directory / "downloads"),
            "MUSIC_DIR": str(directory / "music"),
            "SLSKD_BASE_URL": slskd_url,
            "HEALTH_READY_REQUIRE_DB": "false",
            "OAUTH_CALLBACK_PORT": str(callback_port),
        }
        atomic_write(
            directory / BASE_ENV_FILE, "".join(f"{key}={value}\n" for key, value in base.items())
        )
        _write_env(directory, set(host.faults.active))
        python = shlex.quote(sys.executable)
        env_file = shlex.quote(str(directory / ENV_FILE))
        return {
            "hdm_url": hdm_url,
            "hdm_selfcheck_cmd": (
                f"{python} -m opsconsole.sandbox selfcheck hdm --assert-startup "
                f"--env-file {env_file}"
            ),
            "hdm_callback_port": str(callback_port),
            "hdm_spotify_url": spotify_url,
        }

    def stop(self) -> None:
        if self._callback_socket is not None:
            self._callback_socket.close()
            self._callback_socket = None
