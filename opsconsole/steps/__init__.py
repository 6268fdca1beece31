"""Step executors: one coroutine per I/O step kind.

Executors never touch the screen. They take a :class:`StepContext` and return
an :class:`Outcome`; :class:`~opsconsole.session.RunSession` redacts it, records
it and writes the audit trail.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..run import Assertion, StepStatus

if TYPE_CHECKING:
    import httpx

    from ..secrets import Redactor

__all__ = ["Outcome", "StepContext"]


@dataclass
class StepContext:
    variables: Mapping[str, str]
    #: returns a secret's value by name (raises TemplateError when unknown)
    secret: Callable[[str], str]
    redactor: Redactor
    client: httpx.AsyncClient
    #: a line of progress for the operator (the session redacts it)
    progress: Callable[[str], None] = lambda line: None
    #: secret value -> "secret <name>", so assertions can name a secret without showing it
    secret_labels: dict[str, str] = field(default_factory=dict)


@dataclass
class Outcome:
    status: StepStatus
    detail: str
    request: dict[str, Any] | None = None
    response: dict[str, Any] | None = None
    assertions: list[Assertion] = field(default_factory=list)
    output: str = ""
    exit_code: int | None = None
    states: list[str] = field(default_factory=list)
    captures: dict[str, str] = field(default_factory=dict)
    secret_captures: dict[str, str] = field(default_factory=dict)
    duration_ms: float | None = None

    @classmethod
    def judged(cls, assertions: list[Assertion], passed_detail: str, **kwargs: Any) -> Outcome:
        failed = [a for a in assertions if not a.ok]
        if failed:
            return cls(StepStatus.FAILED, failed[0].detail, assertions=assertions, **kwargs)
        return cls(StepStatus.PASSED, passed_detail, assertions=assertions, **kwargs)
