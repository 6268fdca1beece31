"""Snapshots of a plain runbook's command steps: expected output and a guessed command.

Fixed data only: the runbook is written into the snapshot working directory, the
run has a fixed id and start time, nothing has run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from opsconsole.loader import load_runbook
from opsconsole.run import Run, RunStatus, RunStore
from screens import OpsConsoleApp
from tests.snapshots.test_screens import (  # noqa: F401  (workdir is a fixture)
    SIZES,
    STARTED,
    keys_then_settle,
    settings_for,
    workdir,
)

PLAIN_RUN_ID = "20250314T031209Z-d4e5f6"
PLAIN_RUNBOOK = """\
# Check the payments API

```console
$ kubectl get pods -n payments |
> grep api
api-7d9f8b6c5d-x2k4p   1/1   Running   0   3d
api-7d9f8b6c5d-q8m2z   1/1   Running   0   3d
```

Restart it if a pod is not ready:

```
kubectl rollout restart deploy/api -n payments
```
"""


def plain_run(root: Path, cursor: str) -> None:
    path = root / "plain" / "payments.md"
    path.parent.mkdir()
    path.write_text(PLAIN_RUNBOOK, encoding="utf-8")
    runbook = load_runbook(path)
    run = Run(
        id=PLAIN_RUN_ID,
        runbook_path=str(Path("plain") / "payments.md"),
        runbook_id=runbook.id,
        runbook_title=runbook.title,
        runbook_digest=runbook.digest,
        environment="staging",
        started_at=STARTED,
        updated_at=STARTED,
        finished_at=None,
        status=RunStatus.IN_PROGRESS,
        cursor=cursor,
        results={},
    )
    RunStore(root / "state").save(run)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize(
    "cursor", ["check-the-payments-api-1", "check-the-payments-api-2"], ids=["prompted", "guessed"]
)
def test_plain_command_steps(
    snap_compare,
    workdir: Path,  # noqa: F811  (the fixture imported above)
    size: tuple[int, int],
    cursor: str,
) -> None:
    """A prompted block shows its command and the expected output (never run); an
    untagged fence that reads as a command is marked as guessed."""
    plain_run(workdir, cursor)
    app = OpsConsoleApp(settings_for(workdir, runbook_paths=[Path("plain")]))
    assert snap_compare(app, terminal_size=size, run_before=keys_then_settle(resume=PLAIN_RUN_ID))
