"""Exceptions raised by the opsconsole engine.

Every error an operator can cause or fix derives from :class:`OpsConsoleError`
and has a message fit to show on screen as it is (no traceback needed):

OpsConsoleError
├── RunbookError        a runbook cannot be read; ``str()`` is ``path:line: message``
├── ConfigError         the environment config is malformed, or names an unknown environment
├── SecretUnavailable   a secret could not be read from the keyring or the process environment
├── AuditUnavailable    the audit log cannot be written; mutating actions are refused (fail closed)
├── RunStateError       saved run state cannot be read or written
├── TemplateError       a ``{{ name }}`` reference has no value at run time
└── StepRefused         a step cannot run now (another runs, an unknown outcome, a bad answer)
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "AuditUnavailable",
    "ConfigError",
    "OpsConsoleError",
    "RunStateError",
    "RunbookError",
    "SecretUnavailable",
    "StepRefused",
    "TemplateError",
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


class TemplateError(OpsConsoleError):
    pass


class StepRefused(OpsConsoleError):
    """The step cannot run now; the message says why and what to do. Nothing was recorded."""
