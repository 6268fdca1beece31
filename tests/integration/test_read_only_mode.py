"""Read-only mode (issue 10): mutating steps are shown but never run, in `check` and by
config; a bad setting is named. Real processes: a mutating step that ran would leave a file."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from opsconsole.config import load_config
from opsconsole.errors import ConfigError
from opsconsole.headless import run_check
from opsconsole.loader import load_runbook
from tests.integration.test_check_cli import opsconsole

RUNBOOK = """\
---
id: read-only-demo
title: Read-only demo
---

# Read-only demo

```ops command
id: look
title: Look at the disk
run: "echo looked > {seen}"
mutating: false
```

```ops command
id: change
title: Change something
run: "echo changed > {changed}"
mutating: true
```
"""


def write_runbook(tmp_path: Path) -> tuple[Path, Path, Path]:
    seen, changed = tmp_path / "seen", tmp_path / "changed"
    path = tmp_path / "read-only-demo.md"
    path.write_text(RUNBOOK.format(seen=seen, changed=changed), encoding="utf-8")
    return path, seen, changed


def write_config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(body, encoding="utf-8")
    return path


def test_config_read_only_and_break_glass_minutes(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, """\
break_glass_minutes = 15
[environments.prod]
protected = true
read_only = true
[environments.stage]
"""))
    assert config.break_glass_minutes == 15
    assert config.environment("prod").read_only is True
    assert config.environment("stage").read_only is False
    assert load_config(write_config(tmp_path, "[environments.x]\n")).break_glass_minutes == 30
    with pytest.raises(ConfigError, match=r"environments.prod.read_only: expected true or false"):
        load_config(write_config(tmp_path, '[environments.prod]\nread_only = "yes"\n'))
    with pytest.raises(ConfigError, match="break_glass_minutes: expected whole minutes"):
        load_config(write_config(tmp_path, "break_glass_minutes = 0\n"))


def test_check_in_a_read_only_environment_skips_mutating_steps(tmp_path: Path) -> None:
    runbook_path, seen, changed = write_runbook(tmp_path)
    config = load_config(write_config(tmp_path, "[environments.prod]\nread_only = true\n"))
    report = asyncio.run(
        run_check(load_runbook(runbook_path), config.environment("prod"), tmp_path / "state")
    )
    steps = {step["id"]: step for step in json.loads(report.to_json())["steps"]}
    assert steps["look"]["status"] == "passed"
    assert steps["change"]["status"] == "skipped"
    assert "prod is read-only" in str(steps["change"]["detail"])
    assert seen.exists() and not changed.exists(), "a mutating step ran in read-only mode"


def test_check_read_only_flag_skips_mutating_steps(tmp_path: Path) -> None:
    runbook_path, seen, changed = write_runbook(tmp_path)
    config = write_config(tmp_path, "[environments.stage]\n")
    env = {"OPSCONSOLE_HOME": str(tmp_path / "state")}
    done = opsconsole("--config", str(config), "check", str(runbook_path), "--read-only",
                      "--json", env=env)
    report = json.loads(done.stdout)
    steps = {step["id"]: step for step in report["steps"]}
    assert steps["change"]["status"] == "skipped", done.stdout + done.stderr
    assert "--read-only" in steps["change"]["detail"]
    assert steps["look"]["status"] == "passed"
    assert not changed.exists()
    # the flag before the verb works the same
    done = opsconsole("--config", str(config), "--read-only", "check", str(runbook_path),
                      "--json", env=env)
    assert json.loads(done.stdout)["steps"][1]["status"] == "skipped"
    assert not changed.exists()
    # without it the step runs: the test above can fail
    done = opsconsole("--config", str(config), "check", str(runbook_path), "--yes", "--json",
                      env=env)
    assert changed.exists(), done.stdout + done.stderr


def test_version() -> None:
    done = opsconsole("--version")
    assert done.returncode == 0
    assert done.stdout.startswith("opsconsole ") and done.stdout.split()[1][0].isdigit()
