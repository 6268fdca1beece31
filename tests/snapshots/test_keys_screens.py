"""Snapshots for issue 10's last gaps: in read-only mode the step list marks the steps
that change something (⊘, a text mark that survives NO_COLOR) and the detail says so."""

from __future__ import annotations

from pathlib import Path

import pytest

from screens import OpsConsoleApp
from tests.snapshots.test_screens import (
    RUN_ID,
    V2,
    gate_go,
    keys_then_settle,
    settings_for,
    startup_results,
    v2_run,
    workdir,  # noqa: F401 - the fixture
)

SIZES = [pytest.param((60, 20), id="60x20"), pytest.param((80, 24), id="80x24")]


@pytest.mark.parametrize("size", SIZES)
def test_read_only_step_list_no_color(
    snap_compare, workdir: Path, size, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    """--read-only under NO_COLOR, "Create a job" selected: ⊘ in the list in place of the
    mutating mark, "⊘ read-only: not run here" in the detail."""
    monkeypatch.setenv("NO_COLOR", "1")
    v2_run(
        workdir,
        [*startup_results(), gate_go("startup-gate", 17, "startup contract holds")],
        cursor="create-job",
    )
    settings = settings_for(workdir, runbook_paths=[Path("runbooks") / V2])
    settings.read_only = True
    app = OpsConsoleApp(settings)
    assert snap_compare(app, terminal_size=size, run_before=keys_then_settle(resume=RUN_ID))
