"""``ops gate``: go / no-go at the end of a phase.

"Go" is disabled while a step of the phase has not passed (or been skipped
with a reason). An unattended run never says go on top of a failed phase: it
decides no-go and the run stops there, before the next phase can act.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..errors import StepRefused
from ..operator import Choice, Choose
from ..run import StepStatus
from . import register
from .base import Outcome, StepContext, StepSpec, StepType

__all__ = ["GateQuestion", "GateSpec", "GateStep"]


class GateSpec(StepSpec):
    prompt: str = "Go / no-go?"
    #: "passed": go needs every earlier step of the phase passed (or skipped with a reason)
    require: Literal["passed", "none"] = "passed"


@dataclass(frozen=True)
class PhaseLine:
    title: str
    status: StepStatus


@dataclass(frozen=True)
class GateQuestion(Choose):
    """Go / no-go, with the phase's steps and which of them block a go."""

    phase: tuple[PhaseLine, ...] = ()
    blockers: tuple[str, ...] = ()


@register
class GateStep(StepType[GateSpec]):
    kind = "gate"
    spec = GateSpec
    description = "go / no-go at the end of a phase (go needs the phase passed)"
    human = True
    closes_phase = True
    audit_event = "gate"

    def default_title(self, spec: GateSpec, section_title: str) -> str:
        return f"Go / no-go: {section_title}"

    async def run(self, ctx: StepContext[GateSpec]) -> Outcome:
        step = ctx.step
        blockers = ctx.run.gate_blockers(step)
        names = ", ".join(s.id for s in blockers[:4]) + ("…" if len(blockers) > 4 else "")
        blocked = (
            f"{len(blockers)} step(s) of this phase not passed ({names})" if blockers else None
        )
        question = GateQuestion(
            prompt=ctx.spec.prompt,
            key="decision",
            choices=(
                Choice("go", "Go", disabled=blocked, tone="positive"),
                Choice("no-go", "No-go", tone="negative"),
            ),
            default=None if blockers else "go",
            yes="go",
            phase=tuple(
                PhaseLine(s.title, ctx.run.result(s.id).status) for s in ctx.run.phase_of(step.id)
            ),
            blockers=tuple(s.title for s in blockers),
            unattended="no-go" if blockers else None,
            unattended_reason=(
                "needs a human (gate); every step of its phase passed or was skipped, "
                "so the check goes on"
            ),
        )
        reply = await ctx.ask(question)
        go = reply.value == "go"
        if go and blocked:
            raise StepRefused(f"cannot go: {blocked}")
        note = reply.note.strip()
        if reply.source == "unattended":
            note = f"headless check stops here: not passed: {', '.join(s.id for s in blockers)}"
        return Outcome(
            StepStatus.PASSED if go else StepStatus.FAILED,
            ("GO" if go else "NO-GO") + (f": {note}" if note else ""),
            answer="go" if go else "no-go",
            note=note,
            stop_run=not go,
            audit={"title": step.title, "decision": "go" if go else "no-go"},
        )
