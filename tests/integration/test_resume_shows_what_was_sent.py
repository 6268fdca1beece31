"""Issue 10, defect 5: after a crash during a mutating request, resume shows the request
as it was sent, not re-resolved against the environment as it is now (a restarted
sandbox listens on new ports). Real HTTP server on loopback that never answers."""

from __future__ import annotations

import asyncio
from pathlib import Path

from opsconsole.artifacts import RequestArtifact
from opsconsole.config import Environment
from opsconsole.loader import load_runbook
from opsconsole.run import RunStore, StepStatus
from opsconsole.session import open_session
from tests.hostile_server import HostileServer

RUNBOOK = """\
---
id: sent-request
title: Sent request
variables: [base_url]
---

# Sent request

```ops http
id: post
title: Create the thing
method: POST
url: "{{ base_url }}/never"
json: {"name": "thing"}
timeout: 60s
```
"""


async def test_a_crash_mid_request_keeps_the_request_as_sent(
    hostile_server: HostileServer, tmp_path: Path
) -> None:
    path = tmp_path / "sent.md"
    path.write_text(RUNBOOK, encoding="utf-8")
    runbook = load_runbook(path)
    home = tmp_path / "state"
    sent_url = hostile_server.url("/never")
    before = Environment(name="lab", variables={"base_url": hostile_server.url("")})
    session = open_session(runbook, before, home)
    assert await session.start() == []
    task = asyncio.create_task(session.execute("post"))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while hostile_server.count("POST", "/never") < 1:
        assert loop.time() < deadline, "the request never reached the server"
        await asyncio.sleep(0.02)

    # what a kill -9 now leaves on disk
    crashed = RunStore(home).load(session.run.id)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await session.close()

    result = crashed.results["post"]
    assert result.status is StepStatus.RUNNING
    requests = [a for a in result.artifacts if isinstance(a, RequestArtifact)]
    assert requests and requests[0].url == sent_url, result.artifacts
    assert requests[0].method == "POST"

    # the environment moved on (a new port); the resumed run still shows what was sent
    after = Environment(name="lab", variables={"base_url": "http://127.0.0.1:9"})
    resumed = open_session(runbook, after, home, resume=crashed)
    try:
        await resumed.start()
        again = resumed.result("post")
        assert again.status is StepStatus.UNKNOWN
        shown = [a for a in again.artifacts if isinstance(a, RequestArtifact)]
        assert shown and shown[0].url == sent_url
        assert "127.0.0.1:9/" not in shown[0].url
    finally:
        await resumed.close()
