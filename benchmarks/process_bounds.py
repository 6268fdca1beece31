"""Bounded child processes: memory under a flood of output, delivery rate, start-up cost.

    python benchmarks/process_bounds.py [--seconds 20] [--starts 20]

1. ``yes`` for N seconds through ``run_bounded`` (stopped by its timeout), with an
   ``on_output`` that counts lines, as the console's output pane would get them:
   peak RSS growth of this process (VmHWM, reset before the run) against the cap
   (the kept tail plus one unfinished line), and lines/s and MB/s delivered.
   Before run_bounded, the command step kept every line: 896 MB for 20 s.
2. Start-up: the median time to run ``true`` through ``run_bounded`` (lifeline
   guard included) against ``asyncio.create_subprocess_exec`` straight.

Prints numbers, asserts nothing. Linux (reads /proc/self/status).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from opsconsole.process import child_environment, run_bounded  # noqa: E402

MiB = 1024 * 1024


def status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


async def flood(seconds: float) -> None:
    tail_bytes, max_line = 64 * 1024, 8 * 1024
    lines = 0

    def count(line: str) -> None:
        nonlocal lines
        lines += 1

    env = child_environment()
    await run_bounded(["true"], env=env, timeout=60)  # warm up before measuring
    exact = reset_peak()
    before = status("VmHWM")
    started = time.perf_counter()
    result = await run_bounded(
        ["yes"], env=env, timeout=seconds, on_output=count, tail_bytes=tail_bytes, max_line=max_line
    )
    elapsed = time.perf_counter() - started
    growth = status("VmHWM") - before
    cap = tail_bytes + max_line
    print(f"yes for {seconds:g}s through run_bounded ({result.stopped})")
    print(
        f"  read:            {result.bytes_total / MiB:10.1f} MiB in {result.lines_total:,} lines"
    )
    rate = result.bytes_total / MiB / elapsed
    print(f"  delivered:       {lines / elapsed:10,.0f} lines/s  ({rate:.1f} MiB/s)")
    print(
        f"  peak RSS growth: {growth / MiB:10.2f} MiB"
        f"  (cap: tail {tail_bytes // 1024} KiB + line {max_line // 1024} KiB"
        f" = {cap / MiB:.2f} MiB;"
        f" {'peak reset' if exact else 'peak not resettable: growth is a lower bound'})"
    )


async def starts(count: int) -> None:
    env = child_environment()
    guarded, direct = [], []
    for _ in range(count):
        started = time.perf_counter()
        await run_bounded(["true"], env=env, timeout=60)
        guarded.append(time.perf_counter() - started)
        started = time.perf_counter()
        process = await asyncio.create_subprocess_exec("true", env=env, start_new_session=True)
        await process.wait()
        direct.append(time.perf_counter() - started)
    g, d = statistics.median(guarded) * 1000, statistics.median(direct) * 1000
    print(f"`true`, median of {count}: run_bounded {g:.1f} ms, direct exec {d:.1f} ms", end="")
    print(f" (+{g - d:.1f} ms for the lifeline guard)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--starts", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(flood(args.seconds))
    asyncio.run(starts(args.starts))


if __name__ == "__main__":
    main()
