"""The audit chain verifies, names the first altered record, and fails closed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from opsconsole.audit import AuditLog, verify
from opsconsole.errors import AuditUnavailable
from opsconsole.secrets import Redactor


def make_log(path: Path, count: int = 5) -> AuditLog:
    log = AuditLog(path)
    for number in range(count):
        log.append("step.intent", step=f"s{number}", action=f"POST /jobs {number}")
    return log


def test_chain_verifies_and_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    make_log(path, 3)
    AuditLog(path).append("step.outcome", step="s2", status="passed")
    verdict = verify(path)
    assert verdict.ok and verdict.records == 4


def test_editing_a_middle_record_is_named_by_line(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    make_log(path, 5)
    lines = path.read_text().splitlines()
    record = json.loads(lines[2])
    record["action"] = "POST /jobs 999"
    lines[2] = json.dumps(record, sort_keys=True)
    path.write_text("\n".join(lines) + "\n")
    verdict = verify(path)
    assert not verdict.ok
    assert verdict.line == 3
    assert "altered" in verdict.message
    assert verdict.records == 2


def test_deleting_a_record_breaks_the_chain_at_the_next_line(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    make_log(path, 4)
    lines = path.read_text().splitlines()
    del lines[1]
    path.write_text("\n".join(lines) + "\n")
    verdict = verify(path)
    assert (verdict.ok, verdict.line) == (False, 2)
    assert "chain broken" in verdict.message


def test_truncated_last_line_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    make_log(path, 2)
    with path.open("a") as handle:
        handle.write('{"event": "step.intent", "ha')
    verdict = verify(path)
    assert (verdict.ok, verdict.line) == (False, 3)


def test_records_are_redacted(tmp_path: Path) -> None:
    redactor = Redactor()
    redactor.register("s3cr3t-value-123")
    log = AuditLog(tmp_path / "audit.jsonl", redactor)
    log.append("step.intent", action="curl -H 'X-Ops-Key: s3cr3t-value-123'")
    text = (tmp_path / "audit.jsonl").read_text()
    assert "s3cr3t-value-123" not in text and "X-Ops-Key: ***" in text
    assert verify(tmp_path / "audit.jsonl").ok


def test_unwritable_log_raises_audit_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the audit folder should be")
    log = AuditLog(blocker / "audit.jsonl")
    assert log.writable() is not None
    with pytest.raises(AuditUnavailable, match="mutating actions are refused"):
        log.append("step.intent", step="x")
