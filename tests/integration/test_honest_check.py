"""check never makes a runbook look verified when nothing was verified."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from xml.etree import ElementTree

from tests.conftest import REPO


def opsconsole(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "opsconsole.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=os.environ.copy(),
        timeout=120,
    )


CHECKLIST_ONLY = """\
# Priority 2: Sync UX Improvements

### Acceptance Criteria
- [ ] After OAuth connect, page shows "Syncing your collection..."
- [ ] Spinner animates during sync
- [ ] Page auto-refreshes when sync completes
"""


def test_simulated_answers_are_answered_never_passed(tmp_path: Path) -> None:
    # a runbook of checklist items only (the Discogs collection runbook was one; it now
    # has automated steps)
    checklist = tmp_path / "checklist-only.md"
    checklist.write_text(CHECKLIST_ONLY, encoding="utf-8")
    junit = tmp_path / "report.xml"
    done = opsconsole(
        "check", str(checklist), "--sandbox", "--json",
        "--junit", str(junit),
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    human = [step for step in report["steps"] if step["human"]]
    assert len(human) == 3, "the checklist items are human steps"
    assert {step["status"] for step in human} == {"answered"}
    assert not [step for step in human if step["status"] == "passed"]
    assert all(step["answered_by"] == "simulated operator" for step in human)
    assert report["summary"]["answered"] == len(human)
    assert report["rehearsal"] is True
    assert report["automated_steps_run"] == 0
    assert report["verdict"].startswith("Nothing automated ran")

    # JUnit: a passing case whose output says it was simulated
    suite = ElementTree.parse(junit).getroot()
    answered = [
        case for case in suite.iter("testcase")
        if case.find("system-out") is not None
        and "simulated operator" in (case.find("system-out").text or "")
    ]
    assert len(answered) == len(human)
    assert all(case.find("failure") is None for case in answered)

    # the text summary names them for what they are
    text = opsconsole("check", str(checklist), "--sandbox")
    assert f"0 passed, {len(human)} answered by the simulated operator" in text.stdout
    assert "Nothing automated ran: no step was verified." in text.stdout


def test_require_automated_fails_a_check_that_verified_nothing(tmp_path: Path) -> None:
    runbook = tmp_path / "checklist.md"
    runbook.write_text(
        textwrap.dedent("""\
            # Checklist only
            - [ ] The dashboard is green
            - [ ] The on-call channel knows
        """),
        encoding="utf-8",
    )
    done = opsconsole("check", str(runbook), "--json")
    assert done.returncode == 0
    assert json.loads(done.stdout)["automated_steps_run"] == 0
    done = opsconsole("check", str(runbook), "--require-automated")
    assert done.returncode == 1
    assert "(exit 1: --require-automated)" in done.stdout


def test_yes_confirms_only_in_an_unprotected_environment(tmp_path: Path) -> None:
    runbook = tmp_path / "confirm.md"
    runbook.write_text("# C\n\n```ops confirm\nid: sure\nprompt: Go ahead?\n```\n")
    config = tmp_path / "config.toml"
    config.write_text(
        "[environments.stage]\n[environments.prod]\nprotected = true\n", encoding="utf-8"
    )
    done = opsconsole("--config", str(config), "check", str(runbook), "--env", "stage",
                      "--yes", "--json")
    assert done.returncode == 0
    step = json.loads(done.stdout)["steps"][0]
    assert (step["status"], step["detail"]) == ("passed", "confirmed on the command line")

    done = opsconsole("--config", str(config), "check", str(runbook), "--env", "prod", "--yes")
    assert done.returncode == 2
    assert "--yes is refused in the protected environment 'prod'" in done.stderr
