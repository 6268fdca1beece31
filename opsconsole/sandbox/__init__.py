"""The demo sandbox: the source runbooks' services, running on loopback.

``Sandbox().start()`` serves the V2 control plane and its runner (source
runbook 004) on free 127.0.0.1 ports from one background thread, with fresh
random secrets, and writes a throwaway environment config (``sandbox`` and a
protected ``sandbox-prod``) that the console opens. :meth:`Sandbox.install_keyring`
puts the secrets in an in-memory keyring. Faults (:data:`FAULTS`) can be
switched on at start or while it runs, so the runbooks' incident paths can be
walked. The same object is the integration-test fixture.

This package imports uvicorn and Starlette; the engine imports it lazily.
"""

from __future__ import annotations

import json
import secrets
import shlex
import shutil
import sys
import tempfile
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from .keyring_backend import SandboxKeyring
from .server import HOST, LoopbackServers
from .v2 import (
    FAULTS,
    ControlPlaneSettings,
    FaultSwitches,
    JobStore,
    RunnerSettings,
    check_fault_names,
    create_control_plane_app,
    create_runner_app,
)

__all__ = ["FAULTS", "Sandbox", "SandboxKeyring"]

#: validated like a real one, never connected to: the job store lives in memory
SANDBOX_DATABASE_URL = "postgresql://opsconsole@127.0.0.1:5432/opsconsole_sandbox"
SECRET_NAMES = ("ops_key", "runner_token")
ENVIRONMENTS = {
    "sandbox": ("Built-in demo sandbox on loopback", False),
    "sandbox-prod": (
        "Sandbox posing as production (protected: typed confirmation for every mutating step)",
        True,
    ),
}
_CONTROL_PLANE = "control-plane"
_RUNNER = "runner"


class Sandbox:
    """The sandbox services, their throwaway config and secrets; a context manager."""

    environment_name = "sandbox"

    def __init__(self, faults: Iterable[str] = (), *, job_seconds: float = 0.4) -> None:
        self._faults = FaultSwitches(faults)
        self.job_seconds = job_seconds
        self.variables: dict[str, str] = {}
        self.secret_values: dict[str, str] = {}
        self.config_path: Path = Path()
        self._servers: LoopbackServers | None = None
        self._store: JobStore | None = None
        self._temp_dir: Path | None = None
        self._saved_keyring: Any = None
        self._keyring_installed = False
        # set_fault (runner-down) and stop may come from different threads.
        self._lock = threading.RLock()

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
    def active_faults(self) -> frozenset[str]:
        return self._faults.active

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
            try:
                if servers is not None:
                    servers.close()
            finally:
                self._restore_keyring()
                if self._temp_dir is not None:
                    shutil.rmtree(self._temp_dir, ignore_errors=True)
                    self._temp_dir = None
                self._store = None

    def set_fault(self, name: str, active: bool) -> None:
        """Switch a fault on or off; takes effect immediately, also while serving."""
        check_fault_names([name])
        with self._lock:
            self._faults.set(name, active)
            if name == "runner-down" and self._servers is not None:
                if active:
                    self._servers.stop(_RUNNER)
                else:
                    self._servers.resume(_RUNNER)

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
            if not self._keyring_installed:
                self._saved_keyring = keyring.get_keyring()
            keyring.set_keyring(SandboxKeyring(passwords))
            self._keyring_installed = True

    def _restore_keyring(self) -> None:
        if not self._keyring_installed:
            return
        import keyring

        keyring.set_keyring(self._saved_keyring)
        self._saved_keyring = None
        self._keyring_installed = False

    def _start(self) -> None:
        ops_key = secrets.token_urlsafe(32)
        runner_token = secrets.token_urlsafe(32)
        self.secret_values = {"ops_key": ops_key, "runner_token": runner_token}
        self._temp_dir = Path(tempfile.mkdtemp(prefix="opsconsole-sandbox-"))
        store = JobStore()
        self._store = store
        servers = LoopbackServers()
        self._servers = servers

        runner_settings = RunnerSettings.from_env(
            {"DATABASE_URL": SANDBOX_DATABASE_URL, "RUNNER_TOKEN": runner_token}
        )
        runner_port = servers.serve(
            _RUNNER,
            create_runner_app(runner_settings, store, self._faults, job_seconds=self.job_seconds),
        )
        runner_url = f"http://{HOST}:{runner_port}"
        if "runner-down" in self._faults:
            # Served once so its port is known and stays the one it comes back on.
            servers.stop(_RUNNER)

        control_settings = ControlPlaneSettings.from_env(
            {
                "APP_ENV": "sandbox",
                "DATABASE_URL": SANDBOX_DATABASE_URL,
                "SECRET_KEY": secrets.token_urlsafe(32),
                "OPS_API_KEY": ops_key,
                "RUNNER_URL": runner_url,
                "RUNNER_TOKEN_OUTBOUND": runner_token,
                "JOBS_ENABLED": "true",
                "RUNNER_ENABLED": "true",
            }
        )
        control_port = servers.serve(
            _CONTROL_PLANE, create_control_plane_app(control_settings, store, self._faults)
        )

        python = shlex.quote(sys.executable)
        self.variables = {
            "base_url": f"http://{HOST}:{control_port}",
            "runner_url": runner_url,
            "database_url": SANDBOX_DATABASE_URL,
            "control_plane_cmd": f"{python} -m opsconsole.sandbox serve control-plane",
            "runner_cmd": f"{python} -m opsconsole.sandbox serve runner",
        }
        self.config_path = self._temp_dir / "config.toml"
        self.config_path.write_text(self._config_toml(), encoding="utf-8")

    def _config_toml(self) -> str:
        tables: dict[str, dict[str, Any]] = {}
        for name, (description, protected) in ENVIRONMENTS.items():
            tables[f"environments.{name}"] = {
                "description": description,
                "protected": protected,
                "secrets": list(SECRET_NAMES),
            }
            tables[f"environments.{name}.variables"] = dict(self.variables)
        return _toml_tables(tables)


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
