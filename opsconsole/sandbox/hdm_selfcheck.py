"""HDM's startup self-check (``python -m app.ops.selfcheck --assert-startup``), for the sandbox.

``python -m opsconsole.sandbox selfcheck hdm --assert-startup [--env-file PATH]``
checks the settings the seed's go-live checklist names and exits with its
codes:

- ``78`` (EX_CONFIG): a required setting or secret is missing
  (``SPOTIFY_CLIENT_ID``, ``SPOTIFY_CLIENT_SECRET``, ``HARMONY_API_KEY``;
  ``OAUTH_STATE_DIR`` in split mode);
- ``70`` (EX_SOFTWARE): a setting is malformed (a port that is not one, a
  boolean that is not one);
- ``71`` (EX_OSERR): ``DOWNLOADS_DIR``, ``MUSIC_DIR`` (and ``OAUTH_STATE_DIR``
  in split mode) do not exist or cannot be written (a test file is written,
  fsynced and removed), or the OAuth state dir is on another file system than
  the downloads;
- ``69`` (EX_UNAVAILABLE): slskd (``SLSKD_BASE_URL``, else ``SLSKD_HOST`` /
  ``SLSKD_PORT``) or, with ``HEALTH_READY_REQUIRE_DB=true``, the database does
  not accept connections.

The first failing group decides the exit status (in the order above: a
malformed port cannot be probed); every problem of that group is printed.
``--env-file`` holds the settings as the container has them (``KEY=VALUE``
lines); they override the calling environment. Secrets are never printed,
only named. This module imports no web stack: it must answer fast.
"""

from __future__ import annotations

import os
import socket
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

__all__ = [
    "EX_CONFIG",
    "EX_OK",
    "EX_OSERR",
    "EX_SOFTWARE",
    "EX_UNAVAILABLE",
    "EXIT_MEANINGS",
    "SelfCheckResult",
    "read_env_file",
    "run_selfcheck",
]

EX_OK = 0
EX_UNAVAILABLE = 69
EX_SOFTWARE = 70
EX_OSERR = 71
EX_CONFIG = 78

#: the seed's meanings, in the words the runbook's table uses
EXIT_MEANINGS = {
    EX_CONFIG: "EX_CONFIG: required settings or secrets are missing",
    EX_OSERR: "EX_OSERR: a directory is missing or not writable",
    EX_UNAVAILABLE: "EX_UNAVAILABLE: a dependency (slskd, database) is unreachable",
    EX_SOFTWARE: "EX_SOFTWARE: internal misconfiguration (invalid port or boolean)",
}

REQUIRED = ("SPOTIFY_CLIENT_ID", "SPOTIFY_CLIENT_SECRET", "HARMONY_API_KEY")
SECRET_NAMES = frozenset({"SPOTIFY_CLIENT_SECRET", "HARMONY_API_KEY"})
BOOLEANS = (
    "HEALTH_READY_REQUIRE_DB",
    "OAUTH_SPLIT_MODE",
    "HARMONY_DISABLE_WORKERS",
    "UI_FEATURE_SPOTIFY",
    "UI_FEATURE_SOULSEEK",
)
PORTS = ("PORT", "SLSKD_PORT", "OAUTH_CALLBACK_PORT")
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})
CONNECT_TIMEOUT_SECONDS = 2.0


@dataclass
class SelfCheckResult:
    """The exit status and one line per problem of the group that decided it."""

    status: int
    problems: list[str] = field(default_factory=list)

    def report(self) -> str:
        if self.status == EX_OK:
            return "selfcheck: startup checks passed (config, directories, slskd)"
        lines = [f"selfcheck: startup checks failed: {EXIT_MEANINGS[self.status]}"]
        lines += [f"  - {problem}" for problem in self.problems]
        return "\n".join(lines)


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines (blank lines and ``#`` comments skipped; no shell expansion)."""
    values: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        key, sep, value = text.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{path}:{number}: expected KEY=VALUE")
        values[key.strip()] = value.strip()
    return values


def _boolean(value: str) -> bool | None:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    return None


def _port(value: str) -> int | None:
    text = value.strip()
    if not text.isdigit():
        return None
    number = int(text)
    return number if 1 <= number <= 65535 else None


def _missing(env: Mapping[str, str]) -> list[str]:
    problems = [f"{name} is not set" for name in REQUIRED if not env.get(name, "").strip()]
    if _boolean(env.get("OAUTH_SPLIT_MODE", "")) and not env.get("OAUTH_STATE_DIR", "").strip():
        problems.append("OAUTH_STATE_DIR is not set (required when OAUTH_SPLIT_MODE=true)")
    for name in ("DOWNLOADS_DIR", "MUSIC_DIR"):
        if not env.get(name, "").strip():
            problems.append(f"{name} is not set")
    return problems


def _malformed(env: Mapping[str, str]) -> list[str]:
    problems = []
    for name in BOOLEANS:
        if name in env and _boolean(env[name]) is None:
            problems.append(f"{name} must be true or false, not {env[name]!r}")
    for name in PORTS:
        if env.get(name, "").strip() and _port(env[name]) is None:
            problems.append(f"{name} must be a port number (1-65535), not {env[name]!r}")
    slskd_url = env.get("SLSKD_BASE_URL", "").strip()
    if slskd_url:
        try:
            parts = urlsplit(slskd_url)
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError:
            return [*problems, "SLSKD_BASE_URL is not a valid URL (bad port)"]
        if parts.scheme not in ("http", "https") or not parts.hostname:
            problems.append("SLSKD_BASE_URL must be an http(s) URL with a host")
    return problems


def _writable(name: str, folder: Path) -> str | None:
    if not folder.is_dir():
        return f"{name} ({folder}) does not exist"
    try:
        fd, probe = tempfile.mkstemp(prefix=".selfcheck-", dir=folder)
        try:
            os.write(fd, b"selfcheck")
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as exc:
        return f"{name} ({folder}) is not writable: {exc.strerror or exc}"
    return None


def _directories(env: Mapping[str, str]) -> list[str]:
    folders = {name: Path(env[name]) for name in ("DOWNLOADS_DIR", "MUSIC_DIR")}
    split = bool(_boolean(env.get("OAUTH_SPLIT_MODE", "")))
    if split:
        folders["OAUTH_STATE_DIR"] = Path(env["OAUTH_STATE_DIR"])
    problems = [p for name, folder in folders.items() if (p := _writable(name, folder))]
    if split and not problems:
        if folders["OAUTH_STATE_DIR"].stat().st_dev != folders["DOWNLOADS_DIR"].stat().st_dev:
            problems.append("OAUTH_STATE_DIR is not on the same file system as DOWNLOADS_DIR")
    return problems


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_SECONDS):
            return True
    except OSError:
        return False


def _dependencies(env: Mapping[str, str]) -> list[str]:
    problems = []
    slskd_url = env.get("SLSKD_BASE_URL", "").strip()
    if slskd_url:
        parts = urlsplit(slskd_url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        where = "SLSKD_BASE_URL"
    else:
        host = env.get("SLSKD_HOST", "").strip()
        port = _port(env.get("SLSKD_PORT", "")) or 5030
        where = "SLSKD_HOST/SLSKD_PORT"
    if not host:
        problems.append("slskd is not configured (SLSKD_BASE_URL or SLSKD_HOST/SLSKD_PORT)")
    elif not _reachable(host, port):
        problems.append(f"slskd is not reachable at {host}:{port} ({where})")
    if _boolean(env.get("HEALTH_READY_REQUIRE_DB", "")):
        problems.extend(_database(env.get("DATABASE_URL", "").strip()))
    return problems


def _database(url: str) -> list[str]:
    if not url:
        return ["the database is required (HEALTH_READY_REQUIRE_DB=true) but DATABASE_URL is unset"]
    parts = urlsplit(url)
    if parts.scheme.startswith("sqlite"):
        # SQLAlchemy's form: sqlite:///relative.db, sqlite:////absolute.db
        folder = Path(parts.path[1:]).parent if parts.path else Path()
        return [] if folder.is_dir() else [f"the database folder {folder} does not exist"]
    host, port = parts.hostname or "", parts.port or 5432
    if not host or not _reachable(host, port):
        return [f"the database is not reachable at {host}:{port} (DATABASE_URL)"]
    return []


def run_selfcheck(env: Mapping[str, str]) -> SelfCheckResult:
    """The self-check against these settings: the first failing group decides."""
    for status, check in (
        (EX_CONFIG, _missing),
        (EX_SOFTWARE, _malformed),
        (EX_OSERR, _directories),
        (EX_UNAVAILABLE, _dependencies),
    ):
        problems = check(env)
        if problems:
            return SelfCheckResult(status, problems)
    return SelfCheckResult(EX_OK)


def main(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> int:
    """``selfcheck hdm --assert-startup [--env-file PATH]``: print the report, return the status."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m opsconsole.sandbox selfcheck",
        description="HDM's startup self-check (exit 0, or 78/70/71/69).",
    )
    parser.add_argument("service", choices=["hdm"])
    parser.add_argument(
        "--assert-startup",
        action="store_true",
        required=True,
        help="check config, directories and dependencies as at startup",
    )
    parser.add_argument("--env-file", type=Path, help="KEY=VALUE settings; they win over $ENV")
    args = parser.parse_args(list(argv))
    env = dict(os.environ if environ is None else environ)
    if args.env_file is not None:
        try:
            env.update(read_env_file(args.env_file))
        except (OSError, ValueError) as exc:
            print(f"selfcheck: cannot read the settings file: {exc}", file=sys.stderr)
            return EX_CONFIG
    result = run_selfcheck(env)
    print(result.report(), file=sys.stdout if result.status == EX_OK else sys.stderr)
    return result.status
