"""The step-type registry: every kind of ``ops`` block, one module each.

The loader, the session, ``check`` and the console ask this registry about a
kind; nothing else switches on it. Built-in kinds load on first use; more come
from plugins: modules named in ``$OPSCONSOLE_PLUGINS`` (comma-separated) or
installed under the ``opsconsole.steps`` entry-point group, each calling
:func:`register` when imported.

Adding a kind (see docs/architecture.md)::

    class PingSpec(StepSpec):
        url: str

    @register
    class Ping(StepType[PingSpec]):
        kind, spec = "ping", PingSpec
        async def run(self, ctx): ...
"""

from __future__ import annotations

import importlib
import os
import threading
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from .base import StepType

__all__ = ["kinds", "register", "step_type", "unregister"]

#: the built-in kinds, in the order the docs list them
BUILTIN_MODULES = (
    "http",
    "trigger",
    "metrics",
    "promql",
    "burst",
    "command",
    "manual",
    "input",
    "confirm",
    "gate",
    "callback",
    "device_flow",
)

_registry: dict[str, StepType[Any]] = {}
_loaded = False
_lock = threading.RLock()

T = TypeVar("T", bound="type[StepType[Any]]")


def register(cls: T) -> T:
    """Register a step type class (usable as a decorator); a kind registers once."""
    with _lock:
        kind = cls.kind
        existing = _registry.get(kind)
        if existing is not None and type(existing) is not cls:
            raise ValueError(f"step kind {kind!r} is already registered by {type(existing)!r}")
        _registry[kind] = cls()
    return cls


def unregister(kind: str) -> None:
    """Remove a kind (tests that register their own)."""
    with _lock:
        _registry.pop(kind, None)


def _load() -> None:
    global _loaded
    if _loaded:
        return
    with _lock:
        if _loaded:
            return
        for name in BUILTIN_MODULES:
            importlib.import_module(f"{__name__}.{name}")
        for name in filter(None, (p.strip() for p in os.environ.get(
            "OPSCONSOLE_PLUGINS", "").split(","))):
            importlib.import_module(name)
        from importlib.metadata import entry_points

        for entry in entry_points(group="opsconsole.steps"):
            entry.load()
        _loaded = True


def step_type(kind: str) -> StepType[Any]:
    """The registered step type of ``kind`` (KeyError when there is none)."""
    _load()
    return _registry[kind]


def kinds() -> list[str]:
    _load()
    return list(_registry)
