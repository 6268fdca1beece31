"""Clients a session's steps use, made once, lazily, and closed with the session.

Steps never build their own clients: they take them from the session's
:class:`Clients` (``ctx.clients.http``). Tests pass a transport
(``Clients(http_transport=httpx.MockTransport(...))``), and a later client
(SSH, Prometheus) is one more lazily built entry via :meth:`Clients.get`,
without touching the session.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import ssl

    import httpx

    from .config import Environment

__all__ = ["ClientSettings", "Clients"]

T = TypeVar("T")


@dataclass(frozen=True)
class ClientSettings:
    """Per-environment base settings for network clients."""

    #: verify TLS certificates (a path: a CA bundle)
    verify: bool | str = True
    #: proxy URL for HTTP(S); None: none (the process environment is never consulted)
    proxy: str | None = None
    #: connect timeout in seconds (the total deadline is per step)
    connect_timeout: float = 5.0

    @classmethod
    def for_environment(cls, environment: Environment) -> ClientSettings:
        http = environment.http
        return cls(verify=http.verify, proxy=http.proxy, connect_timeout=http.connect_timeout)


class Clients:
    """A lazily built, closable set of clients for one session."""

    def __init__(
        self,
        settings: ClientSettings | None = None,
        *,
        http_transport: httpx.AsyncBaseTransport | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.settings = settings or ClientSettings()
        self._http_transport = http_transport
        #: made from ``settings.verify`` and shared by several sets of clients (building one
        #: loads the CA bundle: ~40 ms)
        self._ssl_context = ssl_context
        self._http: httpx.AsyncClient | None = None
        self._others: dict[str, tuple[Any, Callable[[Any], Any] | None]] = {}

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            import httpx

            settings = self.settings
            self._http = httpx.AsyncClient(
                follow_redirects=False,
                verify=self._ssl_context if self._ssl_context is not None else settings.verify,
                proxy=settings.proxy,
                # the environment's HTTP(S)_PROXY and .netrc are not read: a runbook's requests
                # go where the runbook and the environment config say, nowhere else
                trust_env=False,
                timeout=httpx.Timeout(None, connect=settings.connect_timeout),
                transport=self._http_transport,
            )
        return self._http

    def get(
        self, name: str, factory: Callable[[], T], close: Callable[[T], Any] | None = None
    ) -> T:
        """The client called ``name``, built by ``factory`` on first use; ``close`` (sync or
        async) runs when the session closes."""
        if name not in self._others:
            self._others[name] = (factory(), close)
        client, _ = self._others[name]
        return client  # type: ignore[no-any-return]

    async def aclose(self) -> None:
        others, self._others = self._others, {}
        for client, close in others.values():
            if close is None:
                continue
            result = close(client)
            if inspect.isawaitable(result):
                await result
        if self._http is not None:
            http, self._http = self._http, None
            await http.aclose()

