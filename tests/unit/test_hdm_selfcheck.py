"""HDM's self-check rules (seed 001's exit codes) on real folders and a real listening socket."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from opsconsole.sandbox.hdm_selfcheck import (
    EX_CONFIG,
    EX_OK,
    EX_OSERR,
    EX_SOFTWARE,
    EX_UNAVAILABLE,
    read_env_file,
    run_selfcheck,
)


@pytest.fixture
def slskd() -> Iterator[int]:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


@pytest.fixture
def env(tmp_path: Path, slskd: int) -> dict[str, str]:
    (tmp_path / "downloads").mkdir()
    (tmp_path / "music").mkdir()
    return {
        "SPOTIFY_CLIENT_ID": "client",
        "SPOTIFY_CLIENT_SECRET": "secret-value",
        "HARMONY_API_KEY": "key-value",
        "DOWNLOADS_DIR": str(tmp_path / "downloads"),
        "MUSIC_DIR": str(tmp_path / "music"),
        "SLSKD_BASE_URL": f"http://127.0.0.1:{slskd}",
    }


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_a_good_environment_passes(env: dict[str, str]) -> None:
    assert run_selfcheck(env).status == EX_OK


def test_split_mode_needs_the_state_dir_on_the_same_file_system(
    env: dict[str, str], tmp_path: Path
) -> None:
    split = {**env, "OAUTH_SPLIT_MODE": "true"}
    result = run_selfcheck(split)
    assert result.status == EX_CONFIG
    assert result.problems == ["OAUTH_STATE_DIR is not set (required when OAUTH_SPLIT_MODE=true)"]
    (tmp_path / "oauth").mkdir()
    assert run_selfcheck({**split, "OAUTH_STATE_DIR": str(tmp_path / "oauth")}).status == EX_OK
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("no second file system at /dev/shm to put the state dir on")
    result = run_selfcheck({**split, "OAUTH_STATE_DIR": str(shm)})
    assert result.status == EX_OSERR
    assert "not on the same file system as DOWNLOADS_DIR" in result.problems[0]


def test_a_folder_that_is_a_file_is_not_writable(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    result = run_selfcheck({**env, "DOWNLOADS_DIR": str(tmp_path / "file")})
    assert result.status == EX_OSERR
    assert result.problems == [f"DOWNLOADS_DIR ({tmp_path / 'file'}) does not exist"]
    assert list((tmp_path / "music").iterdir()) == []  # the write probe cleaned up


def test_slskd_by_host_and_port_and_the_required_database(
    env: dict[str, str], slskd: int, tmp_path: Path
) -> None:
    by_host = {k: v for k, v in env.items() if k != "SLSKD_BASE_URL"}
    assert (
        run_selfcheck({**by_host, "SLSKD_HOST": "127.0.0.1", "SLSKD_PORT": str(slskd)}).status == 0
    )
    down = run_selfcheck({**by_host, "SLSKD_HOST": "127.0.0.1", "SLSKD_PORT": str(closed_port())})
    assert down.status == EX_UNAVAILABLE
    assert "SLSKD_HOST/SLSKD_PORT" in down.problems[0]
    needs_db = {**env, "HEALTH_READY_REQUIRE_DB": "true"}
    assert run_selfcheck(needs_db).status == EX_UNAVAILABLE
    sqlite = f"sqlite:///{tmp_path}/harmony.db"
    assert run_selfcheck({**needs_db, "DATABASE_URL": sqlite}).status == EX_OK
    postgres = f"postgresql://h@127.0.0.1:{closed_port()}/h"
    result = run_selfcheck({**needs_db, "DATABASE_URL": postgres})
    assert result.status == EX_UNAVAILABLE and "DATABASE_URL" in result.problems[0]


@pytest.mark.parametrize(
    ("name", "value"),
    [("SLSKD_PORT", "70000"), ("PORT", "eighty"), ("UI_FEATURE_SPOTIFY", "ja")],
)
def test_malformed_ports_and_booleans_are_70(env: dict[str, str], name: str, value: str) -> None:
    result = run_selfcheck({**env, name: value})
    assert result.status == EX_SOFTWARE
    assert result.problems[0].startswith(name)


def test_secrets_are_named_never_shown(env: dict[str, str]) -> None:
    result = run_selfcheck({**env, "HARMONY_API_KEY": "", "MUSIC_DIR": "/nonexistent"})
    assert result.status == EX_CONFIG  # the first failing group decides
    report = result.report()
    assert "HARMONY_API_KEY is not set" in report
    assert "secret-value" not in report and "/nonexistent" not in report


def test_env_file_lines(tmp_path: Path) -> None:
    path = tmp_path / "hdm.env"
    path.write_text("# settings\n\nA=1\nB = two words \nEMPTY=\n")
    assert read_env_file(path) == {"A": "1", "B": "two words", "EMPTY": ""}
    path.write_text("no equals sign\n")
    with pytest.raises(ValueError, match="hdm.env:1: expected KEY=VALUE"):
        read_env_file(path)
