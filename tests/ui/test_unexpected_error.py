"""An unexpected error in the console: one line to the operator, no locals, secrets masked."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.conftest import REPO

SCRIPT = textwrap.dedent("""
    import sys
    from pathlib import Path
    from opsconsole.config import Config, ConsoleSettings
    from opsconsole.secrets import Redactor
    from screens.app import OpsConsoleApp

    SECRET = sys.argv[1]
    redactor = Redactor()
    redactor.register(SECRET)

    class Broken(OpsConsoleApp):
        def on_mount(self) -> None:
            super().on_mount()
            headers = {"X-Ops-Key": SECRET}  # a local a traceback with locals would print
            raise RuntimeError(f"handler blew up while sending {headers['X-Ops-Key']}")

    settings = ConsoleSettings(config=Config(), home=Path(sys.argv[2]), runbook_paths=[])
    app = Broken(settings)
    app.run(headless=True)
    sys.exit(app.return_code or 0)
""")


def test_unexpected_error_is_one_redacted_line_and_a_crash_log(tmp_path: Path) -> None:
    secret = "s3cr3t-" + os.urandom(8).hex()
    env = {**os.environ, "PYTHONPATH": str(REPO), "OPSCONSOLE_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, secret, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 1
    assert (
        "opsconsole stopped: unexpected RuntimeError: handler blew up while sending ***" in output
    )
    assert "Traceback" not in output and secret not in output
    log = (tmp_path / "crash.log").read_text()
    assert "Traceback" in log and "RuntimeError" in log
    assert secret not in log
