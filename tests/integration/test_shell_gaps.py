"""The last gaps of plain shell blocks: secrets in live output, placeholder values audited and
kept for a resume, Runme background/interactive blocks refused plainly. Real bash, real
session, real audit log and run store."""

from __future__ import annotations

import json
import secrets
import textwrap
from pathlib import Path
from typing import Any

from opsconsole.config import Environment
from opsconsole.loader import load_runbook
from opsconsole.model import Step
from opsconsole.operator import ApprovePlan, EnterText, Event, Note, OutputLine, Question, Reply
from opsconsole.process import LINE_CONTINUES
from opsconsole.run import RunStore, StepStatus
from opsconsole.session import open_session


def write_runbook(folder: Path, body: str, name: str = "plain.md") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


class Scripted:
    """Approves every command; answers placeholders from ``values``; keeps every event."""

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

    def lines(self) -> list[str]:
        return [e.text for _, e in self.events if isinstance(e, OutputLine | Note)]


def output_of(session: Any, step_id: str) -> str:
    result = session.result(step_id)
    return next(a.text for a in result.artifacts if a.type == "output")


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
