"""Append-only, hash-chained JSONL audit log.

Each record carries ``prev`` (the previous record's hash) and ``hash`` =
sha256 over the canonical JSON of the record without ``hash``. Editing,
removing or reordering any record breaks the chain at that line, which
:func:`verify` reports. Mutating actions write an ``intent`` record before
they act and an ``outcome`` record after; if the log cannot be written,
:class:`~opsconsole.errors.AuditUnavailable` is raised and the action is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import AuditUnavailable
from .run import now_iso
from .secrets import Redactor

__all__ = ["GENESIS", "AuditLog", "AuditVerdict", "verify"]

GENESIS = "0" * 64


def _digest(record: dict[str, Any]) -> str:
    body = {key: value for key, value in record.items() if key != "hash"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class AuditVerdict:
    ok: bool
    records: int
    line: int | None = None
    message: str = ""


def verify(path: Path) -> AuditVerdict:
    """Walk the chain; the verdict names the first bad line."""
    prev = GENESIS
    count = 0
    try:
        handle = path.open(encoding="utf-8")
    except FileNotFoundError:
        return AuditVerdict(True, 0, message="no audit log yet")
    except OSError as exc:
        return AuditVerdict(False, 0, None, f"cannot read {path}: {exc.strerror or exc}")
    with handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                return AuditVerdict(False, count, number, "blank line inside the log")
            try:
                record = json.loads(raw)
            except json.JSONDecodeError:
                return AuditVerdict(False, count, number, "not a JSON record (truncated or edited)")
            if not isinstance(record, dict) or "hash" not in record:
                return AuditVerdict(False, count, number, "record has no hash")
            if record.get("prev") != prev:
                return AuditVerdict(
                    False, count, number, "chain broken: prev does not match the record before"
                )
            if _digest(record) != record["hash"]:
                return AuditVerdict(False, count, number, "hash mismatch: the record was altered")
            prev = record["hash"]
            count += 1
    return AuditVerdict(True, count)


class AuditLog:
    """Appends redacted, chained records; one writer per process at a time."""

    def __init__(self, path: Path, redactor: Redactor | None = None) -> None:
        self.path = path
        self.redactor = redactor or Redactor()
        self._lock = threading.Lock()

    def _last_hash(self) -> str:
        try:
            with self.path.open("rb") as handle:
                handle.seek(0, os.SEEK_END)
                size = handle.tell()
                chunk = min(size, 65536)
                handle.seek(size - chunk)
                lines = handle.read().splitlines()
        except FileNotFoundError:
            return GENESIS
        for raw in reversed(lines):
            if raw.strip():
                try:
                    return str(json.loads(raw)["hash"])
                except (ValueError, KeyError, TypeError):
                    raise AuditUnavailable(
                        f"{self.path}: last record is unreadable; run `opsconsole audit verify`"
                    ) from None
        return GENESIS

    def append(self, event: str, **fields: Any) -> dict[str, Any]:
        """Write one record durably (fsync); raises AuditUnavailable on any failure."""
        with self._lock:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                record: dict[str, Any] = {"ts": now_iso(), "event": event}
                record.update(self.redactor.redact_obj(fields))
                record["prev"] = self._last_hash()
                record["hash"] = _digest(record)
                line = json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n"
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    os.write(fd, line.encode())
                    os.fsync(fd)
                finally:
                    os.close(fd)
            except AuditUnavailable:
                raise
            except OSError as exc:
                raise AuditUnavailable(
                    f"audit log {self.path} cannot be written ({exc.strerror or exc}); "
                    "mutating actions are refused until it can"
                ) from None
            return record

    def writable(self) -> str | None:
        """None when the log can be appended to, else why not (checked without writing)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            os.close(fd)
        except OSError as exc:
            return f"audit log {self.path} cannot be written ({exc.strerror or exc})"
        return None
