"""Issue 6 through the real step paths: a runbook, a RunSession (or ``opsconsole check`` as a
real subprocess), real servers on loopback, real children.

Each test plays an attack against a step, not against a hardening module: a hostile
response captured by ``ops http`` and reused by ``ops command`` or the next request, a
runbook asking for more secrets than its environment grants, a hostile server behind
an ``ops http`` step.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from opsconsole.config import Environment
from opsconsole.loader import load_runbook
from opsconsole.run import RunStore, StepResult, StepStatus
from opsconsole.sandbox.server import LoopbackServers
from opsconsole.session import RunSession, StepRefused, open_session
from tests.conftest import REPO

if TYPE_CHECKING:
    from tests.hostile_server import HostileServer

# -- a small server that hands out hostile values and records what reaches it -------------

#: values a hostile service may return for an id: each would run ``touch pwned`` if it
#: were pasted into a shell command, whatever quotes the runbook put around it
SHELL_PAYLOADS = {
    "dollar-paren": "$(touch pwned)",
    "backticks": "`touch pwned`",
    "semicolon": "x; touch pwned",
    "and": "x && touch pwned",
    "pipe": "x | touch pwned",
    "single-quote-break": "x'; touch pwned; echo '",
    "double-quote-break": 'x"; touch pwned; echo "',
    "double-quote-dollar": 'x" $(touch pwned) "',
    "backslash-quote": 'x\\"; touch pwned; echo \\"',
    "newline": "x\ntouch pwned",
    "carriage-newline": "x\r\ntouch pwned\r\n",
    "glob-and-redirect": "* > pwned",
    "dollar-brace": "${IFS}$(touch${IFS}pwned)",
}
TRAVERSAL = "../../admin/delete?all=1#"
NESTED_PATTERN = "(a+)+$"


@dataclass
class Seen:
    """What the recording server saw: raw request targets and one header's values."""

    targets: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)


def recording(app: ASGIApp, seen: Seen) -> ASGIApp:
    """Wrap ``app``: record the raw path and query of every request before routing it."""

    async def wrapper(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            target = scope.get("raw_path", scope["path"].encode()).decode("latin-1")
            if scope.get("query_string"):
                target += "?" + scope["query_string"].decode("latin-1")
            seen.targets.append(target)
            for name, value in scope["headers"]:
                if name == b"x-ops-key":
                    seen.keys.append(value.decode("latin-1"))
        await app(scope, receive, send)

    return wrapper


async def payload(request: Request) -> JSONResponse:
    name = request.path_params["name"]
    values = {**SHELL_PAYLOADS, "traversal": TRAVERSAL, "pattern": NESTED_PATTERN}
    return JSONResponse({"id": values[name]})


async def job(request: Request) -> JSONResponse:
    return JSONResponse({"job": request.path_params["rest"]})


async def collect(request: Request) -> JSONResponse:
    return JSONResponse({"collected": True})


#: a value that would retitle and clear a terminal, and that XML 1.0 cannot hold
CONTROL = "bad\x00\x1b]0;pwned\x07\x1b[2J\x0c"


async def control(request: Request) -> JSONResponse:
    return JSONResponse({"status": CONTROL})


async def pattern_body(request: Request) -> PlainTextResponse:
    # what the captured pattern, taken literally, is looking for; and a run of "a" on
    # which the same text taken as a regex would backtrack
    return PlainTextResponse("a" * 22 + "! the literal text (a+)+$ is here")


async def hostile_body(request: Request) -> PlainTextResponse:
    return PlainTextResponse("a" * 50_000 + "!")


@dataclass
class Servers:
    base_url: str
    seen: Seen
    #: another service on loopback (another port: another host for the secret policy)
    other_url: str
    other_seen: Seen


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    seen, other_seen = Seen(), Seen()

    async def elsewhere(request: Request) -> JSONResponse:
        return JSONResponse({"next": other_url})

    app = Starlette(
        routes=[
            Route("/payload/{name}", payload),
            Route("/elsewhere", elsewhere),
            Route("/api/v1/ops/jobs/{rest:path}", job),
            Route("/pattern-body", pattern_body),
            Route("/hostile-body", hostile_body),
            Route("/collect", collect),
            Route("/control", control),
        ]
    )
    other = Starlette(routes=[Route("/{rest:path}", job)])
    with LoopbackServers() as running:
        port = running.serve("attacks", recording(app, seen))
        other_port = running.serve("other", recording(other, other_seen))
        other_url = f"http://127.0.0.1:{other_port}"
        yield Servers(f"http://127.0.0.1:{port}", seen, other_url, other_seen)


# -- walking a runbook through a session -----------------------------------------------------


def write_runbook(tmp_path: Path, body: str, front: str = "variables: [base_url]") -> Path:
    path = tmp_path / "attack.md"
    path.write_text(f"---\nid: attack\n{front}\n---\n# Attack\n\n{body}")
    return path


async def walk(
    path: Path, environment: Environment, home: Path
) -> tuple[RunSession, dict[str, StepResult]]:
    """Run every step of the runbook at ``path`` in order, as ``check`` would."""
    runbook = load_runbook(path)
    session = open_session(runbook, environment, home)
    assert await session.start() == []
    results = {}
    try:
        for step in runbook.steps:
            results[step.id] = await session.execute(step.id)
    finally:
        await session.close()
    return session, results


def output_of(result: StepResult) -> str:
    output = result.artifact("output")
    assert output is not None, result.detail
    return str(output.text)


# -- item 1: data never becomes code ----------------------------------------------------------

#: one command, the value in every quoting style a runbook author might use
EVERY_QUOTING = 'echo "{{ id }}"; echo {{ id }}; echo \'{{ id }}\'; VALUE={{ id }}; echo "$VALUE"'


@pytest.mark.parametrize("protected", [False, True], ids=["unprotected", "protected"])
async def test_a_captured_value_never_runs_as_shell(
    servers: Servers, tmp_path: Path, protected: bool
) -> None:
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    blocks = []
    for number, name in enumerate(SHELL_PAYLOADS):
        command = EVERY_QUOTING.replace("{{ id }}", f"{{{{ id{number} }}}}")
        blocks.append(
            f"""\
```ops http
id: fetch-{name}
url: "{{{{ base_url }}}}/payload/{name}"
capture:
  id{number}: id
```

```ops command
id: use-{name}
run: {json.dumps(command)}
cwd: "{{{{ workdir }}}}"
mutating: false
```
"""
        )
    path = write_runbook(tmp_path, "\n".join(blocks), front="variables: [base_url, workdir]")
    environment = Environment(
        name="prod" if protected else "test",
        protected=protected,
        variables={"base_url": servers.base_url, "workdir": str(workdir)},
    )
    _, results = await walk(path, environment, tmp_path / "home")
    assert not (workdir / "pwned").exists(), "a captured value ran as a shell command"
    assert list(workdir.iterdir()) == []
    wrong = []
    for name, value in SHELL_PAYLOADS.items():
        fetched, used = results[f"fetch-{name}"], results[f"use-{name}"]
        assert fetched.status is StepStatus.PASSED, fetched.detail
        # quoted for where it lands, the value comes back exactly, as data, in every style
        if used.status is not StepStatus.PASSED or output_of(used) != (value + "\n") * 4:
            wrong.append(f"{name}: {used.status.value} {used.detail}")
    assert not wrong, "\n".join(wrong)


async def test_a_captured_path_reaches_the_server_as_one_encoded_segment(
    servers: Servers, tmp_path: Path
) -> None:
    path = write_runbook(
        tmp_path,
        """\
```ops http
id: fetch
url: "{{ base_url }}/payload/traversal"
capture:
  id: id
```

```ops http
id: read-job
url: "{{ base_url }}/api/v1/ops/jobs/{{ id }}"
```
""",
    )
    environment = Environment(name="test", variables={"base_url": servers.base_url})
    before = len(servers.seen.targets)
    _, results = await walk(path, environment, tmp_path / "home")
    assert results["read-job"].status is StepStatus.PASSED, results["read-job"].detail
    targets = servers.seen.targets[before:]
    assert targets == [
        "/payload/traversal",
        "/api/v1/ops/jobs/..%2F..%2Fadmin%2Fdelete%3Fall%3D1%23",
    ]
    # the server decoded one segment: the id, whole
    assert results["read-job"].artifact("response").document == {"job": TRAVERSAL}


async def test_a_captured_pattern_is_matched_literally(servers: Servers, tmp_path: Path) -> None:
    path = write_runbook(
        tmp_path,
        """\
```ops http
id: fetch
url: "{{ base_url }}/payload/pattern"
capture:
  pattern: id
```

```ops http
id: look
url: "{{ base_url }}/pattern-body"
expect:
  body_matches: ["{{ pattern }}"]
```
""",
    )
    environment = Environment(name="test", variables={"base_url": servers.base_url})
    _, results = await walk(path, environment, tmp_path / "home")
    # taken as a regex, (a+)+$ finds no "a" at the end of the body; taken literally it is there
    assert results["look"].status is StepStatus.PASSED, results["look"].detail


async def test_a_captured_pattern_in_a_json_assertion_is_matched_literally(
    servers: Servers, tmp_path: Path
) -> None:
    path = write_runbook(
        tmp_path,
        """\
```ops http
id: fetch
url: "{{ base_url }}/payload/pattern"
capture:
  pattern: id
```

```ops http
id: again
url: "{{ base_url }}/payload/pattern"
expect:
  json:
    - path: id
      matches: "^{{ pattern }}$"
```
""",
    )
    environment = Environment(name="test", variables={"base_url": servers.base_url})
    _, results = await walk(path, environment, tmp_path / "home")
    # the id is the text "(a+)+$": only the escaped pattern finds it
    assert results["again"].status is StepStatus.PASSED, results["again"].detail


async def test_a_runbooks_own_catastrophic_pattern_fails_its_assertion_and_the_run_goes_on(
    servers: Servers, tmp_path: Path
) -> None:
    path = write_runbook(
        tmp_path,
        """\
```ops http
id: nested
url: "{{ base_url }}/hostile-body"
expect:
  body_matches: ["(a+)+$"]
```

```ops http
id: next
url: "{{ base_url }}/payload/semicolon"
```
""",
    )
    environment = Environment(name="test", variables={"base_url": servers.base_url})
    session, results = await walk(path, environment, tmp_path / "home")
    nested = results["nested"]
    assert nested.status is StepStatus.FAILED
    assert "/(a+)+$/ took longer than" in nested.detail and "simplify it" in nested.detail
    assert results["next"].status is StepStatus.PASSED
    assert session.run.status.value == "completed"


# -- item 2: children get only what they are given ---------------------------------------------

CHILD = r"""
env | cut -d= -f1 | sort | tr '\n' ' '; echo
printf 'sha256 '; printf %s "$GIVEN_KEY" | sha256sum | cut -d' ' -f1
case "$(tr '\0' ' ' < /proc/$$/cmdline)" in
  *"$GIVEN_KEY"*) echo "argv: HAS THE SECRET" ;;
  *) echo "argv: clean" ;;
esac
printf 'processes with it on argv: '
grep -l -F -f <(printf '%s\n' "$GIVEN_KEY") /proc/[0-9]*/cmdline 2>/dev/null | wc -l
"""


async def test_a_command_child_gets_only_the_secret_it_is_given_and_never_on_argv(
    servers: Servers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    given = secrets.token_urlsafe(24)
    undeclared = secrets.token_urlsafe(24)
    monkeypatch.setenv("OPSCONSOLE_SECRET_OPS_KEY", given)
    monkeypatch.setenv("OPSCONSOLE_SECRET_UNDECLARED", undeclared)
    path = write_runbook(
        tmp_path,
        f"""\
```ops command
id: child
run: {json.dumps(CHILD)}
env:
  GIVEN_KEY: "{{{{ secrets.ops_key }}}}"
mutating: false
```
""",
        front="secrets: [ops_key]",
    )
    environment = Environment(name="test", secrets=["ops_key"])
    _, results = await walk(path, environment, tmp_path / "home")
    result = results["child"]
    assert result.status is StepStatus.PASSED, result.detail
    names, digest, argv, processes = output_of(result).strip().splitlines()
    assert "GIVEN_KEY" in names.split()
    assert not [n for n in names.split() if n.startswith("OPSCONSOLE_")], names
    assert undeclared not in output_of(result)
    assert digest == "sha256 " + hashlib.sha256(given.encode()).hexdigest()
    assert argv == "argv: clean"
    assert processes.endswith(": 0")


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path = REPO) -> Any:
    """``python -m opsconsole.cli ARGS`` as a real process (the CLI is what is tested)."""
    return subprocess.run(
        [sys.executable, "-m", "opsconsole.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        timeout=120,
        check=False,
    )


def test_lint_refuses_a_secret_in_run_and_points_to_env(tmp_path: Path) -> None:
    path = write_runbook(
        tmp_path,
        """\
```ops command
id: leaky
run: 'curl -H "X-Ops-Key: {{ secrets.ops_key }}" http://127.0.0.1:9/'
```
""",
        front="secrets: [ops_key]",
    )
    done = run_cli("lint", str(path))
    assert done.returncode == 1, done.stdout + done.stderr
    message = done.stdout + done.stderr
    assert f"{path}:" in message
    assert "{{ secrets.ops_key }} in run:" in message and "pass it with env:" in message


# -- item 3: secrets are an allowlist per environment -----------------------------------------


def test_check_refuses_a_secret_the_environment_does_not_list(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        '[environments.staging]\nsecrets = ["ops_key"]\n'
        '[environments.staging.variables]\nbase_url = "http://127.0.0.1:9"\n'
    )
    path = write_runbook(
        tmp_path,
        """\
```ops http
id: peek
url: "{{ base_url }}/health"
headers:
  X-Db: "{{ secrets.db_password }}"
```
""",
        front="variables: [base_url]\nsecrets: [db_password]",
    )
    done = run_cli(
        "--config",
        str(config),
        "check",
        str(path),
        "--env",
        "staging",
        env={"OPSCONSOLE_SECRET_DB_PASSWORD": secrets.token_urlsafe(24)},
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "'db_password'" in done.stderr and "'staging'" in done.stderr
    assert "Traceback" not in done.stderr


async def test_a_secret_is_never_sent_to_a_host_outside_its_environment(
    servers: Servers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = secrets.token_urlsafe(24)
    monkeypatch.setenv("OPSCONSOLE_SECRET_OPS_KEY", key)
    # the environment's service names another host; a runbook follows it with the key
    path = write_runbook(
        tmp_path,
        """\
```ops http
id: discover
url: "{{ base_url }}/elsewhere"
capture:
  next: next
```

```ops http
id: send-key-elsewhere
url: "{{ next | raw }}/collect"
headers:
  X-Ops-Key: "{{ secrets.ops_key }}"
```

```ops http
id: send-key-home
url: "{{ base_url }}/collect"
headers:
  X-Ops-Key: "{{ secrets.ops_key }}"
```
""",
        front="variables: [base_url]\nsecrets: [ops_key]",
    )
    environment = Environment(
        name="test", secrets=["ops_key"], variables={"base_url": servers.base_url}
    )
    before = len(servers.other_seen.targets)
    _, results = await walk(path, environment, tmp_path / "home")
    refused = results["send-key-elsewhere"]
    assert refused.status is StepStatus.FAILED
    assert "refused to send secret 'ops_key' to 127.0.0.1:" in refused.detail
    assert servers.other_seen.targets[before:] == [], "the other host was contacted"
    assert key not in servers.other_seen.keys
    # the environment's own host still gets it
    assert results["send-key-home"].status is StepStatus.PASSED
    assert key in servers.seen.keys


async def test_a_capture_cannot_take_over_the_environments_base_url(
    servers: Servers, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = secrets.token_urlsafe(24)
    monkeypatch.setenv("OPSCONSOLE_SECRET_OPS_KEY", key)
    path = write_runbook(
        tmp_path,
        """\
```ops http
id: discover
url: "{{ base_url }}/elsewhere"
capture:
  base_url: next
```

```ops http
id: send-key
url: "{{ base_url }}/collect"
headers:
  X-Ops-Key: "{{ secrets.ops_key }}"
```
""",
        front="variables: [base_url]\nsecrets: [ops_key]",
    )
    environment = Environment(
        name="test", secrets=["ops_key"], variables={"base_url": servers.base_url}
    )
    before = len(servers.other_seen.targets)
    _, results = await walk(path, environment, tmp_path / "home")
    # a captured base_url is data: escaped into the URL, so the request cannot be sent
    refused = results["send-key"]
    assert refused.status is StepStatus.FAILED
    assert "a value captured or entered during the run is never taken as a URL" in refused.detail
    assert servers.other_seen.targets[before:] == [], "the captured host was contacted"
    assert key not in servers.other_seen.keys


# -- items 6-8, 10: a hostile server behind an ops http step -----------------------------------


def hostile_environment(server: HostileServer) -> Environment:
    return Environment(name="test", variables={"base_url": server.url("")})


async def test_a_trickling_server_fails_the_step_at_its_total_deadline(
    hostile_server: HostileServer, tmp_path: Path
) -> None:
    path = write_runbook(
        tmp_path,
        """\
```ops http
id: trickle
url: "{{ base_url }}/trickle"
timeout: 1s
```
""",
    )
    _, results = await walk(path, hostile_environment(hostile_server), tmp_path / "home")
    assert results["trickle"].status is StepStatus.FAILED
    assert "did not finish within 1s (total deadline)" in results["trickle"].detail


@pytest.mark.parametrize("route", ["/huge", "/gzip-bomb"])
async def test_a_huge_response_is_cut_with_a_notice_and_saved_state_stays_small(
    hostile_server: HostileServer, tmp_path: Path, route: str
) -> None:
    path = write_runbook(
        tmp_path,
        f"""\
```ops http
id: big
url: "{{{{ base_url }}}}{route}"
timeout: 30s
```
""",
    )
    home = tmp_path / "home"
    session, results = await walk(path, hostile_environment(hostile_server), home)
    response = results["big"].artifact("response")
    assert response is not None, results["big"].detail
    assert response.truncated
    assert response.notice and "MiB" in response.notice
    saved = home / "runs" / f"{session.run.id}.json"
    assert saved.stat().st_size < 1024 * 1024


async def test_a_mutating_post_that_times_out_is_unknown_sent_once_and_not_rerun_on_resume(
    hostile_server: HostileServer, tmp_path: Path
) -> None:
    path = write_runbook(
        tmp_path,
        """\
```ops http
id: create
method: POST
url: "{{ base_url }}/slow-post"
json: {type: sync}
timeout: 1s
```
""",
    )
    environment = hostile_environment(hostile_server)
    home = tmp_path / "home"
    session, results = await walk(path, environment, home)
    create = results["create"]
    assert create.status is StepStatus.UNKNOWN, create.detail
    assert "may have been acted on" in create.detail
    assert hostile_server.count("POST", "/slow-post") == 1

    # the operator comes back: the run is offered, the step is not re-sent by itself
    runbook = load_runbook(path)
    saved = RunStore(home).load(session.run.id)
    assert saved.results["create"].status is StepStatus.UNKNOWN
    resumed = open_session(runbook, environment, home, resume=saved)
    await resumed.start()
    with pytest.raises(StepRefused, match="outcome is unknown"):
        await resumed.execute("create")
    assert hostile_server.count("POST", "/slow-post") == 1
    # only when the operator says so
    again = await resumed.execute("create", rerun_unknown=True)
    await resumed.close()
    assert again.status is StepStatus.UNKNOWN
    assert hostile_server.count("POST", "/slow-post") == 2


def test_hostile_json_fails_its_step_and_check_goes_on(
    hostile_server: HostileServer, tmp_path: Path
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[environments.test.variables]\nbase_url = "{hostile_server.url("")}"\n'
    )
    path = write_runbook(
        tmp_path,
        """\
```ops http
id: deep
url: "{{ base_url }}/deep-json"
capture:
  first: "[0]"
```

```ops http
id: surrogate
url: "{{ base_url }}/surrogate-json"
expect:
  json:
    - path: id
      exists: true
```

```ops http
id: after
url: "{{ base_url }}/json"
expect:
  json:
    - path: status
      equals: ok
```
""",
    )
    done = run_cli(
        "--config", str(config), "check", str(path), "--env", "test", "--json",
        env={"OPSCONSOLE_HOME": str(tmp_path / "home")},
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    report = json.loads(done.stdout)
    steps = {step["id"]: step for step in report["steps"]}
    assert steps["deep"]["status"] == "failed"
    assert "nested more than" in steps["deep"]["detail"]
    assert steps["surrogate"]["status"] == "failed"
    assert "lone surrogate" in steps["surrogate"]["detail"]
    assert steps["after"]["status"] == "passed"


async def test_a_job_whose_read_back_is_hostile_json_is_unknown_with_the_reason(
    hostile_server: HostileServer, tmp_path: Path
) -> None:
    path = write_runbook(
        tmp_path,
        """\
```ops trigger
id: job
url: "{{ base_url }}/json"
follow:
  url: "{{ base_url }}/deep-json"
  interval: 50ms
```
""",
    )
    _, results = await walk(path, hostile_environment(hostile_server), tmp_path / "home")
    job = results["job"]
    # the job was created and may still finish: unknown, and why it could not be followed
    assert job.status is StepStatus.UNKNOWN, job.detail
    assert "lost track of the job: read-back is not JSON" in job.detail
    assert "nested more than 100 levels deep" in job.detail


# -- what a server sends never breaks a report ---------------------------------------------


def test_control_characters_from_a_server_leave_every_report_readable(
    servers: Servers, tmp_path: Path
) -> None:
    from xml.etree import ElementTree

    config = tmp_path / "config.toml"
    config.write_text(f'[environments.test.variables]\nbase_url = "{servers.base_url}"\n')
    path = write_runbook(
        tmp_path,
        """\
```ops http
id: control
url: "{{ base_url }}/control"
expect:
  json:
    - path: status
      equals: ok
```
""",
    )
    junit = tmp_path / "report.xml"
    args = ["--config", str(config), "check", str(path), "--env", "test"]
    done = run_cli(*args, "--junit", str(junit))
    assert done.returncode == 1, done.stdout + done.stderr
    for output in (done.stdout, done.stderr):
        assert "\x1b" not in output and "\x07" not in output
    assert "bad\\x00\\x1b]0;pwned" in done.stdout  # shown, escaped
    # CI must be able to read the report: XML 1.0 has no place for most control characters
    suite = ElementTree.parse(junit).getroot()
    failure = suite.find("testcase/failure")
    assert failure is not None and failure.text is not None
    assert "got bad\\x00\\x1b]0;pwned\\x07\\x1b[2J" in failure.text


# -- evidence -------------------------------------------------------------------------


async def test_control_characters_from_a_server_never_reach_the_evidence_raw(
    servers: Servers, tmp_path: Path
) -> None:
    from opsconsole.evidence import export_evidence

    path = write_runbook(
        tmp_path,
        """\
```ops http
id: control
url: "{{ base_url }}/control"
expect:
  json:
    - path: status
      equals: ok
```
""",
    )
    environment = Environment(name="test", variables={"base_url": servers.base_url})
    session, results = await walk(path, environment, tmp_path / "home")
    assert results["control"].status is StepStatus.FAILED
    text = export_evidence(session, tmp_path / "evidence").read_text()
    assert "pwned" in text
    assert "\x1b" not in text and "\x07" not in text and "\x00" not in text


async def test_the_evidence_says_why_a_body_was_cut(
    hostile_server: HostileServer, tmp_path: Path
) -> None:
    from opsconsole.evidence import export_evidence

    path = write_runbook(
        tmp_path,
        """\
```ops http
id: big
url: "{{ base_url }}/huge"
timeout: 30s
```
""",
    )
    session, results = await walk(path, hostile_environment(hostile_server), tmp_path / "home")
    notice = results["big"].artifact("response").notice
    assert notice
    assert notice in export_evidence(session, tmp_path / "evidence").read_text()

