"""Bounded HTTP exchanges (interim: replaced by the hardened version of the hardening work)."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

import httpx

__all__ = ["Exchange", "HttpLimits", "ResponseRecord", "describe_transport_error", "send"]


@dataclass(frozen=True)
class HttpLimits:
    deadline: float = 10.0
    max_body_bytes: int = 4 * 1024 * 1024


@dataclass
class ResponseRecord:
    status: int
    reason: str
    headers: dict[str, str]
    elapsed_ms: float
    body: str
    body_bytes: int
    truncated: bool
    is_json: bool
    json: Any = None
    json_error: str | None = None


@dataclass
class Exchange:
    request: dict[str, Any]
    response: ResponseRecord | None
    error: str | None
    may_have_acted: bool
    elapsed_ms: float


def describe_transport_error(exc: BaseException, url: str, timeout: float) -> str:
    target = httpx.URL(url)
    where = f"{target.host}:{target.port or (443 if target.scheme == 'https' else 80)}"
    if isinstance(exc, TimeoutError):
        return f"no complete response from {where} within {timeout:g}s (total deadline)"
    if isinstance(exc, httpx.ConnectTimeout):
        return f"connection to {where} timed out after {timeout:g}s"
    if isinstance(exc, httpx.ConnectError):
        text = str(exc).lower()
        if "refused" in text or "errno 111" in text or _caused_by(exc, ConnectionRefusedError):
            return f"connection refused: nothing is listening at {where}"
        return f"cannot connect to {where}: {exc or type(exc).__name__}"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"{where} closed the connection without a valid HTTP response"
    return f"request to {where} failed: {type(exc).__name__}: {exc}"


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return True
        seen.add(id(current))
        nested = getattr(current, "exceptions", None)
        if nested and any(_caused_by(inner, kind) for inner in nested):
            return True
        current = current.__cause__ or current.__context__
    return False


async def send(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
    json: Any = None,  # noqa: A002 - httpx's name
    content: str | None = None,
    limits: HttpLimits,
) -> Exchange:
    request: dict[str, Any] = {"method": method, "url": url}
    started = time.perf_counter()
    try:
        async with asyncio.timeout(limits.deadline):
            async with client.stream(
                method, url, headers=headers, params=params, json=json, content=content
            ) as response:
                chunks: list[bytes] = []
                size = 0
                truncated = False
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    chunks.append(chunk)
                    if size >= limits.max_body_bytes:
                        truncated = True
                        break
    except (httpx.HTTPError, TimeoutError) as exc:
        acted = not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
        return Exchange(
            request,
            None,
            describe_transport_error(exc, url, limits.deadline),
            acted,
            (time.perf_counter() - started) * 1000,
        )
    except httpx.InvalidURL as exc:
        return Exchange(request, None, f"invalid URL {url!r}: {exc}", False, 0.0)
    elapsed = (time.perf_counter() - started) * 1000
    raw = b"".join(chunks)[: limits.max_body_bytes]
    text = raw.decode(response.encoding or "utf-8", errors="replace")
    record = ResponseRecord(
        response.status_code,
        response.reason_phrase,
        dict(response.headers),
        round(elapsed, 1),
        text,
        len(raw),
        truncated,
        False,
    )
    if text.strip():
        try:
            record.json = _loads(text)
            record.is_json = True
        except ValueError:
            pass
        except RecursionError:
            record.json_error = "JSON nested too deeply"
    return Exchange(request, record, None, True, elapsed)


def _loads(text: str) -> Any:
    return json.loads(text)
