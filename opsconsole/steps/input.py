"""``ops input``: ask the operator for a value the rest of the run uses."""

from __future__ import annotations

import re

from pydantic import field_validator

from ..operator import EnterText
from ..run import StepStatus
from . import register
from .base import Outcome, Produces, StepContext, StepSpec, StepType

__all__ = ["InputSpec", "InputStep"]


class InputSpec(StepSpec):
    name: str
    prompt: str
    default: str | None = None
    pattern: str | None = None
    secret: bool = False

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, value: str | None) -> str | None:
        from ..patterns import pattern_problem

        problem = pattern_problem(value) if value is not None else None
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
            raise ValueError("an input name is an identifier (letters, digits, '_')")
        return value


@register
class InputStep(StepType[InputSpec]):
    kind = "input"
    spec = InputSpec
    description = "ask the operator for a value (a secret one is never shown or saved)"
    human = True
    audit_event = "input"

    def default_title(self, spec: InputSpec, section_title: str) -> str:
        return spec.prompt

    def produces(self, spec: InputSpec) -> Produces:
        if spec.secret:
            return Produces(secrets=frozenset({spec.name}))
        return Produces(variables=frozenset({spec.name}))

    async def run(self, ctx: StepContext[InputSpec]) -> Outcome:
        from ..errors import StepRefused
        from ..patterns import PatternTimeout, fullmatch

        spec = ctx.spec
        reply = await ctx.ask(
            EnterText(
                prompt=spec.prompt,
                key="value",
                name=spec.name,
                default=spec.default,
                pattern=spec.pattern,
                secret=spec.secret,
            )
        )
        value = reply.value if reply.value else (spec.default or "")
        if not value:
            raise StepRefused(
                "an empty answer is not a value; type one or skip with a reason"
            )
        try:
            matched = not spec.pattern or fullmatch(spec.pattern, value)
        except PatternTimeout as exc:
            raise StepRefused(str(exc)) from None
        if not matched:
            shown = "the value" if spec.secret else repr(value)
            raise StepRefused(f"{shown} does not match the expected form /{spec.pattern}/")
        if spec.secret:
            return Outcome(
                StepStatus.PASSED,
                f"{spec.name} = ***",
                secret_captures={spec.name: value},
                answer="***",
                note=reply.note,
                audit={"name": spec.name, "value": "***"},
            )
        return Outcome(
            StepStatus.PASSED,
            f"{spec.name} = {value}",
            captures={spec.name: value},
            answer=value,
            note=reply.note,
            audit={"name": spec.name, "value": value},
        )
