"""One live console per run: ``<state>/runs/<run-id>.lock``.

The lock file says who holds the run (user, host, pid, terminal, since) and
the holder keeps an exclusive ``flock`` on it for as long as it lives. The
kernel drops that lock when the process ends for any reason, SIGKILL
included, so a run whose console died can be opened again at once, while a
console that is merely cut off (an SSH link that hangs instead of closing)
keeps it.

Every acquisition writes a fresh file and renames it into place while already
holding its lock, so a reader never sees half a file. A take-over does the
same without waiting for the old holder: the old holder's lock is then on a
file that is no longer the run's lock file, which :meth:`RunLock.still_ours`
notices with one ``stat``. Generations count the holders (for messages and
the audit log); which file the path names is what decides.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import json
import os
import socket
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import Any

from .errors import RunHeld, RunStateError, RunTakenOver
from .files import FILE_MODE, fsync_dir, inside, open_private, private_dir, write_all
from .run import now_iso

__all__ = ["Holder", "RunLock"]

#: a reader that checks the lock holds it shared for microseconds: try a few times first
_TRIES = 10
_PAUSE = 0.01


def _this_host() -> str:
    return socket.gethostname()


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry (containers): the uid still says who
        return f"uid {os.getuid()}"


def _tty() -> str:
    for fd in (0, 1, 2):
        with contextlib.suppress(OSError):
            if os.isatty(fd):
                return os.ttyname(fd).removeprefix("/dev/")
    return "no terminal"


def _process_start(pid: int) -> int | None:
    """Start time of ``pid`` (clock ticks since boot) on Linux; tells a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces or parentheses: count from its end
    fields = stat[stat.rfind(")") + 2 :].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def _pid_alive(pid: int, started: int | None) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, another user's
    if started is not None:
        now = _process_start(pid)
        return now is None or now == started
    return True


@dataclass(frozen=True)
class Holder:
    """Who holds (or last held) a run, as read from its lock file at one moment."""

    user: str
    host: str
    pid: int
    tty: str
    since: str
    generation: int = 0
    #: why this holder took the run over from another console ("" when it did not)
    reason: str = ""
    started: int | None = None
    #: the lock is held by some process right now
    held: bool = False
    #: held, and the pid is alive on this host (the same process, not a reused pid)
    alive: bool = False

    @property
    def here(self) -> bool:
        return self.host == _this_host()

    @property
    def who(self) -> str:
        return f"{self.user}@{self.host} (pid {self.pid} on {self.tty}, since {self.since})"

    @property
    def who_at(self) -> str:
        return f"{self.user}@{self.host} (pid {self.pid}) at {self.since}"

    @property
    def status(self) -> str:
        """In an operator's words: is that console still there?"""
        if not self.held:
            return "no console holds it now"
        if self.alive:
            return "that console is still running"
        if self.here:
            return (
                "its process has ended, but something it started still holds the lock; "
                "it is safe to take over once that is stopped"
            )
        return f"held from {self.host}: cannot tell from here whether that console still runs"

    def to_json(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "host": self.host,
            "pid": self.pid,
            "tty": self.tty,
            "since": self.since,
            "started": self.started,
        }

    @classmethod
    def me(cls, generation: int, reason: str = "") -> Holder:
        pid = os.getpid()
        return cls(
            user=_user(),
            host=_this_host(),
            pid=pid,
            tty=_tty(),
            since=now_iso(),
            generation=generation,
            reason=reason,
            started=_process_start(pid),
            held=True,
            alive=True,
        )

    @classmethod
    def parse(cls, data: bytes, *, held: bool) -> Holder:
        """A holder from a lock file's bytes; one that cannot be read is 'unknown'."""
        try:
            body = json.loads(data)
            info = body["holder"]
            started = info.get("started")
            holder = cls(
                user=str(info["user"]),
                host=str(info["host"]),
                pid=int(info["pid"]),
                tty=str(info["tty"]),
                since=str(info["since"]),
                generation=int(body.get("generation", 0)),
                reason=str(body.get("reason", "")),
                started=started if isinstance(started, int) else None,
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return _unknown(held)
        alive = held and holder.here and _pid_alive(holder.pid, holder.started)
        return replace(holder, held=held, alive=alive)


def _lock_path(home: Path, run_id: str) -> Path:
    return inside(private_dir(home / "runs"), f"{run_id}.lock")


def _same_file(fd: int, path: Path) -> bool:
    try:
        named = os.stat(path, follow_symlinks=False)
    except OSError:
        return False
    mine = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (mine.st_dev, mine.st_ino)


def _try_lock(fd: int, operation: int) -> bool:
    """Non-blocking, a few times: a reader's momentary shared lock must not look like a holder."""
    for attempt in range(_TRIES):
        try:
            fcntl.flock(fd, operation | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if attempt + 1 < _TRIES:
                time.sleep(_PAUSE)
    return False


def _read(fd: int) -> bytes:
    return os.pread(fd, 65536, 0)


def _install(path: Path, holder: Holder, previous: Holder | None) -> int:
    """Put a new lock file in place, already locked by us; returns its fd."""
    body = {
        "holder": holder.to_json(),
        "generation": holder.generation,
        "reason": holder.reason,
        "previous": previous.to_json() if previous is not None else None,
    }
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, FILE_MODE)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a new file: nobody else has it
        write_all(fd, json.dumps(body, indent=2).encode() + b"\n")
        os.fsync(fd)
        os.replace(tmp, path)
    except BaseException:
        os.close(fd)
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return fd


class RunLock:
    """This console's hold on one run. Release it (or exit) to let another console in."""

    def __init__(self, run_id: str, path: Path, fd: int, holder: Holder, previous: Holder | None):
        self.run_id = run_id
        self.path = path
        self.holder = holder
        #: the console this one took the run over from (None for a plain acquire)
        self.previous = previous
        self._fd: int | None = fd
        info = os.fstat(fd)
        self._ident = (info.st_dev, info.st_ino)

    @property
    def generation(self) -> int:
        return self.holder.generation

    # -- taking a run ----------------------------------------------------------------

    @classmethod
    def acquire(cls, home: Path, run_id: str) -> RunLock:
        """Hold the run; RunHeld (naming the holder) when another live process holds it."""
        path = _lock_path(home, run_id)
        for _ in range(_TRIES):
            try:
                fd = open_private(path, os.O_RDWR)
            except OSError as exc:
                raise RunStateError(
                    f"cannot lock run {run_id} ({path}): {exc.strerror or exc}"
                ) from None
            try:
                if not _try_lock(fd, fcntl.LOCK_EX):
                    raise RunHeld(run_id, cls._settled(path))
                if not _same_file(fd, path):
                    continue  # taken over between open and lock: look again
                last = Holder.parse(_read(fd), held=False)
                holder = Holder.me(last.generation + 1)
                return cls(run_id, path, _install(path, holder, None), holder, None)
            finally:
                os.close(fd)  # the old file's lock goes; the new file is locked by us
        raise RunStateError(f"run {run_id}: its lock keeps changing hands; try again")

    @classmethod
    def take_over(cls, home: Path, run_id: str, reason: str) -> RunLock:
        """Hold the run even if another console does. That console's ``still_ours()``
        turns False and it must stop writing. Audit ``reason`` and ``previous``."""
        if not reason.strip():
            raise ValueError("a take-over needs a reason")
        try:
            return cls.acquire(home, run_id)
        except RunHeld as held:
            previous = held.holder
        path = _lock_path(home, run_id)
        holder = Holder.me(previous.generation + 1, reason.strip())
        try:
            fd = _install(path, holder, previous)
        except OSError as exc:
            raise RunStateError(f"cannot take over run {run_id}: {exc.strerror or exc}") from None
        return cls(run_id, path, fd, holder, previous)

    @classmethod
    def holder_of(cls, home: Path, run_id: str) -> Holder | None:
        """Who holds the run now, without taking it (for a read-only open); None if free."""
        path = _lock_path(home, run_id)
        for _ in range(_TRIES):
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            except FileNotFoundError:
                return None
            except OSError as exc:
                raise RunStateError(f"cannot read the lock of run {run_id}: {exc}") from None
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                except BlockingIOError:
                    holder = Holder.parse(_read(fd), held=True)
                    if _same_file(fd, path):
                        return holder
                    continue
                if _same_file(fd, path):
                    return None
            finally:
                os.close(fd)
        return cls._settled(path)

    @classmethod
    def _settled(cls, path: Path) -> Holder:
        """The holder named by a held lock; waits out the moment a new file is being put
        in place (its first acquirer holds an empty file until then)."""
        for _ in range(_TRIES):
            holder = cls._current(path, held=True)
            if holder is not None and holder.pid:
                return holder
            time.sleep(_PAUSE)
        return _unknown(held=True)

    @staticmethod
    def _current(path: Path, *, held: bool) -> Holder | None:
        """What the lock file names now (the newest holder), or None without a file."""
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError:
            return _unknown(held)
        return Holder.parse(data, held=held)

    # -- holding it ------------------------------------------------------------------

    def still_ours(self) -> bool:
        """True while no other console took the run over. One ``stat``: call it before
        every save."""
        return self._fd is not None and _same_file(self._fd, self.path)

    def ensure_ours(self) -> None:
        """RunTakenOver (saying by whom and when) once the run was taken over."""
        if not self.still_ours():
            raise RunTakenOver(self.run_id, self.current())

    def current(self) -> Holder | None:
        """Who the lock file names now: this console, or the one that took over."""
        return self._current(self.path, held=True)

    def release(self) -> None:
        """Let the run go. The file stays (its lock is what counts; a file nobody locks is
        free): removing it could remove a newer holder's file."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _unknown(held: bool) -> Holder:
    return Holder("unknown", "unknown host", 0, "unknown", "unknown", held=held)
