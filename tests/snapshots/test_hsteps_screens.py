"""Snapshots of the metrics / PromQL / burst / trigger results, at 80x24 and 120x40.

Fixed data only: the run on screen is pre-filled (ids, times, values), URLs name
made-up hosts, nothing talks to a network or reads a clock. The two "in progress"
states show a step running with what it checkpointed so far, as the console draws it
while the step works.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot

from opsconsole.artifacts import (
    Artifact,
    JobResultArtifact,
    KeyValuesArtifact,
    MeasurementRow,
    MeasurementsArtifact,
    ProgressArtifact,
    RequestArtifact,
    SeriesArtifact,
    StatesArtifact,
    TableArtifact,
)
from opsconsole.config import ConsoleSettings, load_config
from opsconsole.loader import load_runbook
from opsconsole.run import Assertion, Run, RunStore, StepResult, StepStatus
from screens import OpsConsoleApp
from tests.snapshots.test_screens import STARTED, at, open_walkthrough, steady_cursors
from tests.ui.pilot_support import settle

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]
RUN_ID = "20250314T031209Z-s1gnal"

CONFIG = """\
default_environment = "staging"

[environments.staging]
description = "Staging"
secrets = ["hdm_api_key"]

[environments.staging.variables]
hdm_url = "http://hdm.staging.internal"
bot_url = "http://bot.staging.internal"
prometheus_url = "http://prometheus.staging.internal:9090"
"""

RUNBOOK = """\
---
id: sync-and-signals
title: Sync and signals
variables: [hdm_url, bot_url, prometheus_url]
secrets: [hdm_api_key]
---

# Manual sync

```ops trigger
id: manual-sync
title: Trigger a manual sync
url: "{{ hdm_url }}/api/v1/sync"
headers:
  X-API-Key: "{{ secrets.hdm_api_key }}"
confirm: "Trigger a manual sync run now?"
idempotency_key: Idempotency-Key
result:
  status: status
  sources: results
  metrics: [tracks_synced, tracks_skipped, length(errors)]
  warnings: errors
```

```ops trigger
id: enrich
title: Enrich the collection
url: "{{ hdm_url }}/api/internal/discogs-enrich"
capture:
  job: job_id
follow:
  url: "{{ hdm_url }}/api/internal/discogs-enrich/{{ job }}"
  succeeded: [completed]
  progress: {done: processed, total: total, label: Enrichment}
```

# Monitoring

```ops promql
id: error-rate
title: Command error rate < 1 %
prometheus: "{{ prometheus_url }}"
query: 'sum(rate(bot_commands_failed_total[5m])) / sum(rate(bot_commands_total[5m]))'
success: "< 0.01"
failure: ">= 0.05"
range: 10m
analysis: {interval: 30s, count: 5, inconclusive_limit: 1}
```

```ops promql
id: p99
title: P99 command latency < 2 s
prometheus: "{{ prometheus_url }}"
query: 'histogram_quantile(0.99, sum by (le) (rate(bot_command_seconds_bucket[5m])))'
success: "< 2"
failure: "> 5"
range: 10m
step: 15s
analysis: {interval: 30s, count: 3}
```

# Rate limits

```ops burst
id: mod-burst
title: 11 mod commands in 10 s
url: "{{ bot_url }}/interactions"
headers:
  X-Test-User: "{{ burst_user }}"
json: {type: 2, data: {name: note}}
user: user-a
other_user: user-b
count: 11
window: 10s
```
"""

QUERY_ERR = "sum(rate(bot_commands_failed_total[5m])) / sum(rate(bot_commands_total[5m]))"
SYNC_URL = "http://hdm.staging.internal/api/v1/sync"
PARTIAL = (
    "Partial (status success): library_scan reported warnings or errors; 1 warning(s): "
    "SPOTIFY_CLIENT_SECRET missing: auto sync used the cached token — tracks_synced 1180, "
    "tracks_skipped 5, length(errors) 1"
)


def sync_partial() -> StepResult:
    return StepResult(
        step_id="manual-sync",
        status=StepStatus.FAILED,
        detail=PARTIAL,
        started_at=at(20),
        finished_at=at(20, 3),
        duration_ms=2841.0,
        attempts=1,
        assertions=[
            Assertion(name="status", ok=True, detail="200 OK"),
            Assertion(name="result", ok=False, detail=PARTIAL),
        ],
        artifacts=[
            JobResultArtifact(
                badge="Partial",
                status="success",
                sources=[
                    ["playlists", "ok", "", "ok"],
                    ["library_scan", "ok", "1 reported: 2 files unreadable", "problem"],
                    ["auto_sync", "ok", "", "ok"],
                ],
                metrics=[("tracks_synced", "1180"), ("tracks_skipped", "5"),
                         ("length(errors)", "1")],
                warnings=["SPOTIFY_CLIENT_SECRET missing: auto sync used the cached token"],
            ),
            RequestArtifact(
                method="POST", url=SYNC_URL,
                headers={"X-API-Key": "***",
                         "Idempotency-Key": "5f0c1d2e-3a4b-4c5d-8e6f-7a8b9c0d1e2f"},
            ),
        ],
    )


def enrich_running() -> StepResult:
    return StepResult(
        step_id="enrich",
        status=StepStatus.RUNNING,
        started_at=at(21),
        attempts=1,
        artifacts=[
            ProgressArtifact(label="Enrichment", done=612, total=1497, rate=20.4),
            RequestArtifact(method="POST", url="http://hdm.staging.internal/api/internal/"
                            "discogs-enrich"),
            StatesArtifact(states=["queued", "running"]),
            MeasurementsArtifact(
                title="Follow", phase="Running",
                rows=[MeasurementRow(phase="Running", value="running", at=float(n))
                      for n in range(0, 30, 10)],
            ),
        ],
    )


def promql_facts(query: str, condition: str, value: str | None) -> KeyValuesArtifact:
    items = [("query", query), ("prometheus", "http://prometheus.staging.internal:9090"),
             ("condition", condition)]
    if value is not None:
        items.append(("value", value))
    return KeyValuesArtifact(title="PromQL", items=items)


def analysis_running() -> StepResult:
    rows = [
        MeasurementRow(phase="Successful", value="0.0042",
                       message="0.0042 meets the success condition < 0.01", at=0.0),
        MeasurementRow(phase="Successful", value="0.0051",
                       message="0.0051 meets the success condition < 0.01", at=30.0),
    ]
    return StepResult(
        step_id="error-rate",
        status=StepStatus.RUNNING,
        started_at=at(22),
        attempts=1,
        artifacts=[
            promql_facts(QUERY_ERR, "success < 0.01, failure >= 0.05", None),
            MeasurementsArtifact(title="Measurements", phase="Running", rows=rows),
        ],
    )


def analysis_inconclusive() -> StepResult:
    detail = (
        "analysis inconclusive: 1 successful, 0 failed, 2 inconclusive, 0 errors "
        "(2 inconclusive (limit 1): no data: the query returned an empty vector)"
    )
    rows = [
        MeasurementRow(phase="Successful", value="0.0042",
                       message="0.0042 meets the success condition < 0.01", at=0.0),
        MeasurementRow(phase="Inconclusive",
                       message="no data: the query returned an empty vector", at=30.0),
        MeasurementRow(phase="Inconclusive",
                       message="no data: the query returned an empty vector", at=60.0),
    ]
    wave = [0.004, 0.0045, 0.005, 0.0042, 0.006, 0.0081, 0.0093, 0.0072, 0.0051]
    points: list[float | None] = [*wave, *wave, *wave, *wave, None, None, None, None, None]
    return StepResult(
        step_id="error-rate",
        status=StepStatus.INCONCLUSIVE,
        detail=detail,
        started_at=at(22),
        finished_at=at(23, 1),
        duration_ms=60114.0,
        attempts=1,
        artifacts=[
            promql_facts(QUERY_ERR, "success < 0.01, failure >= 0.05", None),
            MeasurementsArtifact(title="Measurements", phase="Inconclusive",
                                 message="2 inconclusive (limit 1)", rows=rows),
            SeriesArtifact(title="Last 10m", query=QUERY_ERR, step_s=15.0, points=points,
                           threshold="success < 0.01, failure >= 0.05"),
        ],
    )


def burst_passed() -> StepResult:
    rows = [[str(n), "user-a", "200", "-", f"{11 + n % 3}", "ok"] for n in range(1, 11)]
    rows.append(["11", "user-a", "429", "9", "9", "ok"])
    rows.append(["other", "user-b", "200", "-", "12", "ok"])
    return StepResult(
        step_id="mod-burst",
        status=StepStatus.PASSED,
        detail="10 passed, #11 got 429 (Retry-After 9) in 0.1s; users isolated",
        started_at=at(24),
        finished_at=at(24, 1),
        duration_ms=142.0,
        attempts=1,
        assertions=[
            Assertion(name="first requests pass", ok=True,
                      detail="requests 1–10 as user-a passed"),
            Assertion(name="limited", ok=True,
                      detail="request 11 as user-a got 429 with Retry-After 9"),
            Assertion(name="users isolated", ok=True, detail="user-b right after: 200"),
        ],
        artifacts=[
            TableArtifact(title="Burst",
                          columns=["#", "user", "got", "retry", "ms", "check"],
                          rows=rows),
        ],
    )


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("OPSCONSOLE_SECRET_HDM_API_KEY", "snapshot-hdm-key-0000")
    monkeypatch.delenv("OPSCONSOLE_CONFIG", raising=False)
    (tmp_path / "config.toml").write_text(CONFIG, encoding="utf-8")
    (tmp_path / "signals").mkdir()
    (tmp_path / "signals" / "sync-and-signals.md").write_text(RUNBOOK, encoding="utf-8")
    return tmp_path


def saved_run(workdir: Path, results: list[StepResult], cursor: str) -> None:
    runbook = load_runbook(workdir / "signals" / "sync-and-signals.md")
    run = Run(
        id=RUN_ID,
        runbook_path=str(Path("signals") / "sync-and-signals.md"),
        runbook_id=runbook.id,
        runbook_title=runbook.title,
        runbook_digest=runbook.digest,
        environment="staging",
        started_at=STARTED,
        updated_at=STARTED,
        cursor=cursor,
        results={result.step_id: result for result in results},
    )
    RunStore(workdir / "state").save(run)


def settings(workdir: Path) -> ConsoleSettings:
    return ConsoleSettings(
        config=load_config(workdir / "config.toml"),
        home=workdir / "state",
        runbook_paths=[Path("signals")],
        evidence_dir=workdir / "evidence",
    )


def show(step_id: str, running: Artifact | StepResult | None = None) -> Callable[[Pilot], object]:
    """Open the saved run on ``step_id``; with ``running``, draw that step as running with
    what it checkpointed (resuming a run never leaves a step running, so it is set here)."""

    async def run_before(pilot: Pilot[object]) -> None:
        from screens.walkthrough import WalkthroughScreen

        await settle(pilot)
        await open_walkthrough(pilot, RUN_ID)
        screen = pilot.app.screen
        assert isinstance(screen, WalkthroughScreen)
        if isinstance(running, StepResult):
            screen.session.run.results[step_id] = running
            screen.select_step(step_id)
            screen.running_step = step_id
        else:
            screen.select_step(step_id)
        await settle(pilot)
        await steady_cursors(pilot)

    return run_before


@pytest.mark.parametrize("size", SIZES)
def test_sync_result_partial(snap_compare, workdir: Path, size: tuple[int, int]) -> None:
    """The seed's Partial badge: key metrics, the warning, the per-source table."""
    saved_run(workdir, [sync_partial()], "manual-sync")
    assert snap_compare(OpsConsoleApp(settings(workdir)), terminal_size=size,
                        run_before=show("manual-sync"))


@pytest.mark.parametrize("size", SIZES)
def test_enrichment_progress(snap_compare, workdir: Path, size: tuple[int, int]) -> None:
    """A followed enrichment job while it runs: x of y, the share and the rate."""
    saved_run(workdir, [sync_partial()], "enrich")
    assert snap_compare(OpsConsoleApp(settings(workdir)), terminal_size=size,
                        run_before=show("enrich", enrich_running()))


@pytest.mark.parametrize("size", SIZES)
def test_analysis_in_progress(snap_compare, workdir: Path, size: tuple[int, int]) -> None:
    """A PromQL analysis two measurements in: query, condition, each measurement."""
    saved_run(workdir, [sync_partial()], "error-rate")
    assert snap_compare(OpsConsoleApp(settings(workdir)), terminal_size=size,
                        run_before=show("error-rate", analysis_running()))


@pytest.mark.parametrize("size", SIZES)
def test_analysis_inconclusive(snap_compare, workdir: Path, size: tuple[int, int]) -> None:
    """No data is inconclusive, never a pass: every measurement and the sparkline's gap."""
    saved_run(workdir, [sync_partial(), analysis_inconclusive()], "error-rate")
    assert snap_compare(OpsConsoleApp(settings(workdir)), terminal_size=size,
                        run_before=show("error-rate"))


@pytest.mark.parametrize("size", SIZES)
def test_burst_table(snap_compare, workdir: Path, size: tuple[int, int]) -> None:
    """The rate-limit burst: every request, the 429 with Retry-After, the other user."""
    saved_run(workdir, [sync_partial(), burst_passed()], "mod-burst")
    assert snap_compare(OpsConsoleApp(settings(workdir)), terminal_size=size,
                        run_before=show("mod-burst"))


@pytest.mark.parametrize("size", SIZES)
def test_promql_before_it_runs(snap_compare, workdir: Path, size: tuple[int, int]) -> None:
    """A PromQL step not run yet: its query, where it goes, its conditions, its count."""
    saved_run(workdir, [sync_partial()], "p99")
    assert snap_compare(OpsConsoleApp(settings(workdir)), terminal_size=size,
                        run_before=show("p99"))
