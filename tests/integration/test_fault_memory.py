"""The demo's fault memory (``<home>/sandbox-faults/<run>.json``) is removed when the sandbox
stops cleanly and the run is finished; kept while a resume may still need it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import opsconsole.cli
from opsconsole.faults import fault_memory, forget_finished_faults
from opsconsole.run import Run, RunStatus, RunStore


def saved_run(home: Path, status: RunStatus | None) -> str:
    """A run saved with ``status`` (None: never saved) and its fault memory beside it."""
    run = Run(
        id=Run.new_id(), runbook_path="r.md", runbook_id="rb", runbook_title="R",
        runbook_digest="0" * 64, environment="sandbox",
    )
    if status is not None:
        run.status = status
        RunStore(home).save(run)
    path = fault_memory(home, run.id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(["runner-down"]), encoding="utf-8")
    return run.id


def test_only_finished_or_gone_runs_lose_their_fault_memory(tmp_path: Path) -> None:
    home = tmp_path / "sandbox"
    open_run = saved_run(home, RunStatus.IN_PROGRESS)
    completed = saved_run(home, RunStatus.COMPLETED)
    aborted = saved_run(home, RunStatus.ABORTED)  # a no-go, or abandoned for a new run
    gone = saved_run(home, None)
    unreadable = saved_run(home, RunStatus.IN_PROGRESS)
    RunStore(home).path(unreadable).write_text("{not json", encoding="utf-8")

    assert sorted(forget_finished_faults(home)) == sorted([completed, aborted, gone])
    kept = {path.stem for path in (home / "sandbox-faults").iterdir()}
    assert kept == {open_run, unreadable}
    assert forget_finished_faults(tmp_path / "nothing-here") == []


def test_the_demo_forgets_finished_runs_faults_when_its_sandbox_stops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through ``cmd_demo``: a real sandbox starts and stops; the console is a stand-in
    that leaves one finished and one interrupted run, as a demo session would."""
    monkeypatch.setenv("OPSCONSOLE_HOME", str(tmp_path / "state"))
    home = tmp_path / "state" / "sandbox"
    left: dict[str, str] = {}

    def console(settings: object) -> int:
        assert getattr(settings, "home") == home  # noqa: B009 - the demo's own state dir
        left["finished"] = saved_run(home, RunStatus.COMPLETED)
        left["interrupted"] = saved_run(home, RunStatus.IN_PROGRESS)
        return 0

    monkeypatch.setattr(opsconsole.cli, "_console", console)
    assert opsconsole.cli.cmd_demo([]) == 0
    assert not fault_memory(home, left["finished"]).exists()
    assert fault_memory(home, left["interrupted"]).exists()  # a resume restores its faults
