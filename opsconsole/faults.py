"""Faults a running demo sandbox can inject, as the console sees them.

The console (``opsconsole demo``) lists the sandbox's faults and switches them
from the command palette; it knows them only through :class:`FaultInjector`,
so this module stays light: it must not import the sandbox package (Starlette,
uvicorn, pydantic), which the console's first frame cannot afford.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from .errors import OpsConsoleError

__all__ = [
    "FaultError",
    "FaultInfo",
    "FaultInjector",
    "UnknownFault",
    "check_fault_names",
    "fault_memory",
    "forget_finished_faults",
]

#: where the console keeps, per sandbox run, the faults in force (``<home>/sandbox-faults``)
FAULT_MEMORY_DIR = "sandbox-faults"


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


def fault_memory(home: Path, run_id: str) -> Path:
    """The file that keeps the sandbox faults in force for one run (a resume restores them)."""
    from .files import inside

    return inside(home / FAULT_MEMORY_DIR, f"{run_id}.json")


def forget_finished_faults(home: Path) -> list[str]:
    """Remove the fault memory of every run that no resume can need any more: finished
    (completed, stopped at a no-go, abandoned) or no longer saved. A run still in progress,
    or one whose state cannot be read now, keeps its file. Returns the run ids forgotten.
    Called when the demo sandbox stopped cleanly."""
    from .run import RunStatus, RunStore

    directory = home / FAULT_MEMORY_DIR
    if not directory.is_dir():
        return []
    store = RunStore(home)
    forgotten: list[str] = []
    for path in sorted(directory.glob("*.json")):
        run_id = path.stem
        try:
            if store.path(run_id).exists() and (
                store.load(run_id).status is RunStatus.IN_PROGRESS
            ):
                continue
        except (OSError, OpsConsoleError):
            continue  # unreadable now: a resume may still need the faults
        try:
            path.unlink()
        except OSError:
            continue
        forgotten.append(run_id)
    return forgotten
