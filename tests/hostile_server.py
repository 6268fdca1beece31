"""A hostile HTTP/1.1 server on 127.0.0.1 for tests and benchmarks: byte-level misbehaviour.

It is written on plain asyncio streams (one event loop in a daemon thread) because a
framework would not let it trickle header bytes, lie about lengths or stream a gzip bomb.
Every connection carries one request and is closed after it (``Connection: close``).

Routes (knobs are constructor arguments):

- ``/trickle``        200 headers, then one body byte every ``trickle_interval`` s, forever
- ``/trickle-headers`` the status line, then one header byte every ``trickle_interval`` s
- ``/huge``           ``huge_bytes`` of body, streamed (never held in memory)
- ``/gzip-bomb``      ``bomb_bytes`` of zeros, gzip-compressed on the fly (chunked)
- ``/never``          reads the request and never answers
- ``/drop``           reads the request and closes the connection without a word
- ``/slow-post``      reads the body, sleeps ``slow_post_seconds``, then answers 200
- ``/deep-json``      an array nested ``deep_json_depth`` levels
- ``/surrogate-json`` ``{"id": "\\ud800"}`` (a lone surrogate, as a JSON escape)
- ``/bad-utf8``       a JSON body with a byte that is not UTF-8
- ``/encoded?as=X``   a small JSON body with Content-Encoding X: gzip, deflate (zlib),
                      raw-deflate, corrupt-gzip (not gzip at all), gzip-trailing (1 MiB of
                      junk after the gzip stream), br (claimed, not brotli)
- ``/json``           a small ordinary JSON body
- ``/counter``        the request counts so far, as JSON ``{"METHOD /path": n}``

Every request is counted by method and path (:meth:`HostileServer.count`), so a test can
prove a POST reached the server exactly once.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import subprocess
import sys
import threading
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

__all__ = ["HostileServer", "MemoryReading", "hostile_server", "measure_send_memory"]

HOST = "127.0.0.1"
MiB = 1024 * 1024
REPO = Path(__file__).resolve().parent.parent
SMALL_JSON = {"status": "ok", "items": [1, 2, 3], "note": "ordinary"}
_BLOCK = bytes(64 * 1024)  # what /huge and /gzip-bomb stream, again and again


@dataclass
class _Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


Route = Callable[["HostileServer", _Request, asyncio.StreamWriter], Awaitable[None]]


class HostileServer:
    """Start with ``with HostileServer(...) as server:``; ``server.url("/trickle")``."""

    def __init__(
        self,
        *,
        trickle_interval: float = 3.0,
        huge_bytes: int = 200 * 1000 * 1000,
        bomb_bytes: int = 1024 * MiB,
        deep_json_depth: int = 200_000,
        slow_post_seconds: float = 3600.0,
    ) -> None:
        self.trickle_interval = trickle_interval
        self.huge_bytes = huge_bytes
        self.bomb_bytes = bomb_bytes
        self.deep_json_depth = deep_json_depth
        self.slow_post_seconds = slow_post_seconds
        self.port = 0
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    # lifecycle

    def __enter__(self) -> HostileServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        # the loop runs in its own thread from the start: start() works inside a running loop too
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="hostile-http", daemon=True)
        self._thread.start()
        listening = asyncio.start_server(self._handle, HOST, 0, limit=64 * 1024)
        self._server = asyncio.run_coroutine_threadsafe(listening, loop).result(timeout=10)
        self.port = self._server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
        self._loop = self._thread = None

    async def _shutdown(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    # what tests use

    def url(self, path: str) -> str:
        return f"http://{HOST}:{self.port}{path}"

    def count(self, method: str, path: str) -> int:
        """How many ``method path`` requests arrived (completely read) so far."""
        with self._lock:
            return self._counts[f"{method.upper()} {path}"]

    # serving

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            request = await _read_request(reader)
            with self._lock:
                self._counts[f"{request.method} {request.path}"] += 1
            route = ROUTES.get(request.path, _not_found)
            await route(self, request, writer)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # the client went away or sent garbage: nothing to answer
        except asyncio.CancelledError:
            pass  # the server is stopping
        finally:
            self._handlers.discard(task)
            writer.close()
            try:
                await writer.wait_closed()
            except (ConnectionError, asyncio.CancelledError):
                pass


async def _read_request(reader: asyncio.StreamReader) -> _Request:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    parts = urlsplit(target)
    return _Request(method.upper(), parts.path, parse_qs(parts.query), headers, body)


def _head(status: str, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status}", *(f"{k}: {v}" for k, v in headers.items()), "Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _respond(
    writer: asyncio.StreamWriter,
    body: bytes,
    content_type: str,
    status: str = "200 OK",
    **extra: str,
) -> None:
    headers = {"Content-Type": content_type, "Content-Length": str(len(body))}
    headers.update({name.replace("_", "-"): value for name, value in extra.items()})
    writer.write(_head(status, headers) + body)


async def _not_found(
    server: HostileServer, request: _Request, writer: asyncio.StreamWriter
) -> None:
    _respond(writer, b"no such route\n", "text/plain", "404 Not Found")


async def _json(server: HostileServer, request: _Request, writer: asyncio.StreamWriter) -> None:
    _respond(writer, json.dumps(SMALL_JSON).encode(), "application/json")


async def _counter(server: HostileServer, request: _Request, writer: asyncio.StreamWriter) -> None:
    with server._lock:
        counts = dict(server._counts)
    _respond(writer, json.dumps(counts).encode(), "application/json")


async def _trickle(server: HostileServer, request: _Request, writer: asyncio.StreamWriter) -> None:
    writer.write(_head("200 OK", {"Content-Type": "text/plain", "Content-Length": "1000000000"}))
    while True:
        await writer.drain()
        await asyncio.sleep(server.trickle_interval)
        writer.write(b"x")


async def _trickle_headers(
    server: HostileServer, request: _Request, writer: asyncio.StreamWriter
) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\nX-Trickle: ")
    while True:
        await writer.drain()
        await asyncio.sleep(server.trickle_interval)
        writer.write(b"a")


async def _huge(server: HostileServer, request: _Request, writer: asyncio.StreamWriter) -> None:
    total = server.huge_bytes
    writer.write(_head("200 OK", {"Content-Type": "text/plain", "Content-Length": str(total)}))
    block = b"a" * len(_BLOCK)
    sent = 0
    while sent < total:
        piece = block[: total - sent]
        writer.write(piece)
        sent += len(piece)
        await writer.drain()


async def _gzip_bomb(
    server: HostileServer, request: _Request, writer: asyncio.StreamWriter
) -> None:
    headers = {
        "Content-Type": "text/plain",
        "Content-Encoding": "gzip",
        "Transfer-Encoding": "chunked",
    }
    writer.write(_head("200 OK", headers))
    squeeze = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    left = server.bomb_bytes
    while left > 0:
        data = b""
        for _ in range(16):  # 1 MiB of zeros, then a sync flush keeps the bytes flowing
            block = _BLOCK[: min(left, len(_BLOCK))]
            left -= len(block)
            data += squeeze.compress(block)
        data += squeeze.flush(zlib.Z_SYNC_FLUSH)
        writer.write(b"%x\r\n%s\r\n" % (len(data), data))
        await writer.drain()
    tail = squeeze.flush()
    writer.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(tail), tail))


async def _never(server: HostileServer, request: _Request, writer: asyncio.StreamWriter) -> None:
    await asyncio.Event().wait()  # until the server stops


async def _drop(server: HostileServer, request: _Request, writer: asyncio.StreamWriter) -> None:
    transport = writer.transport
    transport.abort()  # no response, not even a clean FIN: the request is simply lost


async def _slow_post(
    server: HostileServer, request: _Request, writer: asyncio.StreamWriter
) -> None:
    await asyncio.sleep(server.slow_post_seconds)
    _respond(writer, b'{"accepted": true}', "application/json")


async def _deep_json(
    server: HostileServer, request: _Request, writer: asyncio.StreamWriter
) -> None:
    depth = server.deep_json_depth
    _respond(writer, b"[" * depth + b"]" * depth, "application/json")


async def _surrogate_json(
    server: HostileServer, request: _Request, writer: asyncio.StreamWriter
) -> None:
    _respond(writer, b'{"id": "\\ud800"}', "application/json")


async def _bad_utf8(server: HostileServer, request: _Request, writer: asyncio.StreamWriter) -> None:
    _respond(writer, b'{"name": "caf\xe9"}', "application/json; charset=utf-8")


async def _encoded(server: HostileServer, request: _Request, writer: asyncio.StreamWriter) -> None:
    body = json.dumps(SMALL_JSON).encode()
    kind = request.query.get("as", ["gzip"])[0]
    raw_deflate = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    encoded, header = {
        "gzip": (gzip.compress(body), "gzip"),
        "deflate": (zlib.compress(body), "deflate"),
        "raw-deflate": (raw_deflate.compress(body) + raw_deflate.flush(), "deflate"),
        "corrupt-gzip": (b"this is not gzip at all" * 10, "gzip"),
        "gzip-trailing": (gzip.compress(body) + bytes(MiB), "gzip"),  # junk after the end
        "br": (b"\x1b\x03\x00\xf8" + body, "br"),
    }[kind]
    _respond(writer, encoded, "application/json", Content_Encoding=header)


ROUTES: dict[str, Route] = {
    "/json": _json,
    "/counter": _counter,
    "/trickle": _trickle,
    "/trickle-headers": _trickle_headers,
    "/huge": _huge,
    "/gzip-bomb": _gzip_bomb,
    "/never": _never,
    "/drop": _drop,
    "/slow-post": _slow_post,
    "/deep-json": _deep_json,
    "/surrogate-json": _surrogate_json,
    "/bad-utf8": _bad_utf8,
    "/encoded": _encoded,
}


@pytest.fixture
def hostile_server() -> Iterator[HostileServer]:
    """A hostile server whose trickle is fast enough for tests with a 1 s deadline."""
    with HostileServer(trickle_interval=0.2) as server:
        yield server


# memory of one send(), measured in a fresh interpreter

_CHILD = """
import asyncio, json, sys
import httpx
from opsconsole.httpio import HttpLimits, send

def status(key):
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024

async def main(warm_url, url, limits):
    async with httpx.AsyncClient() as client:
        await send(client, "GET", warm_url, limits=limits)  # imports and first connection
        try:
            with open("/proc/self/clear_refs", "w") as handle:
                handle.write("5")  # reset the peak to the current RSS
        except OSError:
            pass
        before = status("VmRSS")
        exchange = await send(client, "GET", url, limits=limits)
        peak = status("VmHWM")
    response = exchange.response
    print(json.dumps({
        "before": before, "peak": peak, "error_kind": exchange.error_kind,
        "body_bytes": response.body_bytes if response else 0,
        "truncated": response.truncated if response else False,
        "json_error": response.json_error if response else None,
    }))

asyncio.run(main(sys.argv[1], sys.argv[2], HttpLimits(**json.loads(sys.argv[3]))))
"""


@dataclass(frozen=True)
class MemoryReading:
    """Resident memory of a fresh interpreter around one ``send()``, in bytes."""

    before: int
    peak: int
    error_kind: str | None
    body_bytes: int
    truncated: bool
    json_error: str | None

    @property
    def growth(self) -> int:
        return self.peak - self.before


def measure_send_memory(warm_url: str, url: str, **limits: Any) -> MemoryReading:
    """Run ``send(GET url)`` with ``HttpLimits(**limits)`` in a new interpreter; its peak RSS."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(REPO),
        "LANG": "C.UTF-8",
    }
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, warm_url, url, json.dumps(limits)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"the measuring child failed:\n{result.stderr}")
    return MemoryReading(**json.loads(result.stdout))
