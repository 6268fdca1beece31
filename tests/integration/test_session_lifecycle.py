"""A run survives a crash with what it had so far, belongs to one console, and notices a cut log."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from opsconsole.config import Environment
from opsconsole.errors import RunHeld, RunTakenOver, StepRefused
from opsconsole.loader import load_runbook
from opsconsole.run import RunStore, StepStatus
from opsconsole.runlock import RunLock
from opsconsole.session import open_session
from tests.conftest import REPO

SLOW = textwrap.dedent("""\
    ---
    id: slow
    title: Slow output
    ---
    # Slow

    ```ops command
    id: tally
    mutating: {mutating}
    run: "for i in 1 2 3 4 5 6 7 8; do echo tally-line-$i; sleep 0.4; done; sleep 60"
    timeout: 120s
    ```
""")


def wait_for(predicate, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


@pytest.mark.parametrize(("mutating", "after"), [("false", "pending"), ("true", "unknown")])
def test_a_crash_mid_step_keeps_the_checkpointed_output(
    tmp_path: Path, mutating: str, after: str
) -> None:
    runbook = tmp_path / "slow.md"
    runbook.write_text(SLOW.format(mutating=mutating), encoding="utf-8")
    home = tmp_path / "state"
    env = {**os.environ, "OPSCONSOLE_HOME": str(home)}
    check = subprocess.Popen(
        [sys.executable, "-m", "opsconsole.cli", "check", str(runbook)],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        def checkpointed() -> bool:
            journals = list((home / "runs").glob("*.journal"))
            return bool(journals) and b"tally-line-3" in journals[0].read_bytes()

        wait_for(checkpointed, "a checkpoint holding the third line")
    finally:
        check.send_signal(signal.SIGKILL)
        check.wait(timeout=30)

    (run,) = RunStore(home).unfinished()
    on_disk = run.results["tally"]
    assert on_disk.status is StepStatus.RUNNING
    output = next(a for a in on_disk.artifacts if a.type == "output")
    assert output.partial and "tally-line-3" in output.text

    session = open_session(load_runbook(runbook), Environment(name="local"), home, resume=run)
    try:
        result = session.result("tally")
        assert result.status.value == after
        assert "tally-line-3" in result.artifact("output").text  # still there after resume
        assert session.run.cursor == "tally"  # resume lands on the interrupted step
    finally:
        import asyncio

        asyncio.run(session.close())


RUNBOOK = (
    "# Two\n\n```ops confirm\nid: one\nprompt: One?\n```\n\n"
    "```ops confirm\nid: two\nprompt: Two?\n```\n"
)


async def test_one_console_per_run_read_only_and_take_over(tmp_path: Path) -> None:
    from opsconsole.session import Answer

    path = tmp_path / "two.md"
    path.write_text(RUNBOOK, encoding="utf-8")
    runbook = load_runbook(path)
    home = tmp_path / "state"
    first = open_session(runbook, Environment(name="local"), home)
    await first.start()
    await first.execute("one", Answer(yes=True))
    saved = RunStore(home).load(first.run.id)

    with pytest.raises(RunHeld, match="is open in another console") as held:
        open_session(runbook, Environment(name="local"), home, resume=saved)
    assert held.value.holder.alive  # this very process: provably still there

    looking = open_session(runbook, Environment(name="local"), home, resume=saved,
                           read_only=True)
    await looking.start()
    with pytest.raises(StepRefused, match="read-only"):
        await looking.execute("two", Answer(yes=True))
    await looking.close()

    lock = RunLock.take_over(home, first.run.id, "first console hung")
    second = open_session(runbook, Environment(name="local"), home, resume=saved, lock=lock)
    await second.start()
    # the first console notices at its next write and stops writing
    with pytest.raises(RunTakenOver, match="taken over"):
        await first.execute("two", Answer(yes=True))
    assert first.read_only
    await second.execute("two", Answer(yes=True))
    assert RunStore(home).load(second.run.id).results["two"].status is StepStatus.PASSED
    await second.close()
    await first.close()


async def test_resume_notices_an_audit_log_cut_short(tmp_path: Path) -> None:
    from opsconsole.session import Answer

    path = tmp_path / "two.md"
    path.write_text(RUNBOOK, encoding="utf-8")
    runbook = load_runbook(path)
    home = tmp_path / "state"
    session = open_session(runbook, Environment(name="local"), home)
    await session.start()
    await session.execute("one", Answer(yes=True))
    run_id = session.run.id
    await session.close()

    log = home / "audit.jsonl"
    records = log.read_text(encoding="utf-8").splitlines(keepends=True)
    assert len(records) >= 2
    log.write_text("".join(records[:-1]), encoding="utf-8")  # the last record removed

    resumed = open_session(runbook, Environment(name="local"), home,
                           resume=RunStore(home).load(run_id))
    problems = await resumed.start()
    await resumed.close()
    assert any("audit log" in p and "cut or rewritten" in p for p in problems), problems
