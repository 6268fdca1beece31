"""Every snapshot on disk belongs to a snapshot test.

syrupy fails a serial run that leaves a snapshot unused (a test renamed or
removed), but not a pytest-xdist run: each worker sees only its own tests, and
`make test` runs with xdist. This asks pytest which snapshot tests exist.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCREENS = HERE / "test_screens.py"
SNAPSHOTS = HERE / "__snapshots__" / SCREENS.stem


def test_every_snapshot_file_has_its_test() -> None:
    # a plain pytest, not an xdist worker (which the environment would say this is)
    env = {name: value for name, value in os.environ.items() if not name.startswith("PYTEST_")}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"]
        + [str(SCREENS)],
        capture_output=True,
        text=True,
        cwd=HERE.parent.parent,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    tests = {line.split("::", 1)[1] for line in done.stdout.splitlines() if "::" in line}
    assert len(tests) >= 20, done.stdout
    unused = sorted(path.name for path in SNAPSHOTS.glob("*.svg") if path.stem not in tests)
    assert not unused, f"snapshots with no test (delete them): {unused}"
