"""Append-only, hash-chained JSONL audit log.

Each record carries ``seq`` (its 1-based position), ``prev`` (the previous
record's hash) and ``hash`` = sha256 over the canonical JSON of the record
without ``hash``. Editing, removing or reordering any record breaks the chain
at that line, which :func:`verify` reports. Removing records *at the end* leaves
a valid shorter chain: only an anchor kept elsewhere (:class:`AuditHead`, the
hash and seq of a record, stored in the run state and printed in evidence)
shows it. Anyone who can rewrite the whole file can recompute every hash; the
chain proves the log is the one that was written only up to the anchors kept
outside it.

Mutating actions write an ``intent`` record before they act and an ``outcome``
record after. A record is acted on only once it is fully written and fsynced
(every write is checked; a torn record is cut off again), under an exclusive
``flock`` so concurrent processes extend one chain. Any failure raises
:class:`~opsconsole.errors.AuditUnavailable` and the action is refused.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from .errors import AuditUnavailable
from .files import fsync_dir, open_private, write_all
from .run import now_iso
from .secrets import Redactor

__all__ = ["GENESIS", "MAX_VALUE_BYTES", "AuditHead", "AuditLog", "AuditVerdict", "verify"]

GENESIS = "0" * 64
#: a string value longer than this (UTF-8 bytes, after redaction) is stored as a digest
MAX_VALUE_BYTES = 4096
#: how much of a digested value is kept readable
HEAD_CHARS = 200
#: an append waits this long for another process's append before refusing
LOCK_TIMEOUT = 10.0
_BLOCK = 65536
_HASH = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class AuditHead:
    """The chain's last record: its hash and its 1-based position (``seq``).

    Kept outside the log (run state, evidence), it makes truncation visible:
    ``verify(path, anchor=head)`` fails when the log no longer reaches it.
    """

    hash: str
    seq: int

    def __str__(self) -> str:
        return f"{self.hash}:{self.seq}"

    @classmethod
    def parse(cls, text: str) -> AuditHead:
        """``HASH:SEQ`` as printed by ``audit verify`` and in evidence; ValueError if not."""
        digest, sep, seq = text.strip().partition(":")
        digest = digest.lower()
        if not sep or not _HASH.fullmatch(digest) or not seq.isdigit():
            raise ValueError(
                f"{text!r} is not an audit anchor: expected HASH:SEQ, the 64 hex digits of a "
                "record's hash and its number, as `opsconsole audit verify` prints them"
            )
        if int(seq) == 0 and digest != GENESIS:
            raise ValueError(f"{text!r} is not an audit anchor: record 0 is the empty log")
        return cls(digest, int(seq))


EMPTY = AuditHead(GENESIS, 0)


def _digest(record: dict[str, Any]) -> str:
    body = {key: value for key, value in record.items() if key != "hash"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _plain(value: Any) -> Any:
    """JSON types only, before redaction (so an object's text is redacted too)."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(item) for item in value]
    return str(value)  # Secret's str is masked


def _cap(value: Any) -> Any:
    """After redaction: a long string becomes its digest, size and a readable head."""
    if isinstance(value, str):
        try:
            encoded = value.encode()
        except UnicodeEncodeError:  # lone surrogates from hostile JSON: never a crash here
            encoded = value.encode("utf-8", "replace")
            value = encoded.decode()
        if len(encoded) <= MAX_VALUE_BYTES:
            return value
        return {
            "sha256": hashlib.sha256(encoded).hexdigest(),
            "bytes": len(encoded),
            "head": value[:HEAD_CHARS],
        }
    if isinstance(value, dict):
        return {_cap_key(key): _cap(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_cap(item) for item in value]
    return value


def _cap_key(key: str) -> str:
    capped = _cap(key)
    return capped if isinstance(capped, str) else f"sha256:{capped['sha256']}"


def _flock(fd: int, operation: int, timeout: float) -> bool:
    """Take ``operation`` (LOCK_EX/LOCK_SH) within ``timeout`` seconds; False if not."""
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        try:
            fcntl.flock(fd, operation | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(delay)
            delay = min(delay * 2, 0.05)


def _line_start(fd: int, end: int) -> int:
    """Offset just after the last newline before ``end`` (0 when there is none)."""
    pos = end
    while pos > 0:
        start = max(0, pos - _BLOCK)
        index = os.pread(fd, pos - start, start).rfind(b"\n")
        if index >= 0:
            return start + index + 1
        pos = start
    return 0


def _count_lines(fd: int, size: int) -> int:
    count = 0
    for offset in range(0, size, _BLOCK):
        count += os.pread(fd, min(_BLOCK, size - offset), offset).count(b"\n")
    return count


def _parse(raw: bytes) -> dict[str, Any] | None:
    try:
        record = json.loads(raw)
    except ValueError:  # includes UnicodeDecodeError
        return None
    return record if isinstance(record, dict) and "hash" in record else None


def _is_sealed(record: dict[str, Any] | None) -> bool:
    return record is not None and _digest(record) == record["hash"]


def _encode(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n").encode()


@dataclass(frozen=True)
class AuditVerdict:
    ok: bool
    records: int
    line: int | None = None
    message: str = ""
    #: the last record that verified: what to keep outside the log as an anchor
    head: AuditHead = EMPTY


def _lines(handle: BinaryIO, limit: int) -> Iterator[bytes]:
    """The file's lines up to byte ``limit`` (what was there when verification began)."""
    consumed = 0
    for raw in handle:
        if consumed >= limit:
            return
        raw = raw[: limit - consumed]
        consumed += len(raw)
        yield raw


def _problem(
    raw: bytes, record: dict[str, Any] | None, number: int, head: AuditHead, numbered: bool
) -> str | None:
    """What is wrong with line ``number`` after a chain ending at ``head``; None if fine."""
    if not raw.strip():
        return "blank line inside the log"
    if record is None:
        return "not a JSON record (truncated or edited)"
    if record.get("prev") != head.hash:
        return "chain broken: prev does not match the record before"
    if _digest(record) != record["hash"]:
        return "hash mismatch: the record was altered"
    seq = record.get("seq")
    if seq is None:
        if numbered:
            return "record has no sequence number (every record after a numbered one must be)"
    elif type(seq) is not int or seq != number:
        return f"sequence number {seq!r} where {number} was expected (records removed or added)"
    return None


def verify(path: Path, anchor: AuditHead | None = None) -> AuditVerdict:
    """Walk the chain; the verdict names the first bad line.

    With ``anchor`` the log must still contain that record unchanged: a log cut short
    (or cut and re-extended) since the anchor was taken fails. Logs written before
    records had ``seq`` verify as before; once one record has ``seq`` every later one
    must, and each must equal its position.
    """
    head = EMPTY
    numbered = False
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        if anchor is not None and anchor.seq > 0:
            return AuditVerdict(
                False,
                0,
                None,
                f"log ends before the anchored record {anchor.seq} (truncated?): no log at all",
            )
        return AuditVerdict(True, 0, message="no audit log yet")
    except OSError as exc:
        return AuditVerdict(False, 0, None, f"cannot read {path}: {exc.strerror or exc}")
    with handle:
        # Writers append under an exclusive lock: with a shared one for a moment, the size
        # ends on a whole record, and the scan after it never holds writers up.
        locked = _flock(handle.fileno(), fcntl.LOCK_SH, 2.0)
        size = os.fstat(handle.fileno()).st_size
        if locked:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        for number, raw in enumerate(_lines(handle, size), start=1):
            record = _parse(raw)
            problem = _problem(raw, record, number, head, numbered)
            if record is None or problem is not None:
                return AuditVerdict(False, head.seq, number, problem or "", head)
            numbered = numbered or "seq" in record
            head = AuditHead(str(record["hash"]), number)
            if anchor is not None and number == anchor.seq and head.hash != anchor.hash:
                return AuditVerdict(
                    False,
                    number - 1,
                    number,
                    f"record {number} differs from the anchor: the log was rewritten after "
                    f"the anchor {anchor} was taken",
                    head,
                )
    if anchor is not None and head.seq < anchor.seq:
        return AuditVerdict(
            False,
            head.seq,
            None,
            f"log ends before the anchored record {anchor.seq} (truncated?): "
            f"it has {head.seq} records",
            head,
        )
    return AuditVerdict(True, head.seq, head=head)


_PROCESS_LOCKS: dict[Path, threading.Lock] = {}
_PROCESS_LOCKS_GUARD = threading.Lock()


def _process_lock(path: Path) -> threading.Lock:
    """One lock per log file in this process, shared by every AuditLog on it: flock keeps
    processes apart, but on NFS it is emulated with POSIX locks, which a process never
    conflicts with itself on."""
    key = path.absolute()
    with _PROCESS_LOCKS_GUARD:
        return _PROCESS_LOCKS.setdefault(key, threading.Lock())


class AuditLog:
    """Appends redacted, bounded, chained records; one writer at a time across processes."""

    def __init__(self, path: Path, redactor: Redactor | None = None) -> None:
        self.path = path
        self.redactor = redactor or Redactor()
        self._lock = _process_lock(path)

    def _unavailable(self, why: str) -> AuditUnavailable:
        return AuditUnavailable(
            f"audit log {self.path} cannot be written ({why}); "
            "mutating actions are refused until it can"
        )

    def _head(self, fd: int, size: int) -> AuditHead:
        """The last complete record's head; ``size`` must end on a newline."""
        if size == 0:
            return EMPTY
        start = _line_start(fd, size - 1)
        record = _parse(os.pread(fd, size - start, start))
        if record is None:
            raise AuditUnavailable(
                f"{self.path}: last record is unreadable; run `opsconsole audit verify`"
            )
        seq = record.get("seq")
        if type(seq) is not int:  # a log written before records were numbered
            seq = _count_lines(fd, size)
        return AuditHead(str(record["hash"]), seq)

    def _seal_tail(self, fd: int, size: int) -> tuple[int, dict[str, Any] | None]:
        """A tail without its newline is a record cut short (a crash mid-write): a complete
        one gets its newline, a torn one is removed. Returns the new size and what to audit."""
        start = _line_start(fd, size)
        fragment = os.pread(fd, size - start, start)
        if _is_sealed(_parse(fragment)):
            write_all(fd, b"\n")
            return size + 1, None
        os.ftruncate(fd, start)
        return start, {
            "removed_bytes": len(fragment),
            "removed_sha256": hashlib.sha256(fragment).hexdigest(),
            "reason": "an incomplete record (a write cut short) was removed",
        }

    def _write(self, fd: int, size: int, event: str, fields: dict[str, Any]) -> AuditHead:
        head = self._head(fd, size)
        record: dict[str, Any] = _cap(self.redactor.redact_obj(_plain(fields)))
        record.update(ts=now_iso(), event=event, seq=head.seq + 1, prev=head.hash)
        record["hash"] = _digest(record)
        data = _encode(record)
        try:
            write_all(fd, data)
            os.fsync(fd)
            if os.fstat(fd).st_size != size + len(data) or os.pread(fd, len(data), size) != data:
                raise OSError("the record read back differs from the record written")
        except OSError as exc:
            why = exc.strerror or str(exc)
            try:
                os.ftruncate(fd, size)
                os.fsync(fd)
            except OSError:
                raise self._unavailable(
                    f"{why}; the incomplete record could not be removed, run "
                    "`opsconsole audit verify`"
                ) from None
            raise self._unavailable(f"{why}; the incomplete record was removed") from None
        return AuditHead(record["hash"], head.seq + 1)

    def append(self, event: str, **fields: Any) -> AuditHead:
        """Write one record durably and return the new head; AuditUnavailable on any failure.

        When this returns, the whole record is on disk (written, read back, fsynced).
        """
        with self._lock:
            try:
                fd = open_private(self.path, os.O_RDWR | os.O_APPEND)
            except OSError as exc:
                raise self._unavailable(exc.strerror or str(exc)) from None
            try:
                if not _flock(fd, fcntl.LOCK_EX, LOCK_TIMEOUT):
                    raise self._unavailable(
                        f"another opsconsole process held it for over {LOCK_TIMEOUT:.0f}s"
                    )
                size = os.fstat(fd).st_size
                new_file = size == 0
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    size, repair = self._seal_tail(fd, size)
                    if repair is not None:
                        self._write(fd, size, "audit.repair", repair)
                        size = os.fstat(fd).st_size
                head = self._write(fd, size, event, fields)
                if new_file:
                    fsync_dir(self.path.parent)  # a new log: make its name durable too
                return head
            except AuditUnavailable:
                raise
            except OSError as exc:
                raise self._unavailable(exc.strerror or str(exc)) from None
            finally:
                os.close(fd)  # releases the flock

    def head(self) -> AuditHead:
        """The current head (hash and seq of the last record) without writing."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return EMPTY
        except OSError as exc:
            raise AuditUnavailable(f"cannot read {self.path}: {exc.strerror or exc}") from None
        try:
            if not _flock(fd, fcntl.LOCK_SH, LOCK_TIMEOUT):
                raise AuditUnavailable(
                    f"{self.path}: another opsconsole process held the log for over "
                    f"{LOCK_TIMEOUT:.0f}s"
                )
            size = os.fstat(fd).st_size
            return self._head(fd, _line_start(fd, size))
        except OSError as exc:
            raise AuditUnavailable(f"cannot read {self.path}: {exc.strerror or exc}") from None
        finally:
            os.close(fd)

    def writable(self) -> str | None:
        """None when the log can be appended to, else why not (checked without writing)."""
        try:
            os.close(open_private(self.path, os.O_WRONLY | os.O_APPEND))
        except OSError as exc:
            return f"audit log {self.path} cannot be written ({exc.strerror or exc})"
        return None
