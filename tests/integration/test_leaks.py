"""Issue 6, item 4: a secret and its encoded forms, seeded through every output path.

A sandbox-like service that knows the environment's key echoes it back in every
form it leaks in practice (raw, URL-quoted with and without ``/``, lower-case
``%xx``, JSON-escaped with ``\\/``, hex, base64 and HTTP Basic, prefixes of 8 to 20
characters), in JSON bodies, text bodies, an error page, response headers, a body
cut by the saved-state cap, a job's states and result, a command's output. A
runbook sends the key (JSON body, query), captures it, asserts on it (so it lands
in assertion details), and fails. Then every place opsconsole writes is searched
with :func:`tests.leak_forms.assert_no_leak`: the run state, the audit log, the
evidence report, ``check --json`` and ``--junit``, ``check``'s stdout and stderr,
the events a screen would show, and a crash log with its one-line summary.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from opsconsole.config import Environment
from opsconsole.crash import crash_summary, write_crash_log
from opsconsole.evidence import export_evidence
from opsconsole.loader import load_runbook
from opsconsole.model import Step
from opsconsole.operator import Event, HeadlessOperator
from opsconsole.run import StepStatus
from opsconsole.sandbox.server import LoopbackServers
from opsconsole.session import open_session
from tests.conftest import REPO
from tests.leak_forms import assert_no_leak, encoded_forms

#: bytes of body kept in saved state (opsconsole.artifacts.SAVED_TEXT_LIMIT): the long
#: body puts the key across this cut
SAVED_CUT = 64 * 1024


def make_secret() -> str:
    return secrets.token_urlsafe(24) + "/+é"


def every_form(value: str) -> list[str]:
    """The forms of ``value`` a careless service sends back, and prefixes of them."""
    forms = encoded_forms(value)
    forms.append("Basic " + base64.b64encode(b"ops:" + value.encode()).decode())
    forms.append(base64.b64encode(b"xy:" + value.encode()).decode())
    prefixes = [form[:size] for form in forms for size in (8, 13, 20) if len(form) > size]
    return forms + prefixes


@dataclass
class Service:
    url: str
    key: str
    job_token: str


def service_app(key: str, job_token: str) -> Starlette:
    forms = every_form(key)

    async def echo_json(request: Request) -> Response:
        sent = await request.json()
        if sent.get("key") != key or request.query_params.get("key") != key:
            return JSONResponse({"error": "wrong key"}, status_code=403)
        return JSONResponse(
            {"token": key, "forms": forms, "basic": forms[-1]},
            headers={
                "X-Echo": base64.b64encode(key.encode()).decode(),
                "Set-Cookie": f"session={quote(key)}; HttpOnly",
            },
        )

    async def echo_text(request: Request) -> Response:
        return PlainTextResponse("key=" + key + "\n" + "\n".join(forms) + "\n")

    async def echo_500(request: Request) -> Response:
        return HTMLResponse(f"<h1>invalid key {key}</h1>", status_code=500)

    async def echo_long(request: Request) -> Response:
        # the saved body is cut 12 characters into the key (redact first, then cut)
        return PlainTextResponse("x" * (SAVED_CUT - 12) + key + "\n" + " ".join(forms))

    async def create_job(request: Request) -> Response:
        return JSONResponse({"id": "j1", "status": "queued", "job_token": job_token})

    polls = 0

    async def read_job(request: Request) -> Response:
        nonlocal polls
        if request.headers.get("x-job-token") != job_token:
            return JSONResponse({"error": "wrong job token"}, status_code=403)
        polls += 1
        if polls % 2:  # a hostile state: the token the job was created with, and the key
            return JSONResponse({"status": f"running {job_token[:12]} {key[:10]}"})
        result = {"echo": forms, "job_token": every_form(job_token)}
        return JSONResponse({"status": "succeeded", "result": result})

    return Starlette(
        routes=[
            Route("/echo.json", echo_json, methods=["POST"]),
            Route("/echo.txt", echo_text),
            Route("/echo-500", echo_500),
            Route("/echo-long", echo_long),
            Route("/jobs", create_job, methods=["POST"]),
            Route("/jobs/{job_id}", read_job),
        ]
    )


@pytest.fixture
def service() -> Iterator[Service]:
    # the job token travels in a header: ASCII, as tokens are
    key, job_token = make_secret(), secrets.token_urlsafe(24)
    with LoopbackServers() as running:
        port = running.serve("leaky", service_app(key, job_token))
        yield Service(f"http://127.0.0.1:{port}", key, job_token)


RUNBOOK = """\
---
id: leaky
title: Every form of the key
variables: [base_url]
secrets: [ops_key]
---
# Leaks

```ops http
id: send
method: POST
url: "{{ base_url }}/echo.json"
params:
  key: "{{ secrets.ops_key }}"
json:
  key: "{{ secrets.ops_key }}"
capture:
  token: token
capture_secret:
  basic: basic
expect:
  body_not_contains: ["{{ secrets.ops_key }}"]
  headers:
    X-Echo: nothing-like-it
  json:
    - path: token
      equals: not-the-token
    - path: forms[2]
      matches: "^nothing$"
    - path: forms
      length: 1
```

```ops http
id: text
url: "{{ base_url }}/echo.txt"
expect:
  body_matches: ["key={{ secrets.ops_key }}$", "no such line {{ secrets.ops_key }}"]
  body_not_matches: ["key={{ secrets.ops_key }}"]
  body_contains: ["not there {{ secrets.ops_key }}"]
```

```ops http
id: error-page
url: "{{ base_url }}/echo-500"
```

```ops http
id: long
url: "{{ base_url }}/echo-long"
```

```ops trigger
id: job
url: "{{ base_url }}/jobs"
json: {key: "{{ secrets.ops_key }}"}
capture:
  job_id: id
capture_secret:
  job_token: job_token
follow:
  url: "{{ base_url }}/jobs/{{ job_id }}"
  headers:
    X-Job-Token: "{{ secrets.job_token }}"
  interval: 50ms
  deadline: 20s
  result: result
```

```ops command
id: child
env:
  KEY: "{{ secrets.ops_key }}"
run: |
  printf '%s\\n' "$KEY"
  printf %s "$KEY" | base64 -w0; echo
  printf %s "ops:$KEY" | base64 -w0; echo
  printf %s "$KEY" | od -An -v -tx1 | tr -d ' \\n'; echo
  printf '%s\\n' "${KEY:0:12}"
  echo "giving up with $KEY" >&2
  exit 3
timeout: 20s
mutating: false
```
"""


def write_setup(tmp_path: Path, service: Service) -> tuple[Path, Path]:
    runbook = tmp_path / "leaky.md"
    runbook.write_text(RUNBOOK)
    config = tmp_path / "config.toml"
    config.write_text(
        textwrap.dedent(
            f"""\
            [environments.test]
            secrets = ["ops_key"]
            [environments.test.variables]
            base_url = "{service.url}"
            """
        )
    )
    return runbook, config


def run_cli(
    args: list[str], env: dict[str, str], *, prelude: str = ""
) -> subprocess.CompletedProcess[str]:
    """The real CLI in a new interpreter; ``prelude`` runs first (to plant a crash)."""
    code = prelude + "\nimport sys\nfrom opsconsole.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), **env},
        timeout=120,
        check=False,
    )


def test_no_form_of_a_secret_reaches_any_output(
    service: Service, tmp_path: Path, isolated_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runbook_path, config = write_setup(tmp_path, service)
    home = tmp_path / "home"
    cli_env = {"OPSCONSOLE_HOME": str(home), "OPSCONSOLE_SECRET_OPS_KEY": service.key}

    # 1. check, as CI runs it: JSON on stdout, progress on stderr, a JUnit report
    junit = tmp_path / "report.xml"
    args = ["--config", str(config), "check", str(runbook_path), "--env", "test"]
    done = run_cli([*args, "--json", "--junit", str(junit)], cli_env)
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    statuses = {step["id"]: step["status"] for step in report["steps"]}
    # the service saw the key and the job token (the runbook really sent them)...
    assert statuses["job"] == "passed", [(s["id"], s["detail"]) for s in report["steps"]]
    # ...and every step that had the secret in an assertion or an error failed on it
    assert {statuses[s] for s in ("send", "text", "error-page", "child")} == {"failed"}, report
    # it really went through the paths that carry the secret (nothing was skipped)
    details = {step["id"]: step["detail"] for step in report["steps"]}
    # and as a person reads it: progress on stderr, the report as text on stdout
    text = run_cli(args, {**cli_env, "OPSCONSOLE_HOME": str(tmp_path / "text-home")})
    assert text.returncode == 1 and "✗ send" in text.stderr and "failed" in text.stdout
    assert "***" in details["send"] and "***" in details["error-page"], details
    assert details["long"].startswith("200 OK"), details

    # 2. the same runbook in a session, watched as a screen would, then its evidence
    monkeypatch.setenv("OPSCONSOLE_SECRET_OPS_KEY", service.key)
    environment = Environment(
        name="test", secrets=["ops_key"], variables={"base_url": service.url}
    )
    runbook = load_runbook(runbook_path)
    events: list[str] = []

    def watch(step: Step, event: Event) -> None:
        events.append(repr(event))

    async def walk() -> Path:
        session = open_session(runbook, environment, tmp_path / "session-home")
        assert await session.start() == []
        operator = HeadlessOperator(sink=watch)
        for step in runbook.steps:
            await session.execute(step.id, operator=operator)
        evidence = export_evidence(session, tmp_path / "evidence")
        # a crash while a session is alive: the exception carries the key in every form
        crash = RuntimeError("unexpected: " + " ".join(every_form(service.key)))
        where = write_crash_log(crash)
        assert where is not None and where.is_relative_to(isolated_home)
        events.append(crash_summary(crash, where))
        await session.close()
        return evidence

    import asyncio

    evidence = asyncio.run(walk())
    assert session_statuses_match(tmp_path / "session-home", statuses)
    assert any("OutputLine" in event for event in events)

    # 3. an unexpected exception inside check, as the CLI meets it: crash.log + one line
    crash_home = tmp_path / "crash-home"
    prelude = textwrap.dedent(
        """
        import opsconsole.expectations as expectations

        def evaluate_http(expect, response, **kwargs):
            raise RuntimeError("unexpected body: " + response.body)

        expectations.evaluate_http = evaluate_http
        """
    )
    crashed = run_cli(args, {**cli_env, "OPSCONSOLE_HOME": str(crash_home)}, prelude=prelude)
    # one step's bug fails that step (details in crash.log) and the check goes on
    assert crashed.returncode == 1, crashed.stderr
    assert "unexpected RuntimeError in this step" in crashed.stdout
    assert "crash.log" in crashed.stdout
    assert (crash_home / "crash.log").stat().st_size > 0

    places: list[tuple[str, str | Path]] = [
        ("check's state folder (runs, audit)", home),
        ("check --junit", junit),
        ("check stdout (--json)", done.stdout),
        ("check stderr (--json)", done.stderr or "-"),
        ("check's text report on stdout", text.stdout),
        ("check's progress on stderr", text.stderr),
        ("the text check's state folder", tmp_path / "text-home"),
        ("the session's state folder", tmp_path / "session-home"),
        ("the evidence report", evidence),
        ("the events a screen shows", "\n".join(events)),
        ("crash.log of a session", isolated_home),
        ("crash.log of check", crash_home),
        ("check stderr after a crash", crashed.stderr + crashed.stdout),
    ]
    # each place really held the key, masked (the search below is not over empty files);
    # a step's own crash keeps no message at all (it may hold a token not yet captured)
    for written in (junit, evidence, isolated_home / "crash.log"):
        assert "***" in written.read_text(), written
    assert "message withheld" in (crash_home / "crash.log").read_text()
    leaks = []
    for what, target in places:
        assert target, what
        for name, secret in (("the key", service.key), ("the job token", service.job_token)):
            try:
                assert_no_leak(target, secret)
            except AssertionError as leak:
                leaks.append(f"{name} in {what}: {leak}")
    assert not leaks, "\n".join(leaks)
    assert (home / "audit.jsonl").stat().st_size > 0


def session_statuses_match(home: Path, expected: dict[str, str]) -> bool:
    """The in-process walk came to the same results as check (so it took the same paths)."""
    from opsconsole.run import RunStore

    runs = list((home / "runs").glob("*.json"))
    assert len(runs) == 1
    run = RunStore(home).load(runs[0].stem)
    seen = {step_id: result.status.value for step_id, result in run.results.items()}
    return seen == expected and run.results["job"].status is StepStatus.PASSED


async def test_a_cut_inside_an_encoded_secret_keeps_none_of_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A command's output is cut before it is redacted: only its tail is kept, and a long
    line reaches the screen in 8 KiB pieces. A cut inside the key's hex or base64 form must
    not leave the rest of that form readable."""
    key = make_secret()
    data = key.encode()
    forms = {"hex": data.hex(), "base64": base64.b64encode(data).decode().rstrip("=")}
    monkeypatch.setenv("OPSCONSOLE_SECRET_OPS_KEY", key)
    blocks = []
    for name, encode in (
        ("hex", "printf %s \"$KEY\" | od -An -v -tx1 | tr -d ' \\n'"),
        ("base64", 'printf %s "$KEY" | base64 -w0 | tr -d ='),
    ):
        filler = "head -c {} /dev/zero | tr '\\0' y"
        # line 1: the screen's piece boundary (8,192) falls 19 characters before the form's
        # end; line 2: the kept tail (the last 64 KiB) starts 19 characters before its end
        length = len(forms[name])
        run = (
            f"{filler.format(8192 - length + 19)}; {encode}; echo; "
            f"{encode}; {filler.format(64 * 1024 - 20)}; echo"
        )
        blocks.append(
            f"```ops command\nid: {name}\nrun: {json.dumps(run)}\nenv:\n"
            '  KEY: "{{ secrets.ops_key }}"\nmutating: false\n```\n'
        )
    path = tmp_path / "cut.md"
    path.write_text("---\nid: cut\nsecrets: [ops_key]\n---\n# Cut\n\n" + "\n".join(blocks))
    runbook = load_runbook(path)
    session = open_session(runbook, Environment(name="test", secrets=["ops_key"]), tmp_path)
    assert await session.start() == []
    events: list[str] = []
    operator = HeadlessOperator(sink=lambda step, event: events.append(repr(event)))
    for step in runbook.steps:
        result = await session.execute(step.id, operator=operator)
        assert result.status is StepStatus.PASSED, result.detail
        assert result.artifact("output").truncated
    await session.close()
    saved = (tmp_path / "runs" / f"{session.run.id}.json").read_text()
    shown = "\n".join(events)
    assert "yyyy" in saved and "yyyy" in shown
    for name, form in forms.items():
        ending = form[-19:]
        kept, on_screen = ending in saved, ending in shown
        assert not kept, f"the last 19 characters of the key's {name} form were saved"
        assert not on_screen, f"the last 19 characters of the key's {name} form were shown"
