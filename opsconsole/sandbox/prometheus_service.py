"""The sandbox's Prometheus: a real one, scraping every service that has metrics.

Started after the other services (it scrapes what they serve at their
``metrics_path``, every second). It provides ``prometheus_url``. When no
``prometheus`` binary is installed, or no running service has metrics, or it
cannot start, ``prometheus_url`` is empty, the sandbox says why in plain
words (:meth:`notes`), and PromQL steps end inconclusive (no data).

Fault ``prometheus-down`` stops the process (its port then refuses
connections) and clearing it starts it again on the same port with the same
data.
"""

from __future__ import annotations

import weakref

from ..prometheus import ABSENT_NOTE, PrometheusServer, PrometheusUnavailable, find_prometheus
from .service import Fault, SandboxService, ServiceHost

__all__ = ["PrometheusService"]

#: the running server of each sandbox's Prometheus service, by its host (the fault's handle)
_SERVERS: weakref.WeakKeyDictionary[ServiceHost, PrometheusServer] = weakref.WeakKeyDictionary()


def _switch_down(host: ServiceHost, active: bool) -> None:
    server = _SERVERS.get(host)
    if server is None:
        return  # nothing running to stop: queries have no data either way
    if active:
        server.pause()
    else:
        try:
            server.resume()
        except PrometheusUnavailable as exc:
            raise RuntimeError(str(exc)) from None


class PrometheusService(SandboxService):
    name = "prometheus"
    title = "Prometheus (real, scraping the sandbox every second)"
    variables = ("prometheus_url",)
    faults = (
        Fault(
            "prometheus-down",
            "Prometheus is stopped: PromQL checks have no data and end inconclusive",
            switch=_switch_down,
        ),
    )
    starts_after_others = True

    def __init__(self) -> None:
        self._server: PrometheusServer | None = None
        self._note = ""

    def start(self, host: ServiceHost) -> dict[str, str]:
        if find_prometheus() is None:
            self._note = ABSENT_NOTE
            return {"prometheus_url": ""}
        if not host.scrape_targets:
            self._note = (
                "No Prometheus started: none of the sandbox services running here has "
                "metrics, so PromQL checks have no data."
            )
            return {"prometheus_url": ""}
        server = PrometheusServer(host.scrape_targets)
        try:
            server.start()
        except PrometheusUnavailable as exc:
            self._note = f"No Prometheus: {exc} PromQL checks have no data."
            return {"prometheus_url": ""}
        self._server = server
        _SERVERS[host] = server
        jobs = ", ".join(target.job for target in host.scrape_targets)
        self._note = f"Prometheus at {server.url} scrapes {jobs} every second."
        return {"prometheus_url": server.url}

    def notes(self) -> list[str]:
        return [self._note] if self._note else []

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.stop()
