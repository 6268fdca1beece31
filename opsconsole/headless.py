"""Headless runs (``opsconsole check``): walk a runbook without a screen.

Nothing that needs a human is invented here: manual checks, inputs, confirms
and gates are answered only by an explicit :class:`Operator` (the sandbox's
:class:`SimulatedOperator`); without one they are reported skipped with the
reason. Plain shell blocks are never run unattended, and mutating steps in a
protected environment are skipped (they need typed confirmation in the console).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from xml.etree import ElementTree

from .config import Environment
from .errors import OpsConsoleError
from .model import Runbook, Step, StepKind
from .run import StepStatus
from .session import Answer, RunSession, open_session

__all__ = ["CheckReport", "Operator", "SimulatedOperator", "run_check"]


class Operator(Protocol):
    def answer(self, step: Step, session: RunSession) -> Answer | None: ...


class SimulatedOperator:
    """The sandbox's stand-in for a person: ticks checks, says yes, decides gates honestly."""

    NOTE = "answered by the sandbox's simulated operator"

    def answer(self, step: Step, session: RunSession) -> Answer | None:
        if step.kind is StepKind.GATE:
            blockers = session.gate_blockers(step)
            if blockers:
                names = ", ".join(s.id for s in blockers)
                return Answer(yes=False, note=f"{self.NOTE}: no-go, not passed: {names}")
            return Answer(yes=True, note=self.NOTE)
        if step.kind is StepKind.INPUT:
            value = step.spec.default or f"sandbox-{step.spec.name}"
            return Answer(yes=True, value=value, note=self.NOTE)
        return Answer(yes=True, note=self.NOTE)


@dataclass
class CheckReport:
    runbook: Runbook
    environment: Environment
    run_id: str
    steps: list[dict[str, object]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[dict[str, object]]:
        return [s for s in self.steps if s["status"] == "failed"]

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0

    def counts(self) -> dict[str, int]:
        counts = {"passed": 0, "failed": 0, "skipped": 0}
        for step in self.steps:
            counts[str(step["status"])] += 1
        return counts

    def to_json(self) -> str:
        return json.dumps(
            {
                "runbook": {
                    "id": self.runbook.id,
                    "title": self.runbook.title,
                    "path": str(self.runbook.path),
                },
                "environment": self.environment.name,
                "protected": self.environment.protected,
                "run_id": self.run_id,
                "summary": self.counts(),
                "warnings": self.warnings,
                "steps": self.steps,
                "exit_code": self.exit_code,
            },
            indent=2,
            ensure_ascii=False,
        )

    def to_junit(self) -> str:
        counts = self.counts()
        suite = ElementTree.Element(
            "testsuite",
            name=self.runbook.id,
            tests=str(len(self.steps)),
            failures=str(counts["failed"]),
            skipped=str(counts["skipped"]),
            errors="0",
        )
        for step in self.steps:
            case = ElementTree.SubElement(
                suite,
                "testcase",
                classname=f"{self.runbook.id}.{self.environment.name}",
                name=f"{step['id']}: {step['title']}",
                time=f"{(step.get('duration_ms') or 0) / 1000:.3f}",
            )
            if step["status"] == "failed":
                failure = ElementTree.SubElement(case, "failure", message=str(step["detail"]))
                failure.text = "\n".join(
                    f"{'ok ' if a['ok'] else 'FAIL'} {a['name']}: {a['detail']}"
                    for a in step.get("assertions", [])  # type: ignore[union-attr]
                )
            elif step["status"] == "skipped":
                ElementTree.SubElement(case, "skipped", message=str(step["detail"]))
        ElementTree.indent(suite)
        return ElementTree.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"

    def to_text(self) -> str:
        marks = {"passed": "✓", "failed": "✗", "skipped": "↷"}
        lines = [f"{self.runbook.title} — environment {self.environment.name} — run {self.run_id}"]
        lines += [f"! {warning}" for warning in self.warnings]
        for step in self.steps:
            lines.append(f"{marks[str(step['status'])]} {step['id']}: {step['title']}")
            if step["status"] != "passed":
                lines.append(f"    {step['detail']}")
        counts = self.counts()
        lines.append(
            f"{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped"
        )
        return "\n".join(lines)


def _skip_reason(step: Step, session: RunSession, operator: Operator | None) -> str | None:
    if step.kind is StepKind.COMMAND and step.spec.plain:
        return (
            "plain shell block: commands written for people are run from the console, "
            "never unattended"
        )
    if step.kind is StepKind.GATE and operator is None:
        return (
            "needs a human (gate); every step of its phase passed or was skipped, "
            "so the check goes on"
        )
    if step.needs_human and operator is None:
        return f"needs a human ({step.kind.value}); run it in the console, or use --sandbox"
    if step.mutating and session.environment.protected:
        return (
            f"{session.environment.name} is protected: mutating steps need typed confirmation "
            "in the console"
        )
    return None


async def run_check(
    runbook: Runbook,
    environment: Environment,
    home: Path,
    *,
    operator: Operator | None = None,
    on_step: Callable[[Step, dict[str, object]], None] | None = None,
) -> CheckReport:
    session = open_session(runbook, environment, home)
    report = CheckReport(runbook, environment, session.run.id)
    try:
        report.warnings.extend(await session.start())
        for step in runbook.steps:
            if session.finished:
                break
            reason = _skip_reason(step, session, operator)
            try:
                if step.kind is StepKind.GATE and operator is None and session.gate_blockers(step):
                    # Nobody can say "go" here: never walk into the next phase (it may act)
                    # on top of failed preconditions.
                    blockers = ", ".join(s.id for s in session.gate_blockers(step))
                    await session.execute(
                        step.id,
                        Answer(
                            yes=False, note=f"headless check stops here: not passed: {blockers}"
                        ),
                    )
                elif reason is not None:
                    session.skip(step.id, reason)
                elif step.needs_human:
                    assert operator is not None
                    answer = operator.answer(step, session)
                    if answer is None:
                        session.skip(step.id, "the operator did not answer")
                    else:
                        await session.execute(step.id, answer)
                else:
                    await session.execute(step.id)
            except OpsConsoleError as exc:  # StepRefused, ConfirmationRequired, ...
                result = session.result(step.id)
                result.status = StepStatus.FAILED
                result.detail = session.redactor.redact(str(exc))
                session.save()
            report.steps.append(_step_json(step, session))
            if on_step is not None:
                on_step(step, report.steps[-1])
        stopped_at = next(
            (s for s in runbook.steps if session.result(s.id).answer == "no-go"), None
        )
        for step in runbook.steps[len(report.steps) :]:
            why = (
                f"not reached: the run stopped at the no-go gate {stopped_at.id!r}"
                if stopped_at
                else "not reached"
            )
            report.steps.append(_step_json(step, session, skipped=why))
            if on_step is not None:
                on_step(step, report.steps[-1])
        report.warnings.extend(w for w in session.warnings if w not in report.warnings)
    finally:
        await session.close()
    return report


def _step_json(step: Step, session: RunSession, skipped: str | None = None) -> dict[str, object]:
    result = session.result(step.id)
    status = result.status
    if skipped is not None:
        shown, detail = "skipped", skipped
    elif status in {StepStatus.PASSED, StepStatus.FAILED, StepStatus.SKIPPED}:
        shown, detail = status.value, result.detail
    else:
        shown, detail = "failed", f"{status.value}: {result.detail}"
    entry: dict[str, object] = {
        "id": step.id,
        "title": step.title,
        "kind": step.kind.value,
        "line": step.line,
        "mutating": step.mutating,
        "status": shown,
        "detail": detail,
        "duration_ms": result.duration_ms,
        "assertions": [a.model_dump() for a in result.assertions],
    }
    if result.states:
        entry["states"] = result.states
    if result.exit_code is not None:
        entry["exit_code"] = result.exit_code
    if result.note:
        entry["note"] = result.note
    return session.redactor.redact_obj(entry)
