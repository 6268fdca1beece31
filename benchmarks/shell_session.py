"""Per-block cost of the run's shell session against a new bash per block (prints numbers).

    python benchmarks/shell_session.py [BLOCKS]
"""

from __future__ import annotations

import asyncio
import sys
import time

from opsconsole.process import child_environment, run_bounded
from opsconsole.shell_session import ShellSession


async def main(blocks: int) -> None:
    shell = ShellSession()
    try:
        await shell.run_block("true")  # start-up is paid once per run
        started = time.perf_counter()
        for n in range(blocks):
            await shell.run_block(f"export N{n % 10}={n}; echo $N{n % 10}")
        session = (time.perf_counter() - started) / blocks * 1000
    finally:
        await shell.close()
    started = time.perf_counter()
    for n in range(blocks):
        await run_bounded(["/bin/bash", "-c", f"echo {n}"], env=child_environment(), timeout=10)
    fresh = (time.perf_counter() - started) / blocks * 1000
    print(f"{blocks} blocks: shell session {session:.1f} ms/block, "
          f"new bash -c {fresh:.1f} ms/block")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 100))
