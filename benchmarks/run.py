"""Performance harness: prints numbers and ratios, asserts nothing.

    python benchmarks/run.py [--runs N]

1. First frame: time from spawning the process in a pseudo-terminal (80x24)
   until the first screenful an operator can use is on the terminal — the
   opsconsole home screen listing the bundled runbooks, against a bare Textual
   app (Header, DataTable, Footer) measured in the same run, interleaved.
   Budget: ratio <= 1.5 (median over runs).
2. CLI start-up: `opsconsole --help` and `opsconsole lint runbooks/`, which
   must not import Textual.
3. Idle output: bytes the home screen writes to the terminal while nobody
   touches it (budget: next to nothing).
4. Bytes per key (benchmarks/terminal_bytes.py: cursor move, step run, help, the whole
   V2 walk; ``--ssh`` there runs it through a real ssh login). ``--no-bytes`` leaves it out.
"""

from __future__ import annotations

import argparse
import os
import pty
import re
import select
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from fcntl import ioctl
from pathlib import Path
from termios import TIOCSWINSZ

REPO = Path(__file__).resolve().parent.parent
ANSI = re.compile(rb"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>]|\x1b\][^\x07]*\x07")


def spawn(argv: list[str], env: dict[str, str]) -> tuple[int, int]:
    pid, fd = pty.fork()
    if pid == 0:  # child
        os.execvpe(argv[0], argv, env)
    ioctl(fd, TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    return pid, fd


def read_until(fd: int, needle: bytes, timeout: float) -> tuple[float | None, bytes]:
    started = time.perf_counter()
    seen = b""
    while time.perf_counter() - started < timeout:
        ready, _, _ = select.select([fd], [], [], 0.05)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            seen += chunk
            if needle in ANSI.sub(b"", seen):
                return time.perf_counter(), seen
    return None, seen


def stop(pid: int, fd: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.time() + 5
    while time.time() < deadline:
        finished, _ = os.waitpid(pid, os.WNOHANG)
        if finished:
            break
        try:
            os.read(fd, 65536)
        except OSError:
            pass
        time.sleep(0.02)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    os.close(fd)


def first_frame(argv: list[str], needle: bytes, env: dict[str, str]) -> float:
    started = time.perf_counter()
    pid, fd = spawn(argv, env)
    at, seen = read_until(fd, needle, 30)
    stop(pid, fd)
    if at is None:
        tail = ANSI.sub(b"", seen)[-400:].decode(errors="replace")
        raise SystemExit(f"{argv} never showed {needle!r}; screen tail: {tail}")
    return at - started


def idle_bytes(argv: list[str], needle: bytes, env: dict[str, str], seconds: float) -> int:
    pid, fd = spawn(argv, env)
    read_until(fd, needle, 30)
    read_until(fd, b"\x00never\x00", 1.0)  # let start-up work (workers, first refreshes) settle
    total = 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                total += len(os.read(fd, 65536))
            except OSError:
                break
    stop(pid, fd)
    return total


def timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--idle-seconds", type=float, default=5.0)
    parser.add_argument("--no-bytes", action="store_true", help="leave out bytes per key")
    args = parser.parse_args()

    home = tempfile.mkdtemp(prefix="opsconsole-bench-")
    env = {
        **os.environ,
        "TERM": "xterm-256color",
        "COLUMNS": "80",
        "LINES": "24",
        "OPSCONSOLE_HOME": home,
        "XDG_CONFIG_HOME": os.path.join(home, "config"),
        "PYTHONPATH": str(REPO),
    }
    env.pop("OPSCONSOLE_CONFIG", None)
    python = sys.executable
    bare = [python, str(REPO / "benchmarks" / "bare_app.py")]
    console = [python, "-m", "opsconsole.cli"]

    print(f"first frame at 80x24, {args.runs} runs each, interleaved (seconds)")
    samples: dict[str, list[float]] = {"bare": [], "frame": [], "listed": []}
    for _ in range(args.runs):
        samples["bare"].append(first_frame(bare, b"Baseline ready", env))
        # the home screen's first frame: header, environment banner, table, footer
        samples["frame"].append(first_frame(console, b"Environment: local", env))
        # usable: every bundled runbook parsed and listed (a worker fills the table)
        samples["listed"].append(first_frame(console, b"V2 control plane", env))
    labels = {
        "bare": "bare Textual app (Header, DataTable, Footer)",
        "frame": "opsconsole home, first frame",
        "listed": "opsconsole home, runbooks listed",
    }
    medians = {key: statistics.median(values) for key, values in samples.items()}
    for key, values in samples.items():
        print(
            f"  {labels[key]:46} median {medians[key]:.3f}  "
            f"min {min(values):.3f}  max {max(values):.3f}"
        )
    ratio = medians["frame"] / medians["bare"]
    print(f"  ratio first frame / bare:     {ratio:.2f}  (budget <= 1.50)")
    print(f"  ratio runbooks listed / bare: {medians['listed'] / medians['bare']:.2f}")

    print("CLI start-up (seconds, median of 5)")
    for label, argv in (
        ("opsconsole --help", [*console, "--help"]),
        ("opsconsole lint runbooks/", [*console, "lint", str(REPO / "runbooks")]),
    ):
        times = [timed(argv, env) for _ in range(5)]
        print(f"  {label:28} {statistics.median(times):.3f}")
    bare_import = [
        timed([python, "-c", "import textual.app, textual.widgets"], env) for _ in range(5)
    ]
    print(f"  {'(python -c import textual)':28} {statistics.median(bare_import):.3f}")

    idle = idle_bytes(console, b"V2 control plane", env, args.idle_seconds)
    print(
        f"idle home screen: {idle} bytes written in {args.idle_seconds:g}s "
        f"({idle / args.idle_seconds:.0f} B/s)"
    )

    if not args.no_bytes:
        print("bytes per key (benchmarks/terminal_bytes.py)", flush=True)
        subprocess.run([python, str(REPO / "benchmarks" / "terminal_bytes.py")], check=False)


if __name__ == "__main__":
    main()
