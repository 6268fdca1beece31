"""Environments and where opsconsole keeps its files.

One TOML file (``--config``, ``$OPSCONSOLE_CONFIG`` or the platform config dir)::

    runbook_paths = ["~/team/runbooks"]      # searched besides the bundled runbooks
    default_environment = "staging"

    [environments.staging]
    description = "Staging cluster"
    protected = false
    secrets = ["ops_key"]                    # looked up in keyring / $OPSCONSOLE_SECRET_OPS_KEY
    [environments.staging.variables]
    base_url = "https://staging.example.internal"
    [environments.staging.secret_hosts]      # optional: who may receive each secret
    ops_key = ["staging.example.internal:443", "*.example.internal"]

Run state and the audit log live under ``$OPSCONSOLE_HOME`` or the platform
state dir.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError

if TYPE_CHECKING:
    from .faults import FaultInjector

# The config is read on the way to the first frame, so it is validated by hand
# with dataclasses: pydantic costs ~190 ms to import, which alone would break the
# home screen's start-up budget (see docs/architecture.md).


@dataclass
class Environment:
    name: str = ""
    description: str = ""
    protected: bool = False
    variables: dict[str, str] = field(default_factory=dict)
    #: the only secret names a runbook may use in this environment
    secrets: list[str] = field(default_factory=list)
    #: secret name -> hosts it may be sent to (``host:port``, ``host``, ``*.domain``);
    #: a secret without an entry goes only to the hosts of the URL variables
    secret_hosts: dict[str, list[str]] = field(default_factory=dict)
    #: the config file this environment was read from, for messages
    origin: str = ""
    #: how steps reach this environment over HTTP: verify TLS (or a CA bundle path),
    #: a proxy URL, the connect timeout (the total deadline is per step)
    http: HttpSettings = field(default_factory=lambda: HttpSettings())


@dataclass(frozen=True)
class HttpSettings:
    verify: bool | str = True
    proxy: str | None = None
    connect_timeout: float = 5.0


@dataclass(frozen=True)
class DashboardSettings:
    """How the dashboard re-checks the watched steps (``[dashboard]`` in the config)."""

    #: seconds between the end of one round and the start of the next
    interval: float = 15.0
    #: seconds one check may take before it shows as timed out
    timeout: float = 10.0
    #: checks running at once
    concurrency: int = 50


@dataclass
class Config:
    runbook_paths: list[str] = field(default_factory=list)
    default_environment: str | None = None
    environments: dict[str, Environment] = field(default_factory=dict)
    dashboard: DashboardSettings = field(default_factory=DashboardSettings)
    #: where the config was read from (None: built-in defaults)
    source: Path | None = None

    def environment(self, name: str | None) -> Environment:
        if name is None:
            name = self.default_environment or next(iter(self.environments), "local")
        if name in self.environments:
            return self.environments[name]
        if not self.environments and name == "local":
            return Environment(name="local", description="no environments configured")
        known = ", ".join(self.environments) or "none configured"
        raise ConfigError(f"unknown environment {name!r} (known: {known})")

    def environment_names(self) -> list[str]:
        return list(self.environments) or ["local"]


def _expect(value: Any, kind: type | tuple[type, ...], where: str, what: str) -> Any:
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise ConfigError(f"{where}: expected {what}, got {type(value).__name__} {value!r}")
    return value


def _text_map(value: Any, where: str) -> dict[str, str]:
    _expect(value, dict, where, "a table of name = value")
    out = {}
    for key, item in value.items():
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise ConfigError(f"{where}.{key}: expected text or a number, got {item!r}")
        out[str(key)] = str(item)
    return out


def _text_list(value: Any, where: str) -> list[str]:
    _expect(value, list, where, "a list of names")
    for item in value:
        _expect(item, str, where, "a list of names")
    return list(value)


_HOST_RULE = re.compile(
    r"\*|(?:\*\.)?[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]{1,5})?"
    r"|\[[0-9A-Fa-f:.]+\](?::[0-9]{1,5})?"
)


def _secret_hosts(value: Any, where: str, secrets: list[str]) -> dict[str, list[str]]:
    _expect(value, dict, where, "a table of secret name = [hosts]")
    out = {}
    for name, hosts in value.items():
        if name not in secrets:
            raise ConfigError(f"{where}.{name}: {name!r} is not listed under secrets")
        out[name] = _text_list(hosts, f"{where}.{name}")
        for host in out[name]:
            if not _HOST_RULE.fullmatch(host):
                raise ConfigError(f"{where}.{name}: {host!r} is not host:port, host, *.domain or *")
    return out


def _parse_config(data: dict[str, Any], where: str) -> Config:
    unknown = set(data) - {"runbook_paths", "default_environment", "environments", "dashboard"}
    if unknown:
        raise ConfigError(f"{where}: unknown setting {sorted(unknown)[0]!r}")
    config = Config(
        runbook_paths=_text_list(data.get("runbook_paths", []), f"{where}: runbook_paths"),
        default_environment=data.get("default_environment"),
        dashboard=_dashboard_settings(data.get("dashboard", {}), f"{where}: dashboard"),
    )
    if config.default_environment is not None:
        _expect(config.default_environment, str, f"{where}: default_environment", "a name")
    environments = _expect(data.get("environments", {}), dict, f"{where}: environments", "tables")
    for name, body in environments.items():
        at = f"{where}: environments.{name}"
        _expect(body, dict, at, "a table")
        extra = set(body) - {
            "description", "protected", "variables", "secrets", "secret_hosts", "http"
        }
        if extra:
            raise ConfigError(f"{at}: unknown setting {sorted(extra)[0]!r}")
        secrets = _text_list(body.get("secrets", []), f"{at}.secrets")
        config.environments[name] = Environment(
            name=name,
            description=_expect(body.get("description", ""), str, f"{at}.description", "text"),
            protected=_expect(
                body.get("protected", False), bool, f"{at}.protected", "true or false"
            ),
            variables=_text_map(body.get("variables", {}), f"{at}.variables"),
            secrets=secrets,
            secret_hosts=_secret_hosts(body.get("secret_hosts", {}), f"{at}.secret_hosts", secrets),
            origin=where,
            http=_http_settings(body.get("http", {}), f"{at}.http"),
        )
    return config


def _seconds(value: Any, where: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ConfigError(f"{where}: expected seconds between {low:g} and {high:g}, got {value!r}")
    return float(value)


def _dashboard_settings(value: Any, where: str) -> DashboardSettings:
    _expect(value, dict, where, "a table (interval, timeout, concurrency)")
    unknown = set(value) - {"interval", "timeout", "concurrency"}
    if unknown:
        raise ConfigError(f"{where}: unknown setting {sorted(unknown)[0]!r}")
    defaults = DashboardSettings()
    concurrency = value.get("concurrency", defaults.concurrency)
    whole = isinstance(concurrency, int) and not isinstance(concurrency, bool)
    if not whole or not 1 <= concurrency <= 64:
        raise ConfigError(f"{where}.concurrency: expected a whole number from 1 to 64")
    return DashboardSettings(
        interval=_seconds(value.get("interval", defaults.interval), f"{where}.interval", 1, 3600),
        timeout=_seconds(value.get("timeout", defaults.timeout), f"{where}.timeout", 0.1, 300),
        concurrency=concurrency,
    )


def _http_settings(value: Any, where: str) -> HttpSettings:
    _expect(value, dict, where, "a table (verify, proxy, connect_timeout)")
    unknown = set(value) - {"verify", "proxy", "connect_timeout"}
    if unknown:
        raise ConfigError(f"{where}: unknown setting {sorted(unknown)[0]!r}")
    verify = value.get("verify", True)
    if not isinstance(verify, bool | str) or verify == "":
        raise ConfigError(f"{where}.verify: expected true, false or a CA bundle path")
    if isinstance(verify, str):
        verify = str(Path(verify).expanduser())
    proxy = value.get("proxy")
    if proxy is not None and (
        not isinstance(proxy, str) or not proxy.startswith(("http://", "https://", "socks5://"))
    ):
        raise ConfigError(f"{where}.proxy: expected a proxy URL (http://, https://, socks5://)")
    timeout = value.get("connect_timeout", 5.0)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 300:
        raise ConfigError(f"{where}.connect_timeout: expected seconds between 0 and 300")
    return HttpSettings(verify=verify, proxy=proxy, connect_timeout=float(timeout))


def default_config_path() -> Path:
    if override := os.environ.get("OPSCONSOLE_CONFIG"):
        return Path(override).expanduser()
    from platformdirs import user_config_path

    return user_config_path("opsconsole") / "config.toml"


def state_dir() -> Path:
    """Run state and audit log root (``$OPSCONSOLE_HOME`` overrides)."""
    if override := os.environ.get("OPSCONSOLE_HOME"):
        return Path(override).expanduser()
    from platformdirs import user_state_path

    return user_state_path("opsconsole")


def bundled_runbooks_dir() -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "runbooks", here / "_bundled_runbooks"):
        if candidate.is_dir():
            return candidate
    return here.parent / "runbooks"


def load_config(path: Path | str | None = None) -> Config:
    """Read the config; a missing default file means built-in defaults."""
    explicit = path is not None or "OPSCONSOLE_CONFIG" in os.environ
    config_path = Path(path).expanduser() if path is not None else default_config_path()
    try:
        data = tomllib.loads(config_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        if explicit:
            raise ConfigError(f"{config_path}: no such config file") from None
        return Config()
    except OSError as exc:
        raise ConfigError(f"{config_path}: cannot read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"\(at line (\d+), column \d+\)", str(exc))
        line = match.group(1) if match else "1"
        message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        raise ConfigError(f"{config_path}:{line}: invalid TOML: {message}") from None
    config = _parse_config(data, str(config_path))
    if config.default_environment and config.default_environment not in config.environments:
        raise ConfigError(
            f"{config_path}: default_environment {config.default_environment!r} is not defined"
        )
    config.source = config_path
    return config


@dataclass
class ConsoleSettings:
    """Everything the TUI needs, decided by the CLI before the App is built."""

    config: Config
    home: Path
    runbook_paths: list[Path]
    environment: str | None = None
    #: open this runbook's walkthrough straight away (``opsconsole run``)
    initial_runbook: Path | None = None
    #: the running demo sandbox (``opsconsole demo``): lets the UI inject faults
    sandbox: FaultInjector | None = None
    #: where evidence reports are written
    evidence_dir: Path | None = None

    def __post_init__(self) -> None:
        self.home = Path(self.home)
        self.runbook_paths = [Path(path) for path in self.runbook_paths]
        if self.initial_runbook is not None:
            self.initial_runbook = Path(self.initial_runbook)
        if self.evidence_dir is not None:
            self.evidence_dir = Path(self.evidence_dir)
