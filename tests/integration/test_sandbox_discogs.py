"""The sandbox's ListenToMore Discogs integration (source runbook 002) over real loopback HTTP.

Routes, the 1,497 releases, the OAuth 1.0a connect/callback/disconnect and the
messages are the seed's (and the real Worker's, where the seed is silent).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from opsconsole.sandbox import Sandbox
from opsconsole.sandbox.discogs_collection import (
    COLLECTION_SIZE,
    DISCOGS_ACCOUNT,
    SANDBOX_USER,
    STALL_AT,
    CollectionStore,
    create_discogs_app,
)
from opsconsole.sandbox.server import LoopbackServers
from opsconsole.sandbox.service import FaultSwitches

USER = {"username": SANDBOX_USER}


class Site:
    """A Discogs app of its own; nobody answers the authorize page but the test."""

    def __init__(self, http: httpx.Client, token: str, store: CollectionStore) -> None:
        self.http, self.store = http, store
        self.internal = {"X-Internal-Token": token}

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.get(path, params=USER, headers=self.internal, **kwargs)

    def post(self, path: str) -> httpx.Response:
        return self.http.post(path, params=USER, headers=self.internal)

    def connect(self, decision: str = "approve") -> httpx.Response:
        start = self.http.get("/api/auth/discogs/connect", params=USER)
        assert start.status_code == 302
        token = parse_qs(urlsplit(start.headers["location"]).query)["oauth_token"][0]
        decided = self.http.post(
            "/oauth/authorize", data={"oauth_token": token, "decision": decision}
        )
        assert decided.status_code == 302
        return self.http.get(decided.headers["location"])

    def wait(self, path: str, until: Any) -> dict[str, Any]:
        while True:
            data: dict[str, Any] = self.get(path).json()["data"]
            if until(data):
                return data
            time.sleep(0.02)


@contextlib.contextmanager
def site(*faults: str, job_seconds: float = 0.3) -> Iterator[Site]:
    store, token = CollectionStore(), secrets.token_urlsafe(16)
    app = create_discogs_app(
        store, FaultSwitches(faults), internal_token=token, job_seconds=job_seconds,
    )
    with LoopbackServers() as servers:
        port = servers.serve("web", app)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            yield Site(http, token, store)


def done(data: dict[str, Any]) -> bool:
    return data["status"] != "running"


# --------------------------------------------------------------------------- connect


def test_connect_redirects_to_the_authorize_page_with_approve_and_deny() -> None:
    with site() as web:
        start = web.http.get("/api/auth/discogs/connect", params=USER)
        assert start.status_code == 302
        location = start.headers["location"]
        assert urlsplit(location).path == "/oauth/authorize"
        assert start.json()["authorize_url"] == location
        page = web.http.get(location)
        assert page.status_code == 200
        assert 'value="approve"' in page.text and 'value="deny"' in page.text
        assert web.http.get("/api/auth/discogs/status", params=USER).json()["state"] == "pending"


def test_approving_connects_and_starts_the_sync() -> None:
    with site() as web:
        callback = web.connect("approve")
        assert callback.status_code == 302
        assert callback.headers["location"] == (
            f"/u/{SANDBOX_USER}/discogs?success=discogs_connected&syncing=true"
        )
        state = web.http.get("/api/auth/discogs/status", params=USER).json()
        assert state == {
            "username": SANDBOX_USER, "connected": True,
            "discogs_username": DISCOGS_ACCOUNT, "state": "connected",
        }
        # "OAuth callback triggers sync via waitUntil()"
        assert web.get("/api/internal/discogs-sync").json()["data"]["syncId"]


def test_denying_leaves_the_account_disconnected() -> None:
    with site() as web:
        callback = web.connect("deny")
        assert callback.status_code == 403
        assert callback.json()["error"] == "Discogs authorization was denied"
        state = web.http.get("/api/auth/discogs/status", params=USER).json()
        assert (state["connected"], state["state"]) == (False, "denied")
        assert "denied" in state["message"]
        assert web.post("/api/internal/discogs-sync").json() == {
            "error": "User has not connected Discogs"
        }


def test_a_forged_verifier_is_refused() -> None:
    with site() as web:
        start = web.http.get("/api/auth/discogs/connect", params=USER)
        token = parse_qs(urlsplit(start.headers["location"]).query)["oauth_token"][0]
        forged = web.http.get(
            "/api/auth/discogs/callback", params={"oauth_token": token, "oauth_verifier": "x"}
        )
        assert forged.status_code == 400
        assert web.http.get("/api/auth/discogs/status", params=USER).json()["connected"] is False


@pytest.mark.parametrize(("fault", "state", "said"), [
    (None, "connected", "approved"),
    ("discogs-connect-denied", "denied", "not approved: the page answered 403"),
])
def test_the_sandbox_waits_for_a_person_then_discogs_decides(
    fault: str | None, state: str, said: str
) -> None:
    """Nobody answers the authorize page by itself; pressing approve in the sandbox's
    browser connects, unless Discogs denies access (the fault)."""
    with Sandbox([fault] if fault else [], services=["discogs-collection"]) as running:
        base = running.variables["discogs_url"]
        with httpx.Client(base_url=base, timeout=10) as http:
            start = http.get("/api/auth/discogs/connect", params=USER)
            assert start.status_code == 302
            assert http.get("/api/auth/discogs/status", params=USER).json()["state"] == "pending"
            assert asyncio.run(running.simulated_browser(start.headers["location"])) == said
            assert http.get("/api/auth/discogs/status", params=USER).json()["state"] == state


def test_disconnect_needs_the_token_and_forgets_everything() -> None:
    with site() as web:
        web.connect()
        web.wait("/api/internal/discogs-sync", done)
        assert web.http.post("/api/auth/discogs/disconnect", params=USER).status_code == 401
        gone = web.post("/api/auth/discogs/disconnect")
        assert gone.json() == {"success": True, "disconnected": True}
        state = web.http.get("/api/auth/discogs/status", params=USER).json()
        assert (state["connected"], state["discogs_username"]) == (False, None)
        assert web.get("/api/internal/discogs-stats").status_code == 400


# --------------------------------------------------------------------------- internal API


def test_internal_routes_need_the_token_and_a_known_user() -> None:
    with site() as web:
        for path in ("/api/internal/discogs-sync", "/api/internal/discogs-enrich",
                     "/api/internal/discogs-stats"):
            assert web.http.get(path, params=USER).status_code == 401
            wrong = web.http.get(path, params=USER, headers={"X-Internal-Token": "nope"})
            assert wrong.status_code == 401
            missing = web.http.get(path, headers=web.internal)
            assert (missing.status_code, missing.json()) == (400, {"error": "Username required"})
            nobody = web.http.get(path, params={"username": "nobody"}, headers=web.internal)
            assert (nobody.status_code, nobody.json()) == (404, {"error": "User not found"})
            assert web.get(path).status_code == 400  # not connected yet


def test_sync_paginates_1497_releases_in_15_pages() -> None:
    with site() as web:
        web.connect()
        sync = web.wait("/api/internal/discogs-sync", done)
        assert sync["status"] == "completed" and sync["success"] is True
        assert (sync["releaseCount"], sync["totalReleases"]) == (COLLECTION_SIZE, 1497)
        assert (sync["pages"], sync["pagesFetched"], sync["per_page"]) == (15, 15, 100)
        sizes = [page["releases"] for page in sync["results"]]
        assert sizes == [100] * 14 + [97]
        assert sync["cacheKey"] == "discogs:collection:21f67178c64bf648a635e46935ee61c1"


def test_a_second_sync_press_joins_the_running_one() -> None:
    with site(job_seconds=2) as web:
        web.connect()
        first = web.post("/api/internal/discogs-sync")
        second = web.post("/api/internal/discogs-sync")
        assert first.status_code == second.status_code == 202
        assert first.json()["data"]["syncId"] == second.json()["data"]["syncId"]
        assert second.json()["data"]["joined"] is True


def test_sync_partial_is_short_by_the_failed_page() -> None:
    with site("discogs-sync-partial") as web:
        web.connect()
        sync = web.wait("/api/internal/discogs-sync", done)
        assert sync["status"] == "partial" and sync["success"] is False
        assert sync["releaseCount"] == 1397
        assert sync["error"] == "1397 of 1497 releases synced"
        assert sync["warnings"] == ["page 9 of 15: Discogs returned 502 Bad Gateway"]
        assert [p["page"] for p in sync["results"] if p["status"] == "error"] == [9]
        assert web.get("/api/internal/discogs-stats").json()["data"]["totalItems"] == 1397


def test_sync_failed_says_so_and_leaves_no_stats() -> None:
    with site("discogs-sync-failed") as web:
        web.connect()
        sync = web.wait("/api/internal/discogs-sync", done)
        assert (sync["status"], sync["error"]) == ("failed", "Failed to sync collection")
        stats = web.get("/api/internal/discogs-stats")
        assert (stats.status_code, stats.json()) == (404, {"error": "Collection not synced yet"})


def test_enrichment_progress_is_readable_while_it_runs() -> None:
    with site(job_seconds=0.4) as web:
        web.connect()
        web.wait("/api/internal/discogs-sync", done)
        seen = []
        while True:
            progress = web.get("/api/internal/discogs-enrich").json()["data"]
            seen.append(progress["processed"])
            if progress["status"] != "running":
                break
            assert progress["total"] == COLLECTION_SIZE
            time.sleep(0.02)
        assert progress["status"] == "completed" and progress["processed"] == COLLECTION_SIZE
        assert progress["enriched"] + progress["skipped"] == COLLECTION_SIZE
        assert seen == sorted(seen) and len(set(seen)) > 3, seen
        assert progress["rate_per_minute"] > 0
        # a press after it finished, with nothing new synced, starts nothing
        again = web.post("/api/internal/discogs-enrich").json()["data"]
        assert (again["status"], again["startedAt"]) == ("completed", progress["startedAt"])
        stats = web.get("/api/internal/discogs-stats").json()["data"]
        assert (stats["totalItems"], stats["enriched"]) == (1497, True)


def test_enrichment_stall_stops_advancing_and_stays_running() -> None:
    with site("discogs-enrich-stalls", job_seconds=0.2) as web:
        web.connect()
        web.wait("/api/internal/discogs-sync", done)
        stalled = web.wait("/api/internal/discogs-enrich", lambda d: d["processed"] >= STALL_AT)
        # a whole enrichment's time later it has not moved
        time.sleep(1.0)
        later = web.get("/api/internal/discogs-enrich").json()["data"]
        assert later["status"] == "running"
        assert later["processed"] == stalled["processed"] < COLLECTION_SIZE
        assert later["lastUpdatedAt"] == stalled["lastUpdatedAt"]


def test_stats_before_any_sync_is_404() -> None:
    with site() as web:
        start = web.http.get("/api/auth/discogs/connect", params=USER)
        assert start.status_code == 302
        web.store.accounts[SANDBOX_USER].connect_state = "connected"
        stats = web.get("/api/internal/discogs-stats")
        assert (stats.status_code, stats.json()) == (404, {"error": "Collection not synced yet"})


@pytest.mark.parametrize(("button", "state"), [("approve", "connected"), ("deny", "denied")])
def test_the_sandbox_browser_can_answer_the_authorize_page(button: str, state: str) -> None:
    """The page works with the simulated operator's browser (questions with ``visit``)."""
    from opsconsole.sandbox.browser import SandboxBrowser

    with site() as web:
        browser = SandboxBrowser(lambda: {str(web.http.base_url).rstrip("/")})
        start = web.http.get("/api/auth/discogs/connect", params=USER)
        sent_to = asyncio.run(browser.press(start.headers["location"], button))
        assert urlsplit(sent_to).path == "/api/auth/discogs/callback"
        web.http.get(sent_to)
        assert web.http.get("/api/auth/discogs/status", params=USER).json()["state"] == state
