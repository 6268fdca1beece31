"""Numeric thresholds as runbooks write them: ``"< 5"``, ``">= 0.05"``, ``"== 0"``.

Shared by the ``metrics`` and ``promql`` step kinds. A value that is not a
number (NaN) never meets a threshold, whatever the operator: NaN is never a
pass (``NaN != 0`` is true in IEEE arithmetic, and would otherwise read as one).
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

__all__ = ["Threshold", "ThresholdField", "format_value", "parse_threshold"]

_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
}
_SHAPE = re.compile(r"\s*(<=|>=|==|!=|<|>)\s*([^\s]+)\s*")


@dataclass(frozen=True)
class Threshold:
    """``op`` and a finite number: the condition a value must meet."""

    op: str
    value: float

    def met(self, value: float) -> bool:
        if math.isnan(value):
            return False
        return _OPERATORS[self.op](value, self.value)

    def __str__(self) -> str:
        return f"{self.op} {format_value(self.value)}"


def parse_threshold(text: Any) -> Threshold:
    """``"< 5"`` → Threshold("<", 5.0); a ValueError names the accepted shape."""
    if isinstance(text, Threshold):
        return text
    if not isinstance(text, str):
        raise ValueError(
            f"a threshold is an operator and a number in quotes, like \"< 5\", not {text!r}"
        )
    match = _SHAPE.fullmatch(text)
    number: float | None = None
    if match:
        try:
            number = float(match.group(2))
        except ValueError:
            number = None
    if match is None or number is None or not math.isfinite(number):
        raise ValueError(
            f"invalid threshold {text!r}: write <, <=, >, >=, == or != and a finite number, "
            'like "< 5" or ">= 0.05"'
        )
    return Threshold(match.group(1), number)


#: a pydantic field type: written as text, kept as a Threshold, saved as text
ThresholdField = Annotated[
    Threshold, BeforeValidator(parse_threshold), PlainSerializer(str, return_type=str)
]


def format_value(value: float) -> str:
    """A number as an operator reads it: 7, 0.0123, NaN, +Inf."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.6g}"
