"""Failure triage: the table is read from the runbook (Markdown or front matter) and a
failed step is matched to the row its failure shows."""

from __future__ import annotations

from pathlib import Path

from opsconsole.artifacts import ResponseArtifact
from opsconsole.config import bundled_runbooks_dir
from opsconsole.loader import load_runbook, parse_runbook
from opsconsole.run import Assertion, StepResult, StepStatus
from opsconsole.triage import match_triage, triage_for

TABLE = """\
# Service

## When it breaks: triage

| Action | Signal | Meaning |
|---|---|---|
| Rotate the key. | `401 invalid key` | the key was rotated |
| Start again. | `404 session not found` | the session is gone |
| Wait. | still warming up | the cache is cold |

## Other table

| Signal | Meaning | Action |
|---|---|---|
| `500 boom` | not a triage section | ignored |
"""


def test_table_under_a_triage_heading_is_read_by_column_name(tmp_path: Path) -> None:
    runbook, problems = parse_runbook(tmp_path / "r.md", TABLE)
    assert runbook is not None and not problems
    assert [(r.signal, r.meaning, r.action) for r in runbook.triage] == [
        ("401 invalid key", "the key was rotated", "Rotate the key."),
        ("404 session not found", "the session is gone", "Start again."),
        ("still warming up", "the cache is cold", "Wait."),
    ]
    assert runbook.triage[0].line == 7


def test_front_matter_triage(tmp_path: Path) -> None:
    text = "---\ntriage:\n  - signal: 409 not authorized yet\n    meaning: not approved\n" \
           "    action: approve, then retry\n---\n# R\n"
    runbook, problems = parse_runbook(tmp_path / "r.md", text)
    assert runbook is not None and not problems
    assert runbook.triage[0].action == "approve, then retry"


def test_a_status_and_its_words_must_both_show() -> None:
    runbook = load_runbook(bundled_runbooks_dir() / "discogs-broker.md")
    rows = runbook.triage
    hit = match_triage(rows, ['got 401 Unauthorized ({"error":"invalid broker client token"})'])
    assert hit is not None and hit.meaning == "BROKER_CLIENT_TOKEN mismatch"
    # the same words with another status are not that row
    assert match_triage(rows, ["403 invalid broker client token"]) is None
    # two rows share 401: the words decide
    hit = match_triage(rows, ["401 Unauthorized: invalid or expired broker session"])
    assert hit is not None and hit.signal == "401 invalid or expired broker session"
    assert match_triage(rows, ["everything is fine"]) is None


def test_a_failed_result_is_matched_through_its_response_body() -> None:
    runbook = load_runbook(bundled_runbooks_dir() / "discogs-broker.md")
    result = StepResult(
        step_id="x", status=StepStatus.FAILED, detail="expected status 200, got 409 Conflict",
        assertions=[Assertion(name="status", ok=False, detail="expected 200, got 409")],
        artifacts=[ResponseArtifact(status=409, reason="Conflict",
                                    body='{"error":"device session is not authorized yet"}')],
    )
    row = triage_for(runbook.triage, result)
    assert row is not None and row.action == "Complete auth URL flow, then retry finalize."
