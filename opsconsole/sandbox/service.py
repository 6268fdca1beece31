"""What a sandbox service is, and what the sandbox lends it while it runs.

A service stands in for one seed system: it declares the variables and
secrets it provides (so the sandbox can tell from a runbook's front matter
whether it is needed) and its faults, and :meth:`SandboxService.start` serves
its Starlette apps through the :class:`ServiceHost` it is given. Adding one is
a module with a :class:`SandboxService` subclass plus its line in
:data:`opsconsole.sandbox.registry.SERVICES`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from starlette.types import ASGIApp

from ..errors import OpsConsoleError
from ..prometheus import ScrapeTarget
from .server import HOST, LoopbackServers

__all__ = [
    "Fault",
    "FaultSwitches",
    "SandboxService",
    "ServiceHost",
    "UnknownService",
]


class UnknownService(OpsConsoleError, ValueError):
    """A sandbox service name that is not registered."""


@dataclass(frozen=True, slots=True)
class Fault:
    """A fault a service can be put in.

    Switching it always flips its flag, which the service's apps read on every
    request (``name in host.faults``); a fault that acts on servers rather than
    on answers (a service that stops listening) also has ``switch``, called
    with the service's host and the new state when it changes while the
    sandbox runs, and with ``True`` right after start when it is on from the
    start.
    """

    name: str
    #: what the operator will see once it is on, in plain words
    description: str
    switch: Callable[[ServiceHost, bool], None] | None = None


class FaultSwitches:
    """Which faults are on; flipped from the operator's thread, read by the services."""

    def __init__(self, active: Iterable[str] = ()) -> None:
        self._active = frozenset(active)

    @property
    def active(self) -> frozenset[str]:
        return self._active

    def __contains__(self, name: object) -> bool:
        return name in self._active

    def set(self, name: str, on: bool) -> None:
        # Replacing an immutable set keeps readers on another thread consistent without a lock.
        self._active = self._active | {name} if on else self._active - {name}


class ServiceHost:
    """One service's share of a running sandbox: its servers, secrets, faults and files."""

    def __init__(
        self,
        service: str,
        servers: LoopbackServers,
        *,
        faults: FaultSwitches,
        secrets: Mapping[str, str],
        directory: Path,
        job_seconds: float,
        scrape_targets: tuple[ScrapeTarget, ...] = (),
    ) -> None:
        self.service = service
        self._servers = servers
        #: the sandbox's fault flags; apps test ``"fault-name" in host.faults`` per request
        self.faults = faults
        #: this service's secrets, freshly generated for this sandbox, by name
        self.secrets = dict(secrets)
        #: a private directory for the service's files, deleted when the sandbox stops
        self.directory = directory
        #: how long simulated background work (a job, a sync) takes; tests make it short
        self.job_seconds = job_seconds
        #: the metrics of the services started before this one (what a Prometheus scrapes)
        self.scrape_targets = scrape_targets

    def serve(self, name: str, app: ASGIApp) -> str:
        """Serve ``app`` on a free loopback port; returns its base URL once it accepts."""
        return self._url(self._servers.serve(self._key(name), app))

    def stop(self, name: str) -> None:
        """Stop serving ``name``: its port refuses connections until :meth:`resume`."""
        self._servers.stop(self._key(name))

    def resume(self, name: str) -> str:
        """Serve ``name`` again on the port it had; returns its base URL."""
        return self._url(self._servers.resume(self._key(name)))

    def _key(self, name: str) -> str:
        # Server names are per service: two services may both call theirs "api".
        return f"{self.service}/{name}"

    @staticmethod
    def _url(port: int) -> str:
        return f"http://{HOST}:{port}"


class SandboxService(ABC):
    """One seed system in the sandbox; a fresh instance serves each :class:`Sandbox`."""

    #: short, unique, used on the command line and in fault listings
    name: ClassVar[str]
    title: ClassVar[str]
    #: the names of the variables :meth:`start` returns
    variables: ClassVar[tuple[str, ...]]
    #: the names of the secrets it uses; the sandbox generates their values
    secrets: ClassVar[tuple[str, ...]] = ()
    faults: ClassVar[tuple[Fault, ...]] = ()
    #: where it serves Prometheus metrics (the sandbox's Prometheus scrapes it); None: none
    metrics_path: ClassVar[str | None] = None
    #: started after every other service (the sandbox's Prometheus, which scrapes them)
    starts_after_others: ClassVar[bool] = False

    def metrics_url(self, variables: Mapping[str, str]) -> str | None:
        """The base URL that serves :attr:`metrics_path` (default: its first variable)."""
        if self.metrics_path is None or not self.variables:
            return None
        return variables.get(self.variables[0])

    def notes(self) -> list[str]:
        """What the operator should know about this service as it runs, in plain words
        (e.g. "no Prometheus here"); shown by ``check --sandbox`` and the demo."""
        return []

    @abstractmethod
    def start(self, host: ServiceHost) -> dict[str, str]:
        """Serve the service's apps through ``host``; return its variables by name."""

    def stop(self) -> None:  # noqa: B027 - optional: most services hold nothing else
        """Release what :meth:`start` took besides its servers (the sandbox closes those)."""
