"""The runbook model: what a Markdown runbook means once it is parsed.

The YAML bodies of ``ops <kind>`` blocks are validated by the pydantic
``*Spec`` models below (unknown keys are errors, so a typo is reported rather
than silently ignored). :class:`Runbook`, :class:`Section` and :class:`Step`
are plain dataclasses built by :mod:`opsconsole.loader`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "CommandExpect",
    "CommandSpec",
    "ConfirmSpec",
    "FollowSpec",
    "GateSpec",
    "HttpExpect",
    "HttpSpec",
    "InputSpec",
    "JsonAssertion",
    "ManualSpec",
    "Runbook",
    "Section",
    "Step",
    "StepKind",
    "TriggerSpec",
    "parse_duration",
]


class StepKind(StrEnum):
    HTTP = "http"
    TRIGGER = "trigger"
    COMMAND = "command"
    MANUAL = "manual"
    INPUT = "input"
    CONFIRM = "confirm"
    GATE = "gate"


#: Kinds that need an operator's answer rather than I/O.
HUMAN_KINDS = frozenset({StepKind.MANUAL, StepKind.INPUT, StepKind.CONFIRM, StepKind.GATE})

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")


def parse_duration(value: Any) -> float:
    """Seconds from ``10``, ``2.5``, ``"500ms"``, ``"10s"``, ``"2m"``."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like 500ms, 10s, 2m")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(
                f"invalid duration {value!r}: use a number of seconds or 500ms, 10s, 2m, 1h"
            )
        number, unit = float(match.group(1)), match.group(2) or "s"
        seconds = number * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
    import math

    if not math.isfinite(seconds):
        raise ValueError("a duration must be a finite number of seconds (not .nan or .inf)")
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    if seconds > 7 * 24 * 3600:  # a typo, and timers overflow on huge values
        raise ValueError("a duration must be at most a week (168h)")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]


def _as_list(value: Any) -> Any:
    if value is None:
        return []
    if isinstance(value, str | int):
        return [value]
    return value


StrList = Annotated[list[str], BeforeValidator(_as_list)]


def _scalars_as_text(value: Any) -> Any:
    """``X-Retries: 3`` and ``PORT: 8010`` mean the text, as they would in a shell."""
    if isinstance(value, dict):
        return {
            key: ("true" if item is True else "false" if item is False else str(item))
            if isinstance(item, int | float | bool)
            else item
            for key, item in value.items()
        }
    return value


StrDict = Annotated[dict[str, str], BeforeValidator(_scalars_as_text)]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class JsonAssertion(_Spec):
    """One assertion on a JSON response: ``path`` is a JMESPath expression."""

    path: str
    equals: Any = None
    not_equals: Any = None
    exists: bool | None = None
    contains: Any = None
    matches: str | None = None
    one_of: list[Any] | None = None
    length: int | None = None

    @field_validator("path")
    @classmethod
    def _compiles(cls, value: str) -> str:
        import jmespath
        from jmespath.exceptions import JMESPathError

        try:
            jmespath.compile(value)
        except JMESPathError as exc:
            raise ValueError(f"invalid JMESPath {value!r}: {exc}") from None
        return value

    @model_validator(mode="after")
    def _has_check(self) -> JsonAssertion:
        if not self.model_fields_set - {"path"}:
            raise ValueError(
                "a JSON assertion needs one of equals, not_equals, exists, contains, "
                "matches, one_of, length"
            )
        return self


class HttpExpect(_Spec):
    status: Annotated[list[int], BeforeValidator(_as_list)] = Field(default_factory=list)
    json_: list[JsonAssertion] = Field(default_factory=list, alias="json")
    headers: StrDict = Field(default_factory=dict)
    body_contains: StrList = Field(default_factory=list)
    body_not_contains: StrList = Field(default_factory=list)
    body_matches: StrList = Field(default_factory=list)
    body_not_matches: StrList = Field(default_factory=list)
    latency_ms: int | None = Field(default=None, gt=0)

    @field_validator("body_matches", "body_not_matches")
    @classmethod
    def _regexes_compile(cls, values: list[str]) -> list[str]:
        for value in values:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regular expression {value!r}: {exc}") from None
        return values


class _StepSpec(_Spec):
    id: str | None = None
    title: str | None = None
    #: None means "the kind decides" (see Step.mutating).
    mutating: bool | None = None

    @field_validator("id")
    @classmethod
    def _id_shape(cls, value: str | None) -> str | None:
        if value is not None and (
            not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}", value) or ".." in value
        ):
            raise ValueError(
                "a step id uses letters, digits, '-', '_' and '.' (at most 100, no '..')"
            )
        return value


class _RequestFields(_Spec):
    method: str = "GET"
    url: str
    headers: StrDict = Field(default_factory=dict)
    params: StrDict = Field(default_factory=dict)
    json_body: Any = Field(default=None, alias="json")
    body: str | None = None
    timeout: Duration = 10.0

    @field_validator("method")
    @classmethod
    def _method(cls, value: str) -> str:
        method = value.upper()
        if method not in {"GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"}:
            raise ValueError(f"unsupported HTTP method {value!r}")
        return method


class HttpSpec(_StepSpec, _RequestFields):
    expect: HttpExpect = Field(default_factory=HttpExpect)
    #: run variable name -> JMESPath into the JSON response
    capture: dict[str, str] = Field(default_factory=dict)
    #: like capture, but the value is a secret (registered with the redactor, never saved)
    capture_secret: dict[str, str] = Field(default_factory=dict)


class FollowSpec(_RequestFields):
    """Poll a read-back URL until the state reaches a terminal value."""

    state: str = "status"
    succeeded: StrList = Field(default_factory=lambda: ["succeeded"])
    failed: StrList = Field(default_factory=lambda: ["failed"])
    interval: Duration = 1.0
    deadline: Duration = 60.0
    #: JMESPath to the result breakdown / error message shown to the operator
    result: str | None = None
    error: str | None = None
    expect: HttpExpect | None = None


class TriggerSpec(HttpSpec):
    method: str = "POST"
    follow: FollowSpec


class CommandExpect(_Spec):
    #: an exit status, a list of them, "nonzero", "any", or "running" (must still be
    #: running when the timeout stops it: a service that boots and stays up)
    exit: int | list[int] | Literal["nonzero", "any", "running"] = 0
    output_contains: StrList = Field(default_factory=list)
    output_not_contains: StrList = Field(default_factory=list)


class CommandSpec(_StepSpec):
    run: str
    timeout: Duration = 60.0
    env: StrDict = Field(default_factory=dict)
    cwd: str | None = None
    expect: CommandExpect = Field(default_factory=CommandExpect)
    #: exit status -> what it means, shown beside the status (e.g. 78: EX_CONFIG)
    exit_codes: dict[int, str] = Field(default_factory=dict)
    #: set by the loader for plain ``bash``/``sh`` blocks written for humans
    plain: bool = False


class ManualSpec(_StepSpec):
    text: str
    detail: str = ""


class InputSpec(_StepSpec):
    name: str
    prompt: str
    default: str | None = None
    pattern: str | None = None
    secret: bool = False

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regular expression {value!r}: {exc}") from None
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
            raise ValueError("an input name is an identifier (letters, digits, '_')")
        return value


class ConfirmSpec(_StepSpec):
    prompt: str


class GateSpec(_StepSpec):
    prompt: str = "Go / no-go?"
    #: "passed": go needs every earlier step of the phase passed (or skipped with a reason)
    require: Literal["passed", "none"] = "passed"


SPEC_BY_KIND: dict[StepKind, type[_StepSpec]] = {
    StepKind.HTTP: HttpSpec,
    StepKind.TRIGGER: TriggerSpec,
    StepKind.COMMAND: CommandSpec,
    StepKind.MANUAL: ManualSpec,
    StepKind.INPUT: InputSpec,
    StepKind.CONFIRM: ConfirmSpec,
    StepKind.GATE: GateSpec,
}


@dataclass(slots=True)
class Step:
    id: str
    kind: StepKind
    title: str
    line: int
    section: int
    spec: Any
    #: the block's source text, shown to the operator before it runs
    source: str = ""

    @property
    def mutating(self) -> bool:
        declared = getattr(self.spec, "mutating", None)
        if declared is not None:
            return bool(declared)
        if self.kind is StepKind.HTTP:
            return self.spec.method not in {"GET", "HEAD", "OPTIONS"}
        return self.kind in {StepKind.TRIGGER, StepKind.COMMAND}

    @property
    def needs_human(self) -> bool:
        return self.kind in HUMAN_KINDS


@dataclass(slots=True)
class Section:
    index: int
    level: int
    title: str
    line: int
    prose: str = ""
    step_ids: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Runbook:
    path: Path
    id: str
    title: str
    service: str = ""
    description: str = ""
    tags: list[str] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)
    secrets: list[str] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    digest: str = ""

    def step(self, step_id: str) -> Step:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)

    def index_of(self, step_id: str) -> int:
        for index, step in enumerate(self.steps):
            if step.id == step_id:
                return index
        raise KeyError(step_id)

    def phase_of(self, gate_id: str) -> list[Step]:
        """The steps a gate closes: those after the previous gate, up to this one."""
        end = self.index_of(gate_id)
        start = 0
        for index in range(end - 1, -1, -1):
            if self.steps[index].kind is StepKind.GATE:
                start = index + 1
                break
        return self.steps[start:end]
