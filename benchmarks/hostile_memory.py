"""Peak memory of one send() per hostile response: prints numbers, asserts nothing.

    python benchmarks/hostile_memory.py [--cap BYTES]

Each response is fetched by a fresh interpreter (``measure_send_memory``): it imports
httpx and opsconsole, makes one ordinary request to warm up, resets its peak RSS
(``/proc/self/clear_refs``), then sends the hostile request. "growth" is the peak RSS
during that request minus the RSS before it. Target: bounded by the cap plus a constant
(the old ``client.request`` path: 200 MB body -> 649 MB RSS, 1 GiB gzip bomb -> 3.1 GB).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]  # this checkout's opsconsole and fixtures

from hostile_server import (  # type: ignore[import-not-found]  # noqa: E402
    HostileServer,
    measure_send_memory,
)

from opsconsole.httpio import HttpLimits  # noqa: E402

MiB = 1024 * 1024
ROUTES = [
    ("/json", "ordinary 56-byte JSON (baseline)"),
    ("/huge", "200 MB body"),
    ("/gzip-bomb", "1 GiB of zeros, gzip"),
    ("/deep-json", "array nested 200,000 deep"),
    ("/surrogate-json", 'lone surrogate {"id": "\\ud800"}'),
    ("/trickle", "one byte every 0.5 s (2 s deadline)"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cap", type=int, default=HttpLimits().max_body_bytes)
    args = parser.parse_args()
    print(f"cap (max_body_bytes): {args.cap / MiB:.1f} MiB; deadline {HttpLimits().deadline:g}s")
    print(f"{'route':<16} {'response':<36} {'peak MiB':>9} {'growth MiB':>11} {'read':>10}  end")
    with HostileServer(trickle_interval=0.5) as server:
        for path, what in ROUTES:
            limits: dict[str, float] = {"max_body_bytes": args.cap}
            if path == "/trickle":
                limits["deadline"] = 2.0
            reading = measure_send_memory(server.url("/json"), server.url(path), **limits)
            end = reading.error_kind or ("cut at the cap" if reading.truncated else "complete")
            if reading.json_error:
                end += f"; json_error: {reading.json_error}"
            print(
                f"{path:<16} {what:<36} {reading.peak / MiB:>9.1f} {reading.growth / MiB:>11.1f}"
                f" {reading.body_bytes:>10}  {end}"
            )


if __name__ == "__main__":
    main()
