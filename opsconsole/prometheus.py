"""A real Prometheus for the sandbox: found on PATH, scraping given targets every second.

:class:`PrometheusServer` writes a generated config (one job per target,
``scrape_interval: 1s``), keeps its TSDB in a temporary directory, listens on
a free loopback port, waits (bounded) until ``/-/ready`` answers, and stops
its whole process group on :meth:`~PrometheusServer.stop`. Like every child
of opsconsole it gets an allowlisted environment and runs behind the
lifeline guard, so it goes when opsconsole goes, even on SIGKILL.

When no ``prometheus`` binary is installed, :func:`find_prometheus` returns
None and the sandbox says so in plain words (:data:`ABSENT_NOTE`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from .errors import OpsConsoleError

if TYPE_CHECKING:
    import subprocess

__all__ = [
    "ABSENT_NOTE",
    "PrometheusServer",
    "PrometheusUnavailable",
    "ScrapeTarget",
    "find_prometheus",
]

#: what the sandbox shows when there is no binary
ABSENT_NOTE = (
    "No Prometheus here: the prometheus binary is not installed, so PromQL checks have "
    "no data and end inconclusive. Install it (Debian/Ubuntu: apt-get install prometheus; "
    "macOS: brew install prometheus) and start the sandbox again."
)
HOST = "127.0.0.1"


class PrometheusUnavailable(OpsConsoleError):
    """Prometheus could not be started (the message says why, in plain words)."""


@dataclass(frozen=True)
class ScrapeTarget:
    """One thing to scrape: a job name and the base URL + path of its metrics."""

    job: str
    url: str
    metrics_path: str = "/metrics"


def find_prometheus() -> str | None:
    """The path of the ``prometheus`` binary on PATH, or None."""
    return shutil.which("prometheus")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def render_config(targets: Sequence[ScrapeTarget], scrape_interval: float = 1.0) -> str:
    """The generated prometheus.yml (JSON is YAML: no hand-quoting of names or URLs)."""
    interval = f"{max(int(scrape_interval * 1000), 100)}ms"
    jobs = []
    for target in targets:
        parts = urlsplit(target.url)
        if parts.hostname not in {HOST, "localhost"}:
            raise ValueError(f"scrape target {target.url!r} is not on loopback")
        jobs.append(
            {
                "job_name": target.job,
                "scheme": parts.scheme or "http",
                "metrics_path": target.metrics_path,
                "static_configs": [{"targets": [parts.netloc]}],
            }
        )
    config = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval,
                   "scrape_timeout": interval},
        "scrape_configs": jobs,
    }
    return json.dumps(config, indent=2)


class PrometheusServer:
    """One Prometheus process; a context manager. ``url`` is set once it is ready."""

    def __init__(
        self,
        targets: Sequence[ScrapeTarget],
        *,
        binary: str | None = None,
        scrape_interval: float = 1.0,
        ready_timeout: float = 30.0,
        grace: float = 3.0,
    ) -> None:
        self.targets = list(targets)
        self.binary = binary or find_prometheus()
        self.scrape_interval = scrape_interval
        self.ready_timeout = ready_timeout
        self.grace = grace
        self.url = ""
        self._process: subprocess.Popen[bytes] | None = None
        self._lifeline: int | None = None
        self._directory: Path | None = None
        self._port = 0

    def __enter__(self) -> PrometheusServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> PrometheusServer:
        """Start and wait until ready (PrometheusUnavailable when it cannot)."""
        if self._process is not None:
            return self
        if self.binary is None:
            raise PrometheusUnavailable(ABSENT_NOTE)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        self._directory = Path(tempfile.mkdtemp(prefix="opsconsole-prometheus-"))
        config = self._directory / "prometheus.yml"
        config.write_text(render_config(self.targets, self.scrape_interval), encoding="utf-8")
        self._port = _free_port()
        self._launch()

    def _launch(self) -> None:
        import subprocess

        from .process import _guarded, child_environment

        assert self.binary is not None and self._directory is not None
        argv = [
            self.binary,
            f"--config.file={self._directory / 'prometheus.yml'}",
            f"--storage.tsdb.path={self._directory / 'data'}",
            f"--web.listen-address={HOST}:{self._port}",
            "--storage.tsdb.retention.time=2h",
            "--log.level=warn",
        ]
        read_end, self._lifeline = os.pipe()
        log = (self._directory / "prometheus.log").open("ab")
        try:
            self._process = subprocess.Popen(  # noqa: S603 - a fixed argv, no shell
                _guarded(argv, read_end, self.grace),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=child_environment(),
                cwd=self._directory,
                start_new_session=True,
                pass_fds=(read_end,),
            )
        finally:
            os.close(read_end)
            log.close()
        url = f"http://{HOST}:{self._port}"
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise PrometheusUnavailable(
                    f"Prometheus exited at start-up (status {self._process.returncode}): "
                    + self._log_tail()
                )
            if _ready(url):
                self.url = url
                return
            time.sleep(0.1)
        raise PrometheusUnavailable(
            f"Prometheus did not become ready within {self.ready_timeout:g}s: " + self._log_tail()
        )

    def pause(self) -> None:
        """Stop the process but keep its port, config and data (:meth:`resume` restarts it):
        the sandbox's "Prometheus down" fault. Queries meanwhile are refused."""
        self._terminate()

    def resume(self) -> None:
        """Start it again on the same port, with the same data."""
        if self._process is not None or self._directory is None:
            return
        try:
            self._launch()
        except BaseException:
            self._terminate()
            raise

    def _log_tail(self) -> str:
        if self._directory is None:
            return ""
        with contextlib.suppress(OSError):
            text = (self._directory / "prometheus.log").read_text(errors="replace")
            return " ".join(text.strip().splitlines()[-3:])[-500:] or "(no output)"
        return "(no output)"

    def stop(self) -> None:
        """Stop its process group (SIGTERM, then SIGKILL after ``grace``) and delete its
        files; safe to repeat."""
        self._terminate()
        directory, self._directory = self._directory, None
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)
        self.url = ""

    def _terminate(self) -> None:
        import subprocess

        process, self._process = self._process, None
        if process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=self.grace + 1)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
        if self._lifeline is not None:
            with contextlib.suppress(OSError):
                os.close(self._lifeline)
            self._lifeline = None


def _ready(url: str) -> bool:
    import urllib.error
    import urllib.request

    # no proxy from the environment: this is loopback
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"{url}/-/ready", timeout=1) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False
