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
├── TemplateError       a ``{{ name }}`` reference has no value at run time
└── ConfirmationRequired  a mutating step in a protected environment was not confirmed
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

__all__ = [
    "AuditUnavailable",
    "ConfigError",
    "ConfirmationRequired",
    "OpsConsoleError",
    "RunStateError",
    "RunbookError",
    "SecretUnavailable",
    "Severity",
    "TemplateError",
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


class TemplateError(OpsConsoleError):
    pass


class ConfirmationRequired(OpsConsoleError):
    """A mutating step in a protected environment needs the operator's typed confirmation."""
