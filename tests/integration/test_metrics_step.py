"""``ops metrics`` against a real loopback /metrics endpoint: the exposition format's
edge cases (histograms, escaped labels, NaN, +Inf, missing HELP) read as the format says."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from step_support import run_all

from opsconsole.run import StepStatus
from opsconsole.sandbox.server import LoopbackServers

EXPOSITION = r"""# HELP oauth_transactions_active OAuth transactions in flight.
# TYPE oauth_transactions_active gauge
oauth_transactions_active 7
# HELP http_request_duration_seconds Request latency.
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{route="/sync",le="0.5"} 3
http_request_duration_seconds_bucket{route="/sync",le="+Inf"} 4
http_request_duration_seconds_sum{route="/sync"} 2.5
http_request_duration_seconds_count{route="/sync"} 4
# HELP sync_errors_total Sync errors.
# TYPE sync_errors_total counter
sync_errors_total{source="play\"lists\\x",detail="line\nbreak"} 0
sync_errors_total{source="library"} 2
# HELP cache_ratio Cache hit ratio.
# TYPE cache_ratio gauge
cache_ratio NaN
# HELP queue_depth_max Deepest queue.
# TYPE queue_depth_max gauge
queue_depth_max +Inf
undocumented_total 1
"""


async def metrics(request: Request) -> PlainTextResponse:
    return PlainTextResponse(EXPOSITION, media_type="text/plain; version=0.0.4")


async def not_prometheus(request: Request) -> PlainTextResponse:
    return PlainTextResponse("<html>hello {</html>\n")


async def down(request: Request) -> PlainTextResponse:
    return PlainTextResponse("maintenance", status_code=503)


@pytest.fixture(scope="module")
def exporter() -> Iterator[str]:
    app = Starlette(
        routes=[
            Route("/metrics", metrics),
            Route("/html", not_prometheus),
            Route("/down", down),
        ]
    )
    with LoopbackServers() as servers:
        yield f"http://127.0.0.1:{servers.serve('exporter', app)}"


def runbook(*blocks: str) -> str:
    body = "\n".join(f"```ops metrics\n{block.strip()}\n```\n" for block in blocks)
    return "---\nvariables: [exporter]\n---\n# Metrics\n\n" + body


def one(step_id: str, path: str, samples: str) -> str:
    return f'id: {step_id}\nurl: "{{{{ exporter }}}}{path}"\nsamples:\n{samples}'


async def results(tmp_path: Path, exporter: str, *blocks: str) -> dict:
    return await run_all(tmp_path, runbook(*blocks), {"exporter": exporter})


async def test_threshold_breach_names_metric_value_and_threshold(
    tmp_path: Path, exporter: str
) -> None:
    got = await results(
        tmp_path,
        exporter,
        one("over", "/metrics", "  - name: oauth_transactions_active\n    ok: '< 5'"),
        one("warned", "/metrics",
            "  - name: oauth_transactions_active\n    ok: '< 5'\n    warn: '< 50'"),
        one("fine", "/metrics", "  - name: oauth_transactions_active\n    ok: '<= 7'"),
    )
    assert got["over"].status is StepStatus.FAILED
    assert got["over"].detail == "oauth_transactions_active = 7, expected < 5"
    assert got["warned"].status is StepStatus.PASSED
    assert "warning" in got["warned"].detail and "< 5" in got["warned"].detail
    table = got["warned"].artifact("table")
    assert table.rows == [["oauth_transactions_active", "7", "< 5 (warn < 50)", "warning"]]
    assert got["fine"].status is StepStatus.PASSED


async def test_histogram_series_and_escaped_labels(tmp_path: Path, exporter: str) -> None:
    got = await results(
        tmp_path,
        exporter,
        one("hist", "/metrics", """
  - name: http_request_duration_seconds_bucket
    labels: {route: /sync, le: "+Inf"}
    ok: "== 4"
  - name: http_request_duration_seconds_count
    labels: {route: /sync}
    ok: "== 4"
  - name: http_request_duration_seconds_sum
    ok: "< 3"
"""),
        # the escaped value as the format means it: a quote, a backslash, a newline
        one("escaped", "/metrics", r"""
  - name: sync_errors_total
    labels: {source: "play\"lists\\x", detail: "line\nbreak"}
    ok: "== 0"
"""),
        one("ambiguous", "/metrics", "  - name: sync_errors_total\n    ok: '== 0'"),
    )
    assert got["hist"].status is StepStatus.PASSED, got["hist"].detail
    assert got["escaped"].status is StepStatus.PASSED, got["escaped"].detail
    assert got["ambiguous"].status is StepStatus.FAILED
    assert "2 samples sync_errors_total match" in got["ambiguous"].detail


async def test_nan_never_passes_and_inf_compares(tmp_path: Path, exporter: str) -> None:
    got = await results(
        tmp_path,
        exporter,
        one("nan_ne", "/metrics", "  - name: cache_ratio\n    ok: '!= 0'"),
        one("nan_warn", "/metrics", "  - name: cache_ratio\n    ok: '> 0.9'\n    warn: '>= 0'"),
        one("inf", "/metrics", "  - name: queue_depth_max\n    ok: '< 200'"),
    )
    assert got["nan_ne"].status is StepStatus.FAILED
    assert got["nan_ne"].detail.startswith("cache_ratio = NaN, expected != 0")
    assert got["nan_warn"].status is StepStatus.FAILED
    assert got["inf"].status is StepStatus.FAILED
    assert got["inf"].detail == "queue_depth_max = +Inf, expected < 200"


async def test_missing_sample_missing_help_and_bad_bodies(tmp_path: Path, exporter: str) -> None:
    got = await results(
        tmp_path,
        exporter,
        one("missing", "/metrics",
            "  - name: oauth_transactions_active\n    labels: {pod: a}\n    ok: '< 5'"),
        one("nohelp", "/metrics", "  - name: undocumented_total\n    ok: '>= 0'"),
        one("helpless", "/metrics",
            "  - name: undocumented_total\n    ok: '>= 0'\n    help: false"),
        one("html", "/html", "  - name: up\n    ok: '== 1'"),
        one("down", "/down", "  - name: up\n    ok: '== 1'"),
    )
    assert got["missing"].status is StepStatus.FAILED
    assert got["missing"].detail == (
        'no sample oauth_transactions_active with labels {pod="a"} in the response'
    )
    assert got["nohelp"].status is StepStatus.FAILED
    assert "has no # HELP line" in got["nohelp"].detail
    assert got["helpless"].status is StepStatus.PASSED
    assert got["html"].status is StepStatus.FAILED
    assert got["html"].detail.startswith("the response is not in Prometheus text format")
    assert got["down"].status is StepStatus.FAILED
    assert "got 503" in got["down"].detail


def test_threshold_shapes_are_checked_by_lint(tmp_path: Path) -> None:
    from opsconsole.errors import RunbookError
    from opsconsole.loader import load_runbook

    path = tmp_path / "bad.md"
    path.write_text(runbook(one("bad", "/metrics", "  - name: x\n    ok: 'about 5'")))
    with pytest.raises(RunbookError, match=r"bad.md:11: ops metrics: samples.0.ok: invalid "
                       r"threshold 'about 5'"):
        load_runbook(path)
