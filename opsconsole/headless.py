"""Headless runs (``opsconsole check``): walk a runbook without a screen.

Nothing that needs a human is invented here. Questions go to a
:class:`~opsconsole.operator.HeadlessOperator`: answers given on the command
line, ``--yes`` for confirmations in an unprotected environment, the
sandbox's simulated operator under ``--sandbox``; otherwise the step is
reported skipped with the reason. A step answered by the simulated operator
is ``answered``, never ``passed``: a rehearsal is not a verification. A gate
whose phase failed stops the check (it never walks into the next, mutating
phase), and a check in which no automated step ran says so.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

from .config import Environment
from .errors import StepRefused
from .model import Runbook, Step
from .operator import (
    ApprovePlan,
    EnterText,
    HeadlessOperator,
    NoAnswer,
    Question,
    Reply,
    TypeToConfirm,
)
from .run import StepStatus
from .session import RunSession, open_session
from .terminal_text import terminal_safe

__all__ = ["BAD_STATUSES", "CheckReport", "CommandOperator", "is_plain_command", "run_check"]

#: statuses that make a check fail (nothing verified them)
BAD_STATUSES = frozenset({"failed", "unknown", "inconclusive", "cancelled"})
#: statuses of an automated step that actually ran
RAN = frozenset({"passed", "failed", "unknown", "inconclusive"})
_ORDER = ("passed", "answered", "failed", "unknown", "inconclusive", "cancelled", "skipped")
MARKS = {
    "passed": "✓",
    "answered": "~",
    "failed": "✗",
    "unknown": "?",
    "inconclusive": "≟",
    "cancelled": "⊘",
    "skipped": "↷",
}


@dataclass
class CheckReport:
    runbook: Runbook
    environment: Environment
    run_id: str
    steps: list[dict[str, object]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    rehearsal: bool = False
    require_automated: bool = False
    #: plain shell blocks were run (check --run-commands)
    run_commands: bool = False
    #: where the run stopped at a failing command (not --keep-going)
    stopped_at: str | None = None

    @property
    def commands_not_run(self) -> int:
        """Plain shell blocks that did not run (skipped, not reached)."""
        return sum(1 for s in self.steps if s.get("plain") and s["status"] == "skipped")

    def commands_line(self) -> str:
        """Why commands were not run, in one line ("" when all ran)."""
        count = self.commands_not_run
        if not count:
            return ""
        noun = "command was" if count == 1 else "commands were"
        if not self.run_commands:
            return (
                f"{count} shell {noun} not run: plain shell blocks run only with "
                "--run-commands"
            )
        if self.stopped_at:
            return (
                f"{count} shell {noun} not run: the run stopped at the failing block "
                f"{self.stopped_at!r} (--keep-going runs the rest)"
            )
        return f"{count} shell {noun} not run (see each step for why)"

    @property
    def failed(self) -> list[dict[str, object]]:
        return [s for s in self.steps if s["status"] in BAD_STATUSES]

    @property
    def automated_ran(self) -> int:
        return sum(1 for s in self.steps if not s["human"] and s["status"] in RAN)

    @property
    def exit_code(self) -> int:
        if self.failed:
            return 1
        if self.require_automated and not self.automated_ran:
            return 1
        return 0

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(_ORDER, 0)
        for step in self.steps:
            counts[str(step["status"])] = counts.get(str(step["status"]), 0) + 1
        return counts

    def summary_line(self) -> str:
        counts = self.counts()
        parts = [f"{counts['passed']} passed"]
        if counts["answered"]:
            parts.append(f"{counts['answered']} answered by the simulated operator")
        parts.append(f"{counts['failed']} failed")
        for status in ("unknown", "inconclusive", "cancelled"):
            if counts[status]:
                parts.append(f"{counts[status]} {status}")
        parts.append(f"{counts['skipped']} skipped")
        return ", ".join(parts)

    def verdict(self) -> str:
        """One line on what this check proves."""
        if not self.automated_ran:
            return (
                "Nothing automated ran: no step was verified"
                + (" (exit 1: --require-automated)" if self.require_automated else "")
                + "."
            )
        if self.rehearsal:
            return (
                "Rehearsal: human steps were answered by the sandbox's simulated operator, "
                "not by a person."
            )
        return ""

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
                "rehearsal": self.rehearsal,
                "summary": self.counts(),
                "automated_steps_run": self.automated_ran,
                "verdict": self.verdict(),
                "run_commands": self.run_commands,
                "commands_not_run": self.commands_not_run,
                "commands": self.commands_line(),
                "warnings": self.warnings,
                "steps": [{k: v for k, v in s.items() if k != "junit"} for s in self.steps],
                "exit_code": self.exit_code,
            },
            indent=2,
            ensure_ascii=False,
        )

    def to_junit(self) -> str:
        counts = self.counts()
        suite = ElementTree.Element(
            "testsuite",
            name=_xml(self.runbook.id),
            tests=str(len(self.steps)),
            failures=str(sum(counts[s] for s in BAD_STATUSES)),
            skipped=str(counts["skipped"]),
            errors="0",
        )
        for step in self.steps:
            case = ElementTree.SubElement(
                suite,
                "testcase",
                classname=_xml(f"{self.runbook.id}.{self.environment.name}"),
                name=_xml(f"{step['id']}: {step['title']}"),
                time=f"{_seconds(step.get('duration_ms')):.3f}",
            )
            status = str(step["status"])
            if status in BAD_STATUSES:
                failure = ElementTree.SubElement(
                    case, "failure", message=_xml(f"{status}: {step['detail']}"), type=status
                )
                failure.text = _xml(step.get("junit", ""))
            elif status == "skipped":
                ElementTree.SubElement(case, "skipped", message=_xml(step["detail"]))
            elif status == "answered":
                out = ElementTree.SubElement(case, "system-out")
                out.text = _xml(
                    "answered by the sandbox's simulated operator: rehearsed, not verified "
                    f"({step['detail']})"
                )
        ElementTree.indent(suite)
        return ElementTree.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"

    def to_text(self) -> str:
        lines = [f"{self.runbook.title} — environment {self.environment.name} — run {self.run_id}"]
        lines += [f"! {warning}" for warning in self.warnings]
        for step in self.steps:
            lines.append(f"{MARKS[str(step['status'])]} {step['id']}: {step['title']}")
            status, detail = str(step["status"]), str(step["detail"])
            if status != "passed":
                lines.append(f"    {detail}" if detail.startswith(status) else
                             f"    {status}: {detail}")
            triage = step.get("triage")
            if isinstance(triage, dict):
                lines.append(f"    triage: {triage['meaning']} → {triage['action']}")
        lines.append(self.summary_line())
        if self.commands_line():
            lines.append(self.commands_line())
        verdict = self.verdict()
        if verdict:
            lines.append(verdict)
        return "\n".join(lines)


#: characters XML 1.0 cannot hold that terminal_safe leaves (it escapes the C0 controls)
_NOT_XML = re.compile("[\ud800-\udfff\ufffe\uffff]")


def _xml(text: object) -> str:
    """``text`` as XML 1.0 can hold it: control characters from a server (``\\x00``,
    ``\\x1b``) would make the whole report unreadable to CI; they are shown escaped."""
    return _NOT_XML.sub(lambda m: f"\\u{ord(m.group()):04x}", terminal_safe(str(text)))


def _seconds(milliseconds: object) -> float:
    return float(milliseconds) / 1000 if isinstance(milliseconds, int | float) else 0.0


async def run_check(
    runbook: Runbook,
    environment: Environment,
    home: Path,
    *,
    operator: HeadlessOperator | None = None,
    on_step: Callable[[Step, dict[str, object]], None] | None = None,
    require_automated: bool = False,
    run_commands: bool = False,
    keep_going: bool = False,
    read_only: bool = False,
) -> CheckReport:
    """Walk ``runbook`` headless. With ``run_commands``, plain shell blocks run (in one
    shell session, in order) and the first failing one stops the run unless
    ``keep_going``. ``read_only`` (or ``read_only = true`` on the environment): mutating
    steps are skipped with the reason, never run, never passed."""
    from .config import read_only_reason

    operator = operator or HeadlessOperator(protected=environment.protected)
    session = open_session(
        runbook, environment, home, mutations_off=read_only_reason(environment, read_only)
    )
    report = CheckReport(
        runbook, environment, session.run.id, require_automated=require_automated,
        run_commands=run_commands,
    )
    try:
        report.warnings.extend(await session.start())
        for step in runbook.steps:
            if session.finished:
                break
            try:
                if step.mutating and (why := session.mutations_blocked()):
                    session.skip(step.id, why)  # shown and recorded, never run
                else:
                    await session.execute(step.id, operator=operator)
            except StepRefused as exc:
                result = session.result(step.id)
                result.status = StepStatus.FAILED
                result.detail = session.redactor.redact(str(exc))
                session.save()
            report.steps.append(_step_json(step, session))
            if on_step is not None:
                on_step(step, report.steps[-1])
            if (
                run_commands
                and not keep_going
                and is_plain_command(step)
                and report.steps[-1]["status"] in BAD_STATUSES
            ):
                report.stopped_at = step.id
                break
        stopped_at = next(
            (s for s in runbook.steps if session.result(s.id).answer == "no-go"), None
        )
        for step in runbook.steps[len(report.steps) :]:
            why = (
                f"not reached: the run stopped at the no-go gate {stopped_at.id!r}"
                if stopped_at
                else f"not reached: the run stopped at the failing block {report.stopped_at!r}"
                " (--keep-going runs the rest)"
                if report.stopped_at
                else "not reached"
            )
            report.steps.append(_step_json(step, session, skipped=why))
            if on_step is not None:
                on_step(step, report.steps[-1])
        report.warnings.extend(w for w in session.warnings if w not in report.warnings)
        report.rehearsal = session.run.rehearsal
    finally:
        await session.close()
    return report


def _step_json(step: Step, session: RunSession, skipped: str | None = None) -> dict[str, object]:
    result = session.result(step.id)
    status = result.status
    if skipped is not None:
        shown, detail = "skipped", skipped
    elif status in {StepStatus.PENDING, StepStatus.RUNNING}:
        shown, detail = "skipped", f"not run ({status.value})"
    else:
        shown, detail = status.value, result.detail
    entry: dict[str, object] = {
        "id": step.id,
        "title": step.title,
        "kind": step.kind,
        "line": step.line,
        "mutating": step.mutating,
        "human": step.needs_human,
        "status": shown,
        "detail": detail,
        "duration_ms": result.duration_ms,
        "attempts": result.attempts,
        "assertions": [a.model_dump() for a in result.assertions],
        "artifacts": [a.model_dump() for a in result.artifacts],
    }
    if is_plain_command(step):
        entry["plain"] = True
    if result.note:
        entry["note"] = result.note
    if result.answer is not None:
        entry["answer"] = result.answer
    if result.simulated:
        entry["answered_by"] = "simulated operator"
    if shown in BAD_STATUSES:
        from .triage import triage_for

        row = triage_for(session.runbook.triage, result)
        if row is not None:
            entry["triage"] = row.to_dict()
    junit = [f"{'ok ' if a.ok else 'FAIL'} {a.name}: {a.detail}" for a in result.assertions]
    if "triage" in entry:
        row_json = entry["triage"]
        assert isinstance(row_json, dict)
        junit.insert(0, f"triage ({row_json['signal']}): {row_json['meaning']} → "
                        f"{row_json['action']}")
    junit += [artifact.junit() for artifact in result.artifacts]
    entry["junit"] = "\n".join(junit)
    return session.redactor.redact_obj(entry)  # type: ignore[no-any-return]


def is_plain_command(step: Step) -> bool:
    """A shell block written for people (not an ``ops command``)."""
    return step.kind == "command" and bool(getattr(step.spec, "plain", False))


def _not_for_run_all(step: Step) -> str:
    """Why a plain block is not run by ``--run-commands`` (Runme's attributes), or ""."""
    spec = step.spec
    if getattr(spec, "exclude_from_run_all", False):
        return "excluded from running all blocks (excludeFromRunAll): run it in the console"
    return ""  # background and interactive blocks: the step itself says it does not run them


@dataclass
class CommandOperator(HeadlessOperator):
    """``check --run-commands``: approves plain shell blocks (never guessed ones), answers
    their placeholders from ``--answer NAME=VALUE`` or the process environment, and types
    the environment's name for a protected one only when ``--yes-protected ENV`` named it."""

    run_commands: bool = False
    yes_protected: str | None = None
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))

    async def ask(self, step: Step, question: Question) -> Reply:
        if isinstance(question, ApprovePlan) and question.key == "run-guessed":
            raise NoAnswer(question.unattended_reason)
        if self.run_commands:
            if isinstance(question, ApprovePlan) and question.key == "run":
                if why := _not_for_run_all(step):
                    raise NoAnswer(why)
                return Reply("yes", "approved with --run-commands", "command line")
            if isinstance(question, EnterText) and question.key.startswith("placeholder."):
                name = question.key.removeprefix("placeholder.")
                if name in self.answers:
                    self.used.add(name)
                    return Reply(self.answers[name], "given on the command line", "command line")
                if self.environ.get(name):
                    return Reply(self.environ[name], "from the environment", "command line")
            if (
                isinstance(question, TypeToConfirm)
                and self.yes_protected is not None
                and question.expected == self.yes_protected
            ):
                return Reply(self.yes_protected, "confirmed with --yes-protected", "command line")
        return await super().ask(step, question)
