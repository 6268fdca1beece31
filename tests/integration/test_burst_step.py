"""``ops burst`` against a loopback rate-limiting app (the seed's per-user, per-category
fixed windows): 429 + Retry-After on the 11th mod request, users isolated, reset."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from step_support import run_all

from opsconsole.run import StepStatus
from opsconsole.sandbox.server import LoopbackServers

#: command -> category; category -> (limit, window seconds), as in the seed (quick is ours)
COMMANDS = {"note": "mod", "ping": "user", "quick": "quick"}
LIMITS = {"mod": (10, 10.0), "user": (20, 60.0), "quick": (3, 1.0)}


class Limiter:
    def __init__(self) -> None:
        self.windows: dict[tuple[str, str], tuple[float, int]] = {}
        self.seen: list[tuple[str, str, str]] = []

    async def interactions(self, request: Request) -> JSONResponse:
        body = await request.json()
        user = request.headers.get("x-test-user", "")
        command = body["data"]["name"]
        self.seen.append((user, command, str(body.get("nonce", ""))))
        category = COMMANDS[command]
        limit, window = LIMITS[category]
        if request.url.path.endswith("/unlimited"):
            return JSONResponse({"type": 4})
        now = time.monotonic()
        started, used = self.windows.get((user, category), (now, 0))
        if now - started >= window:
            started, used = now, 0
        if used >= limit:
            headers = {} if request.url.path.endswith("/no-retry-after") else {
                "Retry-After": str(math.ceil(window - (now - started)))
            }
            return JSONResponse({"error": "rate limited"}, status_code=429, headers=headers)
        self.windows[(user, category)] = (started, used + 1)
        return JSONResponse({"type": 4, "data": {"content": f"{command} ok"}})


@pytest.fixture
def limiter() -> Iterator[tuple[str, Limiter]]:
    limiter = Limiter()
    app = Starlette(
        routes=[
            Route("/interactions", limiter.interactions, methods=["POST"]),
            Route("/interactions/{variant}", limiter.interactions, methods=["POST"]),
        ]
    )
    with LoopbackServers() as servers:
        yield f"http://127.0.0.1:{servers.serve('shim', app)}", limiter


def burst(step_id: str, extra: str, path: str = "/interactions", command: str = "note") -> str:
    return f"""```ops burst
id: {step_id}
url: "{{{{ bot_url }}}}{path}"
headers:
  X-Test-User: "{{{{ burst_user }}}}"
json: {{type: 2, data: {{name: {command}}}, nonce: "{{{{ burst_index }}}}"}}
{extra.strip()}
```
"""


def runbook(*blocks: str) -> str:
    return "---\nvariables: [bot_url]\n---\n# Rate limits\n\n" + "\n".join(blocks)


async def test_eleventh_mod_request_is_limited_and_users_are_isolated(
    tmp_path: Path, limiter: tuple[str, Limiter]
) -> None:
    url, app = limiter
    got = await run_all(
        tmp_path,
        runbook(burst("mod", "user: alice\nother_user: bob\ncount: 11\nwindow: 10s")),
        {"bot_url": url},
    )
    result = got["mod"]
    assert result.status is StepStatus.PASSED, result.detail
    assert result.detail.startswith("10 passed, #11 got 429 (Retry-After ")
    assert "users isolated" in result.detail
    # the templates reached the wire: each request as its user, numbered
    assert app.seen[:11] == [("alice", "note", str(n)) for n in range(1, 12)]
    assert app.seen[11] == ("bob", "note", "other")
    table = result.artifact("table")
    assert [row[2] for row in table.rows] == ["200"] * 10 + ["429", "200"]
    assert table.rows[10][3] != "-" and table.rows[10][-1] == "ok"


async def test_counter_resets_after_the_window(
    tmp_path: Path, limiter: tuple[str, Limiter]
) -> None:
    url, _ = limiter
    got = await run_all(
        tmp_path,
        runbook(burst("quick", "user: carol\ncount: 4\nreset_after: 1100ms", command="quick")),
        {"bot_url": url},
    )
    assert got["quick"].status is StepStatus.PASSED, got["quick"].detail
    assert "limit resets" in got["quick"].detail
    assert got["quick"].artifact("table").rows[-1][:3] == ["reset", "carol", "200"]


async def test_limits_that_do_not_hold_fail_with_what_happened(
    tmp_path: Path, limiter: tuple[str, Limiter]
) -> None:
    url, _ = limiter
    got = await run_all(
        tmp_path,
        runbook(
            burst("unlimited", "user: dave\ncount: 11", path="/interactions/unlimited"),
            burst("no_header", "user: erin\ncount: 11", path="/interactions/no-retry-after"),
            burst("early", "user: frank\ncount: 12"),
            # a reset that never comes: the window is 10 s, we wait 200 ms
            burst("no_reset", "user: gina\ncount: 11\nreset_after: 200ms"),
        ),
        {"bot_url": url},
    )
    assert got["unlimited"].status is StepStatus.FAILED
    assert got["unlimited"].detail == (
        "request 11 of 11 as dave got 200, expected 429 with Retry-After: "
        "the limit was not enforced"
    )
    assert got["no_header"].status is StepStatus.FAILED
    assert got["no_header"].detail == "request 11 got 429 without a Retry-After header"
    assert got["early"].status is StepStatus.FAILED
    assert got["early"].detail == (
        "request 11 of 12 as frank got 429 (rejected early): the first 11 should pass"
    )
    assert got["no_reset"].status is StepStatus.FAILED
    assert "the counter did not reset" in got["no_reset"].detail
