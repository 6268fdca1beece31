"""The audit chain verifies, names the first altered record, and fails closed."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from opsconsole import cli
from opsconsole.audit import GENESIS, AuditHead, AuditLog, _digest, verify
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


# -- short writes, size, concurrency, truncation (issue 6, items 11-14) --------------------

REPO = Path(__file__).resolve().parents[2]


def python(script: str, *args: str, **kwargs: Any) -> subprocess.Popen[str]:
    """A real child process importing this checkout's engine."""
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        **kwargs,
    )


def test_a_short_write_is_refused_and_the_torn_record_removed(tmp_path: Path) -> None:
    """RLIMIT_FSIZE lets only part of the intent record reach the disk: no action may follow."""
    path = tmp_path / "audit.jsonl"
    child = python(
        """
        import resource, sys
        from pathlib import Path
        from opsconsole.audit import AuditLog
        from opsconsole.errors import AuditUnavailable

        path = Path(sys.argv[1])
        log = AuditLog(path)
        log.append("step.intent", step="s0", action="GET /health")
        limit = path.stat().st_size + 100
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        try:
            log.append("step.intent", step="s1", action="POST /jobs " + "x" * 400)
        except AuditUnavailable as exc:
            print("refused:", exc)
        else:
            print("sent POST /jobs")
        """,
        str(path),
    )
    out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    assert out.startswith("refused:"), out
    assert "File too large" in out and "incomplete record was removed" in out
    verdict = verify(path)
    assert (verdict.ok, verdict.records) == (True, 1)
    AuditLog(path).append("step.intent", step="s1")  # the log goes on once space is back
    assert verify(path).records == 2


def test_a_record_over_64_kib_does_not_block_later_steps(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    # each value is under the per-value cap, the record as a whole is about 120 KiB
    log.append("step.outcome", step="s1", **{f"field{n}": "y" * 3000 for n in range(40)})
    assert path.stat().st_size > 100_000
    log.append("step.intent", step="s2", action="POST /jobs")
    assert verify(path).ok and verify(path).records == 2


def test_a_huge_value_is_kept_as_its_digest(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    redactor = Redactor()
    secret = secrets.token_urlsafe(16)
    redactor.register(secret)
    body = f"token={secret} " + "z" * 200_000
    AuditLog(path, redactor).append("step.outcome", step="s1", detail=body)
    assert path.stat().st_size < 8192
    record = json.loads(path.read_text())
    redacted = body.replace(secret, "***").encode()
    assert record["detail"] == {
        "sha256": hashlib.sha256(redacted).hexdigest(),
        "bytes": len(redacted),
        "head": redacted[:200].decode(),
    }
    assert secret not in path.read_text() and secret[:8] not in path.read_text()
    AuditLog(path).append("step.intent", step="s2")
    assert verify(path).ok


def test_concurrent_writers_in_separate_processes_keep_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    writers, each = 6, 60
    script = """
        import sys
        from pathlib import Path
        from opsconsole.audit import AuditLog

        log = AuditLog(Path(sys.argv[1]))
        sys.stdin.readline()  # start together
        for number in range(int(sys.argv[3])):
            log.append("step.intent", writer=sys.argv[2], step=f"s{number}")
        """
    children = [python(script, str(path), str(n), str(each)) for n in range(writers)]
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    for child in children:
        _, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
    verdict = verify(path)
    assert verdict.ok, verdict.message
    assert verdict.records == writers * each
    seqs = [json.loads(line)["seq"] for line in path.read_text().splitlines()]
    assert seqs == list(range(1, writers * each + 1))


def test_truncation_is_caught_by_the_head_anchor(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = make_log(path, 19)
    head = log.append("step.outcome", step="s19", status="passed")
    assert head == log.head() and head.seq == 20
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:10]))
    # a shorter chain is still a valid chain: only the anchor kept elsewhere shows the cut
    assert verify(path).ok
    verdict = verify(path, anchor=head)
    assert not verdict.ok
    assert verdict.message == (
        "log ends before the anchored record 20 (truncated?): it has 10 records"
    )
    assert verify(path, anchor=AuditHead.parse(str(verdict.head))).ok


def test_a_log_cut_and_written_again_differs_from_the_anchor(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    head = make_log(path, 20).head()
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:10]))
    make_log(path, 15)
    assert verify(path).ok and verify(path).records == 25
    verdict = verify(path, anchor=head)
    assert (verdict.ok, verdict.line) == (False, 20)
    assert "record 20 differs from the anchor" in verdict.message


def test_logs_written_before_sequence_numbers_still_verify_and_grow(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    prev, lines = GENESIS, []
    for number in range(3):  # the format of earlier versions: no seq
        record = {"ts": "2024-01-01T00:00:00.000Z", "event": "step.intent", "step": f"s{number}"}
        record["prev"] = prev
        record["hash"] = prev = _digest(record)
        lines.append(json.dumps(record, sort_keys=True) + "\n")
    path.write_text("".join(lines))
    assert verify(path).ok and verify(path).head == AuditHead(prev, 3)
    head = AuditLog(path).append("step.outcome", step="s2")
    assert head.seq == 4
    assert json.loads(path.read_text().splitlines()[-1])["seq"] == 4
    assert verify(path, anchor=head).ok
    assert verify(path, anchor=AuditHead(prev, 3)).ok


def test_a_record_removed_and_the_chain_recomputed_shows_in_the_sequence(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    make_log(path, 5)
    records = [json.loads(line) for line in path.read_text().splitlines()]
    del records[2]
    prev = GENESIS
    for record in records:  # a careless forger re-chains but does not renumber
        record["prev"] = prev
        record["hash"] = prev = _digest(record)
    path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
    verdict = verify(path)
    assert (verdict.ok, verdict.line) == (False, 3)
    assert "sequence number 4 where 3 was expected" in verdict.message


def test_a_record_cut_short_by_a_crash_is_removed_and_audited(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    make_log(path, 2)
    torn = b'{"event": "step.intent", "ha'
    with path.open("ab") as handle:
        handle.write(torn)
    head = AuditLog(path).append("step.intent", step="s2")
    verdict = verify(path)
    assert verdict.ok and verdict.head == head and head.seq == 4
    repair = json.loads(path.read_text().splitlines()[2])
    assert repair["event"] == "audit.repair"
    assert repair["removed_bytes"] == len(torn)
    assert repair["removed_sha256"] == hashlib.sha256(torn).hexdigest()


def test_text_that_is_not_valid_unicode_is_recorded_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    AuditLog(path).append("step.outcome", detail="bad \ud800 surrogate")
    assert verify(path).ok


def test_anchor_text_round_trips_and_rejects_nonsense() -> None:
    head = AuditHead("ab" * 32, 7)
    assert AuditHead.parse(str(head)) == head
    for text in ["", "abc:1", f"{'ab' * 32}", f"{'ab' * 32}:x", f"{'ab' * 32}:0"]:
        with pytest.raises(ValueError, match="not an audit anchor"):
            AuditHead.parse(text)


def test_cli_verify_with_an_anchor(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "audit.jsonl"
    head = make_log(path, 12).head()
    assert cli.main(["audit", "verify", "--log", str(path), "--anchor", str(head)]) == 0
    assert f"chain intact, reaches anchor record 12; head {head}" in capsys.readouterr().out
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:2]))
    assert cli.main(["audit", "verify", "--log", str(path), "--anchor", str(head)]) == 1
    assert capsys.readouterr().out == (
        f"{path}: log ends before the anchored record 12 (truncated?): it has 2 records "
        "(2 records verified before it)\n"
    )
    assert cli.main(["audit", "verify", "--log", str(path), "--anchor", "nonsense"]) == 2
    assert "not an audit anchor" in capsys.readouterr().err
