# ruff: noqa: F811  (workdir is the shared fixture imported from test_screens)
"""Snapshots of the shell session's screens at 80x24 and 120x40, from fixed data: the
placeholder prompt before a plain block runs, and the session variables pane."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from textual.pilot import Pilot

from opsconsole.artifacts import CommandArtifact, OutputArtifact
from opsconsole.loader import load_runbook
from opsconsole.run import Run, RunStore, StepResult, StepStatus
from screens import OpsConsoleApp
from tests.snapshots.test_screens import (  # noqa: F401  (workdir is a fixture)
    SIZES,
    STARTED,
    at,
    keys_then_settle,
    open_walkthrough,
    settings_for,
    steady_cursors,
    workdir,
)
from tests.ui.pilot_support import settle

RUN_ID = "20250314T031209Z-d4e5f6"

RUNBOOK = """\
    # Deploy a release

    Set the release and the broker token once; the next blocks use them.

    ```bash
    export RELEASE=v7
    export API_TOKEN="<API_TOKEN>"
    ```

    ```bash
    kubectl -n <namespace> set image deploy/web web=registry.local/web:$RELEASE
    ```
"""


def plain_run(workdir: Path, *, first_ran: bool = True, text: str = RUNBOOK) -> Path:
    folder = workdir / "plain"
    folder.mkdir()
    path = folder / "deploy.md"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    runbook = load_runbook(path)
    first = runbook.steps[0]
    run = Run(
        id=RUN_ID,
        runbook_path=str(Path("plain") / "deploy.md"),
        runbook_id=runbook.id,
        runbook_title=runbook.title,
        runbook_digest=runbook.digest,
        environment="staging",
        started_at=STARTED,
        updated_at=STARTED,
        cursor=runbook.steps[1].id,
        results={} if not first_ran else {
            first.id: StepResult(
                step_id=first.id,
                status=StepStatus.PASSED,
                detail="exit 0 in 0.0s",
                started_at=at(12),
                finished_at=at(12),
                duration_ms=12.0,
                attempts=1,
                artifacts=[
                    CommandArtifact(
                        command='export RELEASE=v7\nexport API_TOKEN="***"',
                        where="this machine (the run's shell session)",
                        cwd="~",
                    ),
                    OutputArtifact(text="", exit_code=0),
                ],
            )
        },
    )
    RunStore(workdir / "state").save(run)
    return path


@pytest.mark.parametrize("size", SIZES)
def test_placeholder_prompt(snap_compare, workdir: Path, size: tuple[int, int]) -> None:
    """enter on a plain block with a placeholder not given yet: its value is asked first."""
    plain_run(workdir, first_ran=False)
    app = OpsConsoleApp(settings_for(workdir, runbook_paths=[Path("plain")]))
    assert snap_compare(app, terminal_size=size,
                        run_before=keys_then_settle("enter", resume=RUN_ID))


@pytest.mark.parametrize("size", SIZES)
def test_shell_fallback_prompt(snap_compare, workdir: Path, size: tuple[int, int]) -> None:
    """The runbook asks for a shell the session cannot run (fish): before the block runs,
    the console says so and asks whether to use bash instead."""
    plain_run(workdir, first_ran=False, text="---\nshell: fish\n---\n" + textwrap.dedent(RUNBOOK))
    app = OpsConsoleApp(settings_for(workdir, runbook_paths=[Path("plain")]))
    assert snap_compare(app, terminal_size=size,
                        run_before=keys_then_settle("enter", resume=RUN_ID))


@pytest.mark.parametrize("size", SIZES)
def test_session_gone_prompt(snap_compare, workdir: Path, size: tuple[int, int]) -> None:
    """A resumed run: the block that set RELEASE and API_TOKEN ran in a shell that is gone;
    enter on the next block says so and offers to re-run it first."""
    plain_run(workdir)
    app = OpsConsoleApp(settings_for(workdir, runbook_paths=[Path("plain")]))
    assert snap_compare(app, terminal_size=size,
                        run_before=keys_then_settle("enter", resume=RUN_ID))


@pytest.mark.parametrize("size", SIZES)
def test_session_variables_pane(snap_compare, workdir: Path, size: tuple[int, int]) -> None:
    """The session pane after the first block: its folder, the variables the block set
    (the token as ***) and the placeholder values given in this run."""
    plain_run(workdir)
    app = OpsConsoleApp(settings_for(workdir, runbook_paths=[Path("plain")]))

    async def run_before(pilot: Pilot[object]) -> None:
        from screens.shell_pane import run_shell
        from screens.walkthrough import WalkthroughScreen

        await settle(pilot)
        await open_walkthrough(pilot, RUN_ID)
        screen = pilot.app.screen
        assert isinstance(screen, WalkthroughScreen)
        # the state a real session has after the first block (fixed: no process, no clock)
        shell = run_shell(screen.session)
        shell.generation = 1
        shell.cwd = str(workdir / "deploy")
        shell.variables = {"API_TOKEN": "snapshot-token-0000", "RELEASE": "v7"}
        shell.remember("API_TOKEN", "snapshot-token-0000", secret=True)
        shell.remember("namespace", "payments", secret=False)
        await pilot.press("home")
        await settle(pilot)
        screen._show_shell()
        await steady_cursors(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)
