"""Who answers "approve this sign-in in a browser" when nobody sits at the console."""

from __future__ import annotations

import pytest

from opsconsole.model import Step
from opsconsole.operator import ApproveInBrowser, HeadlessOperator, NoAnswer
from opsconsole.steps.manual import ManualSpec

STEP = Step(id="sign-in", kind="manual", title="t", line=1, section=0,
            spec=ManualSpec(text="t"))
QUESTION = ApproveInBrowser(prompt="approve", key="approve", verification_uri="http://a/b",
                            verification_uri_complete="http://a/b?c=1",
                            unattended_reason="needs a person")


async def test_check_without_sandbox_cannot_approve() -> None:
    with pytest.raises(NoAnswer, match="needs a person"):
        await HeadlessOperator().ask(STEP, QUESTION)


async def test_the_simulated_operator_needs_the_sandboxs_browser() -> None:
    with pytest.raises(NoAnswer):
        await HeadlessOperator(simulate=True).ask(STEP, QUESTION)
    opened: list[str] = []

    async def browser(url: str) -> str:
        opened.append(url)
        return "approved"

    reply = await HeadlessOperator(simulate=True, browser=browser).ask(STEP, QUESTION)
    assert opened == ["http://a/b?c=1"]  # the complete URL
    assert (reply.value, reply.simulated) == ("approved", True)


async def test_an_answer_on_the_command_line_counts() -> None:
    reply = await HeadlessOperator(answers={"sign-in": "approved"}).ask(STEP, QUESTION)
    assert reply.value == "approved" and not reply.simulated
