"""Browser-approval connect (``ops trigger`` with ``approve``) headless, and the one sandbox
browser every simulated approval goes through (device flow, OAuth callback, connect).

Real sandbox services on loopback; the simulated operator only ever opens the sandbox's
own pages."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import httpx
import pytest

from opsconsole.config import load_config
from opsconsole.headless import run_check
from opsconsole.loader import load_runbook
from opsconsole.operator import HeadlessOperator
from opsconsole.sandbox import Sandbox
from opsconsole.sandbox.browser import BrowserError
from opsconsole.sandbox.discogs_collection import (
    DISCOGS_ACCOUNT,
    SANDBOX_USER,
    CollectionStore,
    DiscogsCollection,
    create_discogs_app,
)
from opsconsole.sandbox.server import LoopbackServers
from opsconsole.sandbox.service import FaultSwitches
from tests.conftest import RUNBOOKS

DISCOGS = RUNBOOKS / "discogs-collection.md"


def connect_state(sandbox: Sandbox) -> str:
    service = next(s for s in sandbox.services if isinstance(s, DiscogsCollection))
    return str(service.store.snapshot(SANDBOX_USER)["connect_state"])


def run_connect(tmp_path: Path, sandbox: Sandbox, operator: HeadlessOperator) -> dict[str, str]:
    runbook = load_runbook(DISCOGS)
    environment = load_config(sandbox.config_path).environment("sandbox")
    report = asyncio.run(run_check(runbook, environment, tmp_path, operator=operator))
    (step,) = [s for s in report.steps if s["id"] == "discogs-connect"]
    return {"status": str(step["status"]), "detail": str(step["detail"])}


def test_check_outside_the_sandbox_cannot_approve_and_says_so(tmp_path: Path) -> None:
    """No person, no sandbox browser: the connect was started but nobody can approve it;
    the step is unknown (never passed, never "failed"), and says what it needs."""
    with Sandbox(services=["discogs-collection"]) as sandbox:
        sandbox.install_keyring()
        step = run_connect(tmp_path, sandbox, HeadlessOperator())
        assert connect_state(sandbox) == "pending"  # nobody approved, not even the sandbox
    assert step["status"] == "unknown", step
    assert "needs a person to approve in a browser" in step["detail"], step


def test_the_simulated_operator_approves_through_the_sandbox_browser(tmp_path: Path) -> None:
    with Sandbox(services=["discogs-collection"]) as sandbox:
        sandbox.install_keyring()
        operator = HeadlessOperator(simulate=True, browser=sandbox.simulated_browser)
        step = run_connect(tmp_path, sandbox, operator)
    assert step["status"] == "passed", step
    assert step["detail"].startswith(f"approved for {DISCOGS_ACCOUNT}; job connected"), step
    assert "(with answers from the simulated operator)" in step["detail"]


@pytest.fixture
def other_site() -> object:
    """A Discogs app on loopback that is not the sandbox's own."""
    store = CollectionStore()
    app = create_discogs_app(store, FaultSwitches(), internal_token=secrets.token_urlsafe(16))
    with LoopbackServers() as servers:
        yield f"http://127.0.0.1:{servers.serve('web', app)}", store


def test_the_sandbox_browser_opens_only_the_sandboxs_own_pages(other_site: object) -> None:
    """Another loopback service is not the sandbox's: neither approved nor pressed."""
    base, store = other_site  # type: ignore[misc]
    with Sandbox(services=["discogs-collection"]) as sandbox:
        start = httpx.get(f"{base}/api/auth/discogs/connect", params={"username": SANDBOX_USER})
        foreign = start.headers["location"]
        said = asyncio.run(sandbox.simulated_browser(foreign))
        assert said == "not opened (not a page of this sandbox)"
        with pytest.raises(BrowserError, match="only opens the sandbox's pages"):
            asyncio.run(sandbox.simulated_browser.press(foreign, "approve"))
        assert store.snapshot(SANDBOX_USER)["connect_state"] == "pending"

        own = httpx.get(f"{sandbox.variables['discogs_url']}/api/auth/discogs/connect",
                        params={"username": SANDBOX_USER}).headers["location"]
        assert asyncio.run(sandbox.simulated_browser(own)) == "approved"
        assert connect_state(sandbox) == "connected"
    # once stopped, the sandbox owns no page at all
    assert asyncio.run(sandbox.simulated_browser(own)) == "not opened (not a page of this sandbox)"
