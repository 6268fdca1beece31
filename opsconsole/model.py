"""The runbook model: what a Markdown runbook means once it is parsed.

:class:`Runbook`, :class:`Section` and :class:`Step` are plain dataclasses
built by :mod:`opsconsole.loader`. A step's ``spec`` is the pydantic model of
its kind (``opsconsole/steps/<kind>.py``), validated from the block's YAML;
what a kind means — mutating, needs a human, closes a phase — is asked of
its registered step type, never decided here. The field types shared by
step specs (durations, lists, text maps) live here too.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BeforeValidator

if TYPE_CHECKING:
    from .steps.base import StepSpec, StepType
    from .triage import TriageRow

__all__ = [
    "Duration",
    "Runbook",
    "Section",
    "Step",
    "StrDict",
    "StrList",
    "parse_duration",
]

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



@dataclass(slots=True)
class Step:
    id: str
    #: the ``ops <kind>`` word (a registered step type)
    kind: str
    title: str
    line: int
    section: int
    spec: StepSpec
    #: the block's source text, shown to the operator before it runs
    source: str = ""

    @property
    def type(self) -> StepType[Any]:
        from .steps import step_type

        return step_type(self.kind)

    @property
    def mutating(self) -> bool:
        return self.type.is_mutating(self.spec)

    @property
    def needs_human(self) -> bool:
        return self.type.human

    @property
    def closes_phase(self) -> bool:
        return self.type.closes_phase


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
    #: front-matter fields opsconsole does not use itself (site generators, Runme)
    front_matter: dict[str, Any] = field(default_factory=dict)
    #: the failure triage table (a table under a "Triage" heading, or front matter)
    triage: list[TriageRow] = field(default_factory=list)
    _index: dict[str, int] = field(default_factory=dict, repr=False, compare=False)

    def index_of(self, step_id: str) -> int:
        if len(self._index) != len(self.steps):
            self._index = {step.id: n for n, step in enumerate(self.steps)}
        return self._index[step_id]

    def step(self, step_id: str) -> Step:
        return self.steps[self.index_of(step_id)]

    def phase_of(self, gate_id: str) -> list[Step]:
        """The steps a gate closes: those after the previous gate, up to this one."""
        end = self.index_of(gate_id)
        start = 0
        for index in range(end - 1, -1, -1):
            if self.steps[index].closes_phase:
                start = index + 1
                break
        return self.steps[start:end]
