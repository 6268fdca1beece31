"""ASGI apps served by uvicorn on 127.0.0.1, from one background thread.

All the sandbox's servers share one event loop in one daemon thread, so the
caller's thread (the console's UI loop, a test) never waits on them and the
services can call each other over real loopback HTTP. Ports are bound here,
before uvicorn sees the socket, so a port is known the moment :meth:`serve`
returns and a stopped server can come back on the very same port.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import socket
import threading
from dataclasses import dataclass

import uvicorn
from starlette.types import ASGIApp

__all__ = ["LoopbackServers"]

HOST = "127.0.0.1"
#: in-flight requests get this long to finish when a server stops
#: (a slow fault sleeps 6 s: it is cut short)
GRACEFUL_SECONDS = 1
_DRAIN_STEP_SECONDS = 0.005


class _LoopbackServer(uvicorn.Server):
    """A uvicorn server that says when it accepts connections and stops without idling.

    uvicorn notices ``should_exit`` on a 0.1 s tick and then sleeps another 0.1 s
    before draining connections in 0.1 s steps: a fifth of a second per stop, paid on
    every sandbox a test starts and every time runner-down is switched. This one wakes
    as soon as it is told to exit and drains in small steps, with the same deadline.
    """

    def __init__(self, config: uvicorn.Config, accepting: threading.Event) -> None:
        super().__init__(config)
        self._accepting = accepting
        self._exit_requested = asyncio.Event()

    def request_exit(self, loop: asyncio.AbstractEventLoop) -> None:
        """Ask it to stop, from any thread."""
        self.should_exit = True
        loop.call_soon_threadsafe(self._exit_requested.set)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets=sockets)
        except SystemExit as exc:
            # uvicorn exits the process on a failed app startup; here that would only
            # kill the shared loop thread, so it becomes an error for serve() to raise.
            raise RuntimeError(f"the app failed to start (uvicorn exit {exc.code})") from None
        self._accepting.set()

    async def main_loop(self) -> None:
        # on_tick still runs every 0.1 s: it refreshes the Date header.
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._exit_requested.wait(), 0.1)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # uvicorn's Server.shutdown, minus its fixed sleep and with a finer drain step.
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        state = self.server_state
        for connection in list(state.connections):
            connection.shutdown()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + GRACEFUL_SECONDS
        while (state.connections or state.tasks) and loop.time() < deadline:
            await asyncio.sleep(_DRAIN_STEP_SECONDS)
        for task in state.tasks:
            task.cancel(msg="the sandbox server stopped before the request finished")
        for server in self.servers:
            await server.wait_closed()
        await self.lifespan.shutdown()


@dataclass
class _Served:
    app: ASGIApp
    port: int
    server: _LoopbackServer | None = None
    finished: concurrent.futures.Future[None] | None = None


class LoopbackServers:
    """Named ASGI apps on loopback ports; each can be stopped and resumed on its port."""

    def __init__(self, *, start_timeout: float = 10.0) -> None:
        self.start_timeout = start_timeout
        self._served: dict[str, _Served] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.RLock()

    def __enter__(self) -> LoopbackServers:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def serve(self, name: str, app: ASGIApp, *, port: int = 0) -> int:
        """Serve ``app`` (port 0: a free one); returns once it accepts connections."""
        with self._lock:
            if name in self._served and self._served[name].server is not None:
                raise RuntimeError(f"sandbox service {name!r} is already serving")
            entry = _Served(app=app, port=port)
            self._served[name] = entry
            self._start(name, entry)
            return entry.port

    def resume(self, name: str) -> int:
        """Serve a stopped app again, on the port it had."""
        with self._lock:
            entry = self._served[name]
            if entry.server is None:
                self._start(name, entry)
            return entry.port

    def stop(self, name: str) -> None:
        """Stop one server; its port refuses connections until :meth:`resume`."""
        with self._lock:
            self._stop([name])

    def _stop(self, names: list[str]) -> None:
        # All told first, then all awaited: they wind down concurrently.
        stopping = []
        for name in names:
            entry = self._served[name]
            if entry.server is not None and entry.finished is not None and self._loop:
                entry.server.request_exit(self._loop)
                stopping.append(entry.finished)
            entry.server = entry.finished = None
        # In-flight requests get GRACEFUL_SECONDS to finish.
        done, _ = concurrent.futures.wait(stopping, timeout=GRACEFUL_SECONDS + 5)
        for finished in stopping:
            if finished not in done:
                raise RuntimeError("a sandbox server did not stop in time")
            finished.result()

    def port(self, name: str) -> int:
        return self._served[name].port

    def ports(self) -> frozenset[int]:
        """The ports of every app served (stopped ones keep theirs)."""
        with self._lock:
            return frozenset(entry.port for entry in self._served.values())

    def is_serving(self, name: str) -> bool:
        entry = self._served.get(name)
        return entry is not None and entry.server is not None

    def close(self) -> None:
        """Stop every server, then the loop, and join the thread."""
        with self._lock:
            try:
                self._stop(list(self._served))
            finally:
                self._served.clear()
                loop, thread = self._loop, self._thread
                self._loop = self._thread = None
                if loop is not None and thread is not None:
                    loop.call_soon_threadsafe(loop.stop)
                    thread.join()

    def _start(self, name: str, entry: _Served) -> None:
        loop = self._running_loop()
        sock = _bind_loopback(entry.port)
        entry.port = sock.getsockname()[1]
        accepting = threading.Event()
        config = uvicorn.Config(
            entry.app,
            host=HOST,
            port=entry.port,
            http="h11",
            ws="none",
            # Lifespan events open and close what an app holds (the control plane's client).
            lifespan="on",
            # log_config=None leaves the host process's logging alone; CRITICAL keeps
            # uvicorn's warnings (stray bad requests, app errors already answered 500)
            # from reaching the terminal through logging's last-resort stderr handler.
            log_config=None,
            log_level=logging.CRITICAL,
            access_log=False,
            timeout_graceful_shutdown=GRACEFUL_SECONDS,
        )
        server = _LoopbackServer(config, accepting)
        # uvicorn installs no signal handlers off the main thread, which this is.
        finished = asyncio.run_coroutine_threadsafe(server.serve(sockets=[sock]), loop)
        finished.add_done_callback(lambda _: accepting.set())
        if not accepting.wait(self.start_timeout) or finished.done():
            server.request_exit(loop)
            sock.close()
            if finished.done():
                finished.result()
            raise RuntimeError(
                f"sandbox service {name!r} did not start within {self.start_timeout:g} s"
            )
        entry.server, entry.finished = server, finished

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            loop = asyncio.new_event_loop()
            thread = threading.Thread(
                target=_run_loop, args=(loop,), name="opsconsole-sandbox", daemon=True
            )
            thread.start()
            self._loop, self._thread = loop, thread
        return self._loop


def _bind_loopback(port: int) -> socket.socket:
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on sockets that say so,
    # and without it every response waits ~40 ms on delayed ACKs.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        # Lets a resumed server rebind its port while old connections sit in TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, port))
    except OSError:
        sock.close()
        raise
    return sock


def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
    finally:
        # Background work the apps started (the runner's jobs) must not outlive the loop.
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
        asyncio.set_event_loop(None)
        loop.close()
