"""Run state: one walk through one runbook in one environment, saved after every step.

Saves are atomic (temp file, fsync, rename, fsync of the folder), so a dropped
SSH session or a killed process loses nothing. Everything saved has passed
through the redactor first; secret captures are never saved.
"""

from __future__ import annotations

import json
import os
import secrets as _random
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from .artifacts import Artifact
from .errors import RunStateError
from .files import atomic_write as atomic_write  # moved to files.py; still importable here
from .files import inside, open_private, write_all

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
    #: placeholder values of plain shell blocks (name -> value), kept for a resume; never a
    #: secret one (those are asked again)
    placeholders: dict[str, str] = Field(default_factory=dict)
    #: some answers came from the sandbox's simulated operator: a rehearsal, not evidence
    rehearsal: bool = False
    #: the audit chain's head after this run's last record (``HASH:SEQ``): a log cut short
    #: afterwards no longer reaches it, which resume and ``audit verify --anchor`` detect
    audit_head: str | None = None

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


#: run fields a journal entry carries besides the one step's result
_HEADER_FIELDS = (
    "status",
    "cursor",
    "finished_at",
    "updated_at",
    "captures",
    "placeholders",
    "rehearsal",
    "audit_head",
)
#: journal entries before a snapshot is written anyway (more when the run is large:
#: compaction costs O(run), so it happens every max(this, steps) entries — linear overall)
COMPACT_AFTER = 64


class RunStore:
    """Saved runs under ``<state>/runs/``: a snapshot per run plus a journal of step changes.

    ``save`` writes the whole run atomically (temp file, fsync, rename). ``save_step``
    appends one step's result (and the run's few changing fields) to ``<id>.journal``
    and fsyncs it: a step costs the same whether the run has 10 steps or 2,000. When the
    journal is longer than the run, it is folded into a new snapshot. ``load`` reads the
    snapshot and replays the journal; a torn last line (a crash mid-append) is ignored —
    that change is lost, and an interrupted step then reads as running, hence unknown.
    """

    def __init__(self, root: Path) -> None:
        self.root = root / "runs"
        self._journal_lines: dict[str, int] = {}
        #: run id -> (snapshot, journal): checked once, not on every step
        self._paths: dict[str, tuple[Path, Path]] = {}
        #: runs whose snapshot this store wrote or read (a journal needs one to apply to)
        self._snapshotted: set[str] = set()

    def _paths_of(self, run_id: str) -> tuple[Path, Path]:
        if run_id not in self._paths:
            self._paths[run_id] = (
                inside(self.root, f"{run_id}.json"),
                inside(self.root, f"{run_id}.journal"),
            )
        return self._paths[run_id]

    def path(self, run_id: str) -> Path:
        return self._paths_of(run_id)[0]

    def journal_path(self, run_id: str) -> Path:
        return self._paths_of(run_id)[1]

    def save(self, run: Run) -> None:
        run.updated_at = now_iso()
        try:
            atomic_write(self.path(run.id), run.model_dump_json(indent=2))
            if self._journal_lines.get(run.id, 1):
                # folded into the snapshot just written
                self.journal_path(run.id).unlink(missing_ok=True)
        except OSError as exc:
            raise RunStateError(
                f"cannot save run state to {self.root}: {exc.strerror or exc}"
            ) from None
        self._journal_lines[run.id] = 0
        self._snapshotted.add(run.id)

    def save_step(self, run: Run, result: StepResult) -> None:
        """Record one step's change durably, in time independent of the run's size."""
        if run.id not in self._snapshotted and not self.path(run.id).exists():
            self.save(run)
            return
        self._snapshotted.add(run.id)
        run.updated_at = now_iso()
        entry = {
            "run": {name: getattr(run, name) for name in _HEADER_FIELDS},
            "result": result.model_dump(mode="json"),
        }
        line = json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n"
        try:
            fd = open_private(self.journal_path(run.id), os.O_WRONLY | os.O_APPEND)
            try:
                write_all(fd, line.encode("utf-8", "backslashreplace"))
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise RunStateError(
                f"cannot save run state to {self.root}: {exc.strerror or exc}"
            ) from None
        count = self._journal_lines.get(run.id, 0) + 1
        self._journal_lines[run.id] = count
        if count > max(COMPACT_AFTER, len(run.results)):
            self.save(run)

    def load(self, run_id: str) -> Run:
        path = self.path(run_id)
        try:
            run = Run.model_validate_json(path.read_text(encoding="utf-8"))
        except (OSError, ValidationError, json.JSONDecodeError) as exc:
            raise RunStateError(f"{path}: cannot read saved run: {exc}") from None
        run, applied = self._replay(run)
        self._journal_lines[run_id] = applied
        return run

    def _replay(self, run: Run) -> tuple[Run, int]:
        """The run with its journal's entries applied, and how many there were."""
        try:
            raw = self.journal_path(run.id).read_bytes()
        except OSError:
            return run, 0
        header: dict[str, Any] = {}
        results: dict[str, Any] = {}
        applied = 0
        for line in raw.split(b"\n"):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                result, latest = entry["result"], entry["run"]
                step_id = result["step_id"]
            except (ValueError, KeyError, TypeError):
                break  # a torn last line: everything before it counts
            header.update(latest)
            results[step_id] = result
            applied += 1
        if not applied:
            return run, 0
        data = run.model_dump(mode="json")
        data.update({k: v for k, v in header.items() if k in _HEADER_FIELDS})
        data["results"].update(results)
        try:
            return Run.model_validate(data), applied
        except ValidationError as exc:
            raise RunStateError(
                f"{self.journal_path(run.id)}: cannot read saved run: {exc}"
            ) from None

    def runs(self) -> list[Run]:
        """Every readable saved run, newest first (unreadable files are skipped)."""
        runs: list[Run] = []
        if not self.root.is_dir():
            return runs
        for path in self.root.glob("*.json"):
            try:
                runs.append(self.load(path.stem))
            except (OSError, RunStateError, ValueError):
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
