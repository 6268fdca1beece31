"""Run state: one walk through one runbook in one environment, saved after every step.

Saves are atomic (temp file, fsync, rename, fsync of the folder), so a dropped
SSH session or a killed process loses nothing. Everything saved has passed
through the redactor first; secret captures are never saved.
"""

from __future__ import annotations

import json
import secrets as _random
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from .errors import RunStateError
from .files import atomic_write as atomic_write  # moved to files.py; still importable here
from .files import inside

__all__ = ["Assertion", "Run", "RunStatus", "RunStore", "StepResult", "StepStatus", "now_iso"]


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class StepStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"
    #: a mutating step was interrupted: it may or may not have acted
    UNKNOWN = "unknown"


FINISHED = frozenset({StepStatus.PASSED, StepStatus.FAILED, StepStatus.SKIPPED})


class RunStatus(StrEnum):
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    ABORTED = "aborted"


class Assertion(BaseModel):
    name: str
    ok: bool
    detail: str = ""


class StepResult(BaseModel):
    step_id: str
    status: StepStatus = StepStatus.PENDING
    detail: str = ""
    started_at: str | None = None
    finished_at: str | None = None
    duration_ms: float | None = None
    attempts: int = 0
    request: dict[str, Any] | None = None
    response: dict[str, Any] | None = None
    assertions: list[Assertion] = Field(default_factory=list)
    output: str = ""
    exit_code: int | None = None
    states: list[str] = Field(default_factory=list)
    #: the operator's words: skip reason, gate decision reason, manual-check note
    note: str = ""
    answer: str | None = None


class Run(BaseModel):
    id: str
    runbook_path: str
    runbook_id: str
    runbook_title: str
    runbook_digest: str
    environment: str
    protected: bool = False
    started_at: str = Field(default_factory=now_iso)
    updated_at: str = Field(default_factory=now_iso)
    finished_at: str | None = None
    status: RunStatus = RunStatus.IN_PROGRESS
    cursor: str | None = None
    results: dict[str, StepResult] = Field(default_factory=dict)
    captures: dict[str, str] = Field(default_factory=dict)

    @staticmethod
    def new_id() -> str:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        return f"{stamp}-{_random.token_hex(3)}"

    def result(self, step_id: str) -> StepResult:
        if step_id not in self.results:
            self.results[step_id] = StepResult(step_id=step_id)
        return self.results[step_id]

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for result in self.results.values():
            counts[result.status.value] = counts.get(result.status.value, 0) + 1
        return counts


class RunStore:
    """Saved runs, one JSON file each under ``<state>/runs/``."""

    def __init__(self, root: Path) -> None:
        self.root = root / "runs"

    def path(self, run_id: str) -> Path:
        return inside(self.root, f"{run_id}.json")

    def save(self, run: Run) -> None:
        run.updated_at = now_iso()
        try:
            atomic_write(self.path(run.id), run.model_dump_json(indent=2))
        except OSError as exc:
            raise RunStateError(
                f"cannot save run state to {self.root}: {exc.strerror or exc}"
            ) from None

    def load(self, run_id: str) -> Run:
        path = self.path(run_id)
        try:
            return Run.model_validate_json(path.read_text(encoding="utf-8"))
        except (OSError, ValidationError, json.JSONDecodeError) as exc:
            raise RunStateError(f"{path}: cannot read saved run: {exc}") from None

    def runs(self) -> list[Run]:
        """Every readable saved run, newest first (unreadable files are skipped)."""
        runs: list[Run] = []
        if not self.root.is_dir():
            return runs
        for path in self.root.glob("*.json"):
            try:
                runs.append(Run.model_validate_json(path.read_text(encoding="utf-8")))
            except (OSError, ValidationError, ValueError):
                continue
        runs.sort(key=lambda run: run.updated_at, reverse=True)
        return runs

    def unfinished(
        self, runbook_id: str | None = None, environment: str | None = None
    ) -> list[Run]:
        return [
            run
            for run in self.runs()
            if run.status is RunStatus.IN_PROGRESS
            and (runbook_id is None or run.runbook_id == runbook_id)
            and (environment is None or run.environment == environment)
        ]

    def last_finished(self) -> dict[str, Run]:
        """Newest run per runbook id, for the home screen's 'last run' column."""
        latest: dict[str, Run] = {}
        for run in self.runs():
            latest.setdefault(run.runbook_id, run)
        return latest
