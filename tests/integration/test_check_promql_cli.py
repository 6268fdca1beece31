"""``check --sandbox`` with PromQL steps: the sandbox says plainly when it has no
Prometheus to offer, and the steps end inconclusive (exit 1), never passed."""

from __future__ import annotations

import json
from pathlib import Path

from tests.integration.test_check_cli import opsconsole

RUNBOOK = """\
---
id: signals
title: Signals
variables: [prometheus_url]
---
# Signals

```ops promql
id: error-rate
prometheus: "{{ prometheus_url }}"
query: 'sum(rate(bot_commands_failed_total[5m])) / sum(rate(bot_commands_total[5m]))'
success: "< 0.01"
failure: ">= 0.05"
```
"""


def test_no_prometheus_is_said_and_promql_is_inconclusive(tmp_path: Path) -> None:
    path = tmp_path / "signals.md"
    path.write_text(RUNBOOK, encoding="utf-8")
    for extra in ([], ["--fault", "prometheus-down"]):
        done = opsconsole("check", str(path), "--sandbox", "--json", *extra,
                          env={"OPSCONSOLE_HOME": str(tmp_path / "home")})
        assert done.returncode == 1, done.stderr
        # no sandbox service running here has metrics (or there is no binary): said plainly
        assert "No Prometheus" in done.stderr
        report = json.loads(done.stdout)
        step = report["steps"][0]
        assert step["status"] == "inconclusive"
        assert step["detail"].startswith("no data: no Prometheus to ask")
