"""Bytes the terminal receives per key: what an operator pays for each key over SSH.

    python benchmarks/terminal_bytes.py [--ssh] [--both] [--no-color] [--dashboard]

Runs the real ``opsconsole demo`` in a pseudo-terminal (80x24, TERM=xterm-256color), opens
the V2 control-plane runbook and counts the bytes written to the terminal after each key
until the screen is quiet again:

- cursor move: Down in the step list (six moves over pending steps, one across a heading);
- step run: enter on a read-only http step (GET /api/v1/ops/jobs without X-Ops-Key);
- help: F1 to open, F1 to close;
- the whole V2 walk in a fresh run: enter on every step (gates answered Go, manual checks
  Checked), the three plain shell blocks skipped with a reason.

- the dashboard (``d`` on Home, the sandbox's watched checks): bytes per second written
  while it sits idle between two refresh rounds (target: near 0), and bytes per round.

With ``--ssh`` the console runs behind a real ``ssh`` login to a private ``sshd`` on
127.0.0.1 (its own config, host key and user key in a temp dir; never the machine's
config), and the encrypted bytes on the wire (server to client) are counted too, through
a loopback relay. Prints numbers; asserts nothing. Targets (issue 10): <= 1 KB per
cursor move, <= 8 KB per step run.
"""

from __future__ import annotations

import argparse
import os
import pty
import re
import select
import shlex
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from fcntl import ioctl
from pathlib import Path
from termios import TIOCSWINSZ
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

ANSI = re.compile(rb"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>]|\x1b\][^\x07]*\x07")
#: SGR colour sequences beyond the 16 basic colours (NO_COLOR forbids them)
RICH_COLOUR = re.compile(rb"\x1b\[[0-9;:]*[34]8[;:][25][;:]")

DOWN, ENTER, F1 = b"\x1b[B", b"\r", b"\x1bOP"
CTRL_Q = b"\x11"
#: the screen counts as settled after this long without output
QUIET = 0.4


class Terminal:
    """A process in a pseudo-terminal of 80x24; counts what it writes."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # child
            os.execvpe(argv[0], argv, env)
        ioctl(self.fd, TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        self.seen = bytearray()  # everything (for the colour scan)
        self._tail = b""

    def read(self, timeout: float) -> bytes:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return b""
        try:
            chunk = os.read(self.fd, 65536)
        except OSError:
            return b""
        self.seen += chunk
        return chunk

    def wait_for(self, needle: bytes, since: int = 0, timeout: float = 60) -> None:
        """Until ``needle`` was written (at or after offset ``since``)."""
        deadline = time.monotonic() + timeout
        window = b""
        while time.monotonic() < deadline:
            window = bytes(self.seen[since:])[-200_000:]
            if needle in ANSI.sub(b"", window):
                return
            self.read(0.05)
        tail = ANSI.sub(b"", window)[-600:].decode(errors="replace")
        raise SystemExit(f"never saw {needle!r}; the terminal's last text: {tail}")

    def settle(self, quiet: float = QUIET, limit: float = 60) -> int:
        """Bytes until nothing was written for ``quiet`` seconds."""
        total = 0
        deadline = time.monotonic() + limit
        last = time.monotonic()
        while time.monotonic() < deadline:
            chunk = self.read(0.05)
            if chunk:
                total += len(chunk)
                last = time.monotonic()
            elif time.monotonic() - last >= quiet:
                break
        return total

    def key(self, key: bytes, quiet: float = QUIET) -> int:
        os.write(self.fd, key)
        return self.settle(quiet)

    def type(self, text: str) -> int:
        return sum(self.key(char.encode(), quiet=0.1) for char in text) + self.settle()

    def close(self) -> None:
        for key in (CTRL_Q, CTRL_Q):  # quit (twice: the run is in progress)
            try:
                os.write(self.fd, key)
            except OSError:
                break
            self.settle(0.5, limit=5)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if os.waitpid(self.pid, os.WNOHANG)[0]:
                break
            self.read(0.1)
        else:
            try:
                os.killpg(self.pid, signal.SIGTERM)
                time.sleep(3)
                os.killpg(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(self.pid, 0)
        os.close(self.fd)


# -- a private sshd on loopback ------------------------------------------------------------


class Relay:
    """127.0.0.1 TCP relay in front of sshd: counts the bytes the client receives."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.down = 0
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            threading.Thread(target=self._pipe, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, True), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, count: bool) -> None:
        try:
            while data := source.recv(65536):
                if count:
                    self.down += len(data)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.server.close()


def free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        return int(sock.getsockname()[1])


@contextmanager
def private_sshd() -> Iterator[tuple[list[str], Relay]]:
    """sshd on 127.0.0.1 with its own config and keys; yields the ssh command and the relay."""
    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    if not Path(sshd).exists() or shutil.which("ssh") is None:
        raise SystemExit("--ssh needs OpenSSH (sshd and ssh)")
    if os.geteuid() == 0 and not Path("/run/sshd").is_dir():
        # sshd running as root insists on its (empty) privilege-separation directory
        print("  (creating the empty privilege-separation directory /run/sshd)")
        Path("/run/sshd").mkdir(mode=0o755)
    user = os.environ.get("USER") or subprocess.run(
        ["id", "-un"], capture_output=True, text=True, check=True
    ).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="opsconsole-sshd-") as raw:
        tmp = Path(raw)
        for name in ("host", "user"):
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp / name)],
                check=True,
            )
        (tmp / "authorized_keys").write_text((tmp / "user.pub").read_text())
        port = free_port()
        (tmp / "sshd_config").write_text(
            f"Port {port}\nListenAddress 127.0.0.1\nHostKey {tmp / 'host'}\n"
            f"PidFile {tmp / 'sshd.pid'}\nAuthorizedKeysFile {tmp / 'authorized_keys'}\n"
            "PubkeyAuthentication yes\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"
            f"UsePAM no\nStrictModes no\nAllowUsers {user}\nPrintMotd no\nPrintLastLog no\n"
            "AllowTcpForwarding no\nX11Forwarding no\nLogLevel ERROR\n"
        )
        daemon = subprocess.Popen(
            [sshd, "-D", "-e", "-f", str(tmp / "sshd_config")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        relay = Relay(port)
        host_key = (tmp / "host.pub").read_text().split()[:2]
        (tmp / "known_hosts").write_text(f"[127.0.0.1]:{relay.port} {' '.join(host_key)}\n")
        ssh = [
            "ssh", "-F", "/dev/null", "-tt", "-p", str(relay.port),
            "-i", str(tmp / "user"), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
            "-o", f"UserKnownHostsFile={tmp / 'known_hosts'}", "-o", "StrictHostKeyChecking=yes",
            "-o", "LogLevel=ERROR", f"{user}@127.0.0.1",
        ]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # wait for it to accept logins
            if subprocess.run([*ssh, "true"], capture_output=True).returncode == 0:
                break
            time.sleep(0.2)
        else:
            daemon.kill()
            raise SystemExit("the private sshd did not accept a login")
        try:
            yield ssh, relay
        finally:
            relay.close()
            os.killpg(daemon.pid, signal.SIGTERM)
            daemon.wait(10)


# -- the trial -----------------------------------------------------------------------------


def console_env(home: Path, no_color: bool) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", str(home)),
        "LANG": "C.UTF-8",
        "TERM": "xterm-256color",
        "OPSCONSOLE_HOME": str(home),
        "XDG_CONFIG_HOME": str(home / "config"),
        "PYTHONPATH": str(REPO),
    }
    if no_color:
        env["NO_COLOR"] = "1"
    return env


def start(home: Path, ssh: list[str] | None, no_color: bool) -> Terminal:
    env = console_env(home, no_color)
    command = [sys.executable, "-m", "opsconsole.cli", "demo"]
    if ssh is None:
        return Terminal(command, env)
    # the remote side gets the same environment on its command line (TERM comes from
    # the client's pty request)
    remote = "cd {} && exec env {} {}".format(
        shlex.quote(str(REPO)),
        " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items() if k != "TERM"),
        shlex.join(command),
    )
    return Terminal([*ssh, remote], {**os.environ, "TERM": "xterm-256color"})


def open_v2(terminal: Terminal) -> None:
    terminal.wait_for(b"V2 control plane")
    terminal.settle(1.0)
    for _ in range(4):  # sorted by title: V2 is the fifth runbook
        terminal.key(DOWN)
    mark = len(terminal.seen)
    terminal.key(ENTER)
    terminal.wait_for(b"walkthrough", since=mark)
    terminal.settle(1.0)


def run_state(home: Path) -> Any:
    """The V2 run on disk (the one run of this trial's state dir)."""
    from opsconsole.run import RunStore

    (run,) = RunStore(home / "sandbox").runs()
    return run


def step_status(home: Path, step_id: str) -> str:
    return str(run_state(home).results[step_id].status.value)


def wait_status(terminal: Terminal, home: Path, step_id: str, limit: float = 60) -> int:
    """Bytes until the step has finished on disk and the screen is quiet again."""
    total, finished = wait_step(terminal, home, step_id, limit)
    if not finished:
        raise SystemExit(f"{step_id} did not finish")
    return total


def wait_step(terminal: Terminal, home: Path, step_id: str, limit: float) -> tuple[int, bool]:
    """(bytes, finished): until the step finished, or it is still pending and the screen
    has been quiet for a second (a dialog waits for its answer)."""
    total = 0
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        written = terminal.settle(0.2, limit=1)
        total += written
        status = step_status(home, step_id)
        if status not in {"pending", "running"}:
            return total + terminal.settle(), True
        if status == "pending" and not written:
            quiet = terminal.settle(1.0, limit=1.0)
            total += quiet
            if not quiet and step_status(home, step_id) == "pending":
                return total, False
    return total, False


def keys_trial(ssh: list[str] | None, no_color: bool) -> dict[str, object]:
    home = Path(tempfile.mkdtemp(prefix="opsconsole-bytes-"))
    terminal = start(home, ssh, no_color)
    try:
        open_v2(terminal)
        moves = [terminal.key(DOWN) for _ in range(6)]  # the sixth crosses a heading
        mark = len(terminal.seen)
        help_open = terminal.key(F1, quiet=0.05)
        terminal.wait_for(b"or F1 to close", since=mark)
        help_open += len(terminal.seen) - mark - help_open + terminal.settle()
        help_close = terminal.key(F1)
        run = terminal.key(ENTER, quiet=0.05)
        run += wait_status(terminal, home, "ops-jobs-without-key")
        status = step_status(home, "ops-jobs-without-key")
    finally:
        terminal.close()
        shutil.rmtree(home, ignore_errors=True)
    return {
        "moves": moves,
        "help": (help_open, help_close),
        "run": run,
        "status": status,
        "rich_colour": len(RICH_COLOUR.findall(bytes(terminal.seen))),
    }


def walk_trial(ssh: list[str] | None, no_color: bool) -> dict[str, object]:
    from opsconsole.loader import load_runbook

    runbook = load_runbook(REPO / "runbooks" / "v2-control-plane.md")
    home = Path(tempfile.mkdtemp(prefix="opsconsole-bytes-"))
    terminal = start(home, ssh, no_color)
    keys = total = 0
    pressed: set[str] = set()
    try:
        open_v2(terminal)
        started = time.monotonic()
        while time.monotonic() - started < 600 and keys < 300:
            run = run_state(home)
            if run.status.value != "in_progress" or run.cursor is None:
                break
            step_id = run.cursor
            step = runbook.step(step_id)
            if getattr(step.spec, "plain", False):  # a runbook's own shell: skip it
                # s is ignored while the last step's worker winds down: type the reason only
                # once the dialog is up (typed into the walkthrough, its letters are keys)
                for _ in range(10):
                    mark = len(terminal.seen)
                    total += terminal.key(b"s", quiet=0.3)
                    keys += 1
                    if b"The reason is required" in ANSI.sub(b"", bytes(terminal.seen[mark:])):
                        break
                else:
                    raise SystemExit(f"no skip dialog for {step_id}")
                total += terminal.type("not part of the benchmark")
                total += terminal.key(ENTER, quiet=0.05)
                keys += 1 + len("not part of the benchmark")
                total += wait_status(terminal, home, step_id)
                continue
            # enter on the step; a dialog (gate, manual check) gets enter too: its default
            total += terminal.key(ENTER, quiet=0.05)
            keys += 1
            if step.needs_human or step.closes_phase:
                total += terminal.settle(0.5)
                total += terminal.key(ENTER, quiet=0.05)
                keys += 1
            written, finished = wait_step(terminal, home, step_id, 60)
            total += written
            if not finished and step_id in pressed:
                raise SystemExit(f"{step_id} did not finish after its dialog")
            pressed.add(step_id)
        final = str(run_state(home).status.value)
    finally:
        terminal.close()
        shutil.rmtree(home, ignore_errors=True)
    return {
        "walk": total,
        "keys": keys,
        "final": final,
        "rich_colour": len(RICH_COLOUR.findall(bytes(terminal.seen))),
    }


#: the dashboard's status line while a round runs, and once it has finished
ROUND_START, ROUND_END = b"checking", b"re-checked every"


def dashboard_trial(ssh: list[str] | None, no_color: bool, rounds: int = 3) -> dict[str, object]:
    """Open the dashboard from Home; then, for ``rounds`` refresh rounds after the first,
    the bytes of each round (from "checking…" until the screen is quiet after the result)
    and the bytes written in between (the screen idle, waiting for the next round)."""
    home = Path(tempfile.mkdtemp(prefix="opsconsole-bytes-"))
    terminal = start(home, ssh, no_color)
    per_round: list[int] = []
    idle_bytes = 0
    idle_seconds = 0.0
    try:
        terminal.wait_for(b"V2 control plane")
        terminal.settle(1.0)
        mark = len(terminal.seen)
        terminal.key(b"d", quiet=0.05)
        terminal.wait_for(ROUND_END, since=mark, timeout=120)  # the first round's result
        terminal.settle(1.0)
        for _ in range(rounds):
            # idle: every write before the one that says "checking" (the next round's first)
            mark, quiet_from = len(terminal.seen), time.monotonic()
            before = mark
            while ROUND_START not in ANSI.sub(b"", bytes(terminal.seen[mark:])):
                before = len(terminal.seen)
                terminal.read(0.05)
                if time.monotonic() - quiet_from > 300:
                    raise SystemExit("the dashboard never started another round")
            idle_bytes += before - mark
            idle_seconds += time.monotonic() - quiet_from
            terminal.wait_for(ROUND_END, since=before, timeout=120)
            per_round.append(len(terminal.seen) - before + terminal.settle())
    finally:
        terminal.close()
        shutil.rmtree(home, ignore_errors=True)
    return {
        "rounds": per_round,
        "idle_bytes": idle_bytes,
        "idle_seconds": idle_seconds,
    }


def report_dashboard(label: str, dashboard: dict[str, object]) -> None:
    rounds = dashboard["rounds"]
    assert isinstance(rounds, list)
    idle = int(dashboard["idle_bytes"])  # type: ignore[call-overload]
    seconds = float(dashboard["idle_seconds"])  # type: ignore[arg-type]
    print(f"{label}")
    print(
        f"  dashboard idle:        {idle:,} B in {seconds:.1f} s between rounds"
        f" = {idle / max(seconds, 1e-9):,.1f} B/s  (target: near 0)"
    )
    print(
        f"  dashboard round:       median {statistics.median(rounds):,} B"
        f"  max {max(rounds):,} B   {rounds}"
    )


def report(
    label: str, keys: dict[str, object], walk: dict[str, object] | None, wire: int | None
) -> None:
    moves = keys["moves"]
    assert isinstance(moves, list)
    opened, closed = keys["help"]  # type: ignore[misc]
    print(f"{label}")
    print(
        f"  cursor move (Down):    median {statistics.median(moves):,} B  max {max(moves):,} B"
        f"   {moves}  (target <= 1,024)"
    )
    print(f"  step run (enter, http): {keys['run']:,} B  [{keys['status']}]  (target <= 8,192)")
    print(f"  help open / close:     {opened:,} B / {closed:,} B  = {opened + closed:,} B")
    colour = int(keys["rich_colour"])  # type: ignore[call-overload]
    if walk is not None:
        print(
            f"  whole V2 walk:         {walk['walk']:,} B over {walk['keys']} keys"
            f"  [run {walk['final']}]"
        )
        colour += int(walk["rich_colour"])  # type: ignore[call-overload]
    print(f"  256-colour / truecolor SGR sequences seen: {colour}")
    if wire is not None:
        print(f"  ssh wire bytes, server to client (both trials): {wire:,} B")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ssh", action="store_true", help="through a real ssh login only")
    parser.add_argument("--both", action="store_true", help="local pty, then through ssh")
    parser.add_argument("--no-color", action="store_true", help="with NO_COLOR=1")
    parser.add_argument("--no-walk", action="store_true", help="leave out the whole V2 walk")
    parser.add_argument(
        "--dashboard", action="store_true", help="only the idle dashboard (local pty)"
    )
    args = parser.parse_args()
    colour = " NO_COLOR=1" if args.no_color else ""
    if args.dashboard:
        report_dashboard(
            f"local pty, 80x24, TERM=xterm-256color{colour}",
            dashboard_trial(None, args.no_color),
        )
        return
    if not args.ssh or args.both:
        report(
            f"local pty, 80x24, TERM=xterm-256color{colour}",
            keys_trial(None, args.no_color),
            walk_trial(None, args.no_color) if not args.no_walk else None,
            None,
        )
    if args.ssh or args.both:
        with private_sshd() as (ssh, relay):
            keys = keys_trial(ssh, args.no_color)
            walk = walk_trial(ssh, args.no_color) if not args.no_walk else None
            report(f"through ssh to a loopback sshd, 80x24{colour}", keys, walk, relay.down)


if __name__ == "__main__":
    main()
