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

Run state and the audit log live under ``$OPSCONSOLE_HOME`` or the platform
state dir.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import ConfigError

__all__ = [
    "ConsoleSettings",
    "Config",
    "Environment",
    "bundled_runbooks_dir",
    "default_config_path",
    "load_config",
    "state_dir",
]


class Environment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = ""
    description: str = ""
    protected: bool = False
    variables: dict[str, str] = Field(default_factory=dict)
    secrets: list[str] = Field(default_factory=list)


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    runbook_paths: list[str] = Field(default_factory=list)
    default_environment: str | None = None
    environments: dict[str, Environment] = Field(default_factory=dict)
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
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ConfigError(f"{config_path}: {where}: {first['msg']}") from None
    for name, environment in config.environments.items():
        environment.name = name
    if config.default_environment and config.default_environment not in config.environments:
        raise ConfigError(
            f"{config_path}: default_environment {config.default_environment!r} is not defined"
        )
    config.source = config_path
    return config


class ConsoleSettings(BaseModel):
    """Everything the TUI needs, decided by the CLI before the App is built."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    config: Config
    home: Path
    runbook_paths: list[Path]
    environment: str | None = None
    #: open this runbook's walkthrough straight away (``opsconsole run``)
    initial_runbook: Path | None = None
    #: the running demo sandbox (``opsconsole demo``): lets the UI inject faults
    sandbox: object | None = None
    #: where evidence reports are written
    evidence_dir: Path | None = None
