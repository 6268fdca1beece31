"""Snapshots for issue 10 at 60x20, 80x24 and 120x40: a long title selected, typed
confirmation under NO_COLOR, the resume prompt after a crash during a mutating step, and
the read-only banner (Home, the gate and the plain resume prompt are in test_screens.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsconsole.run import StepResult, StepStatus
from screens import OpsConsoleApp
from tests.snapshots.test_screens import (
    RUN_ID,
    SIZES3,
    V2,
    FixedFaults,
    at,
    gate_go,
    http_401,
    keys_then_settle,
    settings_for,
    startup_results,
    v2_run,
    workdir,  # noqa: F401 - the fixture
)


@pytest.mark.parametrize("size", SIZES3)
def test_walkthrough_long_title_selected(snap_compare, workdir: Path, size) -> None:  # noqa: F811
    """The trigger step's 56-character title: cut in the list, whole in the detail."""
    v2_run(
        workdir,
        [*startup_results(), gate_go("startup-gate", 17, "startup contract holds"),
         http_401("ops-jobs-without-key", 18)],
        cursor="trigger-runner",
    )
    app = OpsConsoleApp(settings_for(workdir, runbook_paths=[Path("runbooks") / V2]))
    assert snap_compare(app, terminal_size=size, run_before=keys_then_settle(resume=RUN_ID))


@pytest.mark.parametrize("size", SIZES3)
def test_typed_confirmation_no_color(
    snap_compare, workdir: Path, size, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    """NO_COLOR: the hint reads [type production], never like the typed name."""
    monkeypatch.setenv("NO_COLOR", "1")
    v2_run(workdir, [], cursor="create-job", environment="production")
    app = OpsConsoleApp(
        settings_for(workdir, environment="production", runbook_paths=[Path("runbooks") / V2])
    )
    assert snap_compare(
        app, terminal_size=size, run_before=keys_then_settle("enter", resume=RUN_ID)
    )


@pytest.mark.parametrize("size", SIZES3)
def test_resume_prompt_after_a_crash_in_a_mutating_step(
    snap_compare, workdir: Path, size  # noqa: F811
) -> None:
    """kill -9 while the trigger ran: the prompt names that step, not the cursor's."""
    v2_run(
        workdir,
        [
            *startup_results(),
            gate_go("startup-gate", 17, "startup contract holds"),
            StepResult(step_id="trigger-runner", status=StepStatus.RUNNING, started_at=at(21),
                       attempts=1, detail="running"),
        ],
        cursor="ops-jobs-without-key",
    )
    app = OpsConsoleApp(settings_for(workdir, runbook_paths=[Path("runbooks") / V2]))
    assert snap_compare(app, terminal_size=size, run_before=keys_then_settle("enter"))


@pytest.mark.parametrize("size", SIZES3)
def test_read_only_banner(snap_compare, workdir: Path, size) -> None:  # noqa: F811
    """--read-only in the protected environment with a sandbox fault on: the banner says
    PROTECTED, READ-ONLY and the fault in words; the counts stay whole."""
    v2_run(
        workdir,
        [*startup_results(), gate_go("startup-gate", 17, "startup contract holds")],
        cursor="ops-jobs-without-key",
        environment="production",
    )
    settings = settings_for(workdir, environment="production",
                            runbook_paths=[Path("runbooks") / V2])
    settings.read_only = True
    settings.sandbox = FixedFaults("runner-down")
    app = OpsConsoleApp(settings)
    assert snap_compare(app, terminal_size=size, run_before=keys_then_settle(resume=RUN_ID))
