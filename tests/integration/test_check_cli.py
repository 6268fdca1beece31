"""`opsconsole check/lint/show/audit` as CI runs them: real processes, real sandbox."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import REPO, V2_LIVE_STEPS, V2_RUNBOOK

#: fault -> the failing steps in run order, each with the reason it must give
FAULT_FAILS = {
    "runner-down": [
        ("runner-without-token", "connection refused: nothing is listening"),
        ("runner-wrong-token", "connection refused: nothing is listening"),
        ("runner-allowlist", "connection refused: nothing is listening"),
        ("trigger-runner", "Runner unreachable"),
    ],
    "runner-rejects-token": [
        ("runner-allowlist", "got 401 Unauthorized"),
        ("trigger-runner", "Runner rejected the request (401"),
    ],
    "job-fails": [
        ("trigger-runner", "job failed: nearsight_collect_refresh failed: upstream returned 503")
    ],
    "debug-leaks-token": [("debug-env-leaks-nothing", "body CONTAINS secret runner_token")],
}


def opsconsole(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "opsconsole.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
    )


def test_check_sandbox_json_passes_the_v2_runbook() -> None:
    done = opsconsole("check", str(V2_RUNBOOK), "--sandbox", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    statuses = {step["id"]: step["status"] for step in report["steps"]}
    assert sum(status == "passed" for status in statuses.values()) >= 8
    assert report["summary"]["failed"] == 0
    for step_id in (
        "cp-missing-database-url",
        "ops-jobs-without-key",
        "runner-allowlist",
        "create-job",
        "trigger-runner",
        "debug-env-leaks-nothing",
    ):
        assert statuses[step_id] == "passed", step_id
    # a rehearsal is not a verification: every human step is "answered", none "passed"
    human = [step for step in report["steps"] if step["human"]]
    assert human and {step["status"] for step in human} == {"answered"}
    assert statuses["jobs-gate"] == "answered"
    assert report["rehearsal"] is True
    assert report["summary"]["answered"] == len(human)
    trigger = next(step for step in report["steps"] if step["id"] == "trigger-runner")
    (states,) = [a["states"] for a in trigger["artifacts"] if a["type"] == "states"]
    assert states[-1] == "succeeded"
    # plain shell blocks are never run unattended
    assert statuses["database-migrations-2"] == "skipped"
    assert (
        "never unattended"
        in next(s for s in report["steps"] if s["id"] == "database-migrations-2")["detail"]
    )
    assert report["steps"][0].keys() >= {"id", "title", "kind", "status", "detail"}


def fenced_steps(path: Path) -> dict[str, str]:
    """Each ``ops`` block of a runbook, fences included, by its step id."""
    steps = {}
    for block in re.findall(r"^```ops [a-z]+\n.*?^```$", path.read_text(), re.M | re.S):
        named = re.search(r"^id: (\S+)$", block, re.MULTILINE)
        assert named is not None, f"{path.name}: a step without an id:\n{block}"
        steps[named[1]] = block
    return steps


def test_the_live_steps_runbook_is_a_byte_identical_slice_of_v2() -> None:
    """The fault matrix walks a slice of the V2 runbook; it must be the V2 runbook's steps.

    Every block is byte-identical to the bundled one, and every step that talks to a
    service (http, trigger) is in it, so "nothing else fails" still covers them all.
    """
    bundled, live = fenced_steps(V2_RUNBOOK), fenced_steps(V2_LIVE_STEPS)
    for step_id, block in live.items():
        assert block == bundled.get(step_id), f"{step_id} differs from {V2_RUNBOOK.name}"
    talks_to_a_service = {
        step_id
        for step_id, block in bundled.items()
        if block.startswith(("```ops http", "```ops trigger"))
    }
    missing = sorted(talks_to_a_service - live.keys())
    assert not missing, f"steps of {V2_RUNBOOK.name} missing from {V2_LIVE_STEPS.name}: {missing}"
    assert [s for s in bundled if s in live] == list(live), "the order differs"
    assert {step_id for fails in FAULT_FAILS.values() for step_id, _ in fails} <= live.keys()


@pytest.mark.parametrize("fault", sorted(FAULT_FAILS))
def test_each_fault_fails_the_right_step_with_the_reason(fault: str, tmp_path: Path) -> None:
    junit = tmp_path / "report.xml"
    done = opsconsole(
        "check", str(V2_LIVE_STEPS), "--sandbox", "--fault", fault, "--json", "--junit", str(junit)
    )
    assert done.returncode == 1, done.stdout + done.stderr
    report = json.loads(done.stdout)
    failed = {step["id"]: step["detail"] for step in report["steps"] if step["status"] == "failed"}
    expected = FAULT_FAILS[fault]
    assert next(iter(failed)) == expected[0][0], failed
    for step_id, reason in expected:
        assert reason in failed[step_id], (step_id, failed)
    # the gate closing the phase says no-go; nothing else fails
    assert set(failed) - {step_id for step_id, _ in expected} <= {"jobs-gate", "release-gate"}
    xml = junit.read_text()
    assert f'name="{expected[0][0]}: ' in xml and "<failure" in xml


def test_check_text_output_and_secrets_never_printed() -> None:
    done = opsconsole("check", str(V2_LIVE_STEPS), "--sandbox", "--fault", "debug-leaks-token")
    assert done.returncode == 1
    assert "✗ debug-env-leaks-nothing" in done.stdout
    assert "body CONTAINS secret runner_token" in done.stdout
    # the leaked value is in the response body; it must be masked everywhere we print it
    home = Path(os.environ["OPSCONSOLE_HOME"]) / "sandbox"
    run_files = list((home / "runs").glob("*.json"))
    assert run_files
    saved = run_files[0].read_text()
    assert '"runner_token": "***"' in saved


BROKEN = {
    "bad-yaml.md": ("# T\n\n```ops http\nurl: [\n```\n", 4, "invalid YAML"),
    "unknown-kind.md": (
        "# T\n\n```ops teleport\nto: mars\n```\n",
        3,
        "unknown step kind 'teleport'",
    ),
    "unknown-variable.md": (
        '# T\n\n```ops http\nurl: "{{ base }}/x"\n```\n',
        4,
        "unknown variable 'base'",
    ),
    "bad-front-matter.md": ("---\ntitle: [\n---\n# T\n", 2, "front matter: invalid YAML"),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
@pytest.mark.parametrize("verb", ["lint", "check", "show"])
def test_broken_runbook_is_path_line_message_never_a_traceback(
    verb: str, name: str, tmp_path: Path
) -> None:
    text, line, message = BROKEN[name]
    path = tmp_path / name
    path.write_text(text)
    done = opsconsole(verb, str(path))
    output = done.stdout + done.stderr
    assert done.returncode == (1 if verb == "lint" else 2), output
    assert f"{path}:{line}: " in output and message in output, output
    assert "Traceback" not in output


def test_lint_clean_folder_exits_zero() -> None:
    done = opsconsole("lint", str(REPO / "runbooks"))
    assert (done.returncode, done.stdout) == (0, "")


def test_show_json_outline() -> None:
    done = opsconsole("show", str(V2_RUNBOOK), "--json")
    assert done.returncode == 0
    outline = json.loads(done.stdout)
    assert outline["id"] == "v2-control-plane"
    assert {"sections", "steps"} <= outline.keys()
    create = next(step for step in outline["steps"] if step["id"] == "create-job")
    assert {k: v for k, v in create.items() if k != "spec"} == {
        "id": "create-job",
        "kind": "http",
        "title": "Create a job (POST /api/v1/ops/jobs)",
        "line": create["line"],
        "section": "Happy path",
        "mutating": True,
        "human": False,
    }
    assert create["spec"]["method"] == "POST" and create["spec"]["url"].endswith("/ops/jobs")
    assert V2_RUNBOOK.read_text().splitlines()[create["line"] - 1] == "```ops http"
    commands = [s for s in outline["steps"] if s["kind"] == "command"]
    assert any("bootstrap_schema.py" in command["spec"]["run"] for command in commands)


def test_usage_errors_exit_2() -> None:
    assert opsconsole("check").returncode == 2
    assert opsconsole("check", str(V2_RUNBOOK), "--fault", "job-fails").returncode == 2
    done = opsconsole("check", str(V2_RUNBOOK), "--sandbox", "--fault", "no-such-fault")
    assert done.returncode == 2 and "runner-down" in done.stderr


def test_check_without_sandbox_reports_human_steps_skipped(tmp_path: Path) -> None:
    runbook = tmp_path / "human.md"
    runbook.write_text(
        textwrap.dedent("""\
        # Human only
        - [ ] Look at the dashboard

        ```bash
        rm -rf /tmp/should-never-run
        ```
    """)
    )
    done = opsconsole("check", str(runbook), "--json")
    report = json.loads(done.stdout)
    assert done.returncode == 0
    assert [step["status"] for step in report["steps"]] == ["skipped", "skipped"]
    assert "needs a human" in report["steps"][0]["detail"]


def test_audit_verify_after_a_run_and_after_tampering() -> None:
    home = Path(os.environ["OPSCONSOLE_HOME"])
    assert opsconsole("check", str(V2_LIVE_STEPS), "--sandbox").returncode == 0
    log = home / "sandbox" / "audit.jsonl"
    done = opsconsole("audit", "verify", "--log", str(log))
    assert done.returncode == 0 and "chain intact" in done.stdout
    lines = log.read_text().splitlines()
    assert any('"event": "step.intent"' in line for line in lines)
    assert any('"event": "step.outcome"' in line for line in lines)
    middle = len(lines) // 2
    lines[middle] = lines[middle].replace('"event": "', '"event": "x', 1)
    log.write_text("\n".join(lines) + "\n")
    done = opsconsole("audit", "verify", "--log", str(log))
    assert done.returncode == 1
    assert done.stdout.startswith(f"{log}:{middle + 1}: hash mismatch")


def test_headless_gate_stops_before_acting_on_failed_preconditions(tmp_path: Path) -> None:
    marker = tmp_path / "acted"
    runbook = tmp_path / "gated.md"
    runbook.write_text(
        textwrap.dedent(f"""\
        # Gated
        ## Preconditions

        ```ops http
        id: health
        url: http://127.0.0.1:9/health
        timeout: 2s
        ```

        ```ops gate
        id: pre-gate
        ```

        ## Act

        ```ops command
        id: act
        run: touch {marker}
        ```
    """)
    )
    done = opsconsole("check", str(runbook), "--json")
    report = json.loads(done.stdout)
    assert done.returncode == 1
    statuses = {step["id"]: (step["status"], step["detail"]) for step in report["steps"]}
    assert statuses["health"][0] == "failed"
    assert statuses["pre-gate"] == (
        "failed",
        "NO-GO: headless check stops here: not passed: health",
    )
    assert statuses["act"][0] == "skipped" and "no-go gate 'pre-gate'" in statuses["act"][1]
    assert not marker.exists()
