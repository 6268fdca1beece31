"""Exceptions raised by the opsconsole engine.

Every error an operator can cause or fix derives from :class:`OpsConsoleError`
and has a message fit to show on screen as it is (no traceback needed):

OpsConsoleError
├── RunbookError        a problem in a runbook; ``str()`` is ``path:line: message``
│                       (``path:line: warning: message`` when ``severity == "warning"``)
├── ConfigError         the environment config is malformed, or names an unknown environment
├── SecretUnavailable   a secret could not be read from the keyring or the process environment
├── AuditUnavailable    the audit log cannot be written; mutating actions are refused (fail closed)
├── RunStateError       saved run state cannot be read or written
│   ├── RunHeld         the run is open in another console (``holder`` says who)
│   └── RunTakenOver    another console took this run over; this one is read-only now
├── UnsafePath          an output name would place a file outside its folder
├── TemplateError       a ``{{ name }}`` reference has no value at run time
└── StepRefused         a step cannot run now (another runs, an unknown outcome, a bad answer)
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from .runlock import Holder

__all__ = [
    "AuditUnavailable",
    "ConfigError",
    "OpsConsoleError",
    "RunHeld",
    "RunStateError",
    "RunTakenOver",
    "RunbookError",
    "SecretUnavailable",
    "Severity",
    "StepRefused",
    "TemplateError",
    "UnsafePath",
]


class OpsConsoleError(Exception):
    """Base class: the message is operator-facing."""


Severity = Literal["error", "warning"]


class RunbookError(OpsConsoleError):
    """A problem in a runbook file, located to a line.

    An ``"error"`` keeps the runbook from opening; a ``"warning"`` (an unknown
    front-matter field, a fence never closed) is reported by ``lint`` and does
    not. ``errors`` holds every problem of the file when ``load_runbook`` raises.
    """

    def __init__(
        self, path: Path | str, line: int, message: str, severity: Severity = "error"
    ) -> None:
        self.path = Path(path)
        self.line = line
        self.message = message
        self.severity: Severity = severity
        self.errors: list[RunbookError] = [self]
        label = "warning: " if severity == "warning" else ""
        super().__init__(f"{self.path}:{line}: {label}{message}")

    @property
    def is_warning(self) -> bool:
        return self.severity == "warning"


class ConfigError(OpsConsoleError):
    pass


class SecretUnavailable(OpsConsoleError):
    pass


class AuditUnavailable(OpsConsoleError):
    pass


class RunStateError(OpsConsoleError):
    pass


class RunHeld(RunStateError):
    """Another live console holds the run; it can be opened read-only or taken over."""

    def __init__(self, run_id: str, holder: Holder) -> None:
        self.run_id = run_id
        self.holder = holder
        super().__init__(
            f"run {run_id} is open in another console: {holder.who} ({holder.status}). "
            "Open it read-only, or take it over if that console is gone."
        )


class RunTakenOver(RunStateError):
    """This console lost its run to a take-over; it must stop writing."""

    def __init__(self, run_id: str, holder: Holder | None) -> None:
        self.run_id = run_id
        self.holder = holder
        by = f"by {holder.who_at}" if holder is not None else "by another console (lock removed)"
        super().__init__(f"this run was taken over {by}: read-only now")


class UnsafePath(OpsConsoleError):
    """An output name (from a runbook id, a run id) would leave its folder."""


class TemplateError(OpsConsoleError):
    """A reference cannot be filled; ``name`` is the variable or ``secrets.x`` that has no
    value (empty when the problem is not a missing value)."""

    def __init__(self, message: str, name: str = "") -> None:
        super().__init__(message)
        self.name = name


class StepRefused(OpsConsoleError):
    """The step cannot run now; the message says why and what to do. Nothing was recorded."""
