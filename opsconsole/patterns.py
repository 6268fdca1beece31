"""Regular expressions run against data, always with a time bound.

A runbook's pattern meets text the engine does not control (a response body, a
captured value, an operator's answer). Python's ``re`` cannot be interrupted:
``(a+)+$`` against a long run of ``a`` burns CPU for minutes while the step's
own timeout waits behind it. Every match on data goes through this module,
which uses the ``regex`` engine (compatible with ``re`` syntax) with a
timeout. The loader's own fixed patterns keep using ``re``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from .errors import OpsConsoleError

if TYPE_CHECKING:
    import regex

__all__ = [
    "DEFAULT_TIMEOUT",
    "PatternTimeout",
    "compile_pattern",
    "fullmatch",
    "pattern_problem",
    "search",
]

#: seconds one match may take; a runbook pattern on a few MiB of text needs far less
DEFAULT_TIMEOUT = 1.0


class PatternTimeout(OpsConsoleError):
    """A pattern took longer than its time bound on the text it was matched against."""


@lru_cache(maxsize=512)
def compile_pattern(pattern: str) -> regex.Pattern[str]:
    """The compiled pattern; an invalid one raises ``ValueError`` with a readable message."""
    import regex  # ~20 ms: loaded only when a pattern is first used

    try:
        return regex.compile(pattern)
    except regex.error as exc:
        raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None


def pattern_problem(pattern: str) -> str | None:
    """Why ``pattern`` cannot be used (for validators), or None when it compiles."""
    try:
        compile_pattern(pattern)
    except ValueError as exc:
        return str(exc)
    return None


def _timed_out(pattern: str, timeout: float) -> PatternTimeout:
    return PatternTimeout(
        f"the pattern /{pattern}/ took longer than {timeout:g}s and was stopped "
        "(nested repetition such as (a+)+ can take forever on some text): simplify it"
    )


def search(pattern: str, text: str, timeout: float = DEFAULT_TIMEOUT) -> Any:
    """``re.search`` with a time bound: a match object or None; raises :class:`PatternTimeout`."""
    compiled = compile_pattern(pattern)
    try:
        return compiled.search(text, timeout=timeout)
    except TimeoutError:
        raise _timed_out(pattern, timeout) from None


def fullmatch(pattern: str, text: str, timeout: float = DEFAULT_TIMEOUT) -> Any:
    """``re.fullmatch`` with a time bound: a match or None; raises :class:`PatternTimeout`."""
    compiled = compile_pattern(pattern)
    try:
        return compiled.fullmatch(text, timeout=timeout)
    except TimeoutError:
        raise _timed_out(pattern, timeout) from None
