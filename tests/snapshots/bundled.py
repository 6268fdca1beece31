"""Scaffolding for snapshot files that open one *bundled* runbook on a saved run.

Each such file has its own config (environment variables and secret names) and its own
results; the working directory, the console settings and the saved run are built here.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from opsconsole.config import ConsoleSettings, bundled_runbooks_dir, load_config
from opsconsole.loader import load_runbook
from opsconsole.run import Run, RunStore, StepResult
from tests.snapshots.test_screens import STARTED


def bundled_workdir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, config: str, secrets: dict[str, str]
) -> Path:
    """A home with ``config`` and a copy of the bundled runbooks; ``secrets`` are fixed
    values of the environment's secrets (``OPSCONSOLE_SECRET_<NAME>``)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    for name, value in secrets.items():
        monkeypatch.setenv(f"OPSCONSOLE_SECRET_{name.upper()}", value)
    monkeypatch.delenv("OPSCONSOLE_CONFIG", raising=False)
    (tmp_path / "config.toml").write_text(config, encoding="utf-8")
    shutil.copytree(bundled_runbooks_dir(), tmp_path / "runbooks")
    return tmp_path


def bundled_settings(workdir: Path, runbook: str) -> ConsoleSettings:
    return ConsoleSettings(
        config=load_config(workdir / "config.toml"),
        home=workdir / "state",
        runbook_paths=[Path("runbooks") / runbook],
        environment=None,
        evidence_dir=workdir / "evidence",
    )


def save_bundled_run(
    workdir: Path, runbook_name: str, run_id: str, cursor: str, results: list[StepResult]
) -> None:
    """A run of ``runbook_name`` in staging, saved with ``results`` and the cursor on
    ``cursor``."""
    runbook = load_runbook(workdir / "runbooks" / runbook_name)
    run = Run(
        id=run_id,
        runbook_path=str(Path("runbooks") / runbook_name),
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
