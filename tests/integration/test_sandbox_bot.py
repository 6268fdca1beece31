"""The sandbox's Chopsticks bot (source runbook 003) over real loopback HTTP.

Every key, status code, header and limit asserted here is one the seed's smoke
tests, rate-limit table, monitoring or rollback triggers state.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from opsconsole.sandbox import Sandbox
from opsconsole.sandbox.bot import LATENCY_BUCKETS, RATE_LIMITS, DiscordBot, create_bot_app
from opsconsole.sandbox.server import LoopbackServers
from opsconsole.sandbox.service import FaultSwitches

HEALTH_KEYS = {"gateway": "connected", "db": "ok", "redis": "ok", "lavalink": "ok"}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def bot() -> Iterator[Sandbox]:
    with Sandbox(services=["discord-bot"]) as running:
        yield running


@pytest.fixture
def client(bot: Sandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=bot.variables["bot_url"], timeout=10) as http:
        yield http


class Shim:
    """A bot app of its own, with a clock the test moves and no background traffic."""

    def __init__(self, http: httpx.Client, clock: FakeClock, secret: str) -> None:
        self.http, self.clock, self.secret = http, clock, secret

    def command(self, name: str, user: str = "user-a") -> httpx.Response:
        return self.http.post(
            "/interactions",
            json={"type": 2, "data": {"name": name}, "guild_id": "1",
                  "member": {"user": {"id": user}}},
            headers={"X-Test-Auth": self.secret},
        )


@pytest.fixture
def shim() -> Iterator[Shim]:
    clock, secret = FakeClock(), secrets.token_urlsafe(16)
    app = create_bot_app(
        FaultSwitches(), admin_api_secret=secrets.token_urlsafe(16), e2e_test_secret=secret,
        clock=clock, traffic_per_second=0,
    )
    with LoopbackServers() as servers:
        port = servers.serve("bot", app)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            yield Shim(http, clock, secret)


def scrape(http: httpx.Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = http.get("/metrics")
    assert response.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def error_ratio(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> float:
    errors = sum(v for (n, labels), v in samples.items()
                 if n == "chopsticks_commands_total" and ("status", "error") in labels)
    total = sum(v for (n, _), v in samples.items() if n == "chopsticks_commands_total")
    return errors / total


def p99(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> float:
    """histogram_quantile(0.99, sum by (le) (...)) over the cumulative buckets, as PromQL does."""
    buckets: dict[float, float] = {}
    for (name, labels), value in samples.items():
        if name == "chopsticks_command_duration_seconds_bucket":
            le = float(dict(labels)["le"])
            buckets[le] = buckets.get(le, 0.0) + value
    edges = sorted(buckets)
    rank = 0.99 * buckets[float("inf")]
    lower, below = 0.0, 0.0
    for edge in edges:
        if buckets[edge] >= rank:
            if edge == float("inf"):
                return lower
            return lower + (edge - lower) * (rank - below) / (buckets[edge] - below)
        lower, below = edge, buckets[edge]
    raise AssertionError("no bucket reached the rank")


@contextlib.contextmanager
def traffic_app(faults: FaultSwitches) -> Iterator[httpx.Client]:
    """A bot app serving 1,000 synthetic commands a second, scraped once 600 are in."""
    app = create_bot_app(
        faults, admin_api_secret="a" * 16, e2e_test_secret="b" * 16, traffic_per_second=1000
    )
    with LoopbackServers() as servers:
        port = servers.serve("bot", app)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            yield http


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape_after(http: httpx.Client, commands: int) -> Samples:
    while True:
        samples = scrape(http)
        if sum(v for (n, _), v in samples.items() if n == "chopsticks_commands_total") >= commands:
            return samples
        time.sleep(0.05)


# --------------------------------------------------------------------------- smoke tests


def test_health_reports_the_four_sub_checks(client: httpx.Client) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", **HEALTH_KEYS}


def test_redis_down_shows_in_health_only_for_redis(bot: Sandbox, client: httpx.Client) -> None:
    bot.set_fault("bot-redis-down", True)
    try:
        body = client.get("/health").json()
    finally:
        bot.set_fault("bot-redis-down", False)
    assert body["redis"] != "ok" and "connection refused" in body["redis"]
    assert body["status"] == "degraded"
    assert {k: body[k] for k in ("gateway", "db", "lavalink")} == {
        "gateway": "connected", "db": "ok", "lavalink": "ok"
    }
    assert client.get("/health").json()["redis"] == "ok"


def test_metrics_are_prometheus_text_with_help_counters_and_histogram(client: httpx.Client) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert "# HELP chopsticks_commands_total" in response.text
    assert response.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    assert families["chopsticks_command_duration_seconds"].type == "histogram"
    assert {"chopsticks_commands", "chopsticks_db_queries", "chopsticks_rate_limit_hits",
            "chopsticks_gateway_connected"} <= families.keys()
    les = {s.labels["le"] for s in families["chopsticks_command_duration_seconds"].samples
           if s.name.endswith("_bucket")}
    # bucket edges at the seed's 2 s gate and 5 s rollback trigger
    assert {"2.0", "5.0", "+Inf"} <= les
    assert 2.0 in LATENCY_BUCKETS and 5.0 in LATENCY_BUCKETS
    assert DiscordBot.metrics_path == "/metrics"


def test_background_traffic_keeps_counters_moving(client: httpx.Client) -> None:
    first = scrape_after(client, 1)
    total = sum(v for (n, _), v in first.items() if n == "chopsticks_commands_total")
    later = scrape_after(client, total + 5)
    assert sum(v for (n, _), v in later.items() if n == "chopsticks_commands_total") > total


def test_each_sandbox_has_its_own_registry() -> None:
    with Sandbox(services=["discord-bot"]) as one, Sandbox(services=["discord-bot"]) as two:
        first, second = one.services[0], two.services[0]
        assert isinstance(first, DiscordBot) and isinstance(second, DiscordBot)
        assert first.metrics.registry is not second.metrics.registry


def test_normal_traffic_is_under_the_gates() -> None:
    with traffic_app(FaultSwitches()) as http:
        samples = scrape_after(http, 600)
        assert 0 < error_ratio(samples) < 0.01
        assert p99(samples) < 2.0


def test_error_spike_is_over_the_rollback_trigger() -> None:
    with traffic_app(FaultSwitches(["bot-error-spike"])) as http:
        assert error_ratio(scrape_after(http, 600)) > 0.05


def test_latency_spike_puts_p99_over_the_rollback_trigger() -> None:
    with traffic_app(FaultSwitches(["bot-latency-spike"])) as http:
        assert p99(scrape_after(http, 600)) > 5.0


def test_db_ping_needs_the_bearer_secret(bot: Sandbox, client: httpx.Client) -> None:
    assert client.get("/admin/db-ping").status_code == 401
    wrong = client.get("/admin/db-ping", headers={"Authorization": "Bearer not-the-secret"})
    assert wrong.status_code == 401
    secret = bot.secret_values["admin_api_secret"]
    basic = client.get("/admin/db-ping", headers={"Authorization": f"Basic {secret}"})
    assert basic.status_code == 401
    ok = client.get("/admin/db-ping", headers={"Authorization": f"Bearer {secret}"})
    assert ok.status_code == 200 and ok.json()["db"] == "ok"
    assert secret not in ok.text


# --------------------------------------------------------------------------- rate limits


def test_interactions_need_the_test_auth(shim: Shim) -> None:
    response = shim.http.post("/interactions", json={"type": 2, "data": {"name": "note"}})
    assert response.status_code == 401
    wrong = shim.http.post(
        "/interactions", json={"type": 2, "data": {"name": "note"}},
        headers={"X-Test-Auth": "wrong"},
    )
    assert wrong.status_code == 401


def test_the_seeds_payload_is_answered(shim: Shim) -> None:
    # smoke-rate-limit.mjs's payload names no user: one default test user
    response = shim.http.post(
        "/interactions", json={"type": 2, "data": {"name": "note"}, "guild_id": "1"},
        headers={"X-Test-Auth": shim.secret},
    )
    assert response.status_code == 200
    assert response.json()["type"] == 4


@pytest.mark.parametrize(
    ("command", "category", "allowed"),
    [("note", "mod", 10), ("help", "user", 20), ("setup", "admin", 5), ("ai", "ai", 5)],
)
def test_the_request_over_the_limit_is_429_with_retry_after(
    shim: Shim, command: str, category: str, allowed: int
) -> None:
    assert RATE_LIMITS[category].requests == allowed
    codes = [shim.command(command).status_code for _ in range(allowed)]
    assert codes == [200] * allowed
    rejected = shim.command(command)
    assert rejected.status_code == 429
    window = RATE_LIMITS[category].window_seconds
    assert rejected.headers["Retry-After"] == str(int(window))
    assert rejected.json()["category"] == category


def test_separate_users_share_no_state(shim: Shim) -> None:
    for _ in range(10):
        shim.command("note", user="user-a")
    assert shim.command("note", user="user-a").status_code == 429
    assert shim.command("note", user="user-b").status_code == 200
    # and categories are separate buckets for the same user
    assert shim.command("help", user="user-a").status_code == 200


def test_the_counter_resets_after_the_window(shim: Shim) -> None:
    for _ in range(10):
        assert shim.command("note").status_code == 200
    shim.clock.now += 4
    limited = shim.command("note")
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "6"
    shim.clock.now += 6
    assert shim.command("note").status_code == 200


def test_rate_limited_requests_are_counted(shim: Shim) -> None:
    for _ in range(12):
        shim.command("note")
    samples = scrape(shim.http)
    assert samples[("chopsticks_rate_limit_hits_total", (("category", "mod"),))] == 2
    ok = samples[("chopsticks_commands_total", (("category", "mod"), ("status", "ok")))]
    assert ok == 10


def test_bad_interactions_are_400_not_500(shim: Shim) -> None:
    headers = {"X-Test-Auth": shim.secret}
    assert shim.http.post("/interactions", content=b"{", headers=headers).status_code == 400
    assert shim.http.post("/interactions", json=[], headers=headers).status_code == 400
    unknown = shim.http.post(
        "/interactions", json={"type": 2, "data": {"name": "nope"}}, headers=headers
    )
    assert unknown.status_code == 400 and "Unknown command" in unknown.json()["error"]
    assert shim.http.post("/interactions", json={"type": 1}, headers=headers).json() == {"type": 1}
