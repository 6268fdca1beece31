"""Sandbox start-up: prints numbers, asserts nothing.

    python benchmarks/sandbox.py [--runs N]

1. ``Sandbox().start()`` and ``.stop()`` (every registered service), medians;
   the first run also pays for imports that happen on first serve.
2. Switching runner-down on and off (stops and resumes the runner's server).
3. ``python -m opsconsole.sandbox serve runner`` with a bad environment: the
   fail-fast exit 78 the V2 runbook runs four times per walk.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    runs = parser.parse_args().runs

    started = time.perf_counter()
    from opsconsole.sandbox import Sandbox

    print(f"import opsconsole.sandbox: {time.perf_counter() - started:.3f} s")

    starts, stops = [], []
    for _ in range(runs):
        box = Sandbox(job_seconds=0.05)
        started = time.perf_counter()
        box.start()
        middle = time.perf_counter()
        box.stop()
        starts.append(middle - started)
        stops.append(time.perf_counter() - middle)
    print(f"first start {starts[0]:.3f} s, stop {stops[0]:.3f} s")
    print(
        f"median of {runs}: start {statistics.median(starts):.3f} s, "
        f"stop {statistics.median(stops):.3f} s, "
        f"start+stop {statistics.median(a + b for a, b in zip(starts, stops, strict=True)):.3f} s"
    )

    ons, offs = [], []
    with Sandbox(job_seconds=0.05) as box:
        for _ in range(runs):
            started = time.perf_counter()
            box.set_fault("runner-down", True)
            middle = time.perf_counter()
            box.set_fault("runner-down", False)
            ons.append(middle - started)
            offs.append(time.perf_counter() - middle)
    on, off = statistics.median(ons), statistics.median(offs)
    print(f"runner-down median: on {on:.3f} s, off {off:.3f} s")

    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO)}
    times = []
    for _ in range(max(5, runs // 2)):
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "opsconsole.sandbox", "serve", "runner"],
            env=env,
            cwd=REPO,  # -m imports from the working directory first
            capture_output=True,
            timeout=60,
        )
        times.append(time.perf_counter() - started)
        assert done.returncode == 78, done.stderr
    print(f"fail-fast `serve runner` (exit 78) median: {statistics.median(times):.3f} s")


if __name__ == "__main__":
    main()
