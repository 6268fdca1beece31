"""``opsconsole lint`` on runbooks written for people, through the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

PLAIN = REPO / "tests" / "runbooks" / "plain"


def lint(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "opsconsole.cli", "lint", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def test_hugo_front_matter_is_a_warning_and_strict_makes_it_fail() -> None:
    path = str(PLAIN / "hugo.md")
    relaxed, strict = lint(path), lint("--strict", path)
    assert relaxed.returncode == 0, relaxed.stdout + relaxed.stderr
    assert f"{path}:3: warning: front matter: unknown field 'weight'" in relaxed.stdout
    assert strict.returncode == 1, strict.stdout + strict.stderr
    assert strict.stdout == relaxed.stdout
    assert "Traceback" not in strict.stderr


def test_strict_passes_a_plain_runbook_without_warnings() -> None:
    done = lint("--strict", str(PLAIN / "prompts.md"), str(PLAIN / "placeholders.md"))
    assert (done.returncode, done.stdout) == (0, ""), done.stderr
    assert "2 runbooks, no problems" in done.stderr


def test_malformed_fence_attributes_are_a_lint_error_at_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "runme.md"
    path.write_text("# Deploy\n\n```sh {name=deploy background=maybe\nnpm run deploy\n```\n")
    done = lint(str(path))
    assert done.returncode == 1
    assert done.stdout.startswith(f"{path}:3: fence attributes: '{{' is never closed with '}}'")
    assert "Traceback" not in done.stdout + done.stderr
