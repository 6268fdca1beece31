"""Plain shell blocks share one real bash per run: variables, cwd and functions carry over;
a hanging block is interrupted without losing the session; a dead shell is replaced and the
operator told; placeholders are asked once and reach the shell as variables, never as code."""

from __future__ import annotations

import asyncio
import re
import secrets
import textwrap
from pathlib import Path
from typing import Any

import pytest

from opsconsole.config import Environment
from opsconsole.evidence import export_evidence
from opsconsole.headless import CommandOperator, run_check
from opsconsole.loader import load_runbook
from opsconsole.model import Runbook, Step
from opsconsole.operator import ApprovePlan, EnterText, Event, Note, Question, Reply
from opsconsole.run import StepStatus
from opsconsole.session import open_session
from opsconsole.shell_session import ShellSession, looks_secret, substitute
from opsconsole.shell_text import Placeholder
from opsconsole.steps.command import RESTARTED

_ANGLE = re.compile(r"<([A-Za-z_][A-Za-z0-9_-]*)>")


def ensure_placeholders(runbook: Runbook) -> Runbook:
    """``<name>`` placeholders on each plain block, where the loader has not found them yet
    (the loader's detection is another branch's work; this keeps these tests independent)."""
    for step in runbook.steps:
        spec: Any = step.spec
        if step.kind == "command" and spec.plain and not spec.placeholders:
            seen: dict[str, Placeholder] = {}
            for match in _ANGLE.finditer(spec.run):
                name = match[1]
                seen.setdefault(name, Placeholder(name, "angle", looks_secret(name), match[0]))
            spec.placeholders = list(seen.values())
    return runbook


def write_runbook(folder: Path, body: str, name: str = "plain.md") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


class Scripted:
    """An operator who approves every command and answers placeholders from ``values``."""

    def __init__(self, values: dict[str, str] | None = None) -> None:
        self.values = values or {}
        self.asked: list[tuple[str, Question]] = []
        self.events: list[tuple[str, Event]] = []

    async def ask(self, step: Step, question: Question) -> Reply:
        self.asked.append((step.id, question))
        if isinstance(question, EnterText):
            return Reply(self.values[question.name])
        assert isinstance(question, ApprovePlan)
        return Reply("yes")

    def event(self, step: Step, event: Event) -> None:
        self.events.append((step.id, event))


def output_of(session: Any, step_id: str) -> str:
    result = session.result(step_id)
    return next(a.text for a in result.artifacts if a.type == "output")


THREE_BLOCKS = """\
    # Carry over

    ```bash
    export GREETING=hello
    cd "$WORKDIR_PARENT"
    mkdir -p carried && cd carried
    shout() { echo "$1, from $(basename "$PWD")!"; }
    ```

    ```bash
    PLAIN_VAR="not exported"
    pwd
    ```

    ```bash
    shout "$GREETING"
    echo "$PLAIN_VAR"
    bash -c 'echo "child sees ${GREETING:-nothing}"'
    ```
"""


async def test_export_cd_and_function_carry_across_three_blocks(tmp_path: Path) -> None:
    body = THREE_BLOCKS.replace("$WORKDIR_PARENT", str(tmp_path))
    runbook = load_runbook(write_runbook(tmp_path, body))
    session = open_session(runbook, Environment(name="local"), tmp_path / "state")
    operator = Scripted()
    try:
        await session.start()
        for step in runbook.steps:
            result = await session.execute(step.id, operator=operator)
            assert result.status is StepStatus.PASSED, result.detail
        first, second, third = (s.id for s in runbook.steps)
        assert output_of(session, second).strip() == str(tmp_path / "carried")
        assert output_of(session, third).splitlines() == [
            "hello, from carried!",
            "not exported",
            "child sees hello",
        ]
        # the session's variables go into the evidence with the step
        kv = next(a for a in session.result(third).artifacts if a.type == "keyvalues")
        assert ("GREETING", "hello") in kv.items and ("PLAIN_VAR", "not exported") in kv.items
    finally:
        await session.close()


async def test_a_hanging_block_is_interrupted_and_the_session_survives(tmp_path: Path) -> None:
    shell = ShellSession(cwd=str(tmp_path))
    try:
        first = await shell.run_block("export KEPT=yes; marker() { echo marker-fn; }")
        assert first.exit_code == 0
        hung = await shell.run_block(
            "echo before; sleep 600; echo after-sleep; export LATE=1", timeout=1
        )
        assert hung.timed_out
        assert "interrupted its foreground job (SIGINT)" in hung.stopped
        assert hung.output == "before\n"  # the rest of the block did not run
        # nothing of the block is left running in the shell's process group
        assert shell._job() == []
        after = await shell.run_block('echo "$KEPT ${LATE:-unset}"; marker')
        assert (after.exit_code, after.output) == (0, "yes unset\nmarker-fn\n")
        assert not after.restarted and shell.generation == 1
    finally:
        await shell.close()


async def test_a_block_ignoring_sigint_is_killed_alone(tmp_path: Path) -> None:
    shell = ShellSession(cwd=str(tmp_path))
    try:
        await shell.run_block("export KEPT=still")
        hung = await shell.run_block("trap '' INT; bash -c 'trap \"\" INT; sleep 600'", timeout=1)
        assert "SIGKILL" in hung.stopped and "the shell session is kept" in hung.stopped
        after = await shell.run_block('echo "$KEPT"')
        assert after.output == "still\n" and shell.generation == 1
    finally:
        await shell.close()


async def test_cancelling_a_running_block_keeps_the_session(tmp_path: Path) -> None:
    """Escape in the console cancels the step's task: the block stops, the shell stays."""
    runbook = load_runbook(
        write_runbook(
            tmp_path,
            """\
            # Cancel

            ```bash
            export BEFORE=kept
            ```

            ```bash
            sleep 600
            ```

            ```bash
            echo "$BEFORE"
            ```
            """,
        )
    )
    session = open_session(runbook, Environment(name="local"), tmp_path / "state")
    operator = Scripted()
    first, hanging, last = (s.id for s in runbook.steps)
    try:
        await session.start()
        await session.execute(first, operator=operator)
        task = asyncio.create_task(session.execute(hanging, operator=operator))
        while session.result(hanging).status is not StepStatus.RUNNING:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # a plain block may have acted: its outcome is unknown, never failed
        assert session.result(hanging).status is StepStatus.UNKNOWN
        result = await session.execute(last, operator=operator)
        assert result.status is StepStatus.PASSED
        assert output_of(session, last) == "kept\n"
    finally:
        await session.close()


async def test_the_shell_dying_mid_run_restarts_and_says_variables_were_lost(
    tmp_path: Path,
) -> None:
    runbook = load_runbook(
        write_runbook(
            tmp_path,
            """\
            # Dying

            ```bash
            export LOST=before
            ```

            ```bash
            kill -KILL $$
            ```

            ```bash
            echo "${LOST:-gone}"
            ```
            """,
        )
    )
    session = open_session(runbook, Environment(name="local"), tmp_path / "state")
    operator = Scripted()
    first, dying, last = (s.id for s in runbook.steps)
    try:
        await session.start()
        await session.execute(first, operator=operator)
        died = await session.execute(dying, operator=operator)
        assert died.status is StepStatus.FAILED
        assert "the shell session ended in this block" in died.detail
        fresh = await session.execute(last, operator=operator)
        assert fresh.status is StepStatus.PASSED
        assert output_of(session, last) == "gone\n"
        assert fresh.note == RESTARTED
        notes = [e.text for step_id, e in operator.events if step_id == last and
                 isinstance(e, Note)]
        assert RESTARTED in notes
    finally:
        await session.close()


PLACEHOLDERS = """\
    # Placeholders

    ```bash
    echo "namespace is <namespace>"
    ```

    ```bash
    echo <namespace> '<namespace>' "in <namespace>"
    ```
"""


async def test_placeholders_are_asked_once_and_reused(tmp_path: Path) -> None:
    runbook = ensure_placeholders(load_runbook(write_runbook(tmp_path, PLACEHOLDERS)))
    session = open_session(runbook, Environment(name="local"), tmp_path / "state")
    operator = Scripted({"namespace": "payments"})
    try:
        await session.start()
        for step in runbook.steps:
            assert (await session.execute(step.id, operator=operator)).status is StepStatus.PASSED
        questions = [q for _, q in operator.asked if isinstance(q, EnterText)]
        assert [q.name for q in questions] == ["namespace"]
        # the command shown for confirmation has the value filled in
        plans = [q.plan[0] for _, q in operator.asked if isinstance(q, ApprovePlan)]
        assert plans[1] == "echo payments 'payments' \"in payments\""
        assert output_of(session, runbook.steps[1].id) == "payments payments in payments\n"
    finally:
        await session.close()


HOSTILE = [
    "$(touch {marker})",
    "`touch {marker}`",
    "'; touch {marker}; '",
    '"; touch {marker}; "',
    "x\ntouch {marker}\n",
    "${{HOME:?}} $HOME \\ \\' --",
]


@pytest.mark.parametrize("template", HOSTILE)
async def test_placeholder_values_never_become_code(tmp_path: Path, template: str) -> None:
    marker = tmp_path / "pwned"
    value = template.format(marker=marker)
    runbook = ensure_placeholders(
        load_runbook(
            write_runbook(
                tmp_path,
                """\
                # Hostile

                ```bash
                printf '[%s]\\n' <value> "<value>" '<value>'
                ```
                """,
            )
        )
    )
    session = open_session(runbook, Environment(name="local"), tmp_path / "state")
    try:
        await session.start()
        result = await session.execute(runbook.steps[0].id, operator=Scripted({"value": value}))
        assert result.status is StepStatus.PASSED, result.detail
        assert output_of(session, runbook.steps[0].id) == f"[{value}]\n" * 3
        assert not marker.exists()
    finally:
        await session.close()


def test_substitute_quotes_for_where_the_placeholder_stands() -> None:
    got = substitute(
        """a <x> "b <x>" 'c <x>' \\<x> $X ${X} $XY""",
        {"<x>": "OPS_PH_x", "$X": "OPS_PH_X", "${X}": "OPS_PH_X"},
    )
    assert got == (
        """a "${OPS_PH_x}" "b ${OPS_PH_x}" 'c '"${OPS_PH_x}"'' \\<x> "${OPS_PH_X}" """
        """"${OPS_PH_X}" $XY"""
    )


SECRET_RUNBOOK = """\
    # Secret placeholder

    ```bash
    export API_TOKEN="<API_TOKEN>"
    echo "token is $API_TOKEN"
    ```

    ```bash
    echo "again: ${API_TOKEN}" >&2
    printf '%s' "$API_TOKEN" | base64
    ```
"""


async def test_a_secret_placeholder_is_never_written_in_clear(tmp_path: Path) -> None:
    import base64

    token = secrets.token_urlsafe(24)
    runbook = ensure_placeholders(load_runbook(write_runbook(tmp_path, SECRET_RUNBOOK)))
    home = tmp_path / "state"
    operator = CommandOperator(run_commands=True, answers={"API_TOKEN": token})
    report = await run_check(runbook, Environment(name="local"), home, operator=operator,
                             run_commands=True)
    assert report.exit_code == 0, report.to_text()
    outputs = [report.to_json(), report.to_junit(), report.to_text()]
    # the evidence of the same run
    from opsconsole.run import RunStore

    run = RunStore(home).load(report.run_id)
    session = open_session(runbook, Environment(name="local"), home, resume=run)
    try:
        evidence = export_evidence(session, tmp_path / "evidence").read_text()
    finally:
        await session.close()
    outputs.append(evidence)
    assert "***" in report.to_json()
    forms = {token, base64.b64encode(token.encode()).decode()}
    files = [p for p in (tmp_path / "state").rglob("*") if p.is_file()]
    assert any(p.name == "audit.jsonl" for p in files)
    for text in outputs + [p.read_text(errors="replace") for p in files]:
        for form in forms:
            assert form not in text


RESUMED = """\
    # Resume

    ```bash
    export RELEASE=v9
    ```

    ```bash
    echo "release ${RELEASE:-lost}"
    ```
"""


class Restoring(Scripted):
    """Answers the "session is gone" question with ``choice``."""

    def __init__(self, choice: str) -> None:
        super().__init__()
        self.choice = choice

    async def ask(self, step: Step, question: Question) -> Reply:
        from opsconsole.operator import Choose

        if isinstance(question, Choose):
            self.asked.append((step.id, question))
            return Reply(self.choice)
        return await super().ask(step, question)


@pytest.mark.parametrize(("choice", "expected"), [("rerun", "release v9\n"),
                                                  ("continue", "release lost\n")])
async def test_after_a_resume_the_lost_session_is_said_and_its_setters_offered(
    tmp_path: Path, choice: str, expected: str
) -> None:
    from opsconsole.run import RunStore

    runbook = load_runbook(write_runbook(tmp_path, RESUMED))
    first, second = (s.id for s in runbook.steps)
    home = tmp_path / "state"
    session = open_session(runbook, Environment(name="local"), home)
    await session.start()
    await session.execute(first, operator=Scripted())
    run_id = session.run.id
    await session.close()  # opsconsole went away: the shell with it

    run = RunStore(home).load(run_id)
    resumed = open_session(runbook, Environment(name="local"), home, resume=run)
    operator = Restoring(choice)
    try:
        await resumed.start()
        result = await resumed.execute(second, operator=operator)
        assert result.status is StepStatus.PASSED, result.detail
        (question,) = [q for _, q in operator.asked if q.key == "restore-session"]
        assert "RELEASE" in question.detail and "no longer exists" in question.detail
        plan = next(q for _, q in operator.asked if isinstance(q, ApprovePlan))
        if choice == "rerun":
            assert plan.plan == ("export RELEASE=v9", 'echo "release ${RELEASE:-lost}"')
            assert "re-ran 1 earlier block(s)" in result.note
        else:
            assert len(plan.plan) == 1
        assert output_of(resumed, second).endswith(expected)
    finally:
        await resumed.close()
