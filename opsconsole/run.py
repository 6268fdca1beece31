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

from .artifacts import Artifact
from .errors import RunStateError
from .files import atomic_write as atomic_write  # moved to files.py; still importable here
from .files import inside

__all__ = [
    "CLEARED",
    "FINISHED",
    "Assertion",
    "Attempt",
    "Run",
    "RunStatus",
    "RunStore",
    "StepResult",
    "StepStatus",
    "now_iso",
]


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class StepStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"
    #: a mutating step was interrupted or lost track: it may or may not have acted
    UNKNOWN = "unknown"
    #: it ran, but could not decide (no data, still running at its deadline)
    INCONCLUSIVE = "inconclusive"
    #: the operator stopped it before it could act (nothing went out)
    CANCELLED = "cancelled"
    #: a human step answered by the sandbox's simulated operator: rehearsed, not verified
    ANSWERED = "answered"


#: statuses after which the walk moves on (the operator may still retry)
FINISHED = frozenset(
    {
        StepStatus.PASSED,
        StepStatus.FAILED,
        StepStatus.SKIPPED,
        StepStatus.INCONCLUSIVE,
        StepStatus.ANSWERED,
    }
)
#: statuses a gate accepts for "go"
CLEARED = frozenset({StepStatus.PASSED, StepStatus.SKIPPED, StepStatus.ANSWERED})


class RunStatus(StrEnum):
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    ABORTED = "aborted"


class Assertion(BaseModel):
    name: str
    ok: bool
    detail: str = ""


class Attempt(BaseModel):
    """One earlier try of a step, kept whole: the evidence shows every attempt."""

    number: int
    status: StepStatus
    detail: str = ""
    started_at: str | None = None
    finished_at: str | None = None
    duration_ms: float | None = None
    assertions: list[Assertion] = Field(default_factory=list)
    artifacts: list[Artifact] = Field(default_factory=list)
    note: str = ""
    answer: str | None = None
    simulated: bool = False


class StepResult(BaseModel):
    """The latest attempt of a step (the envelope plus its artifacts) and the earlier ones."""

    step_id: str
    status: StepStatus = StepStatus.PENDING
    detail: str = ""
    started_at: str | None = None
    finished_at: str | None = None
    duration_ms: float | None = None
    attempts: int = 0
    assertions: list[Assertion] = Field(default_factory=list)
    artifacts: list[Artifact] = Field(default_factory=list)
    #: the operator's words: skip reason, gate decision reason, manual-check note
    note: str = ""
    answer: str | None = None
    #: answered by the sandbox's simulated operator (a rehearsal, not a verification)
    simulated: bool = False
    #: earlier attempts, oldest first
    history: list[Attempt] = Field(default_factory=list)

    def artifact(self, kind: str) -> Any:
        """The first artifact of a type ("request", "response", "output", ...), or None."""
        return next((a for a in self.artifacts if a.type == kind), None)

    def archive(self) -> None:
        """Keep the current attempt in the history before a new one overwrites it."""
        if self.attempts == 0 and self.status is StepStatus.PENDING:
            return
        self.history.append(
            Attempt(
                number=len(self.history) + 1,
                status=self.status,
                detail=self.detail,
                started_at=self.started_at,
                finished_at=self.finished_at,
                duration_ms=self.duration_ms,
                assertions=self.assertions,
                artifacts=self.artifacts,
                note=self.note,
                answer=self.answer,
                simulated=self.simulated,
            )
        )
        self.assertions, self.artifacts = [], []
        self.note, self.answer, self.simulated = "", None, False
        self.duration_ms = None


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
    #: some answers came from the sandbox's simulated operator: a rehearsal, not evidence
    rehearsal: bool = False

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
