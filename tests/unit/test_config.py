"""The environment config: one TOML file, clear errors with the file (and line) named."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsconsole.config import load_config
from opsconsole.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_environments_variables_secrets_and_protection(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            """
default_environment = "staging"
runbook_paths = ["~/runbooks"]
[environments.staging]
secrets = ["ops_key"]
[environments.staging.variables]
base_url = "https://staging.example.internal"
port = 8010
[environments.prod]
protected = true
""",
        )
    )
    assert config.environment_names() == ["staging", "prod"]
    staging = config.environment(None)
    assert (staging.name, staging.variables["port"], staging.secrets) == (
        "staging",
        "8010",
        ["ops_key"],
    )
    assert config.environment("prod").protected
    with pytest.raises(ConfigError, match=r"unknown environment 'qa' \(known: staging, prod\)"):
        config.environment("qa")


def test_missing_default_config_means_builtin_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_config()
    assert config.source is None and config.environment(None).name == "local"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[environments.a\n", r"config.toml:1: invalid TOML"),
        (
            '[environments.a]\nprotected = "yes"\n',
            r"environments.a.protected: expected true or false",
        ),
        ("[environments.a]\ncolour = 1\n", r"environments.a: unknown setting 'colour'"),
        ("[environments.a.variables]\nx = [1]\n", r"environments.a.variables.x: expected text"),
        (
            'default_environment = "b"\n[environments.a]\n',
            r"default_environment 'b' is not defined",
        ),
    ],
)
def test_bad_config_is_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text))


def test_explicit_missing_config_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "absent.toml")
