"""A step kind that lives only in the tests: proof that a kind is one module.

``ops countdown`` counts down from ``start``, emitting progress, asks the operator
whether to go on halfway (a typed question on the operator channel), and
returns its numbers as a key-values artifact. Nothing else in opsconsole knows it:
importing this module (or naming it in ``$OPSCONSOLE_PLUGINS``) registers it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from pydantic import Field

from opsconsole.artifacts import KeyValuesArtifact
from opsconsole.operator import Choice, Choose, Progress
from opsconsole.run import StepStatus
from opsconsole.steps import register
from opsconsole.steps.base import Outcome, Produces, StepContext, StepSpec, StepType


class CountdownSpec(StepSpec):
    start: int = Field(gt=0, le=1000)
    label: str = "countdown"
    #: the run variable the final count goes into
    capture: str | None = None


@register
class CountdownStep(StepType[CountdownSpec]):
    kind = "countdown"
    spec = CountdownSpec
    description = "count down, asking halfway whether to go on (a test-only kind)"

    def default_title(self, spec: CountdownSpec, section_title: str) -> str:
        return f"Count down from {spec.start}"

    def produces(self, spec: CountdownSpec) -> Produces:
        return Produces(variables=frozenset({spec.capture} if spec.capture else ()))

    def describe(self, spec: CountdownSpec, render: Callable[..., str]) -> str:
        return f"count down from {spec.start} ({render(spec.label)})"

    async def run(self, ctx: StepContext[CountdownSpec]) -> Outcome:
        spec = ctx.spec
        done = 0
        for remaining in range(spec.start, 0, -1):
            if done == spec.start // 2:
                reply = await ctx.ask(
                    Choose(
                        prompt=f"Halfway ({remaining} left): go on?",
                        key="halfway",
                        choices=(
                            Choice("on", "Go on", tone="positive"),
                            Choice("stop", "Stop here", tone="negative"),
                        ),
                        default="on",
                        yes="on",
                        note=False,
                    )
                )
                if reply.value != "on":
                    return Outcome(StepStatus.FAILED, f"stopped by the operator at {remaining}")
            done += 1
            ctx.emit(Progress(label=ctx.render(spec.label), done=done, total=spec.start))
            await asyncio.sleep(0)
        values = [("counted", str(done)), ("label", ctx.render(spec.label))]
        return Outcome(
            StepStatus.PASSED,
            f"counted down from {spec.start}",
            artifacts=[KeyValuesArtifact(title="Countdown", items=values)],
            captures={spec.capture: str(done)} if spec.capture else {},
        )
