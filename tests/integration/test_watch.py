"""The dashboard's engine against the real sandbox and the hostile server, over loopback.

A watched check runs outside any run: it reads, it never acts, it is bounded by the
dashboard's timeout, and one broken check never ends a round.
"""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

import pytest

from opsconsole.config import Environment, load_config
from opsconsole.errors import RunbookError
from opsconsole.loader import load_runbook
from opsconsole.run import StepStatus
from opsconsole.watch import Watcher, watches

REPO = Path(__file__).resolve().parents[2]
V2 = REPO / "runbooks" / "v2-control-plane.md"


def _environment(sandbox) -> Environment:  # type: ignore[no-untyped-def]
    return load_config(sandbox.config_path).environment("sandbox")


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "watch.md"
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


def test_the_v2_runbook_watches_read_only_checks_only() -> None:
    items = watches([load_runbook(V2)])
    assert [item.step.id for item in items] == [
        "ops-jobs-without-key",
        "debug-env-leaks-nothing",
        "jobs-list-leaks-nothing",
    ]
    assert all(not item.step.mutating for item in items)


def test_watched_checks_pass_on_a_healthy_sandbox_and_a_fault_fails_the_right_one(
    sandbox,  # type: ignore[no-untyped-def]
) -> None:
    items = watches([load_runbook(V2)])
    environment = _environment(sandbox)

    async def two_rounds() -> tuple[dict, dict]:  # type: ignore[type-arg]
        watcher = Watcher(environment, items, timeout=5)
        try:
            healthy = await watcher.round()
            sandbox.set_fault("debug-leaks-token", True)
            try:
                broken = await watcher.round()
            finally:
                sandbox.set_fault("debug-leaks-token", False)
        finally:
            await watcher.aclose()
        return healthy, broken

    healthy, broken = asyncio.run(two_rounds())
    assert {key: r.status for key, r in healthy.items()} == {
        item.key: StepStatus.PASSED for item in items
    }
    assert all(r.latency_ms is not None for r in healthy.values())
    leak = broken["v2-control-plane/debug-env-leaks-nothing"]
    assert leak.status is StepStatus.FAILED
    assert broken["v2-control-plane/ops-jobs-without-key"].status is StepStatus.PASSED
    # the secret the fault leaks never reaches what the dashboard shows
    shown = " ".join([leak.summary, *leak.details])
    for value in sandbox.secret_values.values():
        assert value not in shown


def test_a_check_that_never_answers_times_out_and_the_round_still_ends(
    tmp_path: Path, hostile_server  # type: ignore[no-untyped-def]
) -> None:
    path = _write(
        tmp_path,
        """\
        ---
        id: watch-hostile
        title: Hostile
        service: hostile
        variables: {base: ""}
        ---
        # Checks

        ```ops http
        id: never
        watch: true
        url: "{{ base }}/never"
        timeout: 60s
        ```

        ```ops http
        id: fine
        watch: true
        url: "{{ base }}/json"
        expect: {status: 200}
        ```
        """,
    )
    runbook = load_runbook(path)
    environment = Environment(name="t", variables={"base": hostile_server.url("").rstrip("/")})

    async def round_() -> dict:  # type: ignore[type-arg]
        watcher = Watcher(environment, watches([runbook]), timeout=0.5)
        try:
            return await watcher.round()
        finally:
            await watcher.aclose()

    readings = asyncio.run(round_())
    never = readings["watch-hostile/never"]
    assert never.timed_out and never.status is StepStatus.INCONCLUSIVE
    assert "timed out" in never.summary
    assert readings["watch-hostile/fine"].status is StepStatus.PASSED


def test_a_check_missing_its_variable_says_so_instead_of_failing(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """\
        ---
        id: watch-unconfigured
        title: Unconfigured
        variables: {prometheus_url: ""}
        ---
        # Checks

        ```ops http
        id: prom
        watch: true
        url: "{{ prometheus_url }}/-/ready"
        ```
        """,
    )
    watcher = Watcher(Environment(name="bare"), watches([load_runbook(path)]))
    readings = asyncio.run(watcher.round())
    reading = readings["watch-unconfigured/prom"]
    assert reading.status is StepStatus.SKIPPED
    assert "does not define 'prometheus_url'" in reading.summary


@pytest.mark.parametrize(
    ("block", "message"),
    [
        (
            "```ops http\nid: write\nwatch: true\nmethod: POST\nurl: http://127.0.0.1:9/x\n```",
            "changes something",
        ),
        ("```ops manual\nid: look\nwatch: true\ntext: look at it\n```", "needs a person"),
    ],
)
def test_lint_refuses_watch_on_a_step_that_acts_or_needs_a_person(
    tmp_path: Path, block: str, message: str
) -> None:
    path = tmp_path / "bad.md"
    path.write_text(f"# T\n\n{block}\n", encoding="utf-8")
    with pytest.raises(RunbookError) as raised:
        load_runbook(path)
    text = str(raised.value)
    assert message in text and "bad.md:5" in text


def test_lint_refuses_a_watched_check_that_needs_a_captured_value(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """\
        # T

        ```ops http
        id: make
        url: http://127.0.0.1:9/x
        capture: {job: id}
        ```

        ```ops http
        id: look
        watch: true
        url: "http://127.0.0.1:9/jobs/{{ job }}"
        ```
        """,
    )
    with pytest.raises(RunbookError) as raised:
        load_runbook(path)
    assert "watch.md:12" in str(raised.value)
    assert "runs outside any run" in str(raised.value)
