"""Evidence export: a run as a redacted Markdown report an auditor can read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from .files import inside
from .run import StepStatus, atomic_write, now_iso

if TYPE_CHECKING:
    from .session import RunSession

__all__ = ["evidence_path", "export_evidence", "render_evidence", "write_evidence"]

_MARK = {
    StepStatus.PASSED: "PASS",
    StepStatus.FAILED: "FAIL",
    StepStatus.SKIPPED: "SKIP",
    StepStatus.UNKNOWN: "UNKNOWN",
    StepStatus.RUNNING: "RUNNING",
    StepStatus.PENDING: "not run",
}


def _cell(text: str) -> str:
    return " ".join(text.replace("|", "\\|").split())


def _fence(text: str, language: str = "") -> str:
    ticks = "```"
    while ticks in text:
        ticks += "`"
    return f"{ticks}{language}\n{text.rstrip()}\n{ticks}"


def render_evidence(session: RunSession) -> str:
    run, runbook = session.run, session.runbook
    counts = session.summary()
    lines = [
        f"# Evidence: {runbook.title}",
        "",
        f"- Run: `{run.id}`",
        f"- Runbook: `{runbook.id}` ({run.runbook_path}, sha256 `{run.runbook_digest[:12]}`)",
        f"- Environment: `{run.environment}`" + (" (protected)" if run.protected else ""),
        f"- Started: {run.started_at}",
        f"- Finished: {run.finished_at or 'not finished'} (status: {run.status.value})",
        f"- Exported: {now_iso()}",
        f"- Result: {counts['passed']} passed, {counts['failed']} failed, "
        f"{counts['skipped']} skipped, {counts['unknown']} unknown, "
        f"{counts['pending']} not run",
        "",
        "| # | Step | Kind | Result | Detail |",
        "|---|---|---|---|---|",
    ]
    for number, step in enumerate(runbook.steps, start=1):
        result = run.result(step.id)
        lines.append(
            f"| {number} | {_cell(step.title)} | {step.kind.value} | "
            f"{_MARK[result.status]} | {_cell(result.detail)} |"
        )
    for section in runbook.sections:
        steps = [runbook.step(step_id) for step_id in section.step_ids]
        touched = [s for s in steps if run.result(s.id).status is not StepStatus.PENDING]
        if not touched:
            continue
        lines += ["", f"## {section.title}"]
        for step in touched:
            result = run.result(step.id)
            lines += ["", f"### {_MARK[result.status]} — {step.title}", ""]
            lines.append(
                f"- Step `{step.id}` ({step.kind.value}, line {step.line})"
                + (", mutating" if step.mutating else "")
            )
            if result.started_at:
                lines.append(f"- At: {result.started_at}, attempts: {result.attempts}")
            if result.duration_ms is not None:
                lines.append(f"- Took: {result.duration_ms:.0f} ms")
            if result.detail:
                lines.append(f"- Outcome: {result.detail}")
            if result.note:
                lines.append(f"- Operator note: {result.note}")
            if result.states:
                lines.append(f"- States: {' → '.join(result.states)}")
            for assertion in result.assertions:
                lines.append(
                    f"  - [{'x' if assertion.ok else ' '}] {assertion.name}: {assertion.detail}"
                )
            if result.request:
                lines += ["", "Request:", "", _fence(json.dumps(result.request, indent=2), "json")]
            if result.response:
                shown = {k: v for k, v in result.response.items() if k not in {"json", "is_json"}}
                lines += ["", "Response:", "", _fence(json.dumps(shown, indent=2), "json")]
            if result.output:
                lines += ["", "Output:", "", _fence(result.output)]
    lines.append("")
    # Everything above came from redacted state; this pass is the backstop.
    return session.redactor.redact("\n".join(lines))


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
