"""One live console per run: real processes hold, lose and take over a run's lock."""

from __future__ import annotations

import getpass
import os
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from opsconsole.errors import RunHeld, RunTakenOver
from opsconsole.runlock import RunLock

REPO = Path(__file__).resolve().parents[2]
RUN = "20240101T000000Z-abc123"

#: a console stand-in: holds the run, answers questions on stdin, one line each
HOLDER = """
    import sys
    from pathlib import Path
    from opsconsole.errors import RunTakenOver
    from opsconsole.runlock import RunLock

    lock = RunLock.acquire(Path(sys.argv[1]), sys.argv[2])
    print("held", lock.generation, flush=True)
    for line in sys.stdin:
        if line.strip() == "still_ours":
            print(lock.still_ours(), flush=True)
        elif line.strip() == "save":
            try:
                lock.ensure_ours()
                print("saved", flush=True)
            except RunTakenOver as exc:
                print(exc, flush=True)
        elif line.strip() == "release":
            lock.release()
            print("released", flush=True)
"""


class Console:
    def __init__(self, home: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(HOLDER), str(home), RUN],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        self.first = self.read()

    @property
    def pid(self) -> int:
        return self.process.pid

    def read(self) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line, "the console process ended"
        return line.strip()

    def ask(self, question: str) -> str:
        assert self.process.stdin is not None
        self.process.stdin.write(question + "\n")
        self.process.stdin.flush()
        return self.read()

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def close(self) -> None:
        if self.process.poll() is None:
            self.kill()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Console]:
    running = Console(tmp_path)
    yield running
    running.close()


def test_a_second_console_cannot_take_a_run_while_the_first_lives(
    tmp_path: Path, console: Console
) -> None:
    assert console.first == "held 1"
    with pytest.raises(RunHeld) as held:
        RunLock.acquire(tmp_path, RUN)
    holder = held.value.holder
    assert (holder.pid, holder.held, holder.alive) == (console.pid, True, True)
    assert holder.who.startswith(f"{getpass.getuser()}@{socket.gethostname()} (pid {console.pid}")
    assert "that console is still running" in str(held.value)
    assert str(held.value).startswith(f"run {RUN} is open in another console: ")
    assert RunLock.holder_of(tmp_path, RUN) == holder
    assert console.ask("still_ours") == "True"


def test_a_killed_console_lets_the_run_go(tmp_path: Path, console: Console) -> None:
    console.kill()  # SIGKILL: no clean-up ran, the kernel dropped the lock
    assert RunLock.holder_of(tmp_path, RUN) is None
    with RunLock.acquire(tmp_path, RUN) as lock:
        assert lock.generation == 2 and lock.still_ours()
        assert lock.holder.pid == os.getpid()


def test_a_released_run_can_be_taken_again(tmp_path: Path, console: Console) -> None:
    assert console.ask("release") == "released"
    assert RunLock.holder_of(tmp_path, RUN) is None
    RunLock.acquire(tmp_path, RUN).release()


def test_taking_over_a_live_console_makes_it_read_only(tmp_path: Path, console: Console) -> None:
    assert console.ask("save") == "saved"
    lock = RunLock.take_over(tmp_path, RUN, "the ssh link to the old console hangs")
    try:
        assert lock.previous is not None and lock.previous.pid == console.pid
        assert lock.generation == 2 and lock.still_ours()
        assert console.ask("still_ours") == "False"
        assert console.ask("save") == (
            f"this run was taken over by {lock.holder.who_at}: read-only now"
        )
        # a third console now meets the new holder, not the old one
        with pytest.raises(RunHeld) as held:
            RunLock.acquire(tmp_path, RUN)
        assert held.value.holder.pid == os.getpid()
        assert held.value.holder.reason == "the ssh link to the old console hangs"
    finally:
        lock.release()
    # the old console still lives, but holds nothing that counts any more
    RunLock.acquire(tmp_path, RUN).release()
    assert console.ask("still_ours") == "False"


def test_a_taken_over_lock_refuses_saves_in_the_same_process(tmp_path: Path) -> None:
    first = RunLock.acquire(tmp_path, RUN)
    second = RunLock.take_over(tmp_path, RUN, "operator confirmed: old console is stuck")
    with pytest.raises(RunTakenOver, match="read-only now"):
        first.ensure_ours()
    second.ensure_ours()
    assert second.previous is not None and second.previous.alive
    first.release()
    second.release()
