"""The demo sandbox: the source runbooks' services, running on loopback.

Each seed system is a :class:`SandboxService` (``service.py``), registered in
:data:`SERVICES` (``registry.py``). ``Sandbox().start()`` starts them (or only
those named, or with :meth:`Sandbox.for_runbooks` only those a runbook needs)
on free 127.0.0.1 ports from one background thread, with fresh random
secrets, and writes a throwaway environment config (``sandbox`` and a
protected ``sandbox-prod``) that the console opens.
:meth:`Sandbox.install_keyring` puts the secrets in an in-memory keyring. The
services' faults can be switched on at start or while it runs
(:class:`opsconsole.faults.FaultInjector`), so the runbooks' incident paths
can be walked. The same object is the integration-test fixture.

The names below load on first use: ``python -m opsconsole.sandbox serve``
imports this package before it validates its settings, and a bad environment
must be refused without paying for uvicorn and Starlette. The engine imports
the package lazily too.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .keyring_backend import SandboxKeyring
    from .registry import FAULTS, SERVICES, services_for
    from .sandbox import RunbookNeeds, Sandbox
    from .service import Fault, SandboxService, ServiceHost, UnknownService

__all__ = [
    "FAULTS",
    "SERVICES",
    "Fault",
    "RunbookNeeds",
    "Sandbox",
    "SandboxKeyring",
    "SandboxService",
    "ServiceHost",
    "UnknownService",
    "services_for",
]

_HOME = {
    "FAULTS": ".registry",
    "SERVICES": ".registry",
    "services_for": ".registry",
    "RunbookNeeds": ".sandbox",
    "Sandbox": ".sandbox",
    "SandboxKeyring": ".keyring_backend",
    "Fault": ".service",
    "SandboxService": ".service",
    "ServiceHost": ".service",
    "UnknownService": ".service",
}


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_HOME[name], __name__), name)
