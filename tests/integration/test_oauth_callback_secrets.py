"""``ops oauth_callback`` against the sandbox HDM: what of the pasted URL is secret.

The pasted redirect URL is secret-bearing: its ``code`` (and every other parameter
that is not public) must be ``***`` everywhere a run leaves a trace, while its
non-secret ``http://host:port/path``, the authorization URL and the redirect URI
stay readable (registering the whole paste masked every ``http://127.0.0.1:`` URL
of the step by prefix).
"""

from __future__ import annotations

import asyncio
import secrets as random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

import opsconsole.sandbox.hdm as hdm_module
from opsconsole.config import load_config
from opsconsole.headless import run_check
from opsconsole.loader import load_runbook
from opsconsole.operator import HeadlessOperator
from opsconsole.sandbox import Sandbox
from tests.leak_forms import assert_no_leak

RUNBOOK = Path(__file__).parents[1] / "runbooks" / "hdm-oauth-callback.md"
STEP = "hdm-oauth-recover"


class Issued:
    """Every random value the sandbox HDM and its Spotify stand-in hand out, by size:
    states (24 bytes), and codes and tokens (32 bytes)."""

    def __init__(self) -> None:
        self.values: dict[int, list[str]] = {}

    def token_urlsafe(self, nbytes: int | None = None) -> str:
        value = random.token_urlsafe(nbytes)
        self.values.setdefault(nbytes or 32, []).append(value)
        return value

    @property
    def states(self) -> list[str]:
        return self.values.get(24, [])

    @property
    def codes_and_tokens(self) -> list[str]:
        """The code the browser was given, then the access and refresh token HDM got."""
        return self.values.get(32, [])


@pytest.fixture
def issued(monkeypatch: pytest.MonkeyPatch) -> Iterator[Issued]:
    record = Issued()
    monkeypatch.setattr(hdm_module, "token_urlsafe", record.token_urlsafe)
    yield record


def pasted_url(redirect_uri: str, code: str, state: str) -> str:
    """What the sandbox's Spotify sends the browser to (and the operator pastes)."""
    return f"{redirect_uri}?{urlencode({'code': code, 'state': state})}"


def every_text(places: list[Path | str]) -> Iterator[tuple[str, str]]:
    for place in places:
        if isinstance(place, str):
            yield "captured output", place
            continue
        files = [place] if place.is_file() else sorted(p for p in place.rglob("*") if p.is_file())
        for file in files:
            yield str(file), file.read_bytes().decode("utf-8", errors="replace")


def assert_nowhere(places: list[Path | str], *, url: str, secrets: list[str]) -> int:
    """Neither the pasted URL whole nor any form of a secret value is in any of ``places``.
    Returns how many files and texts were read (so a test sees that it read something)."""
    read = 0
    for where, text in every_text(places):
        read += 1
        leaked = url in text
        assert not leaked, f"the pasted redirect URL is in {where}"  # never the value itself
        for value in secrets:
            assert_no_leak(text, value)
    return read


def run_headless(home: Path) -> tuple[Any, dict[str, str], str]:
    """A check run of the step; (report, the sandbox's variables, the API key)."""
    runbook = load_runbook(RUNBOOK)
    with Sandbox.for_runbooks([runbook]) as sandbox:
        sandbox.install_keyring()
        environment = load_config(sandbox.config_path).environment("sandbox")
        operator = HeadlessOperator(simulate=True, browser=sandbox.simulated_browser)
        report = asyncio.run(run_check(runbook, environment, home, operator=operator))
        return report, dict(sandbox.variables), sandbox.secret_values["hdm_api_key"]


def test_only_the_code_is_masked_the_urls_of_the_step_read_normally(
    tmp_path: Path, issued: Issued
) -> None:
    report, variables, _ = run_headless(tmp_path)
    (step,) = report.steps
    assert step["status"] == "passed", step["detail"]
    (state,) = issued.states
    code = issued.codes_and_tokens[0]
    port = variables["hdm_callback_port"]
    redirect_uri = f"http://127.0.0.1:{port}/callback"
    artifacts = step["artifacts"]
    started = artifacts[1]["document"]
    shown = dict(artifacts[2]["items"])
    # the authorization URL, its host and the redirect URI are shown as they are
    assert started["authorization_url"].startswith(variables["hdm_spotify_url"] + "/authorize?")
    assert shown["open in your browser"] == started["authorization_url"]
    assert "***" not in shown["open in your browser"]
    assert shown["redirect URI"] == started["redirect_uri"] == redirect_uri
    assert shown["tunnel (run on your machine)"].startswith(f"ssh -N -L {port}:127.0.0.1:{port} ")
    # what was handed over reads as the pasted URL with its code masked, and only that
    submitted = artifacts[3]
    assert submitted["url"] == variables["hdm_url"] + "/api/v1/oauth/manual"
    masked = submitted["document"] == {"redirect_url": f"{redirect_uri}?code=***&state={state}"}
    assert masked, "the handed-over URL does not read as the paste with its code masked"
    assert_no_leak(str(report.to_json()), code)


def test_no_pasted_url_code_or_token_in_home_json_junit_or_output(
    tmp_path: Path,
    issued: Issued,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """``opsconsole check --sandbox --json --junit`` as an operator runs it (in this
    process, so the values the sandbox hands out can be recorded): every file under the
    run's home (run state, audit), the JSON, the JUnit file, stdout and stderr."""
    from opsconsole import cli

    home, junit = tmp_path / "home", tmp_path / "report.xml"
    monkeypatch.setenv("OPSCONSOLE_HOME", str(home))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("OPSCONSOLE_CONFIG", raising=False)
    sandboxes: list[Sandbox] = []
    start: Callable[[Sandbox], Sandbox] = Sandbox.start

    def recording_start(self: Sandbox) -> Sandbox:
        sandboxes.append(self)
        return start(self)

    monkeypatch.setattr(Sandbox, "start", recording_start)
    status = cli.main(["check", str(RUNBOOK), "--sandbox", "--json", "--junit", str(junit)])
    out, err = capfd.readouterr()
    assert status == 0, out + err
    assert '"status": "passed"' in out or '"status":"passed"' in out
    (sandbox,) = sandboxes
    (state,) = issued.states
    code, access_token, refresh_token = issued.codes_and_tokens
    redirect_uri = f"http://127.0.0.1:{sandbox.variables['hdm_callback_port']}/callback"
    url = pasted_url(redirect_uri, code, state)
    read = assert_nowhere(
        [home, junit, out, err],
        url=url,
        secrets=[code, access_token, refresh_token, *sandbox.secret_values.values()],
    )
    assert read >= 5  # the run state and the audit log at least, JUnit, stdout, stderr
    assert f"{redirect_uri}?code=***&state={state}" in out  # masked, not dropped
