"""``ops confirm``: a yes/no question recorded in the run."""

from __future__ import annotations

from ..operator import Choice, Choose
from ..run import StepStatus
from . import register
from .base import Outcome, StepContext, StepSpec, StepType

__all__ = ["ConfirmSpec", "ConfirmStep"]


class ConfirmSpec(StepSpec):
    prompt: str


@register
class ConfirmStep(StepType[ConfirmSpec]):
    kind = "confirm"
    spec = ConfirmSpec
    description = "a yes/no question to the operator, recorded"
    human = True
    audit_event = "confirm"

    def default_title(self, spec: ConfirmSpec, section_title: str) -> str:
        return spec.prompt

    async def run(self, ctx: StepContext[ConfirmSpec]) -> Outcome:
        reply = await ctx.ask(
            Choose(
                prompt=ctx.render(ctx.spec.prompt),
                key="confirm",
                choices=(
                    Choice("yes", "Yes", tone="positive"),
                    Choice("no", "No", tone="negative"),
                ),
                default="yes",
                yes="yes",
                confirmation=True,
            )
        )
        yes = reply.value == "yes"
        return Outcome(
            StepStatus.PASSED if yes else StepStatus.FAILED,
            f"confirmed {reply.by}" if yes else f"answered no {reply.by}",
            answer="yes" if yes else "no",
            note=reply.note,
            audit={"title": ctx.step.title, "yes": yes},
        )
