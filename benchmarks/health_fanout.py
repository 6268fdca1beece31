"""50 health checks at once: does fanning out cost more than the slowest check?

    python benchmarks/health_fanout.py [--checks 50] [--delay 0.2] [--runs 5]

A loopback Starlette app serves ``--checks`` health endpoints, each answering after
``--delay`` seconds. Each check is one bounded exchange through ``httpio.send`` on the
session's shared client (``Clients``), as the http/metrics steps and a dashboard make
them; all checks start together (bounded by ``--bound``). Prints, per run, the time for
one check alone, for all of them, and the ratio all / slowest single check.

Budget (DESIGN.md): 50 checks of 200 ms in under 300 ms, i.e. a ratio <= 1.5.
Prints numbers, asserts nothing. ``--delay 0`` shows the floor: what 50 exchanges cost
the server and the client with nothing to wait for (the client's share is about 4 ms
of CPU per exchange, the same as a bare httpx request); the load average is printed
because on a shared machine the server's CPU, not the waiting, sets the total.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from starlette.applications import Starlette  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import JSONResponse  # noqa: E402
from starlette.routing import Route  # noqa: E402

from opsconsole.clients import Clients  # noqa: E402
from opsconsole.httpio import HttpLimits, send  # noqa: E402


def serve(port: int, delay: float) -> None:
    """The health endpoints, in their own process: the server's work does not share
    this process's interpreter lock with the checks being measured."""
    import uvicorn

    uvicorn.run(app(delay), host="127.0.0.1", port=port, log_level="warning",
                backlog=512)


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_ready(base: str) -> None:
    import httpx

    for _ in range(200):
        try:
            httpx.get(f"{base}/health/ready", timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError("the health server did not start")


def app(delay: float) -> Starlette:
    async def health(request: Request) -> JSONResponse:
        await asyncio.sleep(delay)
        return JSONResponse({"status": "ok", "check": request.path_params["n"]})

    return Starlette(routes=[Route("/health/{n}", health)])


async def check(clients: Clients, url: str) -> float:
    started = time.perf_counter()
    done = await send(clients.http, "GET", url, limits=HttpLimits(deadline=5.0))
    if not done.ok or done.response is None or done.response.status != 200:
        raise RuntimeError(f"{url}: {done.error or done.response}")
    return time.perf_counter() - started


async def one_run(base: str, checks: int, bound: int) -> tuple[float, float]:
    clients = Clients()
    try:
        await check(clients, f"{base}/health/warm")  # a connection to reuse, like a session
        single = max([await check(clients, f"{base}/health/{n}") for n in range(3)])
        limit = asyncio.Semaphore(bound)

        async def bounded(n: int) -> float:
            async with limit:
                return await check(clients, f"{base}/health/{n}")

        started = time.perf_counter()
        await asyncio.gather(*(bounded(n) for n in range(checks)))
        return single, time.perf_counter() - started
    finally:
        await clients.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=50)
    parser.add_argument("--delay", type=float, default=0.2)
    parser.add_argument("--bound", type=int, default=64)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    import multiprocessing

    ratios = []
    port = free_port()
    server = multiprocessing.get_context("spawn").Process(
        target=serve, args=(port, args.delay), daemon=True
    )
    server.start()
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(base)
        for run in range(1, args.runs + 1):
            single, total = asyncio.run(one_run(base, args.checks, args.bound))
            ratio = total / single
            ratios.append(ratio)
            print(
                f"run {run}: slowest single check {single * 1000:.0f} ms, "
                f"{args.checks} checks {total * 1000:.0f} ms, ratio {ratio:.2f}"
            )
    finally:
        server.terminate()
        server.join(5)
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"median ratio {statistics.median(ratios):.2f} (budget <= 1.5); load average {load} "
          f"on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
