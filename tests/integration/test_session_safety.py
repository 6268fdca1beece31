"""Safety rules of a run, against the real sandbox: fail closed, protected envs, resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from opsconsole.audit import AuditLog, verify
from opsconsole.config import load_config
from opsconsole.evidence import export_evidence
from opsconsole.loader import load_runbook
from opsconsole.run import RunStatus, RunStore, StepStatus
from opsconsole.sandbox import Sandbox
from opsconsole.session import Answer, RunSession, StepRefused, open_session
from tests.conftest import REPO, V2_LIVE_STEPS, V2_RUNBOOK


def jobs(sandbox: Sandbox) -> list[dict]:
    response = httpx.get(
        f"{sandbox.variables['base_url']}/api/v1/ops/jobs",
        headers={"X-Ops-Key": sandbox.secret_values["ops_key"]},
    )
    return response.json()["jobs"]


async def test_mutating_step_is_refused_when_the_audit_log_cannot_be_written(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    runbook = load_runbook(V2_RUNBOOK)
    environment = load_config(sandbox.config_path).environment("sandbox")
    blocker = tmp_path / "audit-here"
    blocker.write_text("a file where the audit folder should be")
    from opsconsole.secrets import Redactor

    redactor = Redactor()
    session = RunSession(
        runbook,
        environment,
        store=RunStore(tmp_path),
        audit=AuditLog(blocker / "audit.jsonl", redactor),
        redactor=redactor,
    )
    await session.start()
    before = len(jobs(sandbox))
    result = await session.execute("create-job")
    assert result.status is StepStatus.FAILED
    assert result.detail.startswith("refused: audit log")
    assert len(jobs(sandbox)) == before, "the job must not be created without an audit intent"
    # read-only steps still run: observing is not acting
    assert (await session.execute("ops-jobs-without-key")).status is StepStatus.PASSED
    await session.close()


async def test_protected_environment_needs_typed_confirmation(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    runbook = load_runbook(V2_RUNBOOK)
    environment = load_config(sandbox.config_path).environment("sandbox-prod")
    assert environment.protected
    session = open_session(runbook, environment, tmp_path)
    await session.start()
    before = len(jobs(sandbox))
    with pytest.raises(StepRefused, match="sandbox-prod is a protected environment"):
        await session.execute("create-job")
    with pytest.raises(StepRefused, match="not confirmed"):
        await session.execute("create-job", confirmed="sandbox")
    assert len(jobs(sandbox)) == before
    # read-only steps need no confirmation
    assert (await session.execute("ops-jobs-without-key")).status is StepStatus.PASSED
    result = await session.execute("create-job", confirmed="sandbox-prod")
    assert result.status is StepStatus.PASSED
    assert len(jobs(sandbox)) == before + 1
    await session.close()
    records = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    intent = next(r for r in records if r["event"] == "step.intent")
    assert intent["protected"] is True and intent["step"] == "create-job"


async def test_gate_refuses_go_with_failed_steps_and_no_go_stops_the_run(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    sandbox.set_fault("runner-rejects-token", True)
    try:
        runbook = load_runbook(V2_RUNBOOK)
        environment = load_config(sandbox.config_path).environment("sandbox")
        session = open_session(runbook, environment, tmp_path)
        await session.start()
        for step in runbook.phase_of("jobs-gate"):
            if step.needs_human:
                await session.execute(step.id, Answer(yes=True))
            else:
                await session.execute(step.id)
        with pytest.raises(StepRefused, match="cannot go: 2 step"):
            await session.execute("jobs-gate", Answer(yes=True))
        await session.execute(
            "jobs-gate", Answer(yes=False, note="runner token rotated; paging owner")
        )
        assert session.run.status is RunStatus.ABORTED
        with pytest.raises(StepRefused, match="run is finished"):
            await session.execute("debug-env-leaks-nothing")
        report = export_evidence(session, tmp_path / "evidence").read_text()
        await session.close()
    finally:
        sandbox.set_fault("runner-rejects-token", False)
    assert "NO-GO: runner token rotated; paging owner" in report
    assert "| Go / no-go: auth, runner and job lifecycle | gate | FAIL |" in report
    assert (
        "| Trigger the runner and follow the job to a terminal state | trigger | FAIL |" in report
    )
    for value in sandbox.secret_values.values():
        assert value not in report


CHILD = """
import asyncio, sys
from opsconsole.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_killed_mid_step_resumes_at_that_step_with_results_intact(tmp_path: Path) -> None:
    """SIGKILL while the trigger step follows a long job; the next session sees it as unknown."""
    with Sandbox(job_seconds=60) as sandbox:
        home = tmp_path / "home"
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "OPSCONSOLE_HOME": str(home),
            "OPSCONSOLE_SECRET_OPS_KEY": sandbox.secret_values["ops_key"],
            "OPSCONSOLE_SECRET_RUNNER_TOKEN": sandbox.secret_values["runner_token"],
        }
        child = subprocess.Popen(
            [
                sys.executable,
                "-c",
                CHILD,
                "--config",
                str(sandbox.config_path),
                "check",
                str(V2_LIVE_STEPS),
                "--env",
                "sandbox",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 60
            run_file = None
            while time.monotonic() < deadline:
                files = list((home / "runs").glob("*.json")) if (home / "runs").exists() else []
                if files:
                    run_file = files[0]
                    try:
                        state = json.loads(run_file.read_text())
                    except ValueError:
                        state = {}
                    trigger = state.get("results", {}).get("trigger-runner", {})
                    if trigger.get("status") == "running":
                        break
                assert child.poll() is None, "check ended before reaching the trigger step"
                time.sleep(0.1)
            else:
                pytest.fail("never saw the trigger step running")
            time.sleep(0.5)  # let it poll the job a few times
            child.send_signal(signal.SIGKILL)
            child.wait(10)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()

        store = RunStore(home)
        (unfinished,) = store.unfinished("v2-live-steps", "sandbox")
        runbook = load_runbook(V2_LIVE_STEPS)
        environment = load_config(sandbox.config_path).environment("sandbox")
        session = open_session(runbook, environment, home, resume=unfinished)
        assert session.run.cursor == "trigger-runner"
        assert session.result("trigger-runner").status is StepStatus.UNKNOWN
        assert session.result("create-job").status is StepStatus.PASSED
        assert session.result("runner-allowlist").status is StepStatus.PASSED
        assert session.run.captures["created_job_id"]
        assert verify(home / "audit.jsonl").ok
        intents = [json.loads(line) for line in (home / "audit.jsonl").read_text().splitlines()]
        assert intents[-1]["event"] == "step.intent" and intents[-1]["step"] == "trigger-runner"

        async def rerun() -> None:
            await session.start()
            with pytest.raises(StepRefused, match="outcome is unknown"):
                await session.execute("trigger-runner")
            session.skip(
                "trigger-runner", "job 42 confirmed running on the runner; not re-triggering"
            )
            await session.close()

        import asyncio

        asyncio.run(rerun())
        assert store.load(session.run.id).results["trigger-runner"].status is StepStatus.SKIPPED


async def test_follow_expectations_are_templated(sandbox: Sandbox, tmp_path: Path) -> None:
    runbook_path = tmp_path / "follow.md"
    runbook_path.write_text(
        "---\nvariables: [base_url]\nsecrets: [ops_key, runner_token]\n---\n# Follow\n\n"
        '```ops trigger\nid: t\nurl: "{{ base_url }}/api/v1/ops/trigger_runner"\n'
        'headers: {X-Ops-Key: "{{ secrets.ops_key }}"}\n'
        "json: {job_type: metrics_refresh, payload: {}}\ncapture: {jid: job_id}\n"
        'follow:\n  url: "{{ base_url }}/api/v1/ops/jobs/{{ jid }}"\n'
        '  headers: {X-Ops-Key: "{{ secrets.ops_key }}"}\n  interval: 100ms\n'
        '  expect:\n    json:\n      - path: id\n        equals: "{{ jid }}"\n'
        '    body_not_contains: ["{{ secrets.runner_token }}"]\n```\n'
    )
    runbook = load_runbook(runbook_path)
    environment = load_config(sandbox.config_path).environment("sandbox")
    session = open_session(runbook, environment, tmp_path)
    await session.start()
    result = await session.execute("t")
    await session.close()
    assert result.status is StepStatus.PASSED, result.detail
    details = [a.detail for a in result.assertions]
    assert f"id = {session.run.captures['jid']}" in details
    assert "body does not contain secret runner_token" in details


def test_abandoned_run_is_no_longer_offered_and_is_audited(tmp_path: Path) -> None:
    from opsconsole.session import abandon_run

    runbook = load_runbook(V2_RUNBOOK)
    from opsconsole.config import Environment

    session = open_session(runbook, Environment(name="local"), tmp_path)
    session.skip("cp-missing-database-url", "not today")
    store = RunStore(tmp_path)
    (unfinished,) = store.unfinished("v2-control-plane", "local")
    from opsconsole.errors import RunHeld

    with pytest.raises(RunHeld):  # a console still holds it: never abandoned under it
        abandon_run(unfinished, tmp_path, "operator started a new run")
    assert session.lock is not None
    session.lock.release()
    abandon_run(unfinished, tmp_path, "operator started a new run")
    assert store.unfinished("v2-control-plane", "local") == []
    assert store.load(unfinished.id).status is RunStatus.ABORTED
    records = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert records[-1]["event"] == "run.abandon" and records[-1]["run"] == unfinished.id
    assert verify(tmp_path / "audit.jsonl").ok


FOLLOW_RUNBOOK = """---
variables: [base_url]
secrets: [ops_key]
---
# Follow

```ops trigger
id: t
url: "{{{{ base_url }}}}/api/v1/ops/trigger_runner"
headers: {{X-Ops-Key: "{{{{ secrets.ops_key }}}}"}}
json: {{job_type: metrics_refresh, payload: {{}}}}
capture: {{jid: job_id}}
follow:
  url: "{{{{ base_url }}}}/api/v1/ops/{path}"
  headers: {{X-Ops-Key: "{{{{ secrets.ops_key }}}}"}}
  interval: 100ms
  deadline: {deadline}
```
"""


@pytest.mark.parametrize(
    ("path", "deadline", "job_seconds", "detail"),
    [
        ("jobs/no-such-job", "30s", 0.4, "lost track of the job: read-back returned 404 Not Found"),
        ("jobs/{{ jid }}", "1s", 30, "still running after 1s; stopped following"),
    ],
)
async def test_follow_gives_up_with_the_reason(
    tmp_path: Path, path: str, deadline: str, job_seconds: float, detail: str
) -> None:
    with Sandbox(job_seconds=job_seconds) as sandbox:
        sandbox.install_keyring()
        runbook_path = tmp_path / "follow.md"
        runbook_path.write_text(FOLLOW_RUNBOOK.format(path=path, deadline=deadline))
        runbook = load_runbook(runbook_path)
        environment = load_config(sandbox.config_path).environment("sandbox")
        session = open_session(runbook, environment, tmp_path)
        await session.start()
        result = await session.execute("t")
        await session.close()
    # the job was accepted: losing track of it, or leaving it running, is not "failed"
    assert result.status is StepStatus.UNKNOWN
    assert result.detail.startswith(detail)
    assert "check it before running this again" in result.detail
    assert result.assertions[-1].detail == detail


async def test_no_secret_in_any_file_written_even_when_a_response_leaks_it(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """debug-leaks-token puts the runner token in a response body: nothing we keep has it."""
    from opsconsole.headless import run_check
    from opsconsole.operator import HeadlessOperator

    sandbox.set_fault("debug-leaks-token", True)
    try:
        runbook = load_runbook(V2_LIVE_STEPS)
        environment = load_config(sandbox.config_path).environment("sandbox")
        operator = HeadlessOperator(simulate=True)
        report = await run_check(runbook, environment, tmp_path, operator=operator)
    finally:
        sandbox.set_fault("debug-leaks-token", False)
    leak = next(step for step in report.steps if step["id"] == "debug-env-leaks-nothing")
    assert leak["status"] == "failed"
    session_files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "audit.jsonl" for p in session_files)
    written = "\n".join(p.read_text(encoding="utf-8") for p in session_files)
    written += report.to_json() + report.to_junit() + report.to_text()
    assert "***" in written
    for name, value in sandbox.secret_values.items():
        assert value not in written, f"secret {name} leaked into a file or report"
