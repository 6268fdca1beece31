"""One long-lived shell per run: the plain shell blocks of a runbook share it, as in a terminal.

A runbook written for people sets a variable in one block and uses it in the
next (``export NS=...``, then ``oc -n $NS ...``). :class:`ShellSession` keeps
one bash for the run (started lazily, through ``ctx.clients.get("shell", ...)``)
so exported and plain variables, the working directory and functions carry
from block to block.

How a block runs (the sentinel protocol):

- the block's text is written to a 0600 file in a private 0700 folder and the
  shell is told, on its own stdin, to ``. FILE`` it with stdin from
  ``/dev/null``; the block's text never passes through anything that
  interprets it a second time;
- after it, the shell prints ``TOKEN-end STATUS`` and a dump of its variables
  (``name NUL value NUL``, each value cut at 8 KiB), then ``TOKEN-done``.
  ``TOKEN`` is random per block and sent only on the shell's stdin, which the
  block cannot read: output cannot fake the end of a block;
- the output before the marker is the block's, bounded like
  :func:`opsconsole.process.run_bounded` (a tail plus counts, long lines in
  pieces) and streamed line by line.

Values (placeholders) reach the shell as variables: ``printf -v NAME '%b'
'\\xHH...'``, where only the hex escapes come from the value. Nothing the
operator typed is ever parsed as shell code, and a secret is never on a
command line or in a file.

Cancelling a block (escape, a deadline): the shell gets SIGUSR1, whose trap
``return``\\s from the sourced block once its foreground command ends, and
every other process of the shell's group (the block's foreground job) gets
SIGINT; after a grace period SIGKILL, still only the job. If the block does
not come back even then, the shell is stopped and the next block starts a
fresh one. A shell that dies (``exit`` in a block, a crash) is noticed and the
next block gets a fresh session; :attr:`ShellSession.lost` says so until it
is reported.

The shell runs with :func:`~opsconsole.process.child_environment` only, in its
own session and process group behind the lifeline guard (it dies with
opsconsole), and is registered with the hang-up handlers.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import shlex
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from .process import (
    _LIVE,
    LINE_CONTINUES,
    _ChildProtocol,
    _gone,
    _guarded,
    _LiveGroup,
    _Output,
    _signal_group,
    _stop_group,
    child_environment,
)
from .shell_text import shell_dialect

__all__ = [
    "BlockResult",
    "RedactedStream",
    "ShellSession",
    "ShellUnavailable",
    "looks_secret",
    "placeholder_variable",
    "substitute",
]

#: a variable's value in the dump is cut here (the pane and the evidence need no more)
VALUE_CAP = 8192
#: how long an interrupted block has to come back before its job is killed
INTERRUPT_GRACE = 2.0
#: names a shell sets or changes by itself: never "set by the runbook"
_SHELL_OWN = frozenset(
    {
        "_", "PWD", "OLDPWD", "PIPESTATUS", "RANDOM", "SRANDOM", "LINENO", "SECONDS",
        "EPOCHREALTIME", "EPOCHSECONDS", "SHLVL", "HISTCMD", "FUNCNAME", "GROUPS",
        "DIRSTACK", "OPTIND", "OPTARG", "OPTERR", "IFS", "PS1", "PS2", "PS3", "PS4",
        "PPID", "UID", "EUID", "SHELLOPTS", "BASHOPTS", "HOSTNAME", "HOSTTYPE", "MACHTYPE",
        "OSTYPE", "MAILCHECK", "COLUMNS", "LINES", "REPLY", "COPROC",
    }
)
_OWN_PREFIXES = ("BASH", "COMP_", "__ops_", "OPS_PH_")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SECRET_WORDS = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|PASSPHRASE|KEY|CREDENTIAL|AUTH", re.I)

_SETUP = r"""
set -o pipefail
trap 'return 130 2>/dev/null' USR1
__ops_dump() {
  local __ops_n
  for __ops_n in $(compgen -v); do
    case $__ops_n in __ops_*|OPS_PH_*|BASH*|COMP_*) continue;; esac
    printf '%s\0%.{cap}s\0' "$__ops_n" "${!__ops_n}"
  done
}
"""


#: the same protocol for a POSIX sh (dash): no pipefail there, ``set`` lists the variables
#: (``name='value'``, quoted), values are set with ``$(printf '%bx' '\0ooo...')``
_SETUP_SH = r"""
trap 'return 130 2>/dev/null' USR1
__ops_dump() { set; }
"""
#: and for zsh: ``$parameters`` names the variables (special ones skipped), ``(P)`` reads them
_SETUP_ZSH = r"""
setopt PIPE_FAIL 2>/dev/null
trap 'return 130 2>/dev/null' USR1
__ops_dump() {
  local __ops_n
  for __ops_n in ${(k)parameters}; do
    case $__ops_n in __ops_*|OPS_PH_*) continue;; esac
    case ${parameters[$__ops_n]} in *special*|association*) continue;; esac
    printf '%s\0%.{cap}s\0' "$__ops_n" "${(P)__ops_n}"
  done
}
"""
#: dialect -> (arguments after the program, setup code)
_DIALECTS = {
    "bash": (("--noprofile", "--norc"), _SETUP),
    "sh": ((), _SETUP_SH),
    "zsh": (("-f", "-s"), _SETUP_ZSH),
}


class ShellUnavailable(OSError):
    """The session's shell could not be started (message in operator words)."""


def looks_secret(name: str) -> bool:
    """A name that says it holds a secret (TOKEN, SECRET, PASSWORD, KEY, ...)."""
    return bool(_SECRET_WORDS.search(name))


def placeholder_variable(name: str) -> str:
    """The shell variable a placeholder's value is kept in (``namespace`` -> OPS_PH_namespace)."""
    return "OPS_PH_" + re.sub(r"[^A-Za-z0-9_]", "_", name)


def substitute(command: str, replacements: Mapping[str, str]) -> str:
    """``command`` with every occurrence of each key (a placeholder's text, ``<namespace>``
    or ``$PREVIOUS_SHA``) replaced by a quoted reference to the shell variable named by
    its value, quoted for where it stands: ``"${V}"`` outside quotes, ``${V}`` inside double
    quotes, ``'"${V}"'`` inside single quotes. The value itself never enters the text."""
    if not replacements:
        return command
    keys = sorted(replacements, key=len, reverse=True)
    out: list[str] = []
    quote = ""  # "", "'" or '"'
    i = 0
    while i < len(command):
        char = command[i]
        hit = next(
            (
                k
                for k in keys
                if command.startswith(k, i)
                and not (
                    k.startswith("$")
                    and not k.endswith("}")
                    and i + len(k) < len(command)
                    and (command[i + len(k)].isalnum() or command[i + len(k)] == "_")
                )
            ),
            None,
        )
        if hit is not None and not (quote == "" and i > 0 and command[i - 1] == "\\"):
            var = replacements[hit]
            out.append(
                f"${{{var}}}" if quote == '"' else f"'\"${{{var}}}\"'" if quote == "'"
                else f'"${{{var}}}"'
            )
            i += len(hit)
            continue
        if quote == "'":
            if char == "'":
                quote = ""
        elif char == "\\" and i + 1 < len(command):
            out.append(command[i : i + 2])
            i += 2
            continue
        elif quote == '"':
            if char == '"':
                quote = ""
        elif char in "'\"":
            quote = char
        out.append(char)
        i += 1
    return "".join(out)


def _assign(name: str, value: str, dialect: str = "bash") -> str:
    """Shell code setting ``name`` to ``value``; only hex (sh: octal) escapes come from the
    value."""
    if not _NAME.fullmatch(name):
        raise ValueError(f"not a shell variable name: {name!r}")
    if dialect == "sh":  # no printf -v; the x keeps trailing newlines from $( )
        escaped = "".join(f"\\0{byte:03o}" for byte in value.encode("utf-8"))
        return f"{name}=$(printf '%bx' '{escaped}'); {name}=${{{name}%x}}\n"
    escaped = "".join(f"\\x{byte:02x}" for byte in value.encode("utf-8"))
    return f"printf -v {name} '%b' '{escaped}'\n"


@dataclass
class BlockResult:
    #: the block's exit status (None: the shell was killed by a signal)
    exit_code: int | None
    output: str
    bytes_total: int
    lines_total: int
    truncated: bool
    duration_ms: float
    #: the deadline ran out and the block was interrupted
    timed_out: bool = False
    #: how the block was stopped, in operator words ("" when it ended by itself)
    stopped: str = ""
    #: the shell itself ended during this block (the next block gets a fresh one)
    shell_ended: bool = False
    #: the working directory after the block
    cwd: str = ""
    #: the shell had ended since the last block: this one ran in a fresh session
    restarted: bool = False


class _ShellProtocol(_ChildProtocol):
    def __init__(self, loop: asyncio.AbstractEventLoop, session: ShellSession) -> None:
        super().__init__(loop, _Output(1, 1, None))
        self.session = session

    def pipe_data_received(self, fd: int, data: bytes | str) -> None:
        self.session._received(data.encode() if isinstance(data, str) else data)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        super().pipe_connection_lost(fd, exc)
        if fd == 1:
            self.session._wake()

    def process_exited(self) -> None:
        super().process_exited()
        self.session._wake()


@dataclass
class _Frame:
    token: bytes
    output: _Output
    #: bytes held back: they may be the start of the end marker
    held: bytearray = field(default_factory=bytearray)
    #: after the end marker: status line and variable dump, up to the done marker
    tail: bytearray | None = None
    done: bool = False
    status: str = ""
    dump: bytes = b""


class ShellSession:
    """One bash for one run. Build it through ``ctx.clients.get("shell", ...)``; the
    process starts with the first block."""

    def __init__(
        self,
        *,
        shell: str | None = None,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        tail_bytes: int = 64 * 1024,
        max_line: int = 8 * 1024,
    ) -> None:
        self.shell = shell or "bash"
        #: the dialect spoken with the running shell (bash, sh, zsh)
        self.dialect = "bash"
        #: why the blocks run in bash although the runbook asks for another shell (the
        #: operator agreed: that shell is not installed, or not one the session speaks)
        self.bash_instead = ""
        self.start_cwd = cwd
        self.env = dict(env) if env is not None else child_environment()
        self.tail_bytes = tail_bytes
        self.max_line = max_line
        #: placeholder answers of this run: name -> value
        self.placeholders: dict[str, str] = {}
        #: names of placeholders answered as secrets
        self.secret_placeholders: set[str] = set()
        #: variables the runbook's blocks set (new or changed since the shell started)
        self.variables: dict[str, str] = {}
        #: the working directory after the last block
        self.cwd: str = ""
        #: the shell ended since the last block ran; the next block tells the operator
        self.lost = False
        #: how many shells this session has started
        self.generation = 0
        #: the operator was asked whether to re-run the blocks of an earlier shell (resume)
        self.restore_asked = False
        #: called with no arguments whenever variables or placeholders change (the pane)
        self.on_change: Callable[[], None] | None = None
        self._transport: asyncio.SubprocessTransport | None = None
        self._protocol: _ShellProtocol | None = None
        self._lifeline: int | None = None
        self._pgid = 0
        self._pid = 0
        self._baseline: dict[str, str] = {}
        self._assigned: dict[str, str] = {}
        self._frame: _Frame | None = None
        self._event = asyncio.Event()
        self._folder: Path | None = None
        self._count = 0

    # -- the process ----------------------------------------------------------------

    @property
    def alive(self) -> bool:
        return self._transport is not None and not self._protocol_exited()

    def _protocol_exited(self) -> bool:
        protocol = self._protocol
        return protocol is None or protocol.exited.done() or protocol.eof.done()

    def problem(self) -> str:
        """Why the session cannot run the runbook's shell (operator words), or ""."""
        dialect = shell_dialect(self.shell)
        if self.bash_instead or dialect == "bash":
            return ""
        if dialect is None:
            return (
                f"the runbook asks for {self.shell} (front matter shell: {self.shell}); the "
                "shell session runs bash, sh or zsh"
            )
        if shutil.which(self.shell, path=self.env.get("PATH", os.defpath)) is None:
            return (
                f"the runbook asks for {self.shell} (front matter shell: {self.shell}), which "
                "is not installed on this machine"
            )
        return ""

    def _program(self) -> tuple[str, str]:
        """The shell to start and the dialect to speak with it."""
        problem = self.problem()
        if problem:
            raise ShellUnavailable(f"cannot start the shell session: {problem}")
        name = "bash" if self.bash_instead else self.shell
        found = shutil.which(name, path=self.env.get("PATH", os.defpath))
        if found is None:
            raise ShellUnavailable(f"cannot start the shell session: {name} was not found")
        dialect = shell_dialect(name) or "bash"
        if Path(found).resolve().name == "bash":  # an sh that is bash: bash in POSIX mode
            dialect = "bash"
        return found, dialect

    async def _start(self) -> None:
        loop = asyncio.get_running_loop()
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="opsconsole-shell-"))
        program, self.dialect = self._program()
        arguments, setup = _DIALECTS[self.dialect]
        cwd = self.start_cwd
        if cwd is not None and not Path(cwd).is_dir():
            raise ShellUnavailable(f"cannot start the shell session: no folder {cwd}")
        lifeline_read, lifeline_write = os.pipe()
        try:
            transport, protocol = await loop.subprocess_exec(
                lambda: _ShellProtocol(loop, self),
                *_guarded([program, *arguments], lifeline_read, 2.0),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env=self.env,
                cwd=cwd,
                start_new_session=True,
                pass_fds=(lifeline_read,),
            )
        except BaseException:
            os.close(lifeline_write)
            raise
        finally:
            os.close(lifeline_read)
        self._transport, self._protocol, self._lifeline = transport, protocol, lifeline_write
        self._pgid = transport.get_pid()
        _LIVE[self._pgid] = _LiveGroup(program)
        self.generation += 1
        self._assigned = {}
        codes = [setup.replace("{cap}", str(VALUE_CAP))]
        if self.dialect == "zsh":
            codes.append(":")  # zsh sets a few variables of its own after its first line
        for code in codes:
            frame = self._send(code, "$$")
            if not await self._wait(frame, 10.0):
                await self._kill()
                name = Path(program).name
                raise ShellUnavailable(f"cannot start the shell session: {name} did not answer")
        self._pid = int(frame.status) if frame.status.isdigit() else 0
        self._baseline = _parse_dump(frame.dump, self.dialect)
        self.cwd = self._baseline.get("PWD", "")

    def _send(self, code: str, status: str) -> _Frame:
        token = secrets.token_hex(16).encode()
        frame = _Frame(token, _Output(self.tail_bytes, self.max_line, None))
        self._frame = frame
        self._event.clear()
        t = token.decode()
        text = (
            f"{code}\nprintf '\\n%s %s\\n' '{t}-end' \"{status}\"; "
            f"__ops_dump; printf '%s\\n' '{t}-done'\n"
        )
        assert self._transport is not None
        writer = self._transport.get_pipe_transport(0)
        assert isinstance(writer, asyncio.WriteTransport)
        writer.write(text.encode())
        return frame

    def _wake(self) -> None:
        self._event.set()

    def _received(self, data: bytes) -> None:
        frame = self._frame
        if frame is None or frame.done:
            return  # output between blocks (a background job): nobody's to keep
        if frame.tail is None:
            buffer = frame.held + data
            marker = b"\n" + frame.token + b"-end "
            at = buffer.find(marker)
            if at < 0:
                keep = _prefix_overlap(buffer, marker)
                frame.output.feed(bytes(buffer[: len(buffer) - keep]))
                frame.held = bytearray(buffer[len(buffer) - keep :])
                return
            frame.output.feed(bytes(buffer[:at]))
            frame.held = bytearray()
            frame.tail = bytearray(buffer[at + len(marker) :])
        else:
            frame.tail += data
        done = b"\0" + frame.token + b"-done\n"
        tail = frame.tail
        end = tail.find(done)
        if end < 0:
            end = tail.find(b"\n" + frame.token + b"-done\n")  # empty dump
            if end < 0:
                return
            cut = end + 1
        else:
            cut = end + 1
        line, _, dump = bytes(tail[:cut]).partition(b"\n")
        frame.status = line.decode("ascii", "replace").strip()
        frame.dump = dump
        frame.done = True
        self._event.set()

    async def _wait(self, frame: _Frame, timeout: float | None) -> bool:
        """Whether ``frame`` completed in ``timeout`` (False: timed out or the shell ended)."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while not frame.done:
            if self._protocol_exited():
                return False
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return False
            self._event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event.wait(), remaining)
        return True

    def _job(self) -> list[int]:
        """The processes of the shell's group other than the guard and the shell: the
        block's foreground job (and anything it left behind)."""
        found = []
        try:
            entries = os.listdir("/proc")
        except OSError:
            return []
        for entry in entries:
            if not entry.isdigit() or int(entry) in (self._pgid, self._pid):
                continue
            try:
                stat = Path("/proc", entry, "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rfind(")") + 2 :].split()
            if len(fields) > 2 and fields[2] == str(self._pgid) and fields[0] not in ("Z", "X"):
                found.append(int(entry))
        return found

    def _signal(self, pids: list[int], signum: int) -> None:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signum)

    async def _interrupt(self, frame: _Frame) -> str:
        """Stop the running block, keeping the shell if it can. Returns what was done."""
        if self._pid:
            self._signal([self._pid], signal.SIGUSR1)
        self._signal(self._job(), signal.SIGINT)
        if await self._wait(frame, INTERRUPT_GRACE):
            return "interrupted its foreground job (SIGINT); the shell session is kept"
        if self._pid:
            self._signal([self._pid], signal.SIGUSR1)
        self._signal(self._job(), signal.SIGKILL)
        if await self._wait(frame, INTERRUPT_GRACE):
            return (
                "interrupted its foreground job (SIGINT, then SIGKILL after "
                f"{INTERRUPT_GRACE:g}s); the shell session is kept"
            )
        await self._kill()
        self.lost = True
        return "it did not stop: the shell session was stopped (the next block starts a new one)"

    async def _kill(self) -> None:
        transport, protocol = self._transport, self._protocol
        if transport is None or protocol is None:
            return
        try:
            if not protocol.exited.done():
                await _stop_group(self._pgid, protocol, 1.0)
            else:
                _signal_group(self._pgid, signal.SIGKILL)
                await _gone(self._pgid, 2.0)
        finally:
            self._forget()

    def _forget(self) -> None:
        if self._transport is not None:
            self._transport.close()
        if self._lifeline is not None:
            os.close(self._lifeline)
        _LIVE.pop(self._pgid, None)
        self._transport = self._protocol = None
        self._lifeline = None
        self._pid = 0

    # -- blocks ---------------------------------------------------------------------

    async def run_block(
        self,
        script: str,
        *,
        values: Mapping[str, str] | None = None,
        timeout: float = 60.0,
        cwd: str | None = None,
        on_output: Callable[[str], None] | None = None,
    ) -> BlockResult:
        """Run one block in the session: ``values`` (shell variable -> value) are set first,
        safely; ``cwd`` (a block's own folder) applies to this block only."""
        started = time.monotonic()
        if self._transport is not None and self._protocol_exited():
            await self._kill()
            self.lost = True
        restarted = False
        if self._transport is None:
            restarted, self.lost = self.lost, False
            if restarted:
                self.variables = {}
            await self._start()
        assert self._folder is not None
        self._count += 1
        path = self._folder / f"block-{self._count}.sh"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(script if script.endswith("\n") else script + "\n")
        code = ""
        for name, value in (values or {}).items():
            if self._assigned.get(name) != value:
                code += _assign(name, value, self.dialect)
                self._assigned[name] = value
        source = f". {shlex.quote(str(path))}"
        if cwd:
            source = (
                f"__ops_back=$PWD; cd -- {shlex.quote(cwd)} && {source}; "
                "__ops_rc=$?; cd -- \"$__ops_back\"; (exit $__ops_rc)"
            )
        code += f"{{ {source}; }} </dev/null"
        frame = self._send(code, "$?")
        frame.output.on_output = on_output
        stopped = ""
        timed_out = False
        try:
            finished = await self._wait(frame, timeout)
            if not finished and not self._protocol_exited():
                timed_out = True
                stopped = f"still running after {timeout:g}s: " + await self._interrupt(frame)
        except asyncio.CancelledError:
            await asyncio.shield(self._interrupt(frame))
            raise
        finally:
            with contextlib.suppress(OSError):
                path.unlink()
        ended = not frame.done
        exit_code: int | None
        if ended:
            exit_code = await self._ended_status()
        else:
            exit_code = int(frame.status) if frame.status.lstrip("-").isdigit() else None
            self._update(_parse_dump(frame.dump, self.dialect))
        text = frame.output.finish()
        return BlockResult(
            exit_code=exit_code,
            output=text,
            bytes_total=frame.output.bytes_total,
            lines_total=frame.output.lines_total,
            truncated=frame.output.truncated,
            duration_ms=(time.monotonic() - started) * 1000,
            timed_out=timed_out,
            stopped=stopped,
            shell_ended=ended,
            cwd=self.cwd,
            restarted=restarted,
        )

    async def _ended_status(self) -> int | None:
        """The shell ended during a block: its status, and the session marked lost."""
        protocol, transport = self._protocol, self._transport
        code: int | None = None
        if protocol is not None and transport is not None:
            await asyncio.wait([protocol.exited], timeout=2.0)
            returned = transport.get_returncode()
            code = returned if returned is not None and returned >= 0 else None
        await self._kill()
        self.lost = True
        return code

    def _update(self, dump: dict[str, str]) -> None:
        if "PWD" in dump:
            self.cwd = dump["PWD"]
        changed = {
            name: value
            for name, value in dump.items()
            if self._baseline.get(name) != value
            and name not in _SHELL_OWN
            and not name.startswith(_OWN_PREFIXES)
        }
        self.variables = changed
        self._notify()

    def _notify(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def remember(self, name: str, value: str, *, secret: bool) -> None:
        """Keep a placeholder's answer for the rest of the run (or replace it: editing)."""
        self.placeholders[name] = value
        if secret:
            self.secret_placeholders.add(name)
        self._notify()

    async def close(self) -> None:
        try:
            await self._kill()
        finally:
            if self._folder is not None:
                shutil.rmtree(self._folder, ignore_errors=True)
                self._folder = None


class _Masks(Protocol):
    @property
    def longest(self) -> int: ...

    def redact(self, text: str) -> str: ...

    def spans(self, text: str) -> list[tuple[int, int]]: ...


class RedactedStream:
    """Output lines redacted before they go on (redact first, cut after).

    A long line reaches ``deliver`` in pieces (each ending in ``LINE_CONTINUES``); a
    secret split across two pieces would be masked only in part (an end or a start shorter
    than the redactor's 8 characters stays). So the end of each piece, as long as the
    longest form of any secret, is held back and goes out with the next piece: a secret is
    always masked whole. :meth:`flush` sends what is held when the stream ends."""

    def __init__(self, redactor: _Masks, deliver: Callable[[str], None]) -> None:
        self.redactor = redactor
        self.deliver = deliver
        self.carry = ""

    def __call__(self, piece: str) -> None:
        continues = piece.endswith(LINE_CONTINUES)
        text = self.carry + (piece[: -len(LINE_CONTINUES)] if continues else piece)
        self.carry = ""
        if not continues:
            self.deliver(self.redactor.redact(text))
            return
        cut = max(0, len(text) - self.redactor.longest)
        for start, end in self.redactor.spans(text):
            if start < cut < end:
                cut = start
        self.carry = text[cut:]
        if cut:
            self.deliver(self.redactor.redact(text[:cut]) + LINE_CONTINUES)

    def flush(self) -> None:
        if self.carry:
            text, self.carry = self.carry, ""
            self.deliver(self.redactor.redact(text))


def _prefix_overlap(buffer: bytes | bytearray, marker: bytes) -> int:
    """The length of the longest end of ``buffer`` that starts ``marker``."""
    for size in range(min(len(marker) - 1, len(buffer)), 0, -1):
        if buffer.endswith(marker[:size]):
            return size
    return 0


def _parse_dump(dump: bytes, dialect: str = "bash") -> dict[str, str]:
    if dialect == "sh":
        return _parse_set(dump)
    parts = dump.split(b"\0")
    values: dict[str, str] = {}
    for index in range(0, len(parts) - 1, 2):
        name = parts[index].decode("utf-8", "replace")
        if _NAME.fullmatch(name):
            values[name] = parts[index + 1].decode("utf-8", "replace")
    return values


def _parse_set(dump: bytes) -> dict[str, str]:
    """A POSIX shell's ``set`` listing (``name='value'``, single-quoted; a quote inside as
    ``'"'"'``), each value cut at :data:`VALUE_CAP`."""
    try:
        words = shlex.split(dump.decode("utf-8", "replace"), posix=True)
    except ValueError:  # not the listing we know: no variables rather than wrong ones
        return {}
    values: dict[str, str] = {}
    for word in words:
        name, equals, value = word.partition("=")
        if equals and _NAME.fullmatch(name):
            values[name] = value[:VALUE_CAP]
    return values
