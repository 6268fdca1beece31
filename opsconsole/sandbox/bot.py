"""The Chopsticks Discord bot (source runbook 003): the sandbox service.

What the seed's smoke tests, rate-limit tests, monitoring and rollback triggers
talk to, on loopback:

- ``GET /health``: ``gateway`` (``connected``), ``db``, ``redis``, ``lavalink``
  (``ok``), within the seed's 2 s;
- ``GET /metrics``: Prometheus text format (``# HELP``) from this instance's own
  ``CollectorRegistry``: command counters by ``status`` and a latency histogram,
  fed by steady synthetic traffic so ``rate()`` and ``histogram_quantile()``
  have data (the Grafana panels: error rate < 1 %, P99 < 2 s; rollback at
  > 5 % and > 5 s), database queries by status, rate-limit hits, the gateway;
- ``GET /admin/db-ping`` with ``Authorization: Bearer $ADMIN_API_SECRET``;
- ``POST /interactions``, the internal test shim (``X-Test-Auth:
  $E2E_TEST_SECRET``) with the seed's per-category limits per user: ``mod`` 10
  per 10 s, ``user`` 20 per 60 s, ``admin`` 5 per 60 s, ``ai`` 5 per 60 s; the
  request over the limit gets ``429`` and ``Retry-After``. The seed names
  ``economy`` and ``music`` as categories without numbers: their commands are
  answered and not limited here.

Discord, Postgres, Redis and Lavalink themselves are not here: their state is
what ``/health`` reports, switched by the faults.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import math
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .service import Fault, FaultSwitches, SandboxService, ServiceHost

__all__ = [
    "COMMAND_CATEGORIES",
    "LATENCY_BUCKETS",
    "RATE_LIMITS",
    "BotMetrics",
    "DiscordBot",
    "RateLimiter",
    "RateLimit",
    "create_bot_app",
]

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class RateLimit:
    requests: int
    window_seconds: float


#: the seed's "Rate Limit Tests": 11 mod in 10 s, 21 user in 60 s, 6 admin / 6 ai in 60 s
RATE_LIMITS: dict[str, RateLimit] = {
    "mod": RateLimit(10, 10.0),
    "user": RateLimit(20, 60.0),
    "admin": RateLimit(5, 60.0),
    "ai": RateLimit(5, 60.0),
}

#: command name -> rate category (the seed's commands; economy and music have no numbers)
COMMAND_CATEGORIES: dict[str, str] = {
    "note": "mod",
    "massban": "mod",
    "lockdown": "mod",
    "history": "mod",
    "warn": "mod",
    "help": "user",
    "convert": "user",
    "suggest": "user",
    "setup": "admin",
    "ai": "ai",
    "trade": "economy",
    "music": "music",
}

#: every rate category the seed names
CATEGORIES = ("user", "mod", "admin", "ai", "economy", "music")

#: seconds; edges at the seed's 2 s and 5 s so the quantiles cross them where they should
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 2.5, 5.0, 7.5, 10.0)

#: synthetic commands per second the bot "serves" in the background
TRAFFIC_PER_SECOND = 20
#: what a normal command takes, cycled (P99 about 1 s: well under the 2 s gate)
_NORMAL_LATENCIES = (0.03, 0.05, 0.08, 0.12, 0.2, 0.3, 0.45, 0.6, 0.7, 0.9)
#: normal: 1 command in 400 fails (0.25 %, under the 1 % gate)
_NORMAL_ERROR_EVERY = 400
#: bot-error-spike: 1 in 12 fails (8.3 %: over 1 % and over the 5 % rollback trigger)
_SPIKE_ERROR_EVERY = 12
#: bot-latency-spike: 1 in 20 takes 6.5 s (5 %: P99 lands in the 5-7.5 s bucket, > 5 s)
_SPIKE_SLOW_EVERY = 20
_SPIKE_LATENCY = 6.5
#: bot-slow-health: /health answers after this (over the seed's 2 s)
SLOW_HEALTH_SECONDS = 3.0
_MAX_BODY_BYTES = 64 * 1024
_DEFAULT_USER = "sandbox-user"


class BotMetrics:
    """The bot's metrics in one registry of its own (two sandboxes never share samples)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.commands = Counter(
            "chopsticks_commands",
            "Slash commands handled, by rate category and outcome (ok or error)",
            ["category", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "chopsticks_command_duration_seconds",
            "Time from interaction received to response sent",
            ["category"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.db_queries = Counter(
            "chopsticks_db_queries",
            "Database queries, by outcome (ok or error)",
            ["status"],
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "chopsticks_rate_limit_hits",
            "Interactions rejected with 429 by the rate-limit middleware",
            ["category"],
            registry=self.registry,
        )
        self.gateway = Gauge(
            "chopsticks_gateway_connected",
            "1 while the Discord gateway connection is up",
            registry=self.registry,
        )
        self.gateway.set(1)
        # every series exists from the start at 0, so an error ratio is 0, never "no data"
        for category in CATEGORIES:
            self.latency.labels(category=category)
            self.rate_limited.labels(category=category)
            for status in ("ok", "error"):
                self.commands.labels(category=category, status=status)
        for status in ("ok", "error"):
            self.db_queries.labels(status=status)

    def command(self, category: str, seconds: float, *, ok: bool) -> None:
        self.commands.labels(category=category, status="ok" if ok else "error").inc()
        self.latency.labels(category=category).observe(seconds)
        self.db_queries.labels(status="ok").inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


@dataclass
class _Bucket:
    started: float
    count: int = 0


@dataclass
class RateLimiter:
    """Fixed windows per (user, category): the window starts with a bucket's first request."""

    limits: dict[str, RateLimit]
    clock: Clock = time.monotonic
    _buckets: dict[tuple[str, str], _Bucket] = field(default_factory=dict)

    def take(self, user: str, category: str) -> float | None:
        """None when the request may pass, else the seconds until the window resets."""
        limit = self.limits.get(category)
        if limit is None:
            return None
        now = self.clock()
        bucket = self._buckets.get((user, category))
        if bucket is None or now - bucket.started >= limit.window_seconds:
            bucket = self._buckets[(user, category)] = _Bucket(started=now)
        if bucket.count >= limit.requests:
            return max(bucket.started + limit.window_seconds - now, 0.0)
        bucket.count += 1
        return None


def _same_secret(presented: str | None, expected: str) -> bool:
    if not presented:
        return False
    return hmac.compare_digest(presented.encode(), expected.encode())


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


def _synthetic_command(n: int, faults: FaultSwitches) -> tuple[str, float, bool]:
    """The n-th background command: (category, seconds, ok); deterministic, no randomness."""
    categories = ("user", "mod", "user", "music", "ai", "user", "economy", "admin")
    category = categories[n % len(categories)]
    seconds = _NORMAL_LATENCIES[n % len(_NORMAL_LATENCIES)]
    if "bot-latency-spike" in faults and n % _SPIKE_SLOW_EVERY == 0:
        seconds = _SPIKE_LATENCY
    every = _SPIKE_ERROR_EVERY if "bot-error-spike" in faults else _NORMAL_ERROR_EVERY
    return category, seconds, n % every != every - 1


def create_bot_app(
    faults: FaultSwitches,
    *,
    admin_api_secret: str,
    e2e_test_secret: str,
    clock: Clock = time.monotonic,
    traffic_per_second: float = TRAFFIC_PER_SECOND,
    metrics: BotMetrics | None = None,
) -> Starlette:
    """The bot's HTTP side; ``clock`` drives the rate-limit windows (tests pass their own).

    ``traffic_per_second`` synthetic commands are recorded while the app runs (from its
    lifespan, stopped with it); 0 turns the background traffic off."""
    metrics = metrics or BotMetrics()
    limiter = RateLimiter(RATE_LIMITS, clock)

    async def traffic() -> None:
        n = 0
        while True:
            await asyncio.sleep(1 / traffic_per_second)
            category, seconds, ok = _synthetic_command(n, faults)
            metrics.command(category, seconds, ok=ok)
            n += 1

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(traffic()) if traffic_per_second > 0 else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def health(request: Request) -> Response:
        if "bot-slow-health" in faults:
            await asyncio.sleep(SLOW_HEALTH_SECONDS)
        report = {
            "gateway": "connected",
            "db": "ok",
            "redis": "error: connection refused" if "bot-redis-down" in faults else "ok",
            "lavalink": "ok",
        }
        healthy = all(value in ("ok", "connected") for value in report.values())
        return JSONResponse({"status": "ok" if healthy else "degraded", **report})

    async def metrics_endpoint(request: Request) -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    async def db_ping(request: Request) -> Response:
        authorization = request.headers.get("authorization", "")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not _same_secret(token.strip(), admin_api_secret):
            return _error(401, "Unauthorized")
        metrics.db_queries.labels(status="ok").inc()
        return JSONResponse({"db": "ok", "result": 1})

    async def interactions(request: Request) -> Response:
        if not _same_secret(request.headers.get("x-test-auth"), e2e_test_secret):
            return _error(401, "Invalid or missing X-Test-Auth")
        started = time.perf_counter()
        try:
            body = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError):
            return _error(400, "Request body must be a JSON interaction")
        if not isinstance(body, dict):
            return _error(400, "Request body must be a JSON interaction")
        if body.get("type") == 1:  # PING
            return JSONResponse({"type": 1})
        data = body.get("data")
        name = data.get("name") if isinstance(data, dict) else None
        if body.get("type") != 2 or not isinstance(name, str):
            return _error(400, "Expected an application command (type 2) with data.name")
        category = COMMAND_CATEGORIES.get(name)
        if category is None:
            return _error(400, f"Unknown command: {name[:64]}")
        user = _user_of(body, request)
        retry_after = limiter.take(user, category)
        if retry_after is not None:
            metrics.rate_limited.labels(category=category).inc()
            limit = RATE_LIMITS[category]
            return JSONResponse(
                {
                    "error": "rate_limited",
                    "message": "You are being rate limited.",
                    "category": category,
                    "limit": limit.requests,
                    "window_seconds": limit.window_seconds,
                    "retry_after": round(retry_after, 3),
                },
                status_code=429,
                headers={"Retry-After": str(max(1, math.ceil(retry_after)))},
            )
        metrics.command(category, time.perf_counter() - started, ok=True)
        return JSONResponse(
            {"type": 4, "data": {"content": f"/{name} ok", "flags": 64}},
        )

    return Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
            Route("/admin/db-ping", db_ping, methods=["GET"]),
            Route("/interactions", interactions, methods=["POST"]),
        ],
        lifespan=lifespan,
        max_body_size=_MAX_BODY_BYTES,
    )


def _user_of(body: dict[str, Any], request: Request) -> str:
    """Who invoked it: ``member.user.id`` (in a guild), ``user.id`` (in a DM), else
    ``X-Test-User``; the seed's payload names no user: one default test user."""
    member = body.get("member")
    for holder in (member.get("user") if isinstance(member, dict) else None, body.get("user")):
        if isinstance(holder, dict) and isinstance(holder.get("id"), str | int):
            return str(holder["id"])[:64]
    return request.headers.get("x-test-user", _DEFAULT_USER)[:64]


class DiscordBot(SandboxService):
    """The Chopsticks bot's HTTP side: health, metrics, db-ping and the interaction shim."""

    name = "discord-bot"
    title = "Chopsticks Discord bot (canary)"
    variables = ("bot_url", "discord_test_guild_id")
    secrets = ("admin_api_secret", "e2e_test_secret")
    #: the Prometheus launcher scrapes services that have one
    metrics_path = "/metrics"
    faults = (
        Fault("bot-redis-down", "Redis is unreachable: /health reports redis as an error"),
        Fault(
            "bot-error-spike",
            "1 command in 12 fails (8.3 %: over the 1 % gate and the 5 % rollback trigger)",
        ),
        Fault(
            "bot-latency-spike",
            "1 command in 20 takes 6.5 s (P99 over the 2 s gate and the 5 s rollback trigger)",
        ),
        Fault("bot-slow-health", "/health answers after 3 s (over the 2 s budget)"),
    )

    def __init__(self) -> None:
        self.metrics = BotMetrics()

    def start(self, host: ServiceHost) -> dict[str, str]:
        self.metrics = BotMetrics()
        app = create_bot_app(
            host.faults,
            admin_api_secret=host.secrets["admin_api_secret"],
            e2e_test_secret=host.secrets["e2e_test_secret"],
            metrics=self.metrics,
        )
        return {
            "bot_url": host.serve("bot", app),
            "discord_test_guild_id": "100000000000000001",
        }
