"""Bounded child processes: an allowlisted environment, streamed output, the whole group stopped.

Every command opsconsole runs goes through :func:`run_bounded`:

- the child gets :func:`child_environment`, never opsconsole's own environment
  (which holds every ``OPSCONSOLE_SECRET_*``);
- it runs in its own session and process group, behind the lifeline guard
  (:mod:`opsconsole.lifeline`), so the group is stopped even when opsconsole is
  SIGKILLed;
- output is read in chunks, handed on line by line (long lines in pieces) and
  kept only as a bounded tail plus counts, so ``yes`` costs a constant amount
  of memory;
- the whole group is stopped (SIGTERM, a grace period, SIGKILL) on timeout, on
  cancellation, when the command exits but leaves processes behind, and, through
  :func:`install_hangup_handlers`, on SIGHUP/SIGTERM and at exit. The result
  says in operator words what was stopped and why.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import errno
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

__all__ = [
    "CHILD_ENV_ALLOWLIST",
    "LINE_CONTINUES",
    "ProcessResult",
    "child_environment",
    "install_hangup_handlers",
    "kill_all_children",
    "run_bounded",
]

#: what a child inherits from opsconsole's environment; anything else it must be given (``env:``)
CHILD_ENV_ALLOWLIST = frozenset(
    {
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "SHELL",
        "LANG",
        "LANGUAGE",
        "TERM",
        "TZ",
        "TMPDIR",
        "COLUMNS",
        "LINES",
    }
)
#: locale categories (LC_ALL, LC_CTYPE, ...) pass too
CHILD_ENV_PREFIXES = ("LC_",)
# Deliberately left out (a step passes them with ``env:`` when it needs them):
# SSH_AUTH_SOCK (the operator's SSH keys, possibly forwarded from a laptop: a credential),
# DBUS_SESSION_BUS_ADDRESS and XDG_RUNTIME_DIR (reach the keyring that holds our secrets),
# DISPLAY/XAUTHORITY, http(s)_proxy (often carry user:password), cloud credentials and
# profiles (AWS_*, GOOGLE_*, KUBECONFIG, VAULT_TOKEN), and everything that injects code
# into a child: BASH_ENV, ENV, LD_PRELOAD, LD_LIBRARY_PATH, PYTHON*, PROMPT_COMMAND.

#: appended to every piece of a line longer than ``max_line`` except its last
LINE_CONTINUES = " …(line continues)"

#: how long a command's leftover processes may keep its output open after it exited
_LINGER = 0.5
#: how often a stopping group is checked for live members
_POLL = 0.02
_LIFELINE = str(Path(__file__).with_name("lifeline.py"))


def child_environment(
    extra: Mapping[str, str] | None = None, *, source: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The allowlisted part of ``source`` (default ``os.environ``) plus ``extra`` (the step's
    ``env:``). Nothing named ``OPSCONSOLE_SECRET_*`` passes unless ``extra`` names it."""
    source = os.environ if source is None else source
    env = {
        name: value
        for name, value in source.items()
        if name in CHILD_ENV_ALLOWLIST or name.startswith(CHILD_ENV_PREFIXES)
    }
    env.update(extra or {})
    return env


@dataclass
class ProcessResult:
    #: the command's exit status; None when a signal ended it
    exit_code: int | None
    #: the signal that ended the command, if one did
    signal: int | None
    #: it was still running when ``timeout`` ran out
    timed_out: bool
    #: it was stopped from outside (hang-up, opsconsole exiting): see ``stopped``
    cancelled: bool
    #: the last ``tail_bytes`` of stdout+stderr, decoded (utf-8, errors replaced)
    output: str
    bytes_total: int
    lines_total: int
    #: earlier output was dropped; ``output`` then starts at a line boundary where it can
    truncated: bool
    duration_ms: float
    #: what opsconsole stopped and why, in operator words; empty when it exited by itself
    stopped: str = ""


# -- the registry of live process groups (for hang-up and exit) ----------------------------


@dataclass
class _LiveGroup:
    command: str
    #: set by kill_all_children: the sentence run_bounded reports
    stopped_by: str = ""


#: pgid -> group. Plain dict operations only: a signal handler reads it (no lock to deadlock on).
_LIVE: dict[int, _LiveGroup] = {}


def _signal_group(pgid: int, signum: int) -> bool:
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        return False
    except PermissionError:  # a member changed user (setuid): nothing more we can do
        return False
    return True


def _group_alive(pgid: int) -> bool:
    """Whether a process of the group still runs (zombies are dead: they do not count)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a member that changed user still runs
        pass
    try:
        entries = os.listdir("/proc")
    except OSError:  # no /proc (macOS): trust kill(0), which counts an unreaped zombie too
        return True
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            stat = Path("/proc", entry, "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            return True
    return False


def kill_all_children(reason: str, *, grace: float = 2.0) -> int:
    """Stop every live child process group (SIGTERM, up to ``grace`` seconds, SIGKILL).

    Synchronous and lock-free, so a signal handler or atexit can call it. Returns how
    many groups were still running. ``reason`` says why, in operator words (e.g.
    "opsconsole received SIGHUP"); a run_bounded still waiting reports it.
    """
    signalled: list[tuple[int, _LiveGroup]] = []
    for pgid, group in list(_LIVE.items()):
        if _signal_group(pgid, signal.SIGTERM):
            signalled.append((pgid, group))
            group.stopped_by = f"{reason}: stopped the process group (SIGTERM)"
    deadline = time.monotonic() + grace
    remaining = signalled
    while remaining and time.monotonic() < deadline:
        time.sleep(_POLL)
        remaining = [(pgid, group) for pgid, group in remaining if _group_alive(pgid)]
    for pgid, group in remaining:
        if _signal_group(pgid, signal.SIGKILL):
            group.stopped_by = (
                f"{reason}: stopped the process group (SIGTERM, then SIGKILL after {grace:g}s)"
            )
    return len(signalled)


_handlers_installed = False


def install_hangup_handlers() -> None:
    """On SIGHUP and SIGTERM, and at exit, stop every live child group first.

    After the children, the signal does what it did before: a previous Python handler
    is called, an ignored signal stays ignored, and by default the process dies of it
    (exit status 128+signal, as without this handler). Call once at start from the main
    thread (the CLI's ``main`` and the console's start); elsewhere only atexit applies.
    """
    global _handlers_installed
    if _handlers_installed:
        return
    _handlers_installed = True
    atexit.register(kill_all_children, "opsconsole is exiting")
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGHUP, signal.SIGTERM):
        previous = signal.getsignal(signum)

        def on_signal(received: int, frame: FrameType | None, previous: Any = previous) -> None:
            kill_all_children(f"opsconsole received {signal.Signals(received).name}")
            if callable(previous):
                previous(received, frame)
            elif previous != signal.SIG_IGN:
                signal.signal(received, signal.SIG_DFL)
                os.kill(os.getpid(), received)

        signal.signal(signum, on_signal)


# -- output: chunks in, lines out, a bounded tail kept ---------------------------------------


class _Output:
    def __init__(
        self, tail_bytes: int, max_line: int, on_output: Callable[[str], None] | None
    ) -> None:
        self.tail_bytes = tail_bytes
        self.max_line = max_line
        self.on_output = on_output
        self.tail = bytearray()
        self.truncated = False
        self.bytes_total = 0
        self.lines_total = 0
        self.ends_with_newline = True
        #: the unfinished line (never more than max_line bytes)
        self.pending = bytearray()
        self.error: BaseException | None = None
        self.broken: asyncio.Future[None] | None = None

    def feed(self, data: bytes) -> None:
        if not data:
            return
        self.bytes_total += len(data)
        self.ends_with_newline = data.endswith(b"\n")
        self.tail += data
        if len(self.tail) > self.tail_bytes:
            del self.tail[: len(self.tail) - self.tail_bytes]
            self.truncated = True
        newlines = data.count(b"\n")
        self.lines_total += newlines
        if self.on_output is None:
            return
        try:
            if newlines:
                last = data.rindex(b"\n")
                text = (self.pending + data[:last]).decode("utf-8", errors="replace")
                self.pending[:] = data[last + 1 :]
                for line in text.split("\n"):
                    self._deliver(line)
            else:
                self.pending += data
            while len(self.pending) > self.max_line:
                cut = self.max_line
                while cut > 0 and self.pending[cut] & 0xC0 == 0x80:  # not inside a character
                    cut -= 1
                cut = cut or self.max_line
                piece = self.pending[:cut].decode("utf-8", errors="replace")
                del self.pending[:cut]
                self.on_output(piece + LINE_CONTINUES)
        except Exception as exc:  # the consumer failed: stop feeding it, stop the command
            self.error, self.on_output = exc, None
            if self.broken is not None and not self.broken.done():
                self.broken.set_result(None)

    def _deliver(self, line: str) -> None:
        assert self.on_output is not None
        while len(line) > self.max_line:
            self.on_output(line[: self.max_line] + LINE_CONTINUES)
            line = line[self.max_line :]
        self.on_output(line)

    def finish(self) -> str:
        """Deliver the last unterminated line; return the tail as text."""
        if not self.ends_with_newline:
            self.lines_total += 1
        if self.pending and self.on_output is not None:
            self.on_output(self.pending.decode("utf-8", errors="replace"))
        self.pending.clear()
        tail = bytes(self.tail)
        if self.truncated:
            # Start at a line boundary: no half line, no half of a secret the redactor misses.
            newline = tail.find(b"\n")
            if 0 <= newline < len(tail) - 1:
                tail = tail[newline + 1 :]
            else:
                tail = tail.lstrip(bytes(range(0x80, 0xC0)))
        return tail.decode("utf-8", errors="replace")


class _ChildProtocol(asyncio.SubprocessProtocol):
    def __init__(self, loop: asyncio.AbstractEventLoop, output: _Output) -> None:
        self.output = output
        self.exited: asyncio.Future[None] = loop.create_future()
        self.eof: asyncio.Future[None] = loop.create_future()
        self.broken: asyncio.Future[None] = loop.create_future()
        output.broken = self.broken

    def pipe_data_received(self, fd: int, data: bytes | str) -> None:
        self.output.feed(data.encode() if isinstance(data, str) else data)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd == 1 and not self.eof.done():
            self.eof.set_result(None)

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)


# -- running one command ---------------------------------------------------------------------


def _check_executable(argv0: str, env: Mapping[str, str], cwd: str | None) -> None:
    """Raise the OSError exec would raise, before the guard runs (it can only print it)."""
    if os.sep in argv0:
        found = shutil.which(os.path.join(cwd or ".", argv0), path="")
    else:
        found = shutil.which(argv0, path=env.get("PATH", os.defpath))
    if found is None:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), argv0)


async def _wait(future: asyncio.Future[None], timeout: float) -> bool:
    """Whether ``future`` completed within ``timeout`` seconds (it is never cancelled)."""
    if not future.done() and timeout > 0:
        await asyncio.wait([future], timeout=timeout)
    return future.done()


async def _stop_group(pgid: int, child: _ChildProtocol, grace: float) -> str:
    """SIGTERM the group, give it ``grace`` seconds, SIGKILL what is left, await the leader.

    Returns how it went, for the operator ("SIGTERM" or "SIGTERM, then SIGKILL after 2s")."""
    _signal_group(pgid, signal.SIGTERM)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    await _wait(child.exited, grace)
    while _group_alive(pgid) and loop.time() < deadline:
        await asyncio.sleep(_POLL)
    if not _group_alive(pgid):
        await child.exited  # the leader is gone or going; reap it
        return "SIGTERM"
    _signal_group(pgid, signal.SIGKILL)
    await child.exited
    await _gone(pgid)
    return f"SIGTERM, then SIGKILL after {grace:g}s"


async def _gone(pgid: int, bound: float = 5.0) -> None:
    """SIGKILL is delivered asynchronously: wait (bounded) until no member still runs, so
    "stopped" is true when the caller reads it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + bound
    while _group_alive(pgid) and loop.time() < deadline:
        await asyncio.sleep(_POLL)


async def run_bounded(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: str | None = None,
    timeout: float,
    on_output: Callable[[str], None] | None = None,
    tail_bytes: int = 64 * 1024,
    max_line: int = 8 * 1024,
    grace: float = 2.0,
    stdin: bytes | None = None,
) -> ProcessResult:
    """Run ``argv`` with exactly ``env``, bounded in time and memory; stop its whole group.

    stdout and stderr are merged; stdin is /dev/null unless ``stdin`` is given. Output
    is read in chunks and ``on_output`` gets each complete line (without its newline);
    a line longer than ``max_line`` characters comes in pieces, each but the last ending
    in :data:`LINE_CONTINUES`. Only the last ``tail_bytes`` are kept.

    The process group is stopped (SIGTERM, ``grace`` seconds, SIGKILL) when ``timeout``
    runs out, when the command exits but processes it started still run (right away if
    they closed the output, after a short moment if they keep it open), and when this
    coroutine is cancelled: then it stops the group, awaits the reap and re-raises. An
    exception from ``on_output`` also stops the group and is re-raised.

    Raises OSError when the command cannot be started (no such program, bad ``cwd``).
    """
    if not argv:
        raise ValueError("run_bounded needs a command")
    _check_executable(argv[0], env, cwd)
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    output = _Output(tail_bytes, max_line, on_output)
    lifeline_read, lifeline_write = os.pipe()
    try:
        transport, child = await loop.subprocess_exec(
            lambda: _ChildProtocol(loop, output),
            *_guarded(argv, lifeline_read, grace),
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,
            pass_fds=(lifeline_read,),
        )
    except BaseException:
        os.close(lifeline_write)
        raise
    finally:
        os.close(lifeline_read)
    pgid = transport.get_pid()
    _LIVE[pgid] = group = _LiveGroup(argv[0])
    try:
        if stdin is not None:
            writer = transport.get_pipe_transport(0)
            assert isinstance(writer, asyncio.WriteTransport)
            writer.write(stdin)
            writer.write_eof()
        try:
            timed_out, stopped = await _supervise(pgid, child, timeout, grace)
        except asyncio.CancelledError:
            await _stop_after_cancel(pgid, child, grace)
            raise
        if output.error is not None:
            raise output.error
        if group.stopped_by:
            stopped = group.stopped_by
    finally:
        os.close(lifeline_write)
        transport.close()
        _LIVE.pop(pgid, None)
    text = output.finish()
    code = transport.get_returncode()
    return ProcessResult(
        exit_code=code if code is not None and code >= 0 else None,
        signal=-code if code is not None and code < 0 else None,
        timed_out=timed_out,
        cancelled=bool(group.stopped_by),
        output=text,
        bytes_total=output.bytes_total,
        lines_total=output.lines_total,
        truncated=output.truncated,
        duration_ms=(time.monotonic() - started) * 1000,
        stopped=stopped,
    )


def _guarded(argv: Sequence[str], lifeline: int, grace: float) -> list[str]:
    if not sys.executable:  # an embedded interpreter: no guard, the group still has a leader
        return list(argv)
    return [sys.executable, "-I", "-S", _LIFELINE, str(lifeline), f"{grace:g}", "--", *argv]


async def _supervise(
    pgid: int, child: _ChildProtocol, timeout: float, grace: float
) -> tuple[bool, str]:
    """Wait for the command; stop its group when it must. Returns (timed_out, stopped)."""
    await asyncio.wait(
        [child.exited, child.broken], timeout=timeout, return_when=asyncio.FIRST_COMPLETED
    )
    if child.broken.done():
        how = await _stop_group(pgid, child, grace)
        return False, f"reading its output failed: stopped the process group ({how})"
    if not child.exited.done():
        how = await _stop_group(pgid, child, grace)
        stopped = f"still running after {timeout:g}s: stopped the process group ({how})"
        return True, stopped + await _drained(child)
    # The command is done. Its output ends when every process holding it has closed it.
    if await _wait(child.eof, _LINGER):
        if not _group_alive(pgid):
            return False, ""
        how = await _stop_group(pgid, child, grace)
        return False, (
            f"the command exited but left processes running in the background: stopped them ({how})"
        )
    how = await _stop_group(pgid, child, grace)
    return False, (
        "the command exited but processes it started in the background kept its output "
        f"open: stopped them ({how})" + await _drained(child)
    )


async def _drained(child: _ChildProtocol) -> str:
    """Read what the stopped group left in the pipe; say so if something else holds it open."""
    if await _wait(child.eof, _LINGER):
        return ""
    return (
        "; a process that left the process group still holds the output open, "
        "so opsconsole stopped reading it"
    )


async def _stop_after_cancel(pgid: int, child: _ChildProtocol, grace: float) -> None:
    """Cancelled: stop the group and reap the leader; cancelled again, go straight to SIGKILL."""
    try:
        await _stop_group(pgid, child, grace)
    except asyncio.CancelledError:
        _signal_group(pgid, signal.SIGKILL)
        with contextlib.suppress(asyncio.CancelledError):
            await child.exited
            await _gone(pgid)
