"""Faults a running demo sandbox can inject, as the console sees them.

The console (``opsconsole demo``) lists the sandbox's faults and switches them
from the command palette; it knows them only through :class:`FaultInjector`,
so this module stays light: it must not import the sandbox package (Starlette,
uvicorn, pydantic), which the console's first frame cannot afford.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Protocol

from .errors import OpsConsoleError

__all__ = ["FaultError", "FaultInfo", "FaultInjector", "UnknownFault", "check_fault_names"]


@dataclass(frozen=True, slots=True)
class FaultInfo:
    """One fault and whether it is on now."""

    name: str
    #: what the operator will see once it is on, in plain words
    description: str
    #: the sandbox service it breaks
    service: str
    active: bool


class FaultInjector(Protocol):
    """Lists faults and switches them; changes take effect at once, also while serving."""

    @property
    def active_faults(self) -> frozenset[str]: ...

    def faults(self) -> Sequence[FaultInfo]: ...

    def set_fault(self, name: str, active: bool) -> None:
        """Switch one fault on or off; raises :class:`FaultError` (say, :class:`UnknownFault`)."""
        ...


class FaultError(OpsConsoleError):
    """A fault could not be switched; the message says which and why."""


class UnknownFault(FaultError, ValueError):
    """A fault name the sandbox does not have; the message lists the ones it has."""


def check_fault_names(names: Collection[str], known: Collection[str]) -> None:
    """Raise :class:`UnknownFault` naming every name not in ``known``, and the valid ones."""
    unknown = [name for name in names if name not in known]
    if not unknown:
        return
    valid = f"valid faults: {', '.join(known)}" if known else "this sandbox has no faults"
    raise UnknownFault(f"unknown fault {', '.join(map(repr, unknown))}; {valid}")
