"""The new step kinds in the console, against real loopback servers: a trigger pressed
twice sends one request, and a hung Prometheus or /metrics endpoint never delays keys.
Nothing here measures time: every wait polls for a state."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from pilot_support import settle
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from test_long_steps import detail_text, open_only_runbook, until

from opsconsole.run import StepStatus
from opsconsole.sandbox.server import LoopbackServers
from screens import OpsConsoleApp
from screens.walkthrough import WalkthroughScreen


class SlowSync:
    """POST /sync waits until released; every request is counted."""

    def __init__(self) -> None:
        self.count = 0
        self.release = threading.Event()

    async def sync(self, request: Request) -> JSONResponse:
        self.count += 1
        while not self.release.is_set():
            await asyncio.sleep(0.01)
        return JSONResponse({"status": "success", "results": {"playlists": "ok"}})


@pytest.fixture
def slow_sync() -> Iterator[tuple[str, SlowSync]]:
    state = SlowSync()
    app = Starlette(routes=[Route("/api/v1/sync", state.sync, methods=["POST"])])
    with LoopbackServers() as servers:
        yield f"http://127.0.0.1:{servers.serve('sync', app)}", state
    state.release.set()


@pytest.fixture
def hung_url() -> Iterator[str]:
    """Accepts connections, never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.05)
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


def write_config(tmp_path: Path, variables: dict[str, str]) -> Path:
    lines = ["[environments.sandbox]", 'description = "test"', "",
             "[environments.sandbox.variables]"]
    lines += [f'{name} = "{value}"' for name, value in variables.items()]
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_runbook(tmp_path: Path, body: str) -> Path:
    folder = tmp_path / "runbooks"
    folder.mkdir()
    path = folder / "steps.md"
    path.write_text(body, encoding="utf-8")
    return path


SYNC = """\
---
id: sync
title: Manual sync
variables: [api]
---

# Sync

```ops trigger
id: sync
title: Trigger a manual sync
url: "{{ api }}/api/v1/sync"
idempotency_key: Idempotency-Key
result:
  status: status
  sources: results
```

- [ ] Dashboard shows the run
"""


async def test_double_press_sends_one_request(
    make_settings, tmp_path: Path, slow_sync: tuple[str, SlowSync]
) -> None:
    url, state = slow_sync
    runbook = write_runbook(tmp_path, SYNC)
    settings = make_settings(write_config(tmp_path, {"api": url}), runbook_paths=[runbook])
    app = OpsConsoleApp(settings)
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        screen = await open_only_runbook(pilot)
        assert screen.selected_step is not None and screen.selected_step.id == "sync"
        await pilot.press("enter", "enter")  # the double press, then more
        await until(pilot, lambda: state.count == 1 and screen.running_step == "sync",
                    "the sync request to be in flight")
        await pilot.press("r", "enter", "r")
        await pilot.pause()
        assert screen.session.running == "sync"
        notes = [n.message for n in app._notifications]  # noqa: SLF001
        assert any("is still running" in note for note in notes), notes
        state.release.set()
        await until(pilot, lambda: screen.session.running is None, "the sync to finish")
        await settle(pilot)
        result = screen.session.result("sync")
        assert result.status is StepStatus.PASSED, result.detail
        assert result.attempts == 1
        assert state.count == 1
        await pilot.press("up")  # the cursor moved on to the next step
        await settle(pilot)
        assert "Result: ✓ Success" in detail_text(screen)


PROMQL = """\
---
id: hung
title: Hung endpoints
variables: [hung]
---

# Hung

```ops promql
id: promql
title: Error rate from a hung Prometheus
prometheus: "{{ hung }}"
query: up
success: "== 1"
timeout: 60s
```

```ops metrics
id: metrics
title: Metrics from a hung endpoint
url: "{{ hung }}/metrics"
timeout: 60s
samples:
  - name: up
    ok: "== 1"
```
"""


@pytest.mark.parametrize("step_id", ["promql", "metrics"])
async def test_a_hung_endpoint_never_delays_keys(
    make_settings, tmp_path: Path, hung_url: str, step_id: str
) -> None:
    runbook = write_runbook(tmp_path, PROMQL)
    settings = make_settings(write_config(tmp_path, {"hung": hung_url}), runbook_paths=[runbook])
    app = OpsConsoleApp(settings)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await open_only_runbook(pilot)
        if step_id == "metrics":
            await pilot.press("down")
            await pilot.pause()
        assert screen.selected_step is not None and screen.selected_step.id == step_id
        await pilot.press("enter")
        await until(pilot, lambda: screen.running_step == step_id, "the step to start")
        # keys answer while the request hangs: move, help, back
        other = "metrics" if step_id == "promql" else "promql"
        await pilot.press("up" if step_id == "metrics" else "down")
        await until(pilot, lambda: screen.selected_step.id == other, "the cursor to move")
        await pilot.press("f1")
        await until(pilot, lambda: type(app.screen).__name__ == "HelpScreen", "help to open")
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen, "help to close")
        assert screen.session.running == step_id, "the step ended: the endpoint did not hang"
        # escape stops the read-only step at once
        await pilot.press("escape")
        await until(pilot, lambda: screen.session.running is None, "the step to stop")
        await settle(pilot)
        assert isinstance(app.screen, WalkthroughScreen)
        assert screen.session.result(step_id).status is StepStatus.CANCELLED


class SlowEnrichment:
    """The job reports 600 of 1,497 until released, then completes."""

    def __init__(self) -> None:
        self.release = threading.Event()

    async def start(self, request: Request) -> JSONResponse:
        return JSONResponse({"job_id": "enrich-1", "status": "queued"}, status_code=202)

    async def status(self, request: Request) -> JSONResponse:
        if self.release.is_set():
            return JSONResponse({"status": "completed", "processed": 1497, "total": 1497})
        return JSONResponse({"status": "running", "processed": 600, "total": 1497})


ENRICH = """\
---
id: enrich
title: Enrichment
variables: [api]
---

# Enrich

```ops trigger
id: enrich
title: Enrich the collection
url: "{{ api }}/enrich"
capture:
  job: job_id
follow:
  url: "{{ api }}/enrich/{{ job }}"
  succeeded: [completed]
  interval: 50ms
  progress: {done: processed, total: total, label: Enrichment}
```

- [ ] Stats page shows the enriched releases
"""


async def test_the_running_steps_detail_shows_its_progress(make_settings, tmp_path: Path) -> None:
    state = SlowEnrichment()
    api = Starlette(
        routes=[
            Route("/enrich", state.start, methods=["POST"]),
            Route("/enrich/{job}", state.status),
        ]
    )
    with LoopbackServers() as servers:
        url = f"http://127.0.0.1:{servers.serve('enrich', api)}"
        runbook = write_runbook(tmp_path, ENRICH)
        settings = make_settings(write_config(tmp_path, {"api": url}), runbook_paths=[runbook])
        app = OpsConsoleApp(settings)
        async with app.run_test(size=(100, 30)) as pilot:
            screen = await open_only_runbook(pilot)
            await pilot.press("enter")
            await until(
                pilot,
                lambda: screen.running_step == "enrich"
                and "600 of 1,497 (40%)" in detail_text(screen),
                "the detail to show the job's progress while it runs",
            )
            assert "RUNNING" in detail_text(screen)
            state.release.set()
            await until(pilot, lambda: screen.session.running is None, "the job to finish")
            await settle(pilot)
            result = screen.session.result("enrich")
            assert result.status is StepStatus.PASSED, result.detail
            assert "1,497 of 1,497 (100%)" in result.artifact("progress").line()


class Enrichment:
    """A job that finishes on its third read-back, with a result to read."""

    def __init__(self) -> None:
        self.polls = 0

    async def start(self, request: Request) -> JSONResponse:
        return JSONResponse({"job_id": "enrich-1", "status": "queued"}, status_code=202)

    async def read(self, request: Request) -> JSONResponse:
        self.polls += 1
        processed = min(self.polls * 500, 1497)
        return JSONResponse({
            "status": "completed" if processed == 1497 else "running",
            "processed": processed, "total": 1497,
            "results": {"queue": {"status": "ok"}}, "enriched": processed,
        })


ENRICH = """\
---
id: enrich
title: Enrichment
variables: [api]
---

# Enrich

```ops trigger
id: enrich
title: Enrich and follow
url: "{{ api }}/enrich"
capture:
  job: job_id
result:
  status: status
  sources: results
  metrics: [enriched]
follow:
  url: "{{ api }}/enrich/{{ job }}"
  succeeded: [completed]
  interval: 20ms
  progress: {done: processed, total: total, label: Enrichment}
```
"""


async def test_the_detail_shows_every_block_of_a_trigger_with_result_and_progress(
    make_settings, tmp_path: Path
) -> None:
    """Result, progress, request, response, states and the follow's measurements: more
    blocks than the pane used to have room for; none is dropped on screen."""
    state = Enrichment()
    app_under_test = Starlette(routes=[
        Route("/enrich", state.start, methods=["POST"]),
        Route("/enrich/{job}", state.read),
    ])
    with LoopbackServers() as servers:
        url = f"http://127.0.0.1:{servers.serve('enrich', app_under_test)}"
        runbook = write_runbook(tmp_path, ENRICH)
        settings = make_settings(write_config(tmp_path, {"api": url}), runbook_paths=[runbook])
        app = OpsConsoleApp(settings)
        async with app.run_test(size=(100, 30)) as pilot:
            screen = await open_only_runbook(pilot)
            await pilot.press("enter")
            await until(pilot, lambda: screen.session.result("enrich").status
                        is StepStatus.PASSED, "the enrichment to finish")
            await settle(pilot)
            result = screen.session.result("enrich")
            blocks = [
                block for artifact in result.artifacts if artifact.type != "request"
                for block in artifact.blocks()
            ]
            assert len(blocks) + 1 > 6, blocks  # the request is shown as one block too
            shown = detail_text(screen)
            for block in blocks:
                assert block.title in shown, (block.title, shown)
            # the follow's measurements, the last block: the one the pane used to drop
            follow = blocks[-1]
            assert follow.title.startswith("Follow: Successful"), follow.title
            assert follow.text.splitlines()[-1] in shown
