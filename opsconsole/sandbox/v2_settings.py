"""The V2 control plane's and runner's settings (source runbook 004), validated fail-fast.

Settings are pydantic models read from environment-style mappings, so a bad
configuration raises a real :class:`pydantic.ValidationError` before any port
is bound, like the services' pydantic-settings classes. This module imports
pydantic only: ``python -m opsconsole.sandbox serve`` refuses a bad
environment without loading the web stack (the runbook runs that check four
times per walk).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

__all__ = [
    "DEFAULT_RUNNER_ALLOWLIST",
    "FEATURE_FLAGS",
    "ControlPlaneSettings",
    "RunnerSettings",
    "database_kind",
    "describe_settings_error",
]

DEFAULT_RUNNER_ALLOWLIST = ("nearsight_collect_refresh", "captorator_compose", "metrics_refresh")
FEATURE_FLAGS = (
    "NEARSIGHT_ENABLED",
    "CAPTORATOR_ENABLED",
    "JOBS_ENABLED",
    "NOTION_ENABLED",
    "RUNNER_ENABLED",
    "FEATURE_METRICS",
)
_PRODUCTION_ENVS = frozenset({"prod", "production"})


def database_kind(url: str) -> str:
    """The database a URL points to, by scheme (``postgresql+psycopg`` is postgresql)."""
    scheme = urlsplit(url).scheme.lower()
    return scheme.partition("+")[0] or "unknown"


def _require_postgres(value: SecretStr) -> SecretStr:
    # The URL may carry a password: messages name the scheme only, never the value.
    url = value.get_secret_value().strip()
    if not url:
        raise ValueError("DATABASE_URL is required and must not be empty")
    kind = database_kind(url)
    if kind not in ("postgres", "postgresql"):
        raise ValueError(f"DATABASE_URL must point to PostgreSQL (got {kind})")
    return SecretStr(url)


def _require_non_empty(value: SecretStr, info: ValidationInfo) -> SecretStr:
    if not value.get_secret_value().strip():
        raise ValueError(f"{_alias(info)} is required and must not be empty")
    return value


def _alias(info: ValidationInfo) -> str:
    return (info.field_name or "").upper()


class _EnvSettings(BaseModel):
    # hide_input_in_errors: a ValidationError's text must never echo a secret value.
    model_config = ConfigDict(frozen=True, extra="ignore", hide_input_in_errors=True)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Self:
        """Validate the variables this service reads from ``environ`` (e.g. ``os.environ``)."""
        names = {field.alias or name for name, field in cls.model_fields.items()}
        return cls.model_validate({name: environ[name] for name in names if name in environ})


class ControlPlaneSettings(_EnvSettings):
    app_env: str = Field("local", alias="APP_ENV")
    database_url: SecretStr = Field(alias="DATABASE_URL")
    secret_key: SecretStr = Field(alias="SECRET_KEY")
    ops_api_key: SecretStr | None = Field(None, alias="OPS_API_KEY", validate_default=True)
    runner_url: str | None = Field(None, alias="RUNNER_URL", repr=False)
    runner_token_outbound: SecretStr | None = Field(None, alias="RUNNER_TOKEN_OUTBOUND")
    # "Default: all features disabled"
    nearsight_enabled: bool = Field(False, alias="NEARSIGHT_ENABLED")
    captorator_enabled: bool = Field(False, alias="CAPTORATOR_ENABLED")
    jobs_enabled: bool = Field(False, alias="JOBS_ENABLED")
    notion_enabled: bool = Field(False, alias="NOTION_ENABLED")
    runner_enabled: bool = Field(False, alias="RUNNER_ENABLED")
    feature_metrics: bool = Field(False, alias="FEATURE_METRICS")

    _check_database_url = field_validator("database_url")(_require_postgres)
    _check_secret_key = field_validator("secret_key")(_require_non_empty)

    @field_validator("app_env")
    @classmethod
    def _normalise_env(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("APP_ENV must not be empty")
        return value

    @field_validator("runner_url")
    @classmethod
    def _check_runner_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().rstrip("/")
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("RUNNER_URL must be an http:// or https:// URL")
        return value

    @field_validator("ops_api_key")
    @classmethod
    def _check_ops_key(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            value = None
        if value is None and str(info.data.get("app_env", "")).lower() in _PRODUCTION_ENVS:
            raise ValueError("OPS_API_KEY is required when APP_ENV is prod/production")
        return value

    @field_validator("runner_token_outbound")
    @classmethod
    def _check_outbound(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            return None
        return value

    @model_validator(mode="after")
    def _runner_needs_its_address(self) -> Self:
        if self.runner_enabled:
            missing = [
                name
                for name, value in (
                    ("RUNNER_URL", self.runner_url),
                    ("RUNNER_TOKEN_OUTBOUND", self.runner_token_outbound),
                )
                if value is None
            ]
            if missing:
                raise ValueError(f"RUNNER_ENABLED requires {' and '.join(missing)}")
        return self

    def flags(self) -> dict[str, bool]:
        return {name: getattr(self, name.lower()) for name in FEATURE_FLAGS}

    @property
    def is_production(self) -> bool:
        return self.app_env.lower() in _PRODUCTION_ENVS


class RunnerSettings(_EnvSettings):
    database_url: SecretStr = Field(alias="DATABASE_URL")
    runner_token: SecretStr = Field(alias="RUNNER_TOKEN")
    runner_allowlist: tuple[str, ...] = Field(DEFAULT_RUNNER_ALLOWLIST, alias="RUNNER_ALLOWLIST")

    _check_database_url = field_validator("database_url")(_require_postgres)
    _check_runner_token = field_validator("runner_token")(_require_non_empty)

    @field_validator("runner_allowlist", mode="before")
    @classmethod
    def _split_allowlist(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",")]
        if isinstance(value, list | tuple):
            value = tuple(part for part in value if part)
            if not value:
                raise ValueError("RUNNER_ALLOWLIST must name at least one job type")
        return value


def describe_settings_error(exc: ValidationError, service: str) -> str:
    """A readable, secret-free account of why ``service`` refused to start."""
    count = exc.error_count()
    lines = [
        f"{service}: refusing to start: ValidationError: {count} invalid setting"
        f"{'s' if count != 1 else ''} ({exc.title})"
    ]
    for error in exc.errors(include_url=False, include_input=False, include_context=True):
        # Upper-cased: a defaulted field is reported by its name, not its variable.
        where = ".".join(str(part) for part in error["loc"]).upper() or "settings"
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, Exception):
            lines.append(f"  {where}: {type(cause).__name__}: {cause}")
        else:
            lines.append(f"  {where}: {error['msg']}")
    lines.append("Fix the environment variables above and start it again.")
    return "\n".join(lines)
