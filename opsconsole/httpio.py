"""One bounded HTTP exchange: a total deadline, a body cap, bounded decompression, safe JSON.

``send()`` is the only way a step talks HTTP. Whatever the server or the network
does, it returns an :class:`Exchange` in operator words and never raises:

- one deadline covers connect, request, headers and body (a server that trickles
  a byte every few seconds is cut off, which a per-read timeout never does);
- at most ``max_body_bytes`` of *decoded* body are read; then reading stops and the
  connection is closed. gzip/deflate are decoded here, ``max_length`` at a time,
  because httpx inflates a whole network chunk at once (64 KiB of gzip can be 64 MiB);
- JSON that would crash later (nested too deep for the stack, lone surrogates that
  cannot be written as UTF-8) becomes ``json_error``, never an exception;
- ``may_have_acted`` says whether the request may have reached the server, so a
  mutating step that timed out is reported as unknown rather than failed. Nothing
  is ever retried: httpx does not retry a sent request, and redirects are not followed.
"""

from __future__ import annotations

import asyncio
import codecs
import json as jsonlib
import re
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import httpx

__all__ = [
    "ErrorKind",
    "Exchange",
    "HttpLimits",
    "ResponseRecord",
    "describe_transport_error",
    "error_kind",
    "parse_json_body",
    "send",
]

ErrorKind = Literal[
    "deadline",  # no complete response within the total deadline (the request may have been sent)
    "connect_timeout",  # no connection within the connect timeout or the deadline: nothing sent
    "refused",  # nothing listening: nothing sent
    "dns",  # the host name does not resolve: nothing sent
    "connect",  # any other failure to connect (TLS, unreachable): nothing sent
    "protocol",  # the server broke HTTP, closed early or sent a body that cannot be decoded
    "invalid_url",  # the URL cannot be sent: nothing sent
    "invalid_request",  # a header or body httpx refuses to send: nothing sent
    "other",
]

#: error kinds where provably nothing reached the server
_NOTHING_SENT: frozenset[str] = frozenset(
    {"connect_timeout", "refused", "dns", "connect", "invalid_url", "invalid_request"}
)

_DECODABLE = ("gzip", "deflate")
_JSON_TYPE = re.compile(r"^application/(?:[\w.+-]+\+)?json\b|^text/json\b", re.IGNORECASE)
#: a \\uXXXX escape of a UTF-16 surrogate: only these can yield a lone surrogate in parsed JSON
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF][0-9a-fA-F]{2}")


@dataclass(frozen=True)
class HttpLimits:
    """Bounds of one exchange."""

    #: total seconds for connect + request + headers + body
    deadline: float = 10.0
    #: decoded body bytes read at most; past this reading stops and the connection is closed
    max_body_bytes: int = 4 * 1024 * 1024
    #: seconds to establish the connection (never more than ``deadline``)
    connect_timeout: float = 5.0
    #: JSON nested deeper than this is not parsed (deeper values crash recursive code later)
    max_json_depth: int = 100

    def __post_init__(self) -> None:
        if self.deadline <= 0 or self.connect_timeout <= 0:
            raise ValueError("deadline and connect_timeout must be positive")
        if self.max_body_bytes < 1 or self.max_json_depth < 1:
            raise ValueError("max_body_bytes and max_json_depth must be at least 1")


@dataclass
class ResponseRecord:
    """What was received: status, headers and the body up to the cap, decoded."""

    status: int
    reason: str
    headers: dict[str, str]
    elapsed_ms: float
    body: str = ""
    #: decoded bytes read (at most ``max_body_bytes``)
    body_bytes: int = 0
    #: the cap was reached: the rest was not read and the connection was closed
    truncated: bool = False
    is_json: bool = False
    json: Any = None
    #: why a body that looks like JSON was not parsed, in operator words
    json_error: str | None = None
    content_type: str = ""
    #: operator words about the body itself (cut at the cap), to show beside it
    notice: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The response dict steps, expectations and saved state use (today's keys, plus more).

        Nothing is cut here: redact the result first, then cut what is saved.
        """
        record: dict[str, Any] = {
            "status": self.status,
            "reason": self.reason,
            "headers": dict(self.headers),
            "elapsed_ms": round(self.elapsed_ms, 1),
            "body": self.body,
            "truncated": self.truncated,
            "body_bytes": self.body_bytes,
            "is_json": self.is_json,
        }
        if self.is_json:
            record["json"] = self.json
        if self.json_error is not None:
            record["json_error"] = self.json_error
        if self.notice is not None:
            record["notice"] = self.notice
        return record


@dataclass
class Exchange:
    """One request and what came of it: exactly one of ``response`` and ``error`` is set."""

    request: dict[str, Any]
    response: ResponseRecord | None = None
    #: why there is no complete response, in operator words
    error: str | None = None
    #: False only when provably nothing was sent (DNS, refused, connect timeout, bad URL)
    may_have_acted: bool = True
    elapsed_ms: float = 0.0
    error_kind: ErrorKind | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.response is not None


@dataclass
class _Progress:
    """What httpcore's trace hook has seen, so a timeout can say whether anything was sent."""

    traced: bool = False
    sending: bool = False

    async def trace(self, name: str, info: Mapping[str, Any]) -> None:
        self.traced = True
        if name.endswith("send_request_headers.started"):
            self.sending = True


class _UnsupportedEncoding(Exception):
    pass


class _BodyDecoder:
    """Decodes gzip/deflate in steps of at most ``room`` output bytes: memory stays bounded."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        if encoding == "gzip":
            self._inflate: Any = zlib.decompressobj(zlib.MAX_WBITS | 16)
        elif encoding == "deflate":
            self._inflate = zlib.decompressobj()
        else:
            self._inflate = None
        self._first = True

    def decode(self, data: bytes, room: int) -> tuple[bytes, bool]:
        """Up to ``room`` decoded bytes of ``data``; True when there is more than ``room``."""
        if self._inflate is None:
            return data[:room], len(data) > room
        if self._first and self.encoding == "deflate":
            self._first = False
            try:
                return self._inflate_some(data, room)
            except zlib.error:
                # many servers send raw deflate without the zlib header (httpx accepts both)
                self._inflate = zlib.decompressobj(-zlib.MAX_WBITS)
        return self._inflate_some(data, room)

    @property
    def finished(self) -> bool:
        """The compressed stream has ended: whatever follows is not read (nor kept)."""
        return self._inflate is not None and self._inflate.eof

    def _inflate_some(self, data: bytes, room: int) -> tuple[bytes, bool]:
        # ask for one byte more than there is room for, to know whether the cap is exceeded
        out = self._inflate.decompress(data, room + 1)
        while len(out) <= room and self._inflate.unconsumed_tail:
            out += self._inflate.decompress(self._inflate.unconsumed_tail, room + 1 - len(out))
        if len(out) > room:
            return out[:room], True
        return out, False


def _where(url: httpx.URL) -> str:
    return f"{url.host}:{url.port or (443 if url.scheme == 'https' else 80)}"


def _seconds(value: float) -> str:
    return f"{value:g}s"


def _size(count: int) -> str:
    if count >= 1024 * 1024 and count % (1024 * 1024) == 0:
        return f"{count // (1024 * 1024)} MiB"
    if count >= 1024 and count % 1024 == 0:
        return f"{count // 1024} KiB"
    return f"{count} bytes"


def error_kind(exc: BaseException) -> ErrorKind:
    """Which kind of transport failure ``exc`` is (httpx exceptions)."""
    if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
        return "connect_timeout"
    if isinstance(exc, httpx.TimeoutException):
        return "deadline"
    if isinstance(exc, httpx.ConnectError):
        text = str(exc).lower()
        if "refused" in text or "errno 111" in text or _caused_by(exc, ConnectionRefusedError):
            return "refused"
        if "name or service not known" in text or "nodename" in text or "getaddrinfo" in text:
            return "dns"
        return "connect"
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return "invalid_url"
    if isinstance(exc, httpx.LocalProtocolError):
        return "invalid_request"
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.DecodingError):
        return "protocol"
    return "other"


def describe_transport_error(exc: BaseException, url: str, timeout: float) -> str:
    """``exc`` (an httpx error) in operator words; ``timeout`` is the deadline in seconds."""
    try:
        target = httpx.URL(url)
    except httpx.InvalidURL as bad:
        return f"invalid URL {url!r}: {bad}"
    where = _where(target)
    kind = error_kind(exc)
    if kind == "connect_timeout":
        return f"could not connect to {where} within {_seconds(timeout)}"
    if kind == "deadline":
        return f"no complete response from {where} within {_seconds(timeout)} (total deadline)"
    if kind == "refused":
        return f"connection refused: nothing is listening at {where}"
    if kind == "dns":
        return f"cannot resolve host {target.host}"
    if kind == "connect":
        return f"cannot connect to {where}: {exc or type(exc).__name__}"
    if kind == "invalid_url":
        if isinstance(exc, httpx.UnsupportedProtocol):
            return f"unsupported URL {url!r}: use http:// or https://"
        return f"invalid URL {url!r}: {exc}"
    if kind == "invalid_request":
        return f"the request to {where} cannot be sent: {exc}"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"{where} closed the connection without a valid HTTP response"
    if kind == "protocol":
        return f"{where} broke off the response: {exc or type(exc).__name__}"
    return f"request to {where} failed: {type(exc).__name__}: {exc}"


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return True
        seen.add(id(current))
        nested = getattr(current, "exceptions", None)  # ExceptionGroup from anyio's happy eyeballs
        if nested and any(_caused_by(inner, kind) for inner in nested):
            return True
        current = current.__cause__ or current.__context__
    return False


def _looks_like_json(content_type: str, text: str) -> bool:
    if _JSON_TYPE.match(content_type.strip()):
        return True
    return text.lstrip("\ufeff \t\r\n")[:1] in ("{", "[")


def _json_problem(value: Any, max_depth: int, check_strings: bool) -> str | None:
    """Depth beyond ``max_depth`` or a string that cannot be written as UTF-8.

    Level by level, without recursion; json.loads only makes exact dicts and lists."""
    level = [value]
    depth = 0
    while level:
        if check_strings:
            for item in level:
                if type(item) is str and not _encodable(item):
                    return (
                        "the JSON contains a lone surrogate escape (such as \\ud800), "
                        "which is not valid Unicode"
                    )
        containers = [item for item in level if type(item) is dict or type(item) is list]
        if not containers:
            return None
        depth += 1
        if depth > max_depth:
            return f"the JSON is nested more than {max_depth} levels deep"
        level = []
        for container in containers:
            if type(container) is dict:
                if check_strings:
                    level.extend(container)
                level.extend(container.values())
            else:
                level.extend(container)
    return None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse_json_body(
    text: str, content_type: str, *, truncated: bool, max_depth: int
) -> tuple[bool, Any, str | None]:
    """(is_json, value, json_error): parse ``text`` when it looks like JSON; never raises."""
    if not text.strip() or not _looks_like_json(content_type, text):
        return False, None, None
    if truncated:
        return False, None, "the body was cut at the size limit, so it was not parsed as JSON"
    try:
        value = jsonlib.loads(text.lstrip("\ufeff"))
    except RecursionError:
        return (
            False,
            None,
            f"the JSON is nested more than {max_depth} levels deep, so it was not parsed",
        )
    except ValueError as exc:  # JSONDecodeError, and integers of over 4,300 digits
        return False, None, f"the body looks like JSON but does not parse: {exc}"
    problem = _json_problem(value, max_depth, check_strings=bool(_SURROGATE_ESCAPE.search(text)))
    if problem is not None:
        return False, None, problem + ", so it was not parsed"
    return True, value, None


def _text_decoder(response: httpx.Response) -> codecs.IncrementalDecoder:
    try:
        return codecs.getincrementaldecoder(response.encoding or "utf-8")(errors="replace")
    except LookupError:
        return codecs.getincrementaldecoder("utf-8")(errors="replace")


def _content_encoding(response: httpx.Response) -> str:
    values = [
        part.strip().lower()
        for part in response.headers.get("content-encoding", "").split(",")
        if part.strip() and part.strip().lower() != "identity"
    ]
    if not values:
        return "identity"
    if len(values) == 1 and values[0] in _DECODABLE:
        return values[0]
    raise _UnsupportedEncoding(", ".join(values))


async def send(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, Any] | None = None,
    json: Any = None,
    content: str | bytes | None = None,
    limits: HttpLimits,
) -> Exchange:
    """Send one request within ``limits``; every network or body problem is in the Exchange."""
    request: dict[str, Any] = {"method": method, "url": url, "headers": dict(headers or {})}
    if params:
        request["params"] = dict(params)
    if json is not None:
        request["json"] = json
    if content is not None:
        request["body"] = content
    sent_headers = dict(headers or {})
    if not any(name.lower() == "accept-encoding" for name in sent_headers):
        sent_headers["Accept-Encoding"] = ", ".join(_DECODABLE)

    exchange = Exchange(request=request)
    progress = _Progress()
    started = time.perf_counter()
    # httpx's own timeouts are per operation; they stay as a backstop behind the total deadline
    timeout = httpx.Timeout(limits.deadline, connect=min(limits.connect_timeout, limits.deadline))
    try:
        built = client.build_request(
            method,
            url,
            headers=sent_headers,
            params=dict(params) if params else None,
            json=json,
            content=content,
            timeout=timeout,
            extensions={"trace": progress.trace},
        )
    except httpx.InvalidURL as exc:
        return _refused_to_build(exchange, "invalid_url", f"invalid URL {url!r}: {exc}")
    except ValueError as exc:  # a non-ASCII header value, NaN or a lone surrogate in json
        return _refused_to_build(
            exchange, "invalid_request", f"the request cannot be built, nothing was sent: {exc}"
        )
    if not 0 < (built.url.port or 80) < 65536:  # httpx lets it through; the socket call fails
        port = built.url.port
        return _refused_to_build(
            exchange, "invalid_url", f"invalid URL {url!r}: Invalid port {port}"
        )
    record: ResponseRecord | None = None  # what arrived so far
    try:
        async with asyncio.timeout(limits.deadline):
            response = await client.send(built, stream=True, follow_redirects=False)
            try:
                record = ResponseRecord(
                    status=response.status_code,
                    reason=response.reason_phrase,
                    headers=dict(response.headers),
                    elapsed_ms=0.0,
                    content_type=response.headers.get("content-type", ""),
                )
                await _read_body(response, record, limits)
            finally:
                await response.aclose()  # closes the connection when the body was not all read
    except (TimeoutError, _UnsupportedEncoding, httpx.HTTPError, httpx.InvalidURL) as exc:
        exchange.error_kind, exchange.error = _failure(exc, url, limits, record, progress)
    exchange.elapsed_ms = (time.perf_counter() - started) * 1000
    if exchange.error is None and record is not None:
        record.elapsed_ms = exchange.elapsed_ms
        exchange.response = record
    exchange.may_have_acted = record is not None or not (
        exchange.error_kind in _NOTHING_SENT or (progress.traced and not progress.sending)
    )
    return exchange


def _refused_to_build(exchange: Exchange, kind: ErrorKind, error: str) -> Exchange:
    exchange.error_kind, exchange.error, exchange.may_have_acted = kind, error, False
    return exchange


def _failure(
    exc: BaseException,
    url: str,
    limits: HttpLimits,
    record: ResponseRecord | None,
    progress: _Progress,
) -> tuple[ErrorKind, str]:
    """The kind and operator words of a failed exchange; ``record`` is what arrived, if any."""
    where = _where(httpx.URL(url))
    answered = f"{where} answered {record.status} {record.reason} but" if record is not None else ""
    if isinstance(exc, TimeoutError):
        deadline = _seconds(limits.deadline)
        if record is not None:
            return "deadline", (
                f"{answered} the body did not finish within {deadline} (total deadline); "
                f"{_size(record.body_bytes)} received"
            )
        if progress.traced and not progress.sending:
            return "connect_timeout", (
                f"could not connect to {where} within {deadline} (total deadline)"
            )
        return "deadline", f"no complete response from {where} within {deadline} (total deadline)"
    if isinstance(exc, _UnsupportedEncoding):
        return "protocol", (
            f"{answered} sent the body encoded as {exc} (Content-Encoding), which opsconsole "
            f"does not decode; it asks for {', '.join(_DECODABLE)} or a plain body"
        )
    if isinstance(exc, httpx.DecodingError):
        return "protocol", f"{answered} sent a body that cannot be decoded: {exc}"
    kind = error_kind(exc)
    if record is not None:
        return kind, (
            f"{answered} the body broke off after {_size(record.body_bytes)}: "
            f"{exc or type(exc).__name__}"
        )
    seconds = limits.connect_timeout if kind == "connect_timeout" else limits.deadline
    return kind, describe_transport_error(exc, url, seconds)


async def _read_body(response: httpx.Response, record: ResponseRecord, limits: HttpLimits) -> None:
    """Read raw bytes, decode them ``room`` at a time, stop at the cap."""
    decoder = _BodyDecoder(_content_encoding(response))
    text = _text_decoder(response)
    parts: list[str] = []
    cap = limits.max_body_bytes
    try:
        async for raw in response.aiter_raw():
            data, over = decoder.decode(raw, cap - record.body_bytes)
            record.body_bytes += len(data)
            parts.append(text.decode(data))
            if over:
                record.truncated = True
                break
            if decoder.finished:
                break
    except zlib.error as exc:
        raise httpx.DecodingError(f"invalid {decoder.encoding} data ({exc})") from None
    finally:
        # a cut body ends mid-character: drop the partial one rather than show a replacement
        parts.append(text.decode(b"", final=not record.truncated))
        record.body = "".join(parts)
    if record.truncated:
        record.notice = (
            f"the body is larger than {_size(cap)} (the limit): only the first "
            f"{_size(cap)} were read and the connection was closed"
        )
    record.is_json, record.json, record.json_error = parse_json_body(
        record.body,
        record.content_type,
        truncated=record.truncated,
        max_depth=limits.max_json_depth,
    )
