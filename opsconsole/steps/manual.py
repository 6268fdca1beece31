"""Manual checks: Markdown task-list items (``- [ ] ...``) the operator ticks, recorded."""

from __future__ import annotations

from ..operator import Choice, Choose
from ..run import StepStatus
from . import register
from .base import Outcome, StepContext, StepSpec, StepType

__all__ = ["ManualSpec", "ManualStep"]


class ManualSpec(StepSpec):
    text: str
    detail: str = ""


@register
class ManualStep(StepType[ManualSpec]):
    kind = "manual"
    spec = ManualSpec
    description = "a check the operator ticks (Markdown task-list items become these)"
    human = True
    audit_event = "manual.check"

    def default_title(self, spec: ManualSpec, section_title: str) -> str:
        return spec.text

    def checks_references(self, spec: ManualSpec) -> bool:
        return False  # text written for people

    async def run(self, ctx: StepContext[ManualSpec]) -> Outcome:
        spec = ctx.spec
        reply = await ctx.ask(
            Choose(
                prompt=spec.text,
                key="check",
                detail=spec.detail,
                choices=(
                    Choice("checked", "✓ Checked", tone="positive"),
                    Choice("not-ok", "✗ Not OK", tone="negative"),
                ),
                default="checked",
                yes="checked",
            )
        )
        ok = reply.value == "checked"
        return Outcome(
            StepStatus.PASSED if ok else StepStatus.FAILED,
            f"checked {reply.by}" if ok else f"marked NOT OK {reply.by}",
            answer="checked" if ok else "not ok",
            note=reply.note,
            audit={"title": ctx.step.title, "ok": ok},
        )
