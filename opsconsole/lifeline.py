"""The lifeline guard: runs one command and takes its process group down when opsconsole dies.

:func:`opsconsole.process.run_bounded` does not exec a command directly. It
starts this file as a script (``python -I -S lifeline.py FD GRACE -- ARGV...``)
as the leader of a new session and process group; the guard forks the command
into the same group and waits. ``FD`` is the read end of a pipe whose only
write end stays in opsconsole. When opsconsole ends in any way (SIGKILL
included), the kernel closes that write end, the guard reads end-of-file and
stops the whole group: SIGTERM, ``GRACE`` seconds, SIGKILL.

Why not ``prctl(PR_SET_PDEATHSIG)``: it reaches only the process that set it
(``bash -c 'a; b'`` would lose bash and leave ``a`` running), it fires when the
*thread* that forked exits rather than the process, it needs ``preexec_fn``
(unsafe in a threaded program) or ``setpriv`` exec'd in front, it races with a
parent that dies before the call, and macOS has no such thing. A pipe closes
only when the whole opsconsole process is gone, on Linux and macOS alike.

Otherwise the guard is transparent: the command gets the guard's stdin, stdout
and stderr (the guard itself then lets go of them, so end-of-file on the output
means the command's processes have closed it), and the guard ends as the
command ended: the same exit status, or the same signal. Signals sent to the
group (opsconsole's SIGTERM on timeout) reach the command directly; the guard
notes them and keeps waiting, so the status it reports is the command's own.

Standard library only, and run with ``-I -S``: nothing from the command's
environment (``PYTHONPATH``, ``PYTHONSTARTUP``) or site-packages is loaded. It
starts with every command, so it imports only what is cheap: ``_signal`` rather
than ``signal`` (which only adds enums, and importing ``enum`` doubled the
guard's start-up), and ``typing`` not at all.
"""

from __future__ import annotations

import errno
import os
import select
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal
    from typing import NoReturn
else:
    import _signal as signal

#: signals opsconsole (or anyone) sends to the whole group: they are for the command
_GROUP_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT, signal.SIGQUIT)
#: Python ignores these at start-up; a command must get them back at their defaults
_PYTHON_IGNORED = (signal.SIGPIPE, signal.SIGXFSZ)


def _noted(signum: int, frame: object) -> None:
    """Wake the wait below through the wakeup fd; the command handles the signal itself."""


def _exec_command(argv: list[str]) -> NoReturn:
    """In the forked child: back to default signals, then become the command."""
    signal.set_wakeup_fd(-1)
    for signum in (*_GROUP_SIGNALS, signal.SIGCHLD, *_PYTHON_IGNORED):
        signal.signal(signum, signal.SIG_DFL)
    try:
        os.execvp(argv[0], argv)
    except OSError as exc:
        os.write(2, f"opsconsole: cannot run {argv[0]}: {exc.strerror}\n".encode())
        os._exit(127 if exc.errno == errno.ENOENT else 126)


def _take_group_down(command: int, grace: float) -> NoReturn:
    """opsconsole is gone: stop every process of this group, the guard last."""
    os.killpg(0, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if os.waitpid(command, os.WNOHANG)[0]:
            break
        time.sleep(0.05)
    os.killpg(0, signal.SIGKILL)
    os._exit(1)  # not reached: SIGKILL took the guard too


def _end_like(status: int) -> NoReturn:
    """Exit with the command's status, or die of the signal that killed it."""
    code = os.waitstatus_to_exitcode(status)
    if code >= 0:
        os._exit(code)
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # the command's crash, not ours
    except (ImportError, OSError, ValueError):
        pass
    signal.signal(-code, signal.SIG_DFL)
    os.kill(os.getpid(), -code)
    os._exit(128 - code)  # a signal that does not end a process by default


def main(args: list[str]) -> NoReturn:
    lifeline, grace, argv = int(args[0]), float(args[1]), args[3:]
    os.set_inheritable(lifeline, False)
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_read, False)
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    for signum in (*_GROUP_SIGNALS, signal.SIGCHLD):
        signal.signal(signum, _noted)

    command = os.fork()
    if command == 0:
        _exec_command(argv)
    # Let go of the output and input: only the command's processes hold them now.
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)

    while True:
        ended, status = os.waitpid(command, os.WNOHANG)
        if ended:
            _end_like(status)
        readable, _, _ = select.select([lifeline, wake_read], [], [])
        if wake_read in readable:
            while True:
                try:
                    if not os.read(wake_read, 512):
                        break
                except BlockingIOError:
                    break
        if lifeline in readable and not os.read(lifeline, 512):
            _take_group_down(command, grace)


if __name__ == "__main__":
    main(sys.argv[1:])
