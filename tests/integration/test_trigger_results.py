"""``ops trigger`` generalised, against a real loopback sync API: the runbook's own
confirmation, an idempotency key per action (the same one when an unknown action is
re-run), Success / Partial / Failed from a synchronous result, and progress while
following a long job."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from step_support import open_runbook

from opsconsole.operator import HeadlessOperator
from opsconsole.run import StepStatus
from opsconsole.sandbox.server import LoopbackServers

RESULTS: dict[str, dict[str, Any]] = {
    "success": {
        "status": "success",
        "results": {
            "playlists": {"status": "ok"},
            "library_scan": {"status": "ok"},
            "auto_sync": {"status": "skipped"},
        },
        "tracks_synced": 120, "tracks_skipped": 3, "errors": [],
    },
    "partial": {
        "status": "success",
        "results": {
            "playlists": {"status": "ok"},
            "library_scan": {"status": "ok", "errors": ["2 files unreadable"]},
            "auto_sync": {"status": "ok"},
        },
        "tracks_synced": 118, "tracks_skipped": 5,
        "errors": ["SPOTIFY_CLIENT_SECRET missing: auto sync used cached token"],
    },
    "failed": {
        "status": "failed",
        "results": {"playlists": {"status": "error", "errors": ["401 from Spotify"]}},
        "tracks_synced": 0, "tracks_skipped": 0, "errors": ["401 from Spotify"],
    },
}


@dataclass
class SyncApi:
    keys: list[str] = field(default_factory=list)
    slow_first: bool = False
    polls: int = 0
    #: the enrichment stops advancing here (None: it runs to the end)
    stall_at: int | None = None

    async def sync(self, request: Request) -> JSONResponse:
        self.keys.append(request.headers.get("idempotency-key", ""))
        if self.slow_first and len(self.keys) == 1:
            await asyncio.sleep(5)  # the client gives up first: the outcome is unknown
        return JSONResponse(RESULTS[request.path_params["variant"]])

    async def enrich(self, request: Request) -> JSONResponse:
        return JSONResponse({"job_id": "enrich-1", "status": "queued"}, status_code=202)

    async def enrich_status(self, request: Request) -> JSONResponse:
        self.polls += 1
        processed = min(self.polls * 500, 1497, self.stall_at or 1497)
        status = "completed" if processed == 1497 else "running"
        return JSONResponse({"status": status, "processed": processed, "total": 1497})


@pytest.fixture
def api() -> Iterator[tuple[str, SyncApi]]:
    state = SyncApi()
    app = Starlette(
        routes=[
            Route("/api/v1/sync/{variant}", state.sync, methods=["POST"]),
            Route("/api/internal/discogs-enrich", state.enrich, methods=["POST"]),
            Route("/api/internal/discogs-enrich/{job}", state.enrich_status),
        ]
    )
    with LoopbackServers() as servers:
        yield f"http://127.0.0.1:{servers.serve('sync', app)}", state


RESULT_BLOCK = """\
result:
  status: status
  sources: results
  metrics: [tracks_synced, tracks_skipped, length(errors)]
  warnings: errors
"""


def sync(step_id: str, variant: str, extra: str = "") -> str:
    return f"""```ops trigger
id: {step_id}
url: "{{{{ api }}}}/api/v1/sync/{variant}"
confirm: "Trigger a manual sync run now?"
idempotency_key: Idempotency-Key
{RESULT_BLOCK}{extra}```
"""


def runbook(*blocks: str) -> str:
    return "---\nvariables: [api]\n---\n# Sync\n\n" + "\n".join(blocks)


async def test_sync_result_badges(tmp_path: Path, api: tuple[str, SyncApi]) -> None:
    url, state = api
    got = await _run_with(tmp_path, url, HeadlessOperator(yes=True))
    ok, partial, failed = got["ok"], got["partial"], got["failed"]
    assert ok.status is StepStatus.PASSED, ok.detail
    assert ok.artifact("job_result").badge == "Success"
    assert ok.detail.startswith(
        "Success (status success) — tracks_synced 120, tracks_skipped 3, length(errors) 0"
    )
    assert partial.status is StepStatus.FAILED
    result = partial.artifact("job_result")
    assert result.badge == "Partial"
    assert [row[0] for row in result.sources if row[3] == "problem"] == ["library_scan"]
    assert result.warnings == ["SPOTIFY_CLIENT_SECRET missing: auto sync used cached token"]
    assert partial.detail.startswith(
        "Partial (status success): library_scan reported warnings or errors; 1 warning(s): "
        "SPOTIFY_CLIENT_SECRET missing"
    )
    assert failed.status is StepStatus.FAILED
    assert failed.artifact("job_result").badge == "Failed"
    assert got["tolerated"].status is StepStatus.PASSED
    assert got["tolerated"].artifact("job_result").badge == "Partial"
    # one fresh key per action
    assert len(state.keys) == 4 and len(set(state.keys)) == 4 and all(state.keys)


async def _run_with(tmp_path: Path, url: str, operator: HeadlessOperator) -> dict[str, Any]:
    text = runbook(
        sync("ok", "success"),
        sync("partial", "partial"),
        sync("failed", "failed"),
        sync("tolerated", "partial", "partial: pass\n").replace(
            "  warnings: errors\npartial: pass", "  warnings: errors\n  partial: pass"
        ),
    )
    session = open_runbook(tmp_path, text, {"api": url})
    assert await session.start() == []
    try:
        return {s.id: await session.execute(s.id, operator=operator)
                for s in session.runbook.steps}
    finally:
        await session.close()


async def test_no_means_nothing_is_sent(tmp_path: Path, api: tuple[str, SyncApi]) -> None:
    url, state = api
    session = open_runbook(tmp_path, runbook(sync("ok", "success")), {"api": url})
    assert await session.start() == []
    try:
        result = await session.execute(
            "ok", operator=HeadlessOperator(answers={"ok.confirm": "no"})
        )
        assert result.status is StepStatus.PENDING
        unattended = await session.execute("ok", operator=HeadlessOperator())
        assert unattended.status is StepStatus.SKIPPED
        assert "--answer ok.confirm=yes" in unattended.detail
    finally:
        await session.close()
    assert state.keys == []


async def test_an_unknown_action_is_retried_with_the_same_key(
    tmp_path: Path, api: tuple[str, SyncApi]
) -> None:
    url, state = api
    state.slow_first = True
    # a manual check after it keeps the run open for a third action
    text = runbook(sync("ok", "success", "timeout: 300ms\n"), "- [ ] Dashboard checked\n")
    session = open_runbook(tmp_path, text, {"api": url})
    assert await session.start() == []
    yes = HeadlessOperator(yes=True)
    try:
        first = await session.execute("ok", operator=yes)
        assert first.status is StepStatus.UNKNOWN, first.detail
        again = await session.execute("ok", operator=yes, rerun_unknown=True)
        assert again.status is StepStatus.PASSED, again.detail
        fresh = await session.execute("ok", operator=yes)  # a new action: a new key
        assert fresh.status is StepStatus.PASSED
    finally:
        await session.close()
    assert len(state.keys) == 3
    assert state.keys[0] == state.keys[1] != state.keys[2]


async def test_following_a_long_job_shows_x_of_y(
    tmp_path: Path, api: tuple[str, SyncApi]
) -> None:
    url, _ = api
    text = runbook("""```ops trigger
id: enrich
url: "{{ api }}/api/internal/discogs-enrich"
capture:
  job: job_id
follow:
  url: "{{ api }}/api/internal/discogs-enrich/{{ job }}"
  succeeded: [completed]
  interval: 50ms
  progress: {done: processed, total: total, label: Enrichment}
```
""")
    events: list[Any] = []
    operator = HeadlessOperator(sink=lambda step, event: events.append(event))
    session = open_runbook(tmp_path, text, {"api": url})
    assert await session.start() == []
    try:
        result = await session.execute("enrich", operator=operator)
    finally:
        await session.close()
    assert result.status is StepStatus.PASSED, result.detail
    progress = result.artifact("progress")
    assert (progress.done, progress.total, progress.finished) == (1497, 1497, True)
    assert "1,497 of 1,497 (100%)" in progress.line()
    seen = [(e.done, e.total) for e in events if type(e).__name__ == "Progress"]
    assert seen == [(500, 1497), (1000, 1497), (1497, 1497)]


async def test_after_a_crash_the_unknown_action_keeps_its_key(
    tmp_path: Path, api: tuple[str, SyncApi]
) -> None:
    """A crash leaves nothing of the request on disk: the key is derived, not saved."""
    from opsconsole.run import RunStore

    url, state = api
    state.slow_first = True
    text = runbook(sync("ok", "success", "timeout: 300ms\n"), "- [ ] Dashboard checked\n")
    yes = HeadlessOperator(yes=True)
    session = open_runbook(tmp_path, text, {"api": url})
    assert await session.start() == []
    try:
        assert (await session.execute("ok", operator=yes)).status is StepStatus.UNKNOWN
        run_id = session.run.id
    finally:
        await session.close()
    run = RunStore(tmp_path / "home").load(run_id)
    run.results["ok"].artifacts = []  # as a crash mid-request leaves it
    resumed = open_runbook(tmp_path, text, {"api": url}, resume=run)
    assert await resumed.start() == []
    try:
        again = await resumed.execute("ok", operator=yes, rerun_unknown=True)
        assert again.status is StepStatus.PASSED, again.detail
    finally:
        await resumed.close()
    assert len(state.keys) == 2 and state.keys[0] == state.keys[1]


async def test_a_stalled_job_fails_with_where_it_stopped(
    tmp_path: Path, api: tuple[str, SyncApi]
) -> None:
    """A count that stops moving for ``stalled_after`` polls fails the step (the job is known
    not to progress), long before the deadline; the progress artifact records why."""
    url, state = api
    state.stall_at = 1000
    text = runbook("""```ops trigger
id: enrich
url: "{{ api }}/api/internal/discogs-enrich"
capture:
  job: job_id
follow:
  url: "{{ api }}/api/internal/discogs-enrich/{{ job }}"
  succeeded: [completed]
  interval: 20ms
  deadline: 10m
  progress: {done: processed, total: total, label: Enrichment, stalled_after: 3}
```
""")
    session = open_runbook(tmp_path, text, {"api": url})
    assert await session.start() == []
    try:
        result = await session.execute("enrich", operator=HeadlessOperator())
    finally:
        await session.close()
    assert result.status is StepStatus.FAILED, result.detail
    assert result.detail.startswith("Enrichment stalled at 1,000 of 1,497 for 3 polls")
    assert "the POST was accepted, but the job is not progressing" in result.detail
    # 500, 1000, then three more polls at 1,000: five in all, not ten minutes of them
    assert state.polls == 5
    progress = result.artifact("progress")
    assert progress.stalled.startswith("Enrichment stalled at 1,000 of 1,497 for 3 polls")
    assert not progress.finished
    assert result.artifact("measurements").phase == "Failed"
