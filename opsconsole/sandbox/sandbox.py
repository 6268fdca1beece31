"""A running sandbox: the services it starts, its throwaway config, secrets and faults."""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import tempfile
import threading
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from keyring.backend import KeyringBackend

from ..faults import FaultError, FaultInfo, UnknownFault, check_fault_names
from ..prometheus import ScrapeTarget
from . import registry
from .browser import SandboxBrowser
from .keyring_backend import SandboxKeyring
from .server import HOST, LoopbackServers
from .service import Fault, FaultSwitches, SandboxService, ServiceHost

__all__ = ["ENVIRONMENTS", "RunbookNeeds", "Sandbox"]

ENVIRONMENTS = {
    "sandbox": ("Built-in demo sandbox on loopback", False),
    "sandbox-prod": (
        "Sandbox posing as production (protected: typed confirmation for every mutating step)",
        True,
    ),
}


class RunbookNeeds(Protocol):
    """What a runbook's front matter says it needs (a loaded ``Runbook`` is one)."""

    @property
    def variables(self) -> Collection[str]: ...

    @property
    def secrets(self) -> Collection[str]: ...


class Sandbox:
    """The sandbox services, their throwaway config and secrets; a context manager.

    ``services``: names (or classes) of the services to start; None starts every
    registered one. ``faults`` are on from the start; each must belong to a
    service that is started.
    """

    environment_name = "sandbox"

    def __init__(
        self,
        faults: Iterable[str] = (),
        *,
        services: Iterable[str | type[SandboxService]] | None = None,
        job_seconds: float = 0.4,
    ) -> None:
        if services is None:
            kinds = registry.SERVICES
        else:
            kinds = tuple(
                registry.service_named(kind) if isinstance(kind, str) else kind for kind in services
            )
        #: the services this sandbox runs, fresh instances, in the order given
        ordered = sorted(dict.fromkeys(kinds), key=lambda kind: kind.starts_after_others)
        self.services: tuple[SandboxService, ...] = tuple(kind() for kind in ordered)
        self._fault_owners = _fault_owners(self.services)
        _check_variables_are_distinct(self.services)
        initial = list(faults)
        self._check_fault_names(initial)
        self._faults = FaultSwitches(initial)
        self.job_seconds = job_seconds
        self.variables: dict[str, str] = {}
        self.secret_values: dict[str, str] = {}
        self.config_path: Path = Path()
        self._servers: LoopbackServers | None = None
        self._hosts: dict[str, ServiceHost] = {}
        self._started: list[SandboxService] = []
        self._temp_dir: Path | None = None
        #: the process keyring before install_keyring (None: not installed)
        self._saved_keyring: KeyringBackend | None = None
        # set_fault (from the console's worker thread) and stop may race.
        self._lock = threading.RLock()
        #: the simulated operator's browser: opens only this sandbox's own pages, approves
        #: a sign-in there (``await simulated_browser(url)``: "approved", "refused on the
        #: page", ...) or presses a button and reports the redirect (``.press(url, button)``)
        self.simulated_browser = SandboxBrowser(self._own_origins)

    @classmethod
    def for_runbooks(
        cls,
        runbooks: Iterable[RunbookNeeds],
        faults: Iterable[str] = (),
        *,
        job_seconds: float = 0.4,
    ) -> Sandbox:
        """A sandbox running the services these runbooks need, and those ``faults`` break."""
        runbooks, faults = list(runbooks), list(faults)
        check_fault_names(faults, registry.fault_names())
        needed = set(
            registry.services_for(
                [name for runbook in runbooks for name in runbook.variables],
                [name for runbook in runbooks for name in runbook.secrets],
            )
        )
        needed.update(
            owner for name in faults if (owner := registry.service_with_fault(name)) is not None
        )
        return cls(
            faults,
            services=[service for service in registry.SERVICES if service in needed],
            job_seconds=job_seconds,
        )

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def notes(self) -> list[str]:
        """What the running services want the operator to know (no Prometheus, …)."""
        return [note for service in self._started for note in service.notes()]

    # -- the fault injector ------------------------------------------------------------

    @property
    def active_faults(self) -> frozenset[str]:
        return self._faults.active

    def faults(self) -> tuple[FaultInfo, ...]:
        """Every fault of the services this sandbox runs, and whether it is on."""
        active = self._faults.active
        return tuple(
            FaultInfo(fault.name, fault.description, service.name, fault.name in active)
            for service, fault in self._fault_owners.values()
        )

    def set_fault(self, name: str, active: bool) -> None:
        """Switch a fault on or off; takes effect immediately, also while serving."""
        self._check_fault_names([name])
        with self._lock:
            if (name in self._faults) == active:
                return
            service, fault = self._fault_owners[name]
            host = self._hosts.get(service.name)
            if fault.switch is not None and host is not None:
                try:
                    fault.switch(host, active)
                except (OSError, RuntimeError) as exc:
                    verb = "inject" if active else "clear"
                    raise FaultError(f"could not {verb} fault {name}: {exc}") from exc
            self._faults.set(name, active)

    def _check_fault_names(self, names: list[str]) -> None:
        for name in names:
            owner = registry.service_with_fault(name) if name not in self._fault_owners else None
            if owner is not None:
                raise UnknownFault(
                    f"fault {name!r} belongs to the {owner.name} sandbox service, "
                    "which this sandbox does not run"
                )
        check_fault_names(names, self._fault_owners)

    # -- the simulated operator's browser ---------------------------------------------

    def _own_origins(self) -> frozenset[str]:
        """``http://127.0.0.1:<port>`` of every server this sandbox runs (none when stopped)."""
        servers = self._servers
        if servers is None:
            return frozenset()
        return frozenset(f"http://{HOST}:{port}" for port in servers.ports())

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def started(self) -> bool:
        return self._servers is not None

    def start(self) -> Sandbox:
        """Serve the services and write the config; a second call does nothing."""
        with self._lock:
            if self._servers is not None:
                return self
            try:
                self._start()
            except BaseException:
                self.stop()
                raise
            return self

    def stop(self) -> None:
        """Stop the services, delete the config, restore the keyring; safe to repeat."""
        with self._lock:
            servers, self._servers = self._servers, None
            started, self._started = self._started, []
            temp_dir, self._temp_dir = self._temp_dir, None
            self._hosts.clear()
            # Every step runs even when one before it raises; last pushed, first run.
            with contextlib.ExitStack() as cleanup:
                if temp_dir is not None:
                    cleanup.callback(shutil.rmtree, temp_dir, ignore_errors=True)
                cleanup.callback(self._restore_keyring)
                for service in started:
                    cleanup.callback(service.stop)
                if servers is not None:
                    cleanup.callback(servers.close)

    def install_keyring(self) -> None:
        """Make the process keyring an in-memory one holding this sandbox's secrets."""
        import keyring

        with self._lock:
            if self._servers is None:
                raise RuntimeError("start the sandbox before installing its keyring")
            passwords = {
                (f"opsconsole:{environment}", name): value
                for environment in ENVIRONMENTS
                for name, value in self.secret_values.items()
            }
            if self._saved_keyring is None:
                self._saved_keyring = keyring.get_keyring()
            keyring.set_keyring(SandboxKeyring(passwords))

    def _restore_keyring(self) -> None:
        saved, self._saved_keyring = self._saved_keyring, None
        if saved is not None:
            import keyring

            keyring.set_keyring(saved)

    def _start(self) -> None:
        self._temp_dir = Path(tempfile.mkdtemp(prefix="opsconsole-sandbox-"))
        # One value per name: services that name the same secret share it, as they
        # would share one keyring entry.
        self.secret_values = {
            name: secrets.token_urlsafe(32) for service in self.services for name in service.secrets
        }
        self._servers = LoopbackServers()
        variables: dict[str, str] = {}
        targets: list[ScrapeTarget] = []
        for service in self.services:
            directory = self._temp_dir / service.name
            directory.mkdir()
            host = ServiceHost(
                service.name,
                self._servers,
                faults=self._faults,
                secrets={name: self.secret_values[name] for name in service.secrets},
                directory=directory,
                job_seconds=self.job_seconds,
                scrape_targets=tuple(targets),
            )
            self._hosts[service.name] = host
            self._started.append(service)
            provided = service.start(host)
            if set(provided) != set(service.variables):
                raise RuntimeError(
                    f"sandbox service {service.name!r} returned the variables "
                    f"{sorted(provided)}, not the ones it declares {sorted(service.variables)}"
                )
            variables.update((name, provided[name]) for name in service.variables)
            metrics_url = service.metrics_url(provided)
            if service.metrics_path is not None and metrics_url:
                targets.append(ScrapeTarget(service.name, metrics_url, service.metrics_path))
        self.variables = variables
        for service, fault in self._fault_owners.values():
            if fault.switch is not None and fault.name in self._faults:
                fault.switch(self._hosts[service.name], True)
        self.config_path = self._temp_dir / "config.toml"
        self.config_path.write_text(self._config_toml(), encoding="utf-8")

    def _config_toml(self) -> str:
        tables: dict[str, dict[str, Any]] = {}
        for name, (description, protected) in ENVIRONMENTS.items():
            tables[f"environments.{name}"] = {
                "description": description,
                "protected": protected,
                "secrets": list(self.secret_values),
            }
            tables[f"environments.{name}.variables"] = dict(self.variables)
        return _toml_tables(tables)


def _fault_owners(
    services: Iterable[SandboxService],
) -> dict[str, tuple[SandboxService, Fault]]:
    owners: dict[str, tuple[SandboxService, Fault]] = {}
    for service in services:
        for fault in service.faults:
            if fault.name in owners:
                raise ValueError(
                    f"sandbox services {owners[fault.name][0].name!r} and {service.name!r} "
                    f"both have a fault named {fault.name!r}"
                )
            owners[fault.name] = (service, fault)
    return owners


def _check_variables_are_distinct(services: Iterable[SandboxService]) -> None:
    providers: dict[str, str] = {}
    for service in services:
        for name in service.variables:
            if name in providers:
                raise ValueError(
                    f"sandbox services {providers[name]!r} and {service.name!r} "
                    f"both provide the variable {name!r}"
                )
            providers[name] = service.name


def _toml_tables(tables: Mapping[str, Mapping[str, Any]]) -> str:
    """TOML for tables of strings, booleans and lists of strings (all this config needs)."""
    blocks = []
    for header, values in tables.items():
        lines = [f"[{header}]"]
        lines += [f"{_toml_key(key)} = {_toml_value(value)}" for key, value in values.items()]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def _toml_key(key: str) -> str:
    if key and all(ch.isascii() and (ch.isalnum() or ch in "-_") for ch in key):
        return key
    return _toml_value(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        # A JSON string is a TOML basic string, except that TOML also forbids a raw DEL.
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise TypeError(f"no TOML form for {type(value).__name__}")
