"""The engine never imports Textual; CI-facing commands stay light."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import REPO

ENGINE_MODULES = [
    "opsconsole",
    "opsconsole.audit",
    "opsconsole.cli",
    "opsconsole.config",
    "opsconsole.errors",
    "opsconsole.evidence",
    "opsconsole.expectations",
    "opsconsole.headless",
    "opsconsole.loader",
    "opsconsole.model",
    "opsconsole.run",
    "opsconsole.secrets",
    "opsconsole.session",
    "opsconsole.steps",
    "opsconsole.steps.command",
    "opsconsole.steps.http",
    "opsconsole.steps.trigger",
    "opsconsole.template",
    "opsconsole.sandbox",
]


def loaded_after(code: str) -> set[str]:
    probe = code + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=True,
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_engine_imports_no_textual() -> None:
    modules = loaded_after("\n".join(f"import {name}" for name in ENGINE_MODULES))
    assert "opsconsole.sandbox" in modules  # the probe really imported the engine
    assert not {m for m in modules if m == "textual" or m.startswith("textual.")}


def test_lint_and_help_import_no_textual_nor_network_stack() -> None:
    code = (
        "import contextlib, io\n"
        "from opsconsole.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    assert main(['lint', {str(REPO / 'runbooks')!r}]) == 0\n"
        "    try:\n"
        "        main(['--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
    )
    modules = loaded_after(code)
    assert "opsconsole.loader" in modules
    heavy = {"textual", "httpx", "uvicorn", "starlette", "asyncssh", "keyring"}
    assert not heavy & {m.split(".")[0] for m in modules}
