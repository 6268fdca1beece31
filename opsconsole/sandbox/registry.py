"""Every sandbox service, in one tuple: a new seed system is its module plus a line here."""

from __future__ import annotations

from collections.abc import Iterable

from .bot import DiscordBot
from .broker import DiscogsBroker
from .device_auth import DeviceAuthServer
from .discogs_collection import DiscogsCollection
from .hdm import HarmonyDownloadManager
from .prometheus_service import PrometheusService
from .service import SandboxService, UnknownService
from .v2 import V2ControlPlane

__all__ = [
    "FAULTS",
    "SERVICES",
    "fault_names",
    "service_named",
    "service_with_fault",
    "services_for",
]

#: every sandbox service, in the order they start
SERVICES: tuple[type[SandboxService], ...] = (
    V2ControlPlane,
    DiscogsBroker,
    DeviceAuthServer,
    HarmonyDownloadManager,
    DiscordBot,
    DiscogsCollection,
    # last: it scrapes the services before it that have a metrics_path
    PrometheusService,
)

#: fault name -> description, over every registered service (``Sandbox.faults()`` is the
#: live view: which service, whether it is on)
FAULTS: dict[str, str] = {
    fault.name: fault.description for service in SERVICES for fault in service.faults
}


def services_for(
    variables: Iterable[str], secrets: Iterable[str] = ()
) -> tuple[type[SandboxService], ...]:
    """The registered services that provide any of these variables or secrets."""
    wanted_variables, wanted_secrets = set(variables), set(secrets)
    return tuple(
        service
        for service in SERVICES
        if wanted_variables.intersection(service.variables)
        or wanted_secrets.intersection(service.secrets)
    )


def service_named(name: str) -> type[SandboxService]:
    """The registered service called ``name``; :class:`UnknownService` lists the known ones."""
    for service in SERVICES:
        if service.name == name:
            return service
    known = ", ".join(service.name for service in SERVICES)
    raise UnknownService(f"unknown sandbox service {name!r}; known services: {known}")


def service_with_fault(fault_name: str) -> type[SandboxService] | None:
    """The registered service that has this fault, if any."""
    for service in SERVICES:
        if any(fault.name == fault_name for fault in service.faults):
            return service
    return None


def fault_names() -> list[str]:
    """Every registered service's faults, by name."""
    return [fault.name for service in SERVICES for fault in service.faults]
