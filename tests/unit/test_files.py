"""Everything opsconsole writes is private whatever the umask; output names stay in their folder."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from opsconsole.audit import AuditLog
from opsconsole.crash import write_crash_log
from opsconsole.errors import UnsafePath
from opsconsole.evidence import evidence_path, write_evidence
from opsconsole.files import inside
from opsconsole.run import Run, RunStore
from opsconsole.runlock import RunLock


@pytest.fixture(params=[0o000, 0o022], ids=["umask-000", "umask-022"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def session_for(runbook_id: str) -> Any:
    """What evidence_path reads from a session: its run's ids."""
    return SimpleNamespace(run=SimpleNamespace(runbook_id=runbook_id, id="20240101T000000Z-abc123"))


def not_private(root: Path) -> list[str]:
    """Every folder under (and including) root that is not 0700, every file not 0600."""
    paths = [root, *root.rglob("*")]
    wrong = []
    for path in paths:
        mode = stat.S_IMODE(path.lstat().st_mode)
        if mode != (0o700 if path.is_dir() else 0o600):
            wrong.append(f"{path.relative_to(root.parent)} {mode:o}")
    return wrong


def test_everything_opsconsole_writes_in_a_state_dir_is_private(
    tmp_path: Path, umask: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "state" / "opsconsole"  # neither exists yet: opsconsole creates both
    monkeypatch.setenv("OPSCONSOLE_HOME", str(home))
    run = Run(
        id=Run.new_id(),
        runbook_path="r.md",
        runbook_id="rb",
        runbook_title="R",
        runbook_digest="0" * 64,
        environment="staging",
    )
    RunStore(home).save(run)
    AuditLog(home / "audit.jsonl").append("run.start", run=run.id)
    AuditLog(home / "sandbox" / "audit.jsonl").append("run.start", run=run.id)
    assert write_crash_log(RuntimeError("boom")) == home / "crash.log"
    write_evidence("# Evidence\n", evidence_path(session_for("rb"), home / "sandbox" / "evidence"))
    RunLock.acquire(home, run.id).release()

    created = {str(path.relative_to(home)) for path in home.rglob("*")}
    assert {"crash.log", "runs", "sandbox/evidence", "sandbox/audit.jsonl"} <= created
    assert not_private(tmp_path / "state") == []


def test_a_crash_log_left_readable_by_an_older_version_is_made_private(tmp_path: Path) -> None:
    home = Path(os.environ["OPSCONSOLE_HOME"])
    log = home / "crash.log"
    log.write_text("--- old entry\n")
    log.chmod(0o644)
    assert write_crash_log(RuntimeError("boom")) == log
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert log.read_text().startswith("--- old entry\n")


def test_a_crash_log_symlink_is_not_followed(tmp_path: Path) -> None:
    home = Path(os.environ["OPSCONSOLE_HOME"])
    target = tmp_path / "elsewhere.txt"
    target.write_text("not opsconsole's\n")
    (home / "crash.log").symlink_to(target)
    assert write_crash_log(RuntimeError("boom")) is None
    assert target.read_text() == "not opsconsole's\n"


@pytest.mark.parametrize("runbook_id", ["../../x", "a/b", "/etc/x", "..\\x"])
def test_evidence_path_refuses_an_id_that_leaves_the_folder(
    tmp_path: Path, runbook_id: str
) -> None:
    folder = tmp_path / "out" / "evidence"
    folder.mkdir(parents=True)
    with pytest.raises(UnsafePath, match="must stay inside"):
        evidence_path(session_for(runbook_id), folder)


def test_inside_refuses_a_symlink_that_points_out(tmp_path: Path) -> None:
    folder = tmp_path / "runs"
    folder.mkdir()
    (folder / "r1.json").symlink_to(tmp_path / "outside.json")
    with pytest.raises(UnsafePath, match="outside"):
        inside(folder, "r1.json")
    for name in ["", ".", ".."]:
        with pytest.raises(UnsafePath):
            inside(folder, name)
    assert inside(folder, "r2.json") == folder / "r2.json"
    assert evidence_path(session_for("v2-control-plane"), folder).parent == folder


def test_run_store_refuses_a_run_id_that_leaves_the_runs_folder(tmp_path: Path) -> None:
    with pytest.raises(UnsafePath):
        RunStore(tmp_path).path("../../escaped")


def test_atomic_write_is_still_importable_from_run() -> None:
    from opsconsole.files import atomic_write
    from opsconsole.run import atomic_write as from_run

    assert from_run is atomic_write
