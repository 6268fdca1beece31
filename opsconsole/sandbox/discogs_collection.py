"""ListenToMore's Discogs collection integration (source runbook 002): the sandbox service.

The seed's routes, on loopback:

- ``GET /api/auth/discogs/connect?username=`` starts the OAuth 1.0a dance the
  server owns: it answers ``302`` to the sandbox's stand-in for Discogs'
  authorize page (approve / deny), whose decision comes back to
  ``GET /api/auth/discogs/callback``; a connected account then syncs on its
  own and, once synced, enriches (the seed's ``waitUntil`` and queue).
- ``POST /api/auth/discogs/disconnect?username=`` (mutating).
- ``POST /api/internal/discogs-sync`` fetches the 1,497-release collection page
  by page (Discogs' ``per_page`` 100: 15 pages) and ``GET`` on the same path
  reads the sync back; ``POST``/``GET /api/internal/discogs-enrich`` start and
  follow enrichment (``processed`` of ``total``, ``rate_per_minute``);
  ``GET /api/internal/discogs-stats`` the collection stats.

Internal routes take the page's internal token (``X-Internal-Token``) and
``?username=``, and answer ``{"data": ...}`` or ``{"error": "..."}`` as the
real Worker does. ``GET /api/auth/discogs/status`` is the sandbox's window on
what the account page shows (connected, usernames, the connect state).

Nobody answers the authorize page by itself: a person approves there (or the
sandbox's browser does, for the simulated operator of ``check --sandbox``).
With ``discogs-connect-denied`` on, Discogs refuses access whatever is pressed.
Discogs itself is not here.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import html
import secrets
import threading
import time
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from .service import Fault, FaultSwitches, SandboxService, ServiceHost

__all__ = [
    "COLLECTION_SIZE",
    "DISCOGS_ACCOUNT",
    "PER_PAGE",
    "SANDBOX_USER",
    "CollectionStore",
    "DiscogsCollection",
    "create_discogs_app",
]

#: "Releases: 1,497 synced"
COLLECTION_SIZE = 1497
#: Discogs' collection endpoint's largest page: 1,497 releases are 15 pages
PER_PAGE = 100
#: the seed's production user and the Discogs account it connects
SANDBOX_USER = "bordesak"
DISCOGS_ACCOUNT = "elezea-records"
SANDBOX_USER_ID = "21f67178c64bf648a635e46935ee61c1"
#: discogs-sync-partial: this page fails (its 100 releases are missing: 1,397 of 1,497)
PARTIAL_FAILED_PAGE = 9
#: discogs-enrich-stalls: enrichment stops advancing here
STALL_AT = 600
#: discogs-slow-stats: the stats answer takes this long (the page polls every 3 s)
SLOW_STATS_SECONDS = 4.0
#: releases without a master release: enrichment skips them
_NO_MASTER_EVERY = 17
_GENRES = ("Rock", "Electronic", "Jazz", "Funk / Soul", "Hip Hop", "Pop", "Classical")
_FORMATS = ("Vinyl", "Vinyl", "Vinyl", "CD", "Vinyl")
_UNIQUE_ARTISTS = 612


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def collection_stats(count: int, synced_at: str, enriched: bool) -> dict[str, Any]:
    """Stats of the first ``count`` releases of the synthetic collection (deterministic)."""
    genres: dict[str, int] = {}
    formats: dict[str, int] = {}
    decades: dict[str, int] = {}
    for i in range(count):
        genre, fmt = _GENRES[i % len(_GENRES)], _FORMATS[i % len(_FORMATS)]
        decade = f"{1960 + (i % 7) * 10}s"
        genres[genre] = genres.get(genre, 0) + 1
        formats[fmt] = formats.get(fmt, 0) + 1
        decades[decade] = decades.get(decade, 0) + 1
    return {
        "totalItems": count,
        "uniqueArtists": min(count, _UNIQUE_ARTISTS),
        "uniqueGenres": sorted(genres),
        "uniqueFormats": sorted(formats),
        "earliestYear": 1960 if count else None,
        "latestYear": 2025 if count else None,
        "genreCounts": genres,
        "formatCounts": formats,
        "decadeCounts": decades,
        "lastSynced": synced_at,
        "enriched": enriched,
    }


@dataclass
class _Account:
    username: str
    user_id: str
    discogs_username: str | None = None
    #: disconnected | pending | connected | denied
    connect_state: str = "disconnected"
    request_token: str | None = None
    verifier: str | None = None
    sync: dict[str, Any] | None = None
    enrichment: dict[str, Any] | None = None
    stats: dict[str, Any] | None = None
    #: a collection change since the last finished enrichment (a new sync)
    needs_enrichment: bool = True


@dataclass
class CollectionStore:
    """Users, connections, sync and enrichment state; read from tests on another thread."""

    accounts: dict[str, _Account] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if not self.accounts:
            self.accounts[SANDBOX_USER] = _Account(SANDBOX_USER, SANDBOX_USER_ID)

    def snapshot(self, username: str) -> dict[str, Any]:
        with self.lock:
            account = self.accounts[username]
            return {
                "connect_state": account.connect_state,
                "discogs_username": account.discogs_username,
                "sync": dict(account.sync) if account.sync else None,
                "enrichment": dict(account.enrichment) if account.enrichment else None,
            }


def _same_secret(presented: str | None, expected: str) -> bool:
    return bool(presented) and hmac.compare_digest(
        (presented or "").encode(), expected.encode()
    )


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


def create_discogs_app(
    store: CollectionStore,
    faults: FaultSwitches,
    *,
    internal_token: str,
    job_seconds: float = 0.4,
) -> Starlette:
    """The Worker's Discogs routes and the stand-in authorize page.

    A sync takes ``job_seconds`` (the seed's ~30 s, shortened), enrichment five times
    that. A pending connect waits for a decision on the authorize page."""
    tasks: set[asyncio.Task[None]] = set()

    def spawn(work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            for task in list(tasks):
                task.cancel()
            for task in list(tasks):
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    # -- background work ------------------------------------------------------------

    async def run_sync(account: _Account) -> None:
        pages = -(-COLLECTION_SIZE // PER_PAGE)
        fetched = 0
        for page in range(1, pages + 1):
            await asyncio.sleep(job_seconds / pages)
            size = min(PER_PAGE, COLLECTION_SIZE - (page - 1) * PER_PAGE)
            with store.lock:
                sync = account.sync
                if sync is None:  # disconnected meanwhile
                    return
                if "discogs-sync-failed" in faults and page == 1:
                    sync["results"].append(
                        {"source": f"page {page}", "page": page, "status": "error", "releases": 0,
                         "errors": ["Discogs returned 401 Unauthorized"]}
                    )
                    sync.update(
                        status="failed",
                        error="Failed to sync collection",
                        errors=["page 1 of 15: Discogs returned 401 Unauthorized"],
                        finishedAt=_now(),
                    )
                    return
                if "discogs-sync-partial" in faults and page == PARTIAL_FAILED_PAGE:
                    message = f"page {page} of {pages}: Discogs returned 502 Bad Gateway"
                    sync["results"].append(
                        {"source": f"page {page}", "page": page, "status": "error", "releases": 0,
                         "errors": ["Discogs returned 502 Bad Gateway"]}
                    )
                    sync["warnings"].append(message)
                else:
                    fetched += size
                    sync["results"].append(
                        {"source": f"page {page}", "page": page, "status": "ok", "releases": size}
                    )
                sync.update(page=page, pagesFetched=page, releaseCount=fetched)
        stamp = _now()
        with store.lock:
            sync = account.sync
            if sync is None:
                return
            partial = bool(sync["warnings"])
            if partial:
                sync["error"] = f"{fetched} of {COLLECTION_SIZE} releases synced"
            sync.update(
                status="partial" if partial else "completed",
                success=not partial,
                lastSynced=stamp,
                finishedAt=stamp,
                newReleases=fetched,
                enrichmentQueued=fetched,
            )
            account.stats = collection_stats(fetched, stamp, enriched=False)
            account.needs_enrichment = True
            # "Ensure enrichment kicks off automatically after sync completes": queued in
            # the same breath, so nobody sees the sync done and no enrichment yet
            _, spawned = begin_enrichment(account)
        if spawned:
            spawn(run_enrichment(account))

    async def run_enrichment(account: _Account) -> None:
        with store.lock:
            progress = account.enrichment
            if progress is None:
                return
            total = progress["total"]
        started = time.monotonic()
        ticks = 40
        step = -(-total // ticks)
        processed = 0
        while processed < total:
            await asyncio.sleep(job_seconds * 5 / ticks)
            if "discogs-enrich-stalls" in faults and processed >= STALL_AT:
                continue  # stuck: no progress, still "running", lastUpdatedAt frozen
            batch = range(processed, min(processed + step, total))
            skipped = sum(1 for i in batch if i % _NO_MASTER_EVERY == 0)
            processed = batch.stop
            elapsed_minutes = max(time.monotonic() - started, 1e-6) / 60
            with store.lock:
                if account.enrichment is not progress:
                    return
                progress.update(
                    processed=processed,
                    enriched=progress["enriched"] + len(batch) - skipped,
                    skipped=progress["skipped"] + skipped,
                    rate_per_minute=round(processed / elapsed_minutes),
                    lastUpdatedAt=_now(),
                    currentRelease=f"release {processed} of {total}",
                )
        with store.lock:
            if account.enrichment is not progress:
                return
            progress.update(status="completed", currentRelease=None, lastUpdatedAt=_now())
            account.needs_enrichment = False
            if account.stats is not None:
                account.stats = {**account.stats, "enriched": True}

    def start_sync(account: _Account) -> dict[str, Any]:
        """Start a sync, or join the one running (a second press starts nothing new)."""
        with store.lock:
            if account.sync is not None and account.sync["status"] == "running":
                return {**account.sync, "joined": True}
            pages = -(-COLLECTION_SIZE // PER_PAGE)
            account.sync = {
                "syncId": secrets.token_hex(8),
                "status": "running",
                "discogsUsername": account.discogs_username,
                "totalReleases": COLLECTION_SIZE,
                "releaseCount": 0,
                "per_page": PER_PAGE,
                "pages": pages,
                "page": 0,
                "pagesFetched": 0,
                "results": [],
                "warnings": [],
                "errors": [],
                "error": None,
                "startedAt": _now(),
                "cacheKey": f"discogs:collection:{account.user_id}",
            }
            current = dict(account.sync)
        spawn(run_sync(account))
        return current

    def start_enrichment(account: _Account) -> dict[str, Any] | None:
        """Start enrichment (None: nothing synced), join a running one, or report the
        finished one when the collection has not changed since."""
        with store.lock:
            progress, spawned = begin_enrichment(account)
        if spawned:
            spawn(run_enrichment(account))
        return progress

    def begin_enrichment(account: _Account) -> tuple[dict[str, Any] | None, bool]:
        """Under the store's lock: (progress to report, whether a run must be spawned)."""
        current = account.enrichment
        if current is not None and current["status"] == "running":
            return {**current, "joined": True}, False
        if current is not None and not account.needs_enrichment:
            return dict(current), False
        if account.stats is None:
            return None, False
        stamp = _now()
        account.enrichment = {
            "userId": account.user_id,
            "status": "running",
            "total": account.stats["totalItems"],
            "processed": 0,
            "enriched": 0,
            "skipped": 0,
            "errors": 0,
            "rate_per_minute": 0,
            "startedAt": stamp,
            "lastUpdatedAt": stamp,
            "currentRelease": None,
        }
        return dict(account.enrichment), True

    def complete(account: _Account, token: str, verifier: str) -> bool:
        """The callback's work: exchange the verified request token, then sync."""
        with store.lock:
            if (
                account.request_token != token
                or account.verifier is None
                or not _same_secret(verifier, account.verifier)
            ):
                return False
            account.connect_state = "connected"
            account.discogs_username = DISCOGS_ACCOUNT
            account.request_token = account.verifier = None
        # "OAuth callback triggers sync via waitUntil()"
        start_sync(account)
        return True

    def decide(account: _Account, token: str, *, approve: bool) -> str | None:
        """Record the authorize page's decision; the verifier, or None (denied / stale)."""
        with store.lock:
            if account.request_token != token or account.connect_state != "pending":
                return account.verifier if account.request_token == token else None
            if not approve or "discogs-connect-denied" in faults:
                account.connect_state = "denied"
                return None
            account.verifier = secrets.token_urlsafe(12)
            return account.verifier

    # -- request handling -----------------------------------------------------------

    def account_of(request: Request) -> _Account | JSONResponse:
        username = request.query_params.get("username")
        if not username:
            return _error(400, "Username required")
        account = store.accounts.get(username)
        if account is None:
            return _error(404, "User not found")
        return account

    def authorized(request: Request) -> bool:
        return _same_secret(request.headers.get("x-internal-token"), internal_token)

    async def connect(request: Request) -> Response:
        account = account_of(request)
        if isinstance(account, JSONResponse):
            return account
        token = secrets.token_urlsafe(16)
        with store.lock:
            account.request_token, account.verifier = token, None
            account.connect_state = "pending"
        authorize_url = f"{request.base_url}oauth/authorize?{urlencode({'oauth_token': token})}"
        # a redirect to the authorize page, with its address as JSON for a client that
        # does not follow redirects (the console shows it)
        return JSONResponse(
            {"authorize_url": authorize_url, "state": "pending"},
            status_code=302,
            headers={"Location": authorize_url},
        )

    async def authorize_page(request: Request) -> Response:
        token = request.query_params.get("oauth_token", "")
        account = _pending(token)
        if account is None:
            return HTMLResponse("<h1>This authorization request is unknown or finished.</h1>", 404)
        quoted = html.escape(token, quote=True)
        return HTMLResponse(
            "<!doctype html><title>Authorize ListenToMore</title>"
            f"<h1>ListenToMore wants to access the Discogs account {DISCOGS_ACCOUNT}</h1>"
            '<form method="post" action="/oauth/authorize">'
            f'<input type="hidden" name="oauth_token" value="{quoted}">'
            '<button name="decision" value="approve">Authorize</button> '
            '<button name="decision" value="deny">Deny</button></form>'
        )

    async def authorize_decision(request: Request) -> Response:
        fields = parse_qs((await request.body()).decode("utf-8", "replace"))
        token = (fields.get("oauth_token") or [""])[0]
        approve = (fields.get("decision") or [""])[0] == "approve"
        account = _pending(token)
        if account is None:
            return HTMLResponse("<h1>This authorization request is unknown or finished.</h1>", 404)
        verifier = decide(account, token, approve=approve)
        query = (
            {"oauth_token": token, "oauth_verifier": verifier} if verifier else {"denied": token}
        )
        return RedirectResponse(f"/api/auth/discogs/callback?{urlencode(query)}", status_code=302)

    def _pending(token: str) -> _Account | None:
        with store.lock:
            for account in store.accounts.values():
                if token and account.request_token == token:
                    return account
        return None

    async def callback(request: Request) -> Response:
        params = request.query_params
        if "denied" in params:
            return _error(403, "Discogs authorization was denied", state="denied")
        token, verifier = params.get("oauth_token", ""), params.get("oauth_verifier", "")
        account = _pending(token)
        if account is None or not complete(account, token, verifier):
            return _error(400, "Invalid or expired OAuth request token")
        target = f"/u/{account.username}/discogs?success=discogs_connected&syncing=true"
        return RedirectResponse(target, status_code=302)

    async def status(request: Request) -> Response:
        account = account_of(request)
        if isinstance(account, JSONResponse):
            return account
        with store.lock:
            state = account.connect_state
        report: dict[str, Any] = {
            "username": account.username,
            "connected": state == "connected",
            "discogs_username": account.discogs_username,
            "state": state,
        }
        if state == "denied":
            report["message"] = "Access was denied on the Discogs authorize page"
        return JSONResponse(report)

    async def disconnect(request: Request) -> Response:
        if not authorized(request):
            return _error(401, "Unauthorized")
        account = account_of(request)
        if isinstance(account, JSONResponse):
            return account
        with store.lock:
            was = account.connect_state == "connected"
            account.connect_state = "disconnected"
            account.discogs_username = None
            account.request_token = account.verifier = None
            account.sync = account.enrichment = account.stats = None
            account.needs_enrichment = True
        return JSONResponse({"success": True, "disconnected": was})

    def internal_account(request: Request, *, connected: bool = True) -> _Account | JSONResponse:
        if not authorized(request):
            return _error(401, "Unauthorized")
        account = account_of(request)
        if isinstance(account, JSONResponse):
            return account
        if connected and account.connect_state != "connected":
            return _error(400, "User has not connected Discogs")
        return account

    async def sync_start(request: Request) -> Response:
        account = internal_account(request)
        if isinstance(account, JSONResponse):
            return account
        return JSONResponse({"data": start_sync(account)}, status_code=202)

    async def sync_read(request: Request) -> Response:
        account = internal_account(request)
        if isinstance(account, JSONResponse):
            return account
        with store.lock:
            sync = dict(account.sync) if account.sync else None
        if sync is None:
            return _error(404, "No sync has run yet")
        return JSONResponse({"data": sync})

    async def enrich_start(request: Request) -> Response:
        account = internal_account(request)
        if isinstance(account, JSONResponse):
            return account
        progress = start_enrichment(account)
        if progress is None:
            return _error(400, "Collection not synced yet. Please sync your collection first.")
        return JSONResponse({"data": progress}, status_code=202)

    async def enrich_read(request: Request) -> Response:
        account = internal_account(request)
        if isinstance(account, JSONResponse):
            return account
        with store.lock:
            progress = dict(account.enrichment) if account.enrichment else None
        if progress is None:
            return _error(404, "No enrichment has run yet")
        return JSONResponse({"data": progress})

    async def stats(request: Request) -> Response:
        account = internal_account(request)
        if isinstance(account, JSONResponse):
            return account
        if "discogs-slow-stats" in faults:
            await asyncio.sleep(SLOW_STATS_SECONDS)
        with store.lock:
            current = dict(account.stats) if account.stats else None
        if current is None:
            return _error(404, "Collection not synced yet")
        return JSONResponse({"data": current})

    async def user_page(request: Request) -> Response:
        username = html.escape(request.path_params["username"])
        return HTMLResponse(f"<!doctype html><title>{username}</title><h1>{username}</h1>")

    return Starlette(
        routes=[
            Route("/api/auth/discogs/connect", connect, methods=["GET"]),
            Route("/api/auth/discogs/callback", callback, methods=["GET"]),
            Route("/api/auth/discogs/disconnect", disconnect, methods=["POST"]),
            Route("/api/auth/discogs/status", status, methods=["GET"]),
            Route("/oauth/authorize", authorize_page, methods=["GET"]),
            Route("/oauth/authorize", authorize_decision, methods=["POST"]),
            Route("/api/internal/discogs-sync", sync_start, methods=["POST"]),
            Route("/api/internal/discogs-sync", sync_read, methods=["GET"]),
            Route("/api/internal/discogs-enrich", enrich_start, methods=["POST"]),
            Route("/api/internal/discogs-enrich", enrich_read, methods=["GET"]),
            Route("/api/internal/discogs-stats", stats, methods=["GET"]),
            Route("/u/{username}/discogs", user_page, methods=["GET"]),
        ],
        lifespan=lifespan,
        max_body_size=64 * 1024,
    )


class DiscogsCollection(SandboxService):
    """ListenToMore's Discogs routes: connect, sync, enrichment, stats (source runbook 002)."""

    name = "discogs-collection"
    title = "ListenToMore Discogs collection integration"
    variables = ("discogs_url", "discogs_user")
    secrets = ("discogs_internal_token",)
    faults = (
        Fault(
            "discogs-sync-partial",
            f"sync page {PARTIAL_FAILED_PAGE} of 15 fails (Discogs 502): "
            "1,397 of 1,497 releases, status partial",
        ),
        Fault("discogs-sync-failed", "sync fails on page 1 (Discogs 401): status failed"),
        Fault(
            "discogs-enrich-stalls",
            f"enrichment stops at {STALL_AT} of 1,497 and stays running",
        ),
        Fault("discogs-slow-stats", "discogs-stats answers after 4 s (the page polls every 3 s)"),
        Fault(
            "discogs-connect-denied",
            "Discogs denies access on its authorize page (whatever the operator presses)",
        ),
    )
    def __init__(self) -> None:
        self.store = CollectionStore()

    def start(self, host: ServiceHost) -> dict[str, str]:
        self.store = CollectionStore()
        app = create_discogs_app(
            self.store,
            host.faults,
            internal_token=host.secrets["discogs_internal_token"],
            job_seconds=host.job_seconds,
        )
        return {"discogs_url": host.serve("web", app), "discogs_user": SANDBOX_USER}
