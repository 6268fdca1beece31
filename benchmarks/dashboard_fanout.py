"""Dashboard fan-out: prints numbers and ratios, asserts nothing.

    python benchmarks/dashboard_fanout.py [--checks 50] [--delay 0.2] [--runs 5]

50 watched http checks against 50 loopback endpoints that each take 200 ms to answer
(a real uvicorn server in its own process, real httpx), run as one dashboard round by
``opsconsole.watch.Watcher`` with the default bound. Budget: the round finishes within
1.5x the slowest single check (the checks run side by side, not one after another).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def serve(delay: float) -> tuple[str, object]:
    """The endpoints in their own process (as in health_fanout.py): the server's work does
    not share this process's interpreter lock with the checks being measured."""
    import multiprocessing

    sys.path.insert(0, str(REPO / "benchmarks"))
    from health_fanout import free_port, wait_ready
    from health_fanout import serve as serve_health

    port = free_port()
    server = multiprocessing.get_context("spawn").Process(
        target=serve_health, args=(port, delay), daemon=True
    )
    server.start()
    base = f"http://127.0.0.1:{port}"
    wait_ready(base)
    return base, server


def runbook(directory: Path, checks: int) -> Path:
    blocks = "\n".join(
        textwrap.dedent(
            f"""\
            ```ops http
            id: health-{n}
            watch: true
            url: "{{{{ base }}}}/health/{n}"
            expect: {{status: 200}}
            ```
            """
        )
        for n in range(checks)
    )
    path = directory / "fanout.md"
    path.write_text(
        f"---\nid: fanout\ntitle: Fan-out\nvariables: {{base: ''}}\n---\n# Health\n\n{blocks}",
        encoding="utf-8",
    )
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--checks", type=int, default=50)
    parser.add_argument("--delay", type=float, default=0.2)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    from opsconsole.config import DashboardSettings, Environment
    from opsconsole.loader import load_runbook
    from opsconsole.watch import Watcher, watches

    base, server = serve(args.delay)
    with tempfile.TemporaryDirectory() as tmp:
        items = watches([load_runbook(runbook(Path(tmp), args.checks))])
    environment = Environment(name="bench", variables={"base": base})
    bound = DashboardSettings().concurrency

    async def alone() -> list[float]:
        watcher = Watcher(environment, items[:1], concurrency=bound, timeout=10)
        times = []
        try:
            await watcher.round()
            for _ in range(args.runs):
                started = time.perf_counter()
                await watcher.round()
                times.append(time.perf_counter() - started)
        finally:
            await watcher.aclose()
        return times

    async def rounds() -> tuple[list[float], list[float]]:
        watcher = Watcher(environment, items, concurrency=bound, timeout=10)
        totals, slowest = [], []
        try:
            await watcher.round()  # warm-up: connections, imports
            for _ in range(args.runs):
                started = time.perf_counter()
                readings = await watcher.round()
                totals.append(time.perf_counter() - started)
                bad = [k for k, r in readings.items() if r.status.value != "passed"]
                if bad:
                    raise SystemExit(f"checks did not pass: {bad[:3]}")
                slowest.append(max(r.latency_ms or 0 for r in readings.values()) / 1000)
        finally:
            await watcher.aclose()
        return totals, slowest

    one = statistics.median(asyncio.run(alone()))
    totals, slowest = asyncio.run(rounds())
    server.terminate()  # type: ignore[attr-defined]
    total, single = statistics.median(totals), statistics.median(slowest)
    print(f"dashboard round: {args.checks} checks x {args.delay * 1000:.0f} ms, bound {bound}")
    print(f"  one check alone (median of {args.runs}): {one * 1000:.0f} ms")
    print(f"  round of {args.checks} (median of {args.runs}): {total * 1000:.0f} ms")
    print(f"  slowest check within the round (median): {single * 1000:.0f} ms")
    print(f"  ratio round / one check alone: {total / one:.2f} (budget <= 1.5)")
    print(f"  ratio round / slowest check in it: {total / single:.2f}")


if __name__ == "__main__":
    main()
