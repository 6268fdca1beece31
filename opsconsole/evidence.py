"""Evidence export: a run as a redacted Markdown report an auditor can read."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .errors import OpsConsoleError
from .files import inside
from .run import Attempt, StepResult, StepStatus, atomic_write, now_iso
from .terminal_text import terminal_safe

if TYPE_CHECKING:
    from .session import RunSession

__all__ = ["evidence_path", "export_evidence", "render_evidence", "write_evidence"]

MARK = {
    StepStatus.PASSED: "PASS",
    StepStatus.FAILED: "FAIL",
    StepStatus.SKIPPED: "SKIP",
    StepStatus.UNKNOWN: "UNKNOWN",
    StepStatus.INCONCLUSIVE: "INCONCLUSIVE",
    StepStatus.CANCELLED: "CANCELLED",
    StepStatus.ANSWERED: "ANSWERED (simulated)",
    StepStatus.RUNNING: "RUNNING",
    StepStatus.PENDING: "not run",
}


def _cell(text: str) -> str:
    return " ".join(text.replace("|", "\\|").split())


def _attempt_lines(attempt: StepResult | Attempt, number: int, total: int) -> list[str]:
    lines: list[str] = []
    if total > 1:
        lines += ["", f"#### Attempt {number} of {total}: {MARK[attempt.status]}", ""]
    if attempt.started_at:
        lines.append(f"- At: {attempt.started_at}")
    if attempt.duration_ms is not None:
        lines.append(f"- Took: {attempt.duration_ms:.0f} ms")
    if attempt.detail:
        lines.append(f"- Outcome: {attempt.detail}")
    if attempt.simulated:
        lines.append("- Answered by the sandbox's simulated operator (a rehearsal, not evidence)")
    if attempt.note:
        lines.append(f"- Operator note: {attempt.note}")
    for assertion in attempt.assertions:
        lines.append(f"  - [{'x' if assertion.ok else ' '}] {assertion.name}: {assertion.detail}")
    for artifact in attempt.artifacts:
        lines += ["", artifact.markdown()]
    return lines


def render_evidence(session: RunSession) -> str:
    run, runbook = session.run, session.runbook
    counts = session.summary()
    result_line = ", ".join(
        f"{counts[s.value]} {MARK[s].lower()}"
        for s in (
            StepStatus.PASSED,
            StepStatus.ANSWERED,
            StepStatus.FAILED,
            StepStatus.UNKNOWN,
            StepStatus.INCONCLUSIVE,
            StepStatus.CANCELLED,
            StepStatus.SKIPPED,
            StepStatus.PENDING,
        )
        if counts[s.value] or s in {StepStatus.PASSED, StepStatus.FAILED, StepStatus.SKIPPED}
    )
    lines = [
        f"# Evidence: {runbook.title}",
        "",
        f"- Run: `{run.id}`",
        f"- Runbook: `{runbook.id}` ({run.runbook_path}, sha256 `{run.runbook_digest[:12]}`)",
        f"- Environment: `{run.environment}`" + (" (protected)" if run.protected else ""),
        f"- Started: {run.started_at}",
        f"- Finished: {run.finished_at or 'not finished'} (status: {run.status.value})",
        f"- Exported: {now_iso()}",
        f"- Result: {result_line}",
    ]
    try:
        head = str(session.audit.head())
    except OpsConsoleError:
        head = run.audit_head or "unknown"
    log = session.audit.path
    lines.append(
        f"- Audit log: `{log}`, head `{head}` — anchor it outside this machine; check with "
        f"`opsconsole audit verify --log {log} --anchor {head}`"
    )
    if run.rehearsal:
        lines.append(
            "- **Rehearsal**: some answers came from the sandbox's simulated operator; "
            "this run verifies nothing a person must check."
        )
    lines += ["", "| # | Step | Kind | Result | Detail |", "|---|---|---|---|---|"]
    for number, step in enumerate(runbook.steps, start=1):
        result = run.result(step.id)
        lines.append(
            f"| {number} | {_cell(step.title)} | {step.kind} | "
            f"{MARK[result.status]} | {_cell(result.detail)} |"
        )
    for section in runbook.sections:
        steps = [runbook.step(step_id) for step_id in section.step_ids]
        touched = [
            s for s in steps
            if run.result(s.id).status is not StepStatus.PENDING or run.result(s.id).history
        ]
        if not touched:
            continue
        lines += ["", f"## {section.title}"]
        for step in touched:
            result = run.result(step.id)
            lines += ["", f"### {MARK[result.status]} — {step.title}", ""]
            lines.append(
                f"- Step `{step.id}` ({step.kind}, line {step.line})"
                + (", mutating" if step.mutating else "")
                + f", attempts: {result.attempts}"
            )
            total = len(result.history) + (1 if result.status is not StepStatus.PENDING else 0)
            for number, attempt in enumerate(result.history, start=1):
                lines += _attempt_lines(attempt, number, total)
            if result.status is not StepStatus.PENDING:
                lines += _attempt_lines(result, total, total)
            if result.status in {StepStatus.FAILED, StepStatus.UNKNOWN, StepStatus.INCONCLUSIVE}:
                from .triage import triage_for

                row = triage_for(runbook.triage, result)
                if row is not None:
                    lines += ["", f"- Triage ({row.signal}): {row.meaning} → {row.action}"]
    lines.append("")
    # Everything above came from redacted state; this pass is the backstop. A server's
    # escape sequences are shown, never sent to the terminal of whoever reads the report.
    return terminal_safe(session.redactor.redact("\n".join(lines)))


def evidence_path(session: RunSession, directory: Path) -> Path:
    """Where the report goes; UnsafePath when an id would place it outside ``directory``."""
    return inside(directory, f"evidence-{session.run.runbook_id}-{session.run.id}.md")


def export_evidence(session: RunSession, directory: Path) -> Path:
    """Render and write the report. Call it on the session's own thread (the UI renders on
    its event loop and may write the returned text elsewhere with :func:`write_evidence`)."""
    path = write_evidence(render_evidence(session), evidence_path(session, directory))
    session.record_event("evidence.export", path=str(path))
    return path


def write_evidence(text: str, path: Path) -> Path:
    atomic_write(path, text)
    return path
