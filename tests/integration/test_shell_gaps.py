"""The last gaps of plain shell blocks: secrets in live output, placeholder values audited and
kept for a resume, Runme background/interactive blocks refused plainly. Real bash, real
session, real audit log and run store."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import pytest

from opsconsole.config import Environment
from opsconsole.loader import load_runbook
from opsconsole.model import Step
from opsconsole.operator import ApprovePlan, EnterText, Note, OutputLine, Question, Reply
from opsconsole.process import LINE_CONTINUES
from opsconsole.run import RunStore, StepStatus
from opsconsole.session import open_session
from tests.integration.test_shell_session import Scripted as ScriptedOperator
from tests.integration.test_shell_session import output_of, write_runbook


class Scripted(ScriptedOperator):
    """The shell-session tests' operator, with the lines it was shown."""

    def lines(self) -> list[str]:
        return [e.text for _, e in self.events if isinstance(e, OutputLine | Note)]


SETS_AND_PRINTS = """\
    ---
    cwd: .
    ---
    # Session token

    ```bash
    SESSION_TOKEN=$(cat session.txt)
    echo "token: $SESSION_TOKEN"
    printf '%s' "$SESSION_TOKEN" | base64
    ```

    ```bash
    echo "again: $SESSION_TOKEN"
    ```
"""


async def test_a_secret_set_and_printed_in_one_block_never_streams_in_clear(
    tmp_path: Path,
) -> None:
    import base64

    token = secrets.token_urlsafe(24)
    (tmp_path / "session.txt").write_text(token, encoding="utf-8")
    runbook = load_runbook(write_runbook(tmp_path, SETS_AND_PRINTS))
    first, second = (s.id for s in runbook.steps)
    session = open_session(runbook, Environment(name="local"), tmp_path / "state")
    operator = Scripted()
    try:
        await session.start()
        for step_id in (first, second):
            result = await session.execute(step_id, operator=operator)
            assert result.status is StepStatus.PASSED, result.detail
        lines = operator.lines()
        # the output still reaches the operator, after the block, redacted
        assert "token: ***" in lines and "again: ***" in lines
        assert any("SESSION_TOKEN, a secret known only when the block ends" in t for t in lines)
        for form in (token, base64.b64encode(token.encode()).decode()):
            assert not any(form[:8] in text for text in lines)
        assert output_of(session, first).startswith("token: ***\n")
    finally:
        await session.close()


SPLIT = """\
    # A long line

    ```bash
    printf '%8185s' x
    printf '%s\\n' "$API_TOKEN"
    ```
"""


async def test_a_secret_split_across_two_pieces_of_a_long_line_is_masked_whole(
    tmp_path: Path,
) -> None:
    token = secrets.token_urlsafe(24)  # 32 characters: 7 end the first 8,192-character piece
    runbook = load_runbook(write_runbook(tmp_path, SPLIT))
    (step,) = runbook.steps
    session = open_session(runbook, Environment(name="local"), tmp_path / "state")
    operator = Scripted({"API_TOKEN": token})
    try:
        await session.start()
        result = await session.execute(step.id, operator=operator)
        assert result.status is StepStatus.PASSED, result.detail
        pieces = [e.text for _, e in operator.events if isinstance(e, OutputLine)]
        assert len(pieces) >= 2 and pieces[0].endswith(LINE_CONTINUES)
        joined = "".join(p.removesuffix(LINE_CONTINUES) for p in pieces)
        assert joined == " " * 8184 + "x***"
        for piece in pieces:
            assert token[:7] not in piece and token[-7:] not in piece
    finally:
        await session.close()


PLACEHOLDERS = """\
    # Two blocks, two placeholders

    ```bash
    echo "deploy to <namespace> with <API_TOKEN>" > /dev/null
    ```

    ```bash
    echo "in <namespace> with <API_TOKEN>"
    ```
"""


def audit_records(home: Path) -> list[dict[str, Any]]:
    (path,) = home.rglob("audit.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


async def test_placeholder_values_are_audited_and_non_secret_ones_survive_a_resume(
    tmp_path: Path,
) -> None:
    token = secrets.token_urlsafe(24)
    runbook = load_runbook(write_runbook(tmp_path, PLACEHOLDERS))
    first, second = (s.id for s in runbook.steps)
    home = tmp_path / "state"
    session = open_session(runbook, Environment(name="local"), home)
    await session.start()
    answers = {"namespace": "payments", "API_TOKEN": token}
    result = await session.execute(first, operator=Scripted(answers))
    assert result.status is StepStatus.PASSED, result.detail
    run_id = session.run.id
    await session.close()  # opsconsole went away

    records = [r for r in audit_records(home) if r.get("event") == "placeholder.value"]
    assert {(r["name"], r["value"], r["how"], r["step"]) for r in records} == {
        ("namespace", "payments", "asked", first),
        ("API_TOKEN", "***", "asked", first),
    }

    resumed = open_session(runbook, Environment(name="local"), home,
                           resume=RunStore(home).load(run_id))
    operator = Scripted({"API_TOKEN": token})
    try:
        await resumed.start()
        result = await resumed.execute(second, operator=operator)
        assert result.status is StepStatus.PASSED, result.detail
        # the namespace is reused from the run state; the secret is asked again
        asked = [q for _, q in operator.asked if isinstance(q, EnterText)]
        assert [q.name for q in asked] == ["API_TOKEN"]
        assert "never stored" in asked[0].detail
        assert output_of(resumed, second) == "in payments with ***\n"
    finally:
        await resumed.close()
    for path in (p for p in home.rglob("*") if p.is_file()):
        assert token not in path.read_text(errors="replace")


RUNME = """\
    # Runme blocks

    ```sh {name=serve background=true}
    touch served.txt
    ```

    ```sh {name=login interactive=true}
    touch logged-in.txt
    ```
"""


async def test_runme_background_and_interactive_blocks_are_refused_plainly(
    tmp_path: Path,
) -> None:
    runbook = load_runbook(write_runbook(tmp_path, RUNME.replace("touch ", f"touch {tmp_path}/")))
    session = open_session(runbook, Environment(name="local"), tmp_path / "state")
    operator = Scripted()
    try:
        await session.start()
        serve = await session.execute("serve", operator=operator)
        login = await session.execute("login", operator=operator)
    finally:
        await session.close()
    assert serve.status is StepStatus.SKIPPED and login.status is StepStatus.SKIPPED
    assert "background process" in serve.detail and "terminal of your own" in serve.detail
    assert "needs a terminal" in login.detail
    assert not operator.asked  # nothing offered to run
    assert not (tmp_path / "served.txt").exists() and not (tmp_path / "logged-in.txt").exists()


# -- the runbook's shell (front matter ``shell``) ---------------------------------------------

IN_SHELL = """\
    ---
    shell: {shell}
    cwd: .
    ---
    # Three blocks in {shell}

    ```sh
    export GREETING=hello
    mkdir -p carried && cd carried
    shout() {{ echo "$1, from $(basename "$PWD")"; }}
    ```

    ```sh
    PLAIN_VAR="not exported"
    echo "bash ${{BASH_VERSION:+yes}}${{BASH_VERSION:-no}} zsh ${{ZSH_VERSION:+yes}}"
    ```

    ```sh
    shout "$GREETING"
    printf '%s %s\\n' "$PLAIN_VAR" "<value>"
    ```
"""
#: what block 2 prints in each shell (the proof it ran there, not in bash)
WHICH = {"sh": "bash no zsh ", "zsh": "bash no zsh yes"}
HOSTILE_VALUE = "it's \"$(touch pwned)\" `x` \\n\n${HOME} ü\n"


@pytest.mark.parametrize("shell", ["sh", "zsh"])
async def test_the_runbooks_shell_runs_the_blocks_and_variables_carry(
    tmp_path: Path, shell: str
) -> None:
    from tests.conftest import require_tool

    require_tool(shell)
    runbook = load_runbook(write_runbook(tmp_path, IN_SHELL.format(shell=shell)))
    first, second, third = (s.id for s in runbook.steps)
    session = open_session(runbook, Environment(name="local"), tmp_path / "state")
    operator = Scripted({"value": HOSTILE_VALUE})
    try:
        await session.start()
        for step_id in (first, second, third):
            result = await session.execute(step_id, operator=operator)
            assert result.status is StepStatus.PASSED, result.detail
        assert output_of(session, second) == WHICH[shell] + "\n"
        assert output_of(session, third) == f"hello, from carried\nnot exported {HOSTILE_VALUE}\n"
        kv = next(a for a in session.result(third).artifacts if a.type == "keyvalues")
        assert ("GREETING", "hello") in kv.items and ("PLAIN_VAR", "not exported") in kv.items
        assert not any(name.startswith(("OPS_PH_", "__ops")) for name, _ in kv.items)
        assert not any(tmp_path.rglob("pwned"))
        assert not [q for _, q in operator.asked if q.key == "shell-fallback"]
    finally:
        await session.close()


class Fallback(Scripted):
    """Answers the "the runbook's shell cannot run here" question with ``choice``."""

    def __init__(self, choice: str) -> None:
        super().__init__()
        self.choice = choice

    async def ask(self, step: Step, question: Question) -> Reply:
        from opsconsole.operator import Choose

        if isinstance(question, Choose):
            self.asked.append((step.id, question))
            return Reply(self.choice)
        return await super().ask(step, question)


FISH = """\
    ---
    shell: fish
    ---
    # Fish

    ```sh
    echo "ran in ${BASH_VERSION:+bash}" > ran.txt
    ```

    ```sh
    echo again >> ran.txt
    ```
"""


@pytest.mark.parametrize("choice", ["no", "bash"])
async def test_a_shell_the_session_cannot_run_is_said_before_anything_runs(
    tmp_path: Path, choice: str
) -> None:
    runbook = load_runbook(write_runbook(tmp_path, FISH.replace("ran.txt", f"{tmp_path}/ran.txt")))
    first, second = (s.id for s in runbook.steps)
    session = open_session(runbook, Environment(name="local"), tmp_path / "state")
    operator = Fallback(choice)
    try:
        await session.start()
        results = [await session.execute(step_id, operator=operator) for step_id in (first, second)]
    finally:
        await session.close()
    asked = [q for _, q in operator.asked if q.key == "shell-fallback"]
    assert "fish" in asked[0].prompt and "runs bash, sh or zsh" in asked[0].detail
    if choice == "no":
        assert [r.status for r in results] == [StepStatus.SKIPPED] * 2
        assert "not run: the runbook asks for fish" in results[0].detail
        assert not (tmp_path / "ran.txt").exists()
        assert not [q for _, q in operator.asked if isinstance(q, ApprovePlan)]
    else:
        assert [r.status for r in results] == [StepStatus.PASSED] * 2
        assert len(asked) == 1  # once per run
        assert "run in bash: the runbook asks for fish" in results[0].note
        assert (tmp_path / "ran.txt").read_text() == "ran in bash\nagain\n"


def test_lint_warns_of_a_shell_that_cannot_run_here(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from tests.conftest import REPO

    fish = write_runbook(tmp_path, FISH, "fish.md")
    zsh = write_runbook(tmp_path, IN_SHELL.format(shell="zsh"), "zsh.md")
    done = subprocess.run(
        [sys.executable, "-m", "opsconsole.cli", "lint", str(fish), str(zsh)],
        capture_output=True, text=True, timeout=60, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "PATH": str(tmp_path)},  # no zsh here
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (f"{fish}:2: warning: front matter: shell 'fish' is not one the shell session runs "
            "(bash, sh, zsh)") in done.stdout
    assert f"{zsh}:2: warning: front matter: shell 'zsh' is not installed" in done.stdout


@pytest.mark.parametrize("shell", ["sh", "zsh"])
async def test_in_sh_and_zsh_a_hanging_block_is_interrupted_and_a_dead_shell_replaced(
    tmp_path: Path, shell: str
) -> None:
    from opsconsole.shell_session import ShellSession
    from tests.conftest import require_tool

    require_tool(shell)
    session = ShellSession(shell=shell, cwd=str(tmp_path))
    try:
        await session.run_block("export KEPT=yes")
        assert session.dialect == shell
        hung = await session.run_block("sleep 30; echo after", timeout=0.5)
        assert hung.timed_out and "the shell session is kept" in hung.stopped
        assert "after" not in hung.output
        kept = await session.run_block('echo "$KEPT"')
        assert (kept.output, kept.restarted) == ("yes\n", False)
        died = await session.run_block("exit 3")
        assert died.shell_ended and died.exit_code == 3
        fresh = await session.run_block('echo "${KEPT:-lost}"')
        assert (fresh.output, fresh.restarted) == ("lost\n", True)
    finally:
        await session.close()


DECLARED = """\
    ---
    variables:
      NAMESPACE: the namespace of this environment
      REGION: where it runs
    ---
    # Declared variables

    ```bash
    echo "ns=$NAMESPACE region=${REGION}"
    ```
"""


async def test_front_matter_variables_come_from_the_environment_not_a_question(
    tmp_path: Path,
) -> None:
    runbook = load_runbook(write_runbook(tmp_path, DECLARED))
    (step,) = runbook.steps
    environment = Environment(name="local", variables={"NAMESPACE": "payments; rm -rf /"})
    session = open_session(runbook, environment, tmp_path / "state")
    operator = Scripted({"REGION": "eu-west-1"})  # not in the environment: asked
    try:
        await session.start()
        result = await session.execute(step.id, operator=operator)
        assert result.status is StepStatus.PASSED, result.detail
        asked = [q.name for _, q in operator.asked if isinstance(q, EnterText)]
        assert asked == ["REGION"]
        assert output_of(session, step.id) == "ns=payments; rm -rf / region=eu-west-1\n"
    finally:
        await session.close()
