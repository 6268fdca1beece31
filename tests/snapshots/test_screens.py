"""Snapshot tests: every screen and key state at 80x24 and 120x40, from fixed data.

Nothing here touches the network or a clock: the config is fixed, secrets come
from ``$OPSCONSOLE_SECRET_*``, and the runs on screen are pre-filled with fixed
ids, timestamps and durations. Paths on screen are relative to a temporary
working directory, so they read the same on every machine.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot

from opsconsole.artifacts import (
    CommandArtifact,
    MeasurementRow,
    MeasurementsArtifact,
    OutputArtifact,
    RequestArtifact,
    ResponseArtifact,
    StatesArtifact,
)
from opsconsole.config import ConsoleSettings, bundled_runbooks_dir, load_config
from opsconsole.faults import FaultInfo
from opsconsole.loader import load_runbook
from opsconsole.run import Assertion, Run, RunStatus, RunStore, StepResult, StepStatus
from screens import OpsConsoleApp
from tests.ui.pilot_support import settle

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]
#: the screens an operator must be able to use on a small terminal too (issue 10)
SIZES3 = [pytest.param((60, 20), id="60x20"), *SIZES]

CONFIG = """\
default_environment = "staging"

[environments.staging]
description = "Staging cluster"
secrets = ["ops_key", "runner_token"]

[environments.staging.variables]
base_url = "http://127.0.0.1:8000"
runner_url = "http://127.0.0.1:8010"
database_url = "postgresql://ops@127.0.0.1:5432/ops"
control_plane_cmd = "uvicorn domain_expansion.main:app"
runner_cmd = "uvicorn runner.main:app --port 8010"

[environments.production]
description = "Production: typed confirmation for every mutating step"
protected = true
secrets = ["ops_key", "runner_token"]

[environments.production.variables]
base_url = "https://control.example.internal"
runner_url = "https://runner.example.internal"
database_url = "postgresql://ops@db.example.internal:5432/ops"
control_plane_cmd = "uvicorn domain_expansion.main:app"
runner_cmd = "uvicorn runner.main:app --port 8010"
"""

BROKEN_RUNBOOK = """\
---
id: broken-rollback
title: Broken rollback
---

# Broken rollback

```ops http
url: "{{ base_url }}/health"
expect:
  stauts: 200
```
"""

V2 = "v2-control-plane.md"
STARTED = "2025-03-14T03:12:09.000Z"
RUN_ID = "20250314T031209Z-a1b2c3"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory holding the runbooks, the config and the state dir."""
    monkeypatch.chdir(tmp_path)
    # directories on screen read as ~ (relative to HOME), the same on every machine
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("OPSCONSOLE_SECRET_OPS_KEY", "snapshot-ops-key-0000")
    monkeypatch.setenv("OPSCONSOLE_SECRET_RUNNER_TOKEN", "snapshot-runner-token-0000")
    monkeypatch.delenv("OPSCONSOLE_CONFIG", raising=False)
    # "this machine (ops-laptop)" in a command's confirmation: the same on every machine
    monkeypatch.setattr("socket.gethostname", lambda: "ops-laptop")
    (tmp_path / "config.toml").write_text(CONFIG, encoding="utf-8")
    shutil.copytree(bundled_runbooks_dir(), tmp_path / "runbooks")
    return tmp_path


def settings_for(
    workdir: Path,
    *,
    environment: str | None = None,
    runbook_paths: list[Path] | None = None,
) -> ConsoleSettings:
    return ConsoleSettings(
        config=load_config(workdir / "config.toml"),
        home=workdir / "state",
        runbook_paths=runbook_paths if runbook_paths is not None else [Path("runbooks")],
        environment=environment,
        evidence_dir=workdir / "evidence",
    )


def at(minute: int, second: int = 0) -> str:
    return f"2025-03-14T03:{minute:02d}:{second:02d}.000Z"


def passed(step_id: str, minute: int, detail: str, **fields: object) -> StepResult:
    return StepResult(
        step_id=step_id,
        status=StepStatus.PASSED,
        detail=detail,
        started_at=at(minute),
        finished_at=at(minute, 1),
        duration_ms=fields.pop("duration_ms", 12.0),  # type: ignore[arg-type]
        attempts=1,
        **fields,  # type: ignore[arg-type]
    )


def v2_run(
    workdir: Path,
    results: list[StepResult],
    *,
    cursor: str | None,
    status: RunStatus = RunStatus.IN_PROGRESS,
    run_id: str = RUN_ID,
    environment: str = "staging",
) -> Run:
    runbook = load_runbook(workdir / "runbooks" / V2)
    run = Run(
        id=run_id,
        runbook_path=str(Path("runbooks") / V2),
        runbook_id=runbook.id,
        runbook_title=runbook.title,
        runbook_digest=runbook.digest,
        environment=environment,
        started_at=STARTED,
        updated_at=STARTED,
        finished_at=at(40) if status is not RunStatus.IN_PROGRESS else None,
        status=status,
        cursor=cursor,
        results={result.step_id: result for result in results},
    )
    RunStore(workdir / "state").save(run)
    return run


def startup_results() -> list[StepResult]:
    command = 'APP_ENV=prod DATABASE_URL="" uvicorn domain_expansion.main:app'
    return [
        passed(
            "cp-missing-database-url",
            12,
            "exit 78 (EX_CONFIG: configuration invalid) in 0.7s",
            artifacts=[
                CommandArtifact(command=command, cwd="/srv/v2", timeout_s=15.0),
                OutputArtifact(
                    text="control-plane: refusing to start: ValidationError: 3 invalid settings\n"
                    "  DATABASE_URL: DATABASE_URL is required and must not be empty",
                    lines_total=2,
                    exit_code=78,
                ),
            ],
            assertions=[
                Assertion(name="exit", ok=True, detail="exit 78 is nonzero"),
                Assertion(name="output contains", ok=True, detail="ValidationError, DATABASE_URL"),
            ],
            duration_ms=712.0,
        ),
        passed(
            "cp-sqlite-database-url",
            13,
            "exit 78 (EX_CONFIG: configuration invalid) in 0.8s",
            duration_ms=801.0,
        ),
        passed(
            "cp-prod-missing-ops-key",
            14,
            "exit 78 (EX_CONFIG: configuration invalid) in 0.7s",
            duration_ms=744.0,
        ),
        passed(
            "runner-missing-settings",
            15,
            "exit 78 (EX_CONFIG: configuration invalid) in 0.8s",
            duration_ms=760.0,
        ),
        passed("cp-boots-with-valid-settings", 16, "stopped after 3s", duration_ms=3004.0),
    ]


def http_401(step_id: str, minute: int) -> StepResult:
    return passed(
        step_id,
        minute,
        "401 Unauthorized in 11 ms",
        artifacts=[
            RequestArtifact(method="GET", url="http://127.0.0.1:8000/api/v1/ops/jobs"),
            ResponseArtifact(
                status=401,
                reason="Unauthorized",
                elapsed_ms=11.0,
                headers={"content-type": "application/json"},
                body='{"detail":"Invalid or missing X-Ops-Key"}',
                is_json=True,
                document={"detail": "Invalid or missing X-Ops-Key"},
            ),
        ],
        assertions=[
            Assertion(name="status", ok=True, detail="401 Unauthorized"),
            Assertion(name="body contains", ok=True, detail="'Invalid or missing X-Ops-Key'"),
        ],
        duration_ms=11.0,
    )


def gate_go(step_id: str, minute: int, note: str) -> StepResult:
    return StepResult(
        step_id=step_id,
        status=StepStatus.PASSED,
        detail=f"GO: {note}",
        note=note,
        answer="go",
        started_at=at(minute),
        finished_at=at(minute),
        attempts=1,
    )


def failed_wrong_key(minute: int) -> StepResult:
    return StepResult(
        step_id="ops-jobs-wrong-key",
        status=StepStatus.FAILED,
        detail='expected status 401, got 200 OK (application/json: [{"id":"4f1c…',
        started_at=at(minute),
        finished_at=at(minute, 1),
        duration_ms=9.0,
        attempts=1,
        artifacts=[
            RequestArtifact(
                method="GET",
                url="http://127.0.0.1:8000/api/v1/ops/jobs",
                headers={"X-Ops-Key": "not-the-ops-key"},
            ),
            ResponseArtifact(
                status=200,
                reason="OK",
                elapsed_ms=9.0,
                headers={"content-type": "application/json"},
                body='[{"id":"4f1c","status":"queued"}]',
                is_json=True,
                document=[{"id": "4f1c", "status": "queued"}],
            ),
        ],
        assertions=[
            Assertion(name="status", ok=False, detail="expected status 401, got 200 OK"),
            Assertion(
                name="json detail",
                ok=False,
                detail="detail: expected 'Invalid or missing X-Ops-Key', got nothing",
            ),
        ],
    )


def keys_then_settle(*keys: str, resume: str | None = None) -> Callable[[Pilot[object]], object]:
    """Press keys one at a time, settling after each.

    With ``resume`` (a saved run's id) the walkthrough of that run is opened first,
    the way the resume prompt's Resume does (the prompt has its own snapshot).
    """

    async def run_before(pilot: Pilot[object]) -> None:
        await settle(pilot)
        if resume is not None:
            await open_walkthrough(pilot, resume)
        for key in keys:
            await pilot.press(key)
            await settle(pilot)
        await steady_cursors(pilot)

    return run_before


async def steady_cursors(pilot: Pilot[object]) -> None:
    """A blinking cursor is on or off depending on when the picture is taken: hold it on."""
    from textual.widgets import Input

    for field in pilot.app.screen.query(Input):
        field.cursor_blink = False
    await pilot.pause()


async def open_walkthrough(pilot: Pilot[object], run_id: str) -> None:
    from opsconsole.session import open_session
    from screens.walkthrough import WalkthroughScreen

    app = pilot.app
    assert isinstance(app, OpsConsoleApp)
    home = app.settings.home
    run = RunStore(home).load(run_id)
    runbook = load_runbook(Path(run.runbook_path))
    from opsconsole.config import read_only_reason

    session = open_session(
        runbook, app.environment, home, resume=run,
        mutations_off=read_only_reason(app.environment, app.settings.read_only),
        glass=not app.settings.read_only,  # as OpsConsoleApp.open_runbook
    )
    assert await session.start() == []
    await app.push_screen(WalkthroughScreen(session, app.settings))
    await settle(pilot)


def _in_progress_walk(workdir: Path) -> None:
    v2_run(
        workdir,
        [
            *startup_results(),
            gate_go("startup-gate", 17, "startup contract holds"),
            http_401("ops-jobs-without-key", 18),
        ],
        cursor="ops-jobs-wrong-key",
    )


@pytest.mark.parametrize("size", SIZES3)
def test_home(snap_compare, workdir: Path, size: tuple[int, int]) -> None:
    """Runbooks with their last runs, and a broken runbook showing path:line: message."""
    (workdir / "broken").mkdir()
    (workdir / "broken" / "broken-rollback.md").write_text(BROKEN_RUNBOOK, encoding="utf-8")
    runbook = load_runbook(workdir / "runbooks" / V2)
    results = [
        StepResult(
            step_id=step.id,
            status=StepStatus.SKIPPED,
            note="run by CI/CD",
            detail="skipped: run by CI/CD",
            finished_at=at(39),
        )
        if step.kind == "command" and getattr(step.spec, "plain", False)
        else passed(step.id, 20, "ok")
        for step in runbook.steps
    ]
    v2_run(workdir, results, cursor=None, status=RunStatus.COMPLETED)
    app = OpsConsoleApp(settings_for(workdir, runbook_paths=[Path("runbooks"), Path("broken")]))
    # the broken runbook sorts last: end highlights it and shows its first error
    assert snap_compare(app, terminal_size=size, run_before=keys_then_settle("end"))


@pytest.mark.parametrize("size", SIZES)
def test_home_protected_environment(snap_compare, workdir: Path, size: tuple[int, int]) -> None:
    """e opens the picker; choosing production turns the banner and header red."""
    app = OpsConsoleApp(settings_for(workdir, runbook_paths=[Path("runbooks") / V2]))
    assert snap_compare(app, terminal_size=size, run_before=keys_then_settle("e", "down", "enter"))


@pytest.mark.parametrize("size", SIZES3)
def test_resume_prompt(snap_compare, workdir: Path, size: tuple[int, int]) -> None:
    """Enter on a runbook with an unfinished run offers to resume it."""
    _in_progress_walk(workdir)
    app = OpsConsoleApp(settings_for(workdir, runbook_paths=[Path("runbooks") / V2]))
    assert snap_compare(app, terminal_size=size, run_before=keys_then_settle("enter"))


@pytest.mark.parametrize("size", SIZES)
def test_walkthrough_passing_steps(snap_compare, workdir: Path, size: tuple[int, int]) -> None:
    """Resumed walkthrough: startup phase passed; the first passed step's detail is shown."""
    _in_progress_walk(workdir)
    app = OpsConsoleApp(settings_for(workdir, runbook_paths=[Path("runbooks") / V2]))
    keys = ("home", "down")
    assert snap_compare(app, terminal_size=size, run_before=keys_then_settle(*keys, resume=RUN_ID))


@pytest.mark.parametrize("size", SIZES)
def test_walkthrough_failed_step(snap_compare, workdir: Path, size: tuple[int, int]) -> None:
    """A failed http step selected: failed assertions, the request and the response."""
    v2_run(
        workdir,
        [
            *startup_results(),
            gate_go("startup-gate", 17, "startup contract holds"),
            http_401("ops-jobs-without-key", 18),
            failed_wrong_key(19),
        ],
        cursor="ops-jobs-wrong-key",
    )
    app = OpsConsoleApp(settings_for(workdir, runbook_paths=[Path("runbooks") / V2]))
    assert snap_compare(app, terminal_size=size, run_before=keys_then_settle(resume=RUN_ID))


@pytest.mark.parametrize("size", SIZES3)
def test_gate_dialog(snap_compare, workdir: Path, size: tuple[int, int]) -> None:
    """d on a phase with a failed step: the phase's states, the blocker, Go disabled."""
    v2_run(
        workdir,
        [
            *startup_results(),
            gate_go("startup-gate", 17, "startup contract holds"),
            http_401("ops-jobs-without-key", 18),
            failed_wrong_key(19),
        ],
        cursor="runner-without-token",
    )
    app = OpsConsoleApp(settings_for(workdir, runbook_paths=[Path("runbooks") / V2]))
    assert snap_compare(app, terminal_size=size, run_before=keys_then_settle("d", resume=RUN_ID))


@pytest.mark.parametrize("size", SIZES)
def test_help(snap_compare, workdir: Path, size: tuple[int, int]) -> None:
    """F1 on the walkthrough lists its keys and how to walk a runbook."""
    _in_progress_walk(workdir)
    app = OpsConsoleApp(settings_for(workdir, runbook_paths=[Path("runbooks") / V2]))
    assert snap_compare(app, terminal_size=size, run_before=keys_then_settle("f1", resume=RUN_ID))


def _unknown_trigger(workdir: Path) -> None:
    v2_run(
        workdir,
        [
            *startup_results(),
            gate_go("startup-gate", 17, "startup contract holds"),
            http_401("ops-jobs-without-key", 18),
            StepResult(
                step_id="trigger-runner",
                status=StepStatus.UNKNOWN,
                started_at=at(21),
                attempts=1,
                detail="interrupted while running: it may or may not have "
                "acted. Check the system before running it again.",
            ),
        ],
        cursor="trigger-runner",
    )


#: dialog -> (how the saved run looks, environment, keys pressed in the walkthrough)
DIALOGS: dict[str, tuple[Callable[[Path], object] | None, str, tuple[str, ...]]] = {
    "skip_reason": (_in_progress_walk, "staging", ("s",)),
    "manual_check": (lambda w: v2_run(w, [], cursor="happy-path-4"), "staging", ("x",)),
    "plain_command_confirm": (
        lambda w: v2_run(w, [], cursor="database-migrations-1"),
        "staging",
        ("enter",),
    ),
    "unknown_outcome": (_unknown_trigger, "staging", ("enter",)),
    "typed_confirmation": (
        lambda w: v2_run(w, [], cursor="create-job", environment="production"),
        "production",
        ("enter",),
    ),
    "quit_with_run_in_progress": (_in_progress_walk, "staging", ("ctrl+q",)),
}


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("dialog", sorted(DIALOGS))
def test_walkthrough_dialogs(
    snap_compare, workdir: Path, size: tuple[int, int], dialog: str
) -> None:
    """Every question the walkthrough asks, as the operator first sees it."""
    prepare, environment, keys = DIALOGS[dialog]
    prepare(workdir)
    app = OpsConsoleApp(
        settings_for(workdir, environment=environment, runbook_paths=[Path("runbooks") / V2])
    )
    assert snap_compare(app, terminal_size=size, run_before=keys_then_settle(*keys, resume=RUN_ID))


@pytest.mark.parametrize("size", SIZES)
def test_environment_picker(snap_compare, workdir: Path, size: tuple[int, int]) -> None:
    """e on Home lists the environments; the protected one is marked."""
    app = OpsConsoleApp(settings_for(workdir, runbook_paths=[Path("runbooks") / V2]))
    assert snap_compare(app, terminal_size=size, run_before=keys_then_settle("e"))


# -- the states a step can end in, long-running steps, faults, rehearsals (issue 5) --------

NIGHTLY_RUNBOOK = """\
---
id: nightly-refresh
title: Nightly refresh check
service: metrics
variables: [base_url]
---

# Nightly refresh check

Follow the nightly refresh and confirm the dashboards before the morning report.

## Preflight

- [ ] The on-call channel knows a check is running

```ops http
id: health
title: Control plane is healthy
url: "{{ base_url }}/health"
```

## Refresh

```ops trigger
id: follow-refresh
title: Follow the nightly refresh job
mutating: false
method: GET
url: "{{ base_url }}/api/v1/ops/jobs/latest"
capture:
  refresh_job_id: id
follow:
  url: "{{ base_url }}/api/v1/ops/jobs/{{ refresh_job_id }}"
  interval: 10s
  deadline: 60s
```

```ops command
id: worker-log
title: Tail the refresh worker's log
run: journalctl -u refresh-worker -n 200 --no-pager
mutating: false
```

```ops trigger
id: rerun-refresh
title: Re-run the refresh for yesterday
url: "{{ base_url }}/api/v1/ops/trigger_runner"
json: {job_type: metrics_refresh}
capture:
  rerun_job_id: job_id
follow:
  url: "{{ base_url }}/api/v1/ops/jobs/{{ rerun_job_id }}"
```

```ops http
id: dashboards-fresh
title: Dashboards show today's numbers
url: "{{ base_url }}/api/v1/metrics/freshness"
expect:
  json:
    - path: stale
      equals: false
```

## Sign-off

- [ ] The numbers in Grafana match the morning report
- [ ] The morning report can go out

```ops command
id: restart-worker
title: Restart the refresh worker
run: sleep 30
```

```ops gate
id: signoff-gate
title: "Go / no-go: the morning report"
```
"""

NIGHTLY_ID = "20250314T031209Z-n1ght1"
SIMULATED = "answered by the sandbox's simulated operator"


def nightly_results() -> list[StepResult]:
    def checked(step_id: str, minute: int) -> StepResult:
        return StepResult(
            step_id=step_id,
            status=StepStatus.ANSWERED,
            detail="checked by the sandbox's simulated operator",
            answer="checked",
            note=SIMULATED,
            simulated=True,
            started_at=at(minute),
            finished_at=at(minute),
            attempts=1,
        )

    polls = [
        MeasurementRow(phase="Running", value="queued", at=0.0),
        MeasurementRow(phase="Running", value="running", at=10.0),
        *(MeasurementRow(phase="Running", value="running", at=10.0 * n) for n in range(2, 6)),
        MeasurementRow(phase="Error", message="read-back returned 502 Bad Gateway", at=60.0),
    ]
    return [
        checked("preflight-1", 2),
        passed("health", 3, "200 OK in 8 ms", duration_ms=8.0),
        StepResult(
            step_id="follow-refresh",
            status=StepStatus.INCONCLUSIVE,
            detail="still running after 60s; stopped following",
            started_at=at(4),
            finished_at=at(5),
            duration_ms=60012.0,
            attempts=1,
            assertions=[
                Assertion(name="status", ok=True, detail="200 OK"),
                Assertion(
                    name="follow", ok=False, detail="still running after 60s; stopped following"
                ),
            ],
            artifacts=[
                RequestArtifact(
                    method="GET", url="http://127.0.0.1:8000/api/v1/ops/jobs/latest"
                ),
                StatesArtifact(states=["queued", "running"]),
                MeasurementsArtifact(
                    title="Follow", phase="Inconclusive", message="deadline 60s", rows=polls
                ),
            ],
        ),
        StepResult(
            step_id="worker-log",
            status=StepStatus.CANCELLED,
            detail="cancelled by the operator; nothing was changed",
            started_at=at(6),
            finished_at=at(7),
            duration_ms=41003.0,
            attempts=1,
        ),
        StepResult(
            step_id="rerun-refresh",
            status=StepStatus.UNKNOWN,
            detail="cancelled by the operator while running: its action may have gone out. "
            "Check the system before running it again.",
            started_at=at(8),
            finished_at=at(8, 30),
            duration_ms=30020.0,
            attempts=1,
            artifacts=[
                RequestArtifact(
                    method="POST",
                    url="http://127.0.0.1:8000/api/v1/ops/trigger_runner",
                    document={"job_type": "metrics_refresh"},
                ),
                StatesArtifact(states=["queued"]),
            ],
        ),
        StepResult(
            step_id="dashboards-fresh",
            status=StepStatus.FAILED,
            detail="stale: expected false, got true",
            started_at=at(9),
            finished_at=at(9, 1),
            duration_ms=12.0,
            attempts=1,
            assertions=[
                Assertion(name="status", ok=True, detail="200 OK"),
                Assertion(name="json stale", ok=False, detail="stale: expected false, got true"),
            ],
        ),
        checked("sign-off-1", 10),
        StepResult(
            step_id="sign-off-2",
            status=StepStatus.SKIPPED,
            note="report held back until the dashboards are fresh",
            detail="skipped: report held back until the dashboards are fresh",
            finished_at=at(11),
        ),
    ]


def nightly_run(workdir: Path, *, cursor: str | None) -> Run:
    path = workdir / "nightly" / "nightly-refresh.md"
    path.parent.mkdir(exist_ok=True)
    path.write_text(NIGHTLY_RUNBOOK, encoding="utf-8")
    runbook = load_runbook(path)
    run = Run(
        id=NIGHTLY_ID,
        runbook_path=str(Path("nightly") / "nightly-refresh.md"),
        runbook_id=runbook.id,
        runbook_title=runbook.title,
        runbook_digest=runbook.digest,
        environment="staging",
        started_at=STARTED,
        updated_at=STARTED,
        cursor=cursor,
        rehearsal=True,
        results={result.step_id: result for result in nightly_results()},
    )
    RunStore(workdir / "state").save(run)
    return run


class FixedFaults:
    """A sandbox's fault switch as the console sees it (opsconsole.faults.FaultInjector),
    with no ports or paths to put on screen."""

    def __init__(self, *active: str) -> None:
        self._active = frozenset(active)

    @property
    def active_faults(self) -> frozenset[str]:
        return self._active

    def faults(self) -> list[FaultInfo]:
        return [
            FaultInfo(
                "runner-down", "the runner is not listening", "v2", "runner-down" in self._active
            ),
        ]

    def set_fault(self, name: str, active: bool) -> None:
        self._active = self._active | {name} if active else self._active - {name}


def nightly_settings(workdir: Path, *faults: str) -> ConsoleSettings:
    settings = settings_for(workdir, runbook_paths=[Path("nightly")])
    if faults:
        settings.sandbox = FixedFaults(*faults)
    return settings


@pytest.mark.parametrize("size", SIZES)
def test_walkthrough_new_states(snap_compare, workdir: Path, size: tuple[int, int]) -> None:
    """Every state in the list (answered, inconclusive, cancelled, unknown...), the banner
    counting them with the active sandbox fault, and a check the simulated operator answered."""
    nightly_run(workdir, cursor="sign-off-1")
    app = OpsConsoleApp(nightly_settings(workdir, "runner-down"))
    assert snap_compare(
        app, terminal_size=size, run_before=keys_then_settle(resume=NIGHTLY_ID)
    )


@pytest.mark.parametrize("size", SIZES)
def test_walkthrough_follow_detail(snap_compare, workdir: Path, size: tuple[int, int]) -> None:
    """An inconclusive follow: its states trail and every measurement of the follow."""
    nightly_run(workdir, cursor="follow-refresh")
    app = OpsConsoleApp(nightly_settings(workdir))
    assert snap_compare(
        app, terminal_size=size, run_before=keys_then_settle(resume=NIGHTLY_ID)
    )


@pytest.mark.parametrize("size", SIZES)
def test_cancel_step_dialog(
    snap_compare, workdir: Path, size: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """escape while a mutating command really runs: stopping it may leave it unknown."""
    import asyncio

    from screens.dialogs import CancelStepDialog
    from screens.walkthrough import WalkthroughScreen

    monkeypatch.setattr("opsconsole.session.now_iso", lambda: at(12))  # no clock on screen
    nightly_run(workdir, cursor="restart-worker")
    app = OpsConsoleApp(nightly_settings(workdir))

    async def run_before(pilot: Pilot[object]) -> None:
        await settle(pilot)
        await open_walkthrough(pilot, NIGHTLY_ID)
        screen = pilot.app.screen
        assert isinstance(screen, WalkthroughScreen)
        await pilot.press("enter")
        for _ in range(1500):  # until the command runs (polled, never timed)
            if screen.running_step == "restart-worker":
                break
            await asyncio.sleep(0.02)
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(pilot.app.screen, CancelStepDialog)
        await steady_cursors(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES)
def test_home_rehearsal_nothing_verified_and_faults(
    snap_compare, workdir: Path, size: tuple[int, int]
) -> None:
    """A rehearsal (answers from the simulated operator) is not 'completed'; a run where
    every step was skipped verified nothing; the banner names the active sandbox fault."""
    runbook = load_runbook(workdir / "runbooks" / V2)
    rehearsal = v2_run(
        workdir,
        [
            StepResult(
                step_id=step.id,
                status=StepStatus.ANSWERED,
                detail="checked by the sandbox's simulated operator",
                simulated=True,
                finished_at=at(30),
            )
            if step.needs_human
            else passed(step.id, 30, "ok")
            for step in runbook.steps
        ],
        cursor=None,
        status=RunStatus.COMPLETED,
    )
    rehearsal.rehearsal = True
    RunStore(workdir / "state").save(rehearsal)
    collection = load_runbook(workdir / "runbooks" / "discogs-collection.md")
    RunStore(workdir / "state").save(
        Run(
            id="20250314T031209Z-sk1pp3",
            runbook_path=str(Path("runbooks") / "discogs-collection.md"),
            runbook_id=collection.id,
            runbook_title=collection.title,
            runbook_digest=collection.digest,
            environment="staging",
            started_at=STARTED,
            updated_at=STARTED,
            finished_at=at(41),
            status=RunStatus.COMPLETED,
            results={
                step.id: StepResult(
                    step_id=step.id,
                    status=StepStatus.SKIPPED,
                    note="done in the Discogs UI",
                    detail="skipped: done in the Discogs UI",
                    finished_at=at(41),
                )
                for step in collection.steps
            },
        )
    )
    settings = settings_for(workdir)
    settings.sandbox = FixedFaults("runner-down")
    app = OpsConsoleApp(settings)
    assert snap_compare(app, terminal_size=size, run_before=keys_then_settle())


@pytest.mark.parametrize("size", SIZES)
def test_walkthrough_no_color(
    snap_compare, workdir: Path, size: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """NO_COLOR=1 (issue 10, defect 13): no colour at all; the step list's cursor is shown
    in reverse video, the marks and words carry the states."""
    monkeypatch.setenv("NO_COLOR", "1")
    _in_progress_walk(workdir)
    app = OpsConsoleApp(settings_for(workdir, runbook_paths=[Path("runbooks") / V2]))
    keys = ("home", "down")
    assert snap_compare(app, terminal_size=size, run_before=keys_then_settle(*keys, resume=RUN_ID))
