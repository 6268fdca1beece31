"""Dashboard fan-out: prints numbers and ratios, asserts nothing.

    python benchmarks/dashboard_fanout.py [--checks 50] [--delay 0.2] [--runs 5]

50 watched http checks against 50 loopback endpoints that each take 200 ms to answer
(a real uvicorn server, real httpx), run as one dashboard round by
``opsconsole.watch.Watcher`` with the default bound. Budget: the round finishes within
1.5x the slowest single check (the checks run side by side, not one after another).
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def serve(delay: float) -> tuple[str, object]:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def health(request):  # type: ignore[no-untyped-def]
        await asyncio.sleep(delay)
        return JSONResponse({"status": "ok", "check": request.path_params["n"]})

    app = Starlette(routes=[Route("/health/{n}", health)])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="error", backlog=512))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    return f"http://127.0.0.1:{port}", server


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
    server.should_exit = True  # type: ignore[attr-defined]
    total, single = statistics.median(totals), statistics.median(slowest)
    print(f"dashboard round: {args.checks} checks x {args.delay * 1000:.0f} ms, bound {bound}")
    print(f"  one check alone (median of {args.runs}): {one * 1000:.0f} ms")
    print(f"  round of {args.checks} (median of {args.runs}): {total * 1000:.0f} ms")
    print(f"  slowest check within the round (median): {single * 1000:.0f} ms")
    print(f"  ratio round / one check alone: {total / one:.2f} (budget <= 1.5)")
    print(f"  ratio round / slowest check in it: {total / single:.2f}")


if __name__ == "__main__":
    main()
