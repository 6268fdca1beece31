"""How the engine's cost per step grows with the runbook: ``check`` of generated runbooks.

Each runbook has N manual checks answered by the sandbox's simulated operator (no network,
no child processes), so what is measured is the engine: the session, redaction, the audit
record and the atomic save of run state after every step. Printed per step, for N = 250,
1000 and 2000: linear means the per-step cost stays flat as N grows.

The state dir is on tmpfs when /dev/shm exists (fsync costs next to nothing there), and on
the disk too, so the I/O share is visible.

    python benchmarks/check_scale.py
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from pathlib import Path

from opsconsole.config import Environment
from opsconsole.headless import run_check
from opsconsole.loader import load_runbook
from opsconsole.operator import HeadlessOperator


def runbook_text(steps: int) -> str:
    lines = ["---", "id: scale", "title: Scale", "---", "", "# Scale", ""]
    for section in range(0, steps, 50):
        lines += [f"## Section {section // 50}", ""]
        lines += [f"- [ ] check number {n}" for n in range(section, min(section + 50, steps))]
        lines.append("")
    return "\n".join(lines)


def measure(steps: int, base: Path) -> tuple[float, float]:
    work = Path(tempfile.mkdtemp(dir=base))
    try:
        path = work / "scale.md"
        path.write_text(runbook_text(steps), encoding="utf-8")
        runbook = load_runbook(path)
        operator = HeadlessOperator(simulate=True)
        started = time.perf_counter()
        cpu = time.process_time()
        report = asyncio.run(
            run_check(runbook, Environment(name="bench"), work / "state", operator=operator)
        )
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        assert report.counts()["answered"] == steps, report.counts()
        return wall, cpu
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    places = [("disk", Path(tempfile.gettempdir()))]
    if Path("/dev/shm").is_dir():
        places.insert(0, ("tmpfs", Path("/dev/shm")))
    print(f"{'where':6} {'steps':>6} {'wall s':>8} {'cpu s':>7} {'ms/step':>8} {'cpu ms/step':>12}")
    for where, base in places:
        for steps in (250, 1000, 2000):
            wall, cpu = measure(steps, base)
            print(
                f"{where:6} {steps:6d} {wall:8.2f} {cpu:7.2f} {wall / steps * 1000:8.2f} "
                f"{cpu / steps * 1000:12.2f}"
            )
    print("linear: ms/step flat as steps grow; engine overhead: cpu ms/step on tmpfs")


if __name__ == "__main__":
    os.environ.setdefault("OPSCONSOLE_HOME", tempfile.mkdtemp())
    main()
