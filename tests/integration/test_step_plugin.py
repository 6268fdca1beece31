"""A step kind added from a test module, with no other file changed, works everywhere.

tests/plugins/countdown_kind.py is one module: its spec, its title, what it
produces, how it describes itself, and run(ctx) asking a question mid-step. The
loader validates it (file:line errors included), ``check`` runs it and asks its
question through the headless operator, the console walks it with the generic
view, and the evidence renders its artifact.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from opsconsole.cli import main
from opsconsole.steps import register, unregister
from tests.conftest import REPO

RUNBOOK = textwrap.dedent("""\
    ---
    id: plugin-demo
    title: Plugin demo
    variables: [who]
    ---
    # Plugin demo

    ```ops countdown
    id: count
    start: 6
    label: "launch for {{ who }}"
    capture: counted
    ```

    ```ops confirm
    id: after
    prompt: "Counted {{ counted }}?"
    ```
""")


@pytest.fixture
def countdown() -> Iterator[None]:
    module = importlib.import_module("tests.plugins.countdown_kind")
    register(module.CountdownStep)
    yield
    unregister("countdown")


@pytest.fixture
def runbook(tmp_path: Path) -> Path:
    path = tmp_path / "plugin.md"
    path.write_text(RUNBOOK, encoding="utf-8")
    return path


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text('[environments.lab.variables]\nwho = "ops"\n', encoding="utf-8")
    return path


def test_lint_knows_the_kind_and_reports_its_spec_errors(
    countdown: None, runbook: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["lint", str(runbook)]) == 0
    broken = tmp_path / "broken.md"
    broken.write_text("# B\n\n```ops countdown\nstart: 0\nspeed: fast\n```\n", encoding="utf-8")
    assert main(["lint", str(broken)]) == 1
    out = capsys.readouterr().out
    assert f"{broken}:4: ops countdown: start: Input should be greater than 0" in out
    assert f"{broken}:5: ops countdown: unknown field 'speed'" in out


def test_without_the_plugin_the_kind_is_unknown(runbook: Path, capsys) -> None:
    assert main(["lint", str(runbook)]) == 1
    assert "unknown step kind 'countdown'" in capsys.readouterr().out


def test_check_runs_it_and_its_mid_step_question_goes_to_the_headless_operator(
    countdown: None, runbook: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # nobody to answer the halfway question: skipped with the reason, never passed
    code = main(["--config", str(config), "check", str(runbook), "--env", "lab", "--json"])
    report = json.loads(capsys.readouterr().out)
    steps = {step["id"]: step for step in report["steps"]}
    assert steps["count"]["status"] == "skipped"
    assert "needs a human" in steps["count"]["detail"]
    # the next step needs what count would have captured: not run, and says why
    assert steps["after"]["status"] == "skipped"
    assert "needs counted, which step 'count' produces" in steps["after"]["detail"]
    assert code == 0 and report["automated_steps_run"] == 0

    # answered on the command line: it runs, captures, and the next step sees the value
    code = main([
        "--config", str(config), "check", str(runbook), "--env", "lab", "--json",
        "--answer", "count.halfway=on", "--yes",
    ])
    report = json.loads(capsys.readouterr().out)
    steps = {step["id"]: step for step in report["steps"]}
    assert code == 0, report
    assert steps["count"]["status"] == "passed"
    assert steps["count"]["artifacts"] == [
        {"type": "keyvalues", "title": "Countdown",
         "items": [["counted", "6"], ["label", "launch for ops"]]}
    ]
    assert steps["after"]["status"] == "passed"

    code = main([
        "--config", str(config), "check", str(runbook), "--env", "lab", "--json",
        "--answer", "count=stop",
    ])
    report = json.loads(capsys.readouterr().out)
    assert code == 1
    assert report["steps"][0]["detail"] == "stopped by the operator at 3"


def test_a_plugin_named_in_the_environment_is_loaded_by_the_cli(runbook: Path) -> None:
    env = {**os.environ, "OPSCONSOLE_PLUGINS": "tests.plugins.countdown_kind",
           "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "opsconsole.cli", "show", str(runbook), "--json"],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    outline = json.loads(done.stdout)
    assert outline["steps"][0] == {
        "id": "count", "kind": "countdown", "title": "Count down from 6", "line": 8,
        "section": "Plugin demo", "mutating": False, "human": False,
        "spec": {"start": 6, "label": "launch for {{ who }}", "capture": "counted"},
    }


async def test_the_console_walks_it_with_the_generic_view(
    countdown: None, runbook: Path, config: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from textual.widgets import Static

    from opsconsole.config import ConsoleSettings, load_config
    from opsconsole.run import StepStatus
    from screens import OpsConsoleApp
    from screens.dialogs import ChoiceDialog
    from tests.ui.pilot_support import settle

    monkeypatch.chdir(tmp_path)
    settings = ConsoleSettings(
        config=load_config(config), home=tmp_path / "state", runbook_paths=[runbook],
        environment="lab", initial_runbook=runbook,
    )
    app = OpsConsoleApp(settings)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.walkthrough
        assert screen is not None
        detail = screen.query_one("#step-block-0", Static)
        assert "count down from 6 (launch for ops)" in str(detail.render())
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ChoiceDialog)  # the generic dialog for a Choose
        await pilot.press("enter")  # "Go on" is the default and has focus
        await settle(pilot)
        result = screen.session.result("count")
        assert result.status is StepStatus.PASSED, result.detail
        assert screen.session.run.captures["counted"] == "6"
        # the cursor moved on to the confirm step, which now shows the captured value
        assert "Counted 6?" in str(screen.query_one("#step-block-0", Static).render())
        screen.select_step("count")
        await pilot.pause()
        assert "counted  6" in str(screen.query_one("#step-block-0", Static).render())
