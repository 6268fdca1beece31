"""``ops promql`` against a REAL Prometheus scraping a real loopback exporter.

No data (empty vector, NaN, an unreachable or hung Prometheus) is never a pass and never
read as 0; failure wins over success; analyses follow Argo Rollouts' limits."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from step_support import run_all

from opsconsole.run import StepStatus
from tests.conftest import require_tool


class Exporter:
    """prometheus_client's own HTTP exporter on loopback, with gauges the test sets."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Gauge, start_http_server

        self.registry = CollectorRegistry()
        self.gauge = Gauge("ops_demo_ratio", "A ratio the test sets.", ["case"],
                           registry=self.registry)
        for case, value in {"good": 0.004, "bad": 0.07, "grey": 0.02}.items():
            self.gauge.labels(case=case).set(value)
        self.gauge.labels(case="nan").set(float("nan"))
        self.server, self.thread = start_http_server(0, addr="127.0.0.1", registry=self.registry)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def prometheus_url() -> Iterator[str]:
    binary = require_tool("prometheus")
    from prometheus_api_client import PrometheusConnect

    from opsconsole.prometheus import PrometheusServer, ScrapeTarget

    exporter = Exporter()
    try:
        with PrometheusServer([ScrapeTarget("demo", exporter.url)], binary=binary) as server:
            client = PrometheusConnect(server.url)
            # bounded wait for the first scrape (a readiness wait, not a timed assertion)
            for _ in range(300):
                if client.custom_query('ops_demo_ratio{case="good"}'):
                    break
                time.sleep(0.1)
            else:
                pytest.fail("Prometheus never scraped the exporter")
            yield server.url
    finally:
        exporter.close()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def hung_url() -> Iterator[str]:
    """Accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


def block(step_id: str, query: str, extra: str = "") -> str:
    body = f"id: {step_id}\nprometheus: \"{{{{ prometheus_url }}}}\"\nquery: '{query}'\n{extra}"
    return f"```ops promql\n{body.strip()}\n```\n"


def runbook(*blocks: str) -> str:
    return "---\nvariables: [prometheus_url]\n---\n# PromQL\n\n" + "\n".join(blocks)


BOTH = 'success: "< 0.01"\nfailure: ">= 0.05"\n'


async def test_instant_verdicts_name_query_value_and_threshold(
    tmp_path: Path, prometheus_url: str
) -> None:
    got = await run_all(
        tmp_path,
        runbook(
            block("good", 'ops_demo_ratio{case="good"}', BOTH),
            block("bad", 'ops_demo_ratio{case="bad"}', BOTH),
            block("grey", 'ops_demo_ratio{case="grey"}', BOTH),
            block("only_success", 'ops_demo_ratio{case="grey"}', 'success: "< 0.01"'),
            block("only_failure", 'ops_demo_ratio{case="grey"}', 'failure: ">= 0.05"'),
        ),
        {"prometheus_url": prometheus_url},
    )
    assert got["good"].status is StepStatus.PASSED, got["good"].detail
    assert got["good"].detail == (
        'ops_demo_ratio{case="good"} = 0.004 meets the success condition < 0.01'
    )
    assert got["bad"].status is StepStatus.FAILED
    assert got["bad"].detail.endswith("0.07 meets the failure condition >= 0.05")
    assert got["grey"].status is StepStatus.INCONCLUSIVE
    assert "0.02 meets neither < 0.01 nor failure >= 0.05" in got["grey"].detail
    assert got["only_success"].status is StepStatus.FAILED
    assert got["only_failure"].status is StepStatus.PASSED
    facts = dict(got["good"].artifact("keyvalues").items)
    assert facts["query"] == 'ops_demo_ratio{case="good"}'
    assert facts["value"] == "0.004"
    assert facts["condition"] == "success < 0.01, failure >= 0.05"


async def test_no_data_is_never_a_pass(
    tmp_path: Path, prometheus_url: str, hung_url: str
) -> None:
    closed = f"http://127.0.0.1:{closed_port()}"
    got = await run_all(
        tmp_path,
        runbook(
            block("empty", "ops_no_such_metric", BOTH),
            block("empty_failure_only", "ops_no_such_metric", 'failure: "> 0"'),
            block("nan", 'ops_demo_ratio{case="nan"}', 'success: "!= 0"'),
            block("division", "vector(0) / 0", 'failure: "> 1"'),
            block("inf", "vector(1) / 0", 'success: "> 0"'),
            block("many", "ops_demo_ratio", 'success: "< 1"'),
            block("rejected", "rate(ops_demo_ratio[", BOTH),
            block("down", "up", 'success: "== 1"').replace("{{ prometheus_url }}", closed),
            block("hung", "up", 'success: "== 1"\ntimeout: 500ms').replace(
                "{{ prometheus_url }}", hung_url
            ),
        ),
        {"prometheus_url": prometheus_url},
    )
    for step_id in ("empty", "empty_failure_only", "nan", "division", "inf", "many", "rejected",
                    "down", "hung"):
        assert got[step_id].status is StepStatus.INCONCLUSIVE, (step_id, got[step_id].detail)
    assert got["empty"].detail == "no data: the query returned an empty vector"
    assert got["nan"].detail.startswith("no data: the value is NaN")
    assert got["inf"].detail == "no data: the value is +Inf"
    assert "returned 4 series" in got["many"].detail
    assert got["rejected"].detail.startswith("Prometheus rejected the query: ")
    assert "unreachable (connection refused)" in got["down"].detail
    # the step's own deadline or the client's read timeout, whichever fires first under load:
    # either way it is "no data", never a pass
    hung = got["hung"].detail
    assert "no answer within 0.5s" in hung or "did not answer in time" in hung, hung


async def test_analysis_limits(tmp_path: Path, prometheus_url: str) -> None:
    fast = "analysis: {interval: 100ms, count: 3, failure_limit: 1}\n"
    got = await run_all(
        tmp_path,
        runbook(
            block("steady", 'ops_demo_ratio{case="good"}', BOTH + fast),
            block("failing", 'ops_demo_ratio{case="bad"}', BOTH + fast),
            block("nodata", "ops_no_such_metric", BOTH + fast.replace(
                "failure_limit: 1", "inconclusive_limit: 1")),
            block("nan", 'ops_demo_ratio{case="nan"}', BOTH + fast),
        ),
        {"prometheus_url": prometheus_url},
    )
    steady = got["steady"]
    assert steady.status is StepStatus.PASSED, steady.detail
    assert [row.phase for row in steady.artifact("measurements").rows] == ["Successful"] * 3
    failing = got["failing"]
    assert failing.status is StepStatus.FAILED
    # failure_limit 1: the second failure decides, the third is never taken
    assert [row.phase for row in failing.artifact("measurements").rows] == ["Failed"] * 2
    assert "2 failed (limit 1)" in failing.detail
    nodata = got["nodata"]
    assert nodata.status is StepStatus.INCONCLUSIVE
    assert [row.phase for row in nodata.artifact("measurements").rows] == ["Inconclusive"] * 2
    assert got["nan"].status is StepStatus.INCONCLUSIVE
    assert "inconclusive (limit 0)" in got["nan"].detail


async def test_range_query_gives_a_sparkline(tmp_path: Path, prometheus_url: str) -> None:
    got = await run_all(
        tmp_path,
        runbook(block("spark", 'ops_demo_ratio{case="good"}', BOTH + "range: 30s\nstep: 1s")),
        {"prometheus_url": prometheus_url},
    )
    series = got["spark"].artifact("series")
    assert len(series.points) == 31
    known = [p for p in series.points if p is not None]
    assert known and set(known) == {0.004}
    assert "last 0.004" in series.summary()


async def test_a_captured_value_stays_inside_its_label_string(tmp_path: Path) -> None:
    from opsconsole.errors import TemplateError
    from opsconsole.steps.promql import render_promql

    class Ctx:
        trusted = frozenset({"job"})
        values = {"job": "bot", "pod": 'x"} or vector(1) #\\'}

        def render(self, text: str, context: str = "text") -> str:
            name = text.strip("{} ")
            return self.values[name]

    ctx = Ctx()
    assert render_promql(ctx, 'up{job="{{ job }}"}') == 'up{job="bot"}'  # type: ignore[arg-type]
    assert render_promql(ctx, 'up{pod="{{ pod }}"}') == (  # type: ignore[arg-type]
        'up{pod="x\\"} or vector(1) #\\\\"}'
    )
    with pytest.raises(TemplateError, match="inside a quoted label value"):
        render_promql(ctx, "up{pod={{ pod }}}")  # type: ignore[arg-type]
    with pytest.raises(TemplateError, match="secret"):
        render_promql(ctx, 'up{pod="{{ secrets.key }}"}')  # type: ignore[arg-type]
