"""`opsconsole check --run-commands` as CI runs it: a real process, real bash, one session."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.conftest import REPO

PLAIN = """\
    # Plain runbook

    ```bash
    export RELEASE=v1.2.3
    ```

    ```bash
    {second}
    ```

    ```bash
    echo "deploying $RELEASE"
    test "$RELEASE" = v1.2.3
    ```
"""


def opsconsole(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "opsconsole.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env={
            **os.environ,
            "PYTHONPATH": str(REPO),
            "OPSCONSOLE_HOME": str(home / "state"),
            "XDG_CONFIG_HOME": str(home / "config"),
        },
    )


def plain_runbook(tmp_path: Path, second: str) -> Path:
    path = tmp_path / "plain.md"
    path.write_text(textwrap.dedent(PLAIN.format(second=second)), encoding="utf-8")
    return path


def test_a_variable_from_block_one_reaches_block_three(tmp_path: Path) -> None:
    runbook = plain_runbook(tmp_path, "echo between")
    done = opsconsole("check", str(runbook), "--run-commands", "--json", home=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert [s["status"] for s in report["steps"]] == ["passed"] * 3
    third = report["steps"][2]
    output = next(a for a in third["artifacts"] if a["type"] == "output")
    assert output["text"] == "deploying v1.2.3\n"
    assert report["commands_not_run"] == 0 and report["run_commands"] is True


def test_a_failing_block_stops_the_run_with_exit_1(tmp_path: Path) -> None:
    runbook = plain_runbook(tmp_path, "echo broken >&2; false")
    junit = tmp_path / "report.xml"
    done = opsconsole(
        "check", str(runbook), "--run-commands", "--json", "--junit", str(junit), home=tmp_path
    )
    assert done.returncode == 1, done.stdout + done.stderr
    report = json.loads(done.stdout)
    statuses = [s["status"] for s in report["steps"]]
    assert statuses == ["passed", "failed", "skipped"]
    assert report["steps"][1]["detail"] == "expected exit 0, got exit 1"
    assert "stopped at the failing block" in report["steps"][2]["detail"]
    assert "1 shell command was not run" in report["commands"]
    assert '<failure message="failed: expected exit 0, got exit 1"' in junit.read_text()


def test_keep_going_runs_the_blocks_after_a_failing_one(tmp_path: Path) -> None:
    runbook = plain_runbook(tmp_path, "false")
    done = opsconsole("check", str(runbook), "--run-commands", "--keep-going", home=tmp_path)
    assert done.returncode == 1
    assert "✓ plain-runbook-3" in done.stdout and "1 failed" in done.stdout


def test_without_run_commands_the_summary_says_what_was_not_run(tmp_path: Path) -> None:
    runbook = plain_runbook(tmp_path, "echo between")
    done = opsconsole("check", str(runbook), home=tmp_path)
    assert done.returncode == 0
    assert "3 shell commands were not run: plain shell blocks run only with --run-commands" in (
        done.stdout
    )


def test_a_protected_environment_needs_yes_protected(tmp_path: Path) -> None:
    (tmp_path / "config" / "opsconsole").mkdir(parents=True)
    (tmp_path / "config" / "opsconsole" / "config.toml").write_text(
        "[environments.prod]\nprotected = true\n", encoding="utf-8"
    )
    runbook = plain_runbook(tmp_path, "echo between")
    refused = opsconsole("check", str(runbook), "--env", "prod", "--run-commands", home=tmp_path)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "needs --yes-protected prod" in refused.stderr
    allowed = opsconsole(
        "check", str(runbook), "--env", "prod", "--run-commands", "--yes-protected", "prod",
        home=tmp_path,
    )
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert "3 passed" in allowed.stdout


RUNME = """\
    # Runme attributes

    ```sh {name=build excludeFromRunAll=true}
    echo build
    ```

    ```sh {name=serve background=true}
    sleep 600
    ```

    ```sh {name=login interactive=true}
    read -r answer
    ```

    ```sh {name=verify}
    echo verified
    ```
"""


def test_run_commands_leaves_out_what_runme_marks_as_not_for_run_all(tmp_path: Path) -> None:
    path = tmp_path / "runme.md"
    path.write_text(textwrap.dedent(RUNME), encoding="utf-8")
    done = opsconsole("check", str(path), "--run-commands", "--json", home=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    steps = {s["id"]: s for s in json.loads(done.stdout)["steps"]}
    assert steps["verify"]["status"] == "passed"
    assert "excludeFromRunAll" in steps["build"]["detail"]
    assert "background process" in steps["serve"]["detail"]
    assert "interactive" in steps["login"]["detail"]
    assert {steps[k]["status"] for k in ("build", "serve", "login")} == {"skipped"}
