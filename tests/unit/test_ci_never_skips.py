"""In CI (CI=true, as .ci/run sets it) a test that would skip fails instead."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

SKIPPING = """\
import pytest

def test_skips_itself():
    pytest.skip("tmux is not installed")

@pytest.mark.skipif(True, reason="needs /proc")
def test_skipped_by_a_mark():
    pass

@pytest.mark.xfail(reason="a known bug")
def test_known_failure():
    assert False

def test_runs():
    pass
"""


def run_pytest(test_file: Path, *, ci: bool) -> subprocess.CompletedProcess[str]:
    """A child pytest with the suite's conftest hooks, as a plain (not xdist) run."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("PYTEST_") and name != "CI"
    }
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.conftest", "-p", "no:cacheprovider"]
        + ["-q", "-rfE", str(test_file)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
    )


@pytest.mark.parametrize("ci", [True, False], ids=["ci", "local"])
def test_a_skip_fails_in_ci_and_only_there(tmp_path: Path, ci: bool) -> None:
    test_file = tmp_path / "test_skipping.py"
    test_file.write_text(SKIPPING)
    done = run_pytest(test_file, ci=ci)
    summary = done.stdout.strip().splitlines()[-1]
    if ci:
        assert done.returncode == 1, done.stdout + done.stderr
        # pytest.skip() fails the test; a skip mark fails its setup (an error)
        assert summary.startswith("1 failed, 1 passed, 1 xfailed, 1 error"), done.stdout
        assert "CI must not skip a test: tmux is not installed" in done.stdout
        assert "CI must not skip a test: needs /proc" in done.stdout
    else:
        assert done.returncode == 0, done.stdout + done.stderr
        assert summary.startswith("1 passed, 2 skipped, 1 xfailed"), done.stdout
