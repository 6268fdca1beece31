"""Exceptions raised by the opsconsole engine.

Every error an operator can cause or fix derives from :class:`OpsConsoleError`
and has a message fit to show on screen as it is (no traceback needed):

OpsConsoleError
├── RunbookError        a runbook cannot be read; ``str()`` is ``path:line: message``
├── ConfigError         the environment config is malformed, or names an unknown environment
├── SecretUnavailable   a secret could not be read from the keyring or the process environment
├── AuditUnavailable    the audit log cannot be written; mutating actions are refused (fail closed)
├── RunStateError       saved run state cannot be read or written
├── UnsafePath          an output name would place a file outside its folder
├── TemplateError       a ``{{ name }}`` reference has no value at run time
└── ConfirmationRequired  a mutating step in a protected environment was not confirmed
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "AuditUnavailable",
    "ConfigError",
    "ConfirmationRequired",
    "OpsConsoleError",
    "RunStateError",
    "RunbookError",
    "SecretUnavailable",
    "TemplateError",
    "UnsafePath",
]


class OpsConsoleError(Exception):
    """Base class: the message is operator-facing."""


class RunbookError(OpsConsoleError):
    """A problem in a runbook file, located to a line."""

    def __init__(self, path: Path | str, line: int, message: str) -> None:
        self.path = Path(path)
        self.line = line
        self.message = message
        super().__init__(f"{self.path}:{line}: {message}")


class ConfigError(OpsConsoleError):
    pass


class SecretUnavailable(OpsConsoleError):
    pass


class AuditUnavailable(OpsConsoleError):
    pass


class RunStateError(OpsConsoleError):
    pass


class UnsafePath(OpsConsoleError):
    """An output name (from a runbook id, a run id) would leave its folder."""


class TemplateError(OpsConsoleError):
    pass


class ConfirmationRequired(OpsConsoleError):
    """A mutating step in a protected environment needs the operator's typed confirmation."""
