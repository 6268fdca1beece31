"""send() against a hostile server on loopback: every exchange ends, bounded, in operator words.

Each test names the defect of the old ``client.request(...)`` path it guards against.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from hostile_server import SMALL_JSON, HostileServer, measure_send_memory

from opsconsole.httpio import Exchange, HttpLimits, send

MiB = 1024 * 1024
#: short enough for tests; a trickle every 0.2 s never trips a 1 s per-read timeout
LIMITS = HttpLimits(deadline=1.0)
#: a hang is a failure, not a stuck suite: far beyond any deadline used here
HANG_GUARD = 30.0


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as http:
        yield http


async def exchange(
    client: httpx.AsyncClient, method: str, url: str, limits: HttpLimits = LIMITS, **kwargs: Any
) -> Exchange:
    return await asyncio.wait_for(
        send(client, method, url, limits=limits, **kwargs), timeout=HANG_GUARD
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# item 6: one total deadline


@pytest.mark.parametrize(
    ("path", "said"),
    [
        ("/trickle", "answered 200 OK but the body did not finish within 1s (total deadline)"),
        (
            "/trickle-headers",
            "no complete response from 127.0.0.1:{port} within 1s (total deadline)",
        ),
        ("/never", "no complete response from 127.0.0.1:{port} within 1s (total deadline)"),
    ],
)
async def test_a_server_that_never_finishes_is_cut_off_at_the_total_deadline(
    hostile_server: HostileServer, client: httpx.AsyncClient, path: str, said: str
) -> None:
    result = await exchange(client, "GET", hostile_server.url(path))

    assert result.error_kind == "deadline"
    assert result.error is not None and said.format(port=hostile_server.port) in result.error
    assert result.response is None
    assert result.may_have_acted
    assert result.elapsed_ms >= 1000  # it waited for the deadline, not a per-read timeout


async def test_a_post_that_timed_out_may_have_acted_and_was_sent_once(
    hostile_server: HostileServer, client: httpx.AsyncClient
) -> None:
    result = await exchange(client, "POST", hostile_server.url("/slow-post"), json={"go": 1})

    assert result.error_kind == "deadline"
    assert result.may_have_acted
    assert hostile_server.count("POST", "/slow-post") == 1


async def test_a_post_whose_connection_drops_is_not_retried(
    hostile_server: HostileServer, client: httpx.AsyncClient
) -> None:
    result = await exchange(client, "POST", hostile_server.url("/drop"), content="replay me")

    assert result.error_kind == "protocol"
    assert result.error is not None and "closed the connection" in result.error
    assert result.may_have_acted
    assert hostile_server.count("POST", "/drop") == 1


async def test_refused_connection_provably_sent_nothing(client: httpx.AsyncClient) -> None:
    port = free_port()
    result = await exchange(client, "POST", f"http://127.0.0.1:{port}/jobs", json={"go": 1})

    assert result.error_kind == "refused"
    assert result.error == f"connection refused: nothing is listening at 127.0.0.1:{port}"
    assert not result.may_have_acted


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("ftp://127.0.0.1/jobs", "unsupported URL 'ftp://127.0.0.1/jobs': use http:// or https://"),
        ("http://127.0.0.1:99999/jobs", "invalid URL 'http://127.0.0.1:99999/jobs': Invalid port"),
    ],
)
async def test_an_invalid_url_provably_sent_nothing(
    client: httpx.AsyncClient, url: str, said: str
) -> None:
    result = await exchange(client, "POST", url, json={"go": 1})

    assert result.error_kind == "invalid_url"
    assert result.error is not None and result.error.startswith(said)
    assert not result.may_have_acted


async def test_a_header_carrying_a_line_break_is_refused_before_anything_is_sent(
    hostile_server: HostileServer, client: httpx.AsyncClient
) -> None:
    injected = {"X-Job": "1\r\nX-Admin: yes"}
    result = await exchange(client, "POST", hostile_server.url("/json"), headers=injected)

    assert result.error_kind == "invalid_request"
    assert not result.may_have_acted
    assert hostile_server.count("POST", "/json") == 0


# item 7: a size cap, decompression included


@pytest.mark.parametrize("path", ["/huge", "/gzip-bomb"])
async def test_a_body_over_the_cap_is_cut_with_a_notice(
    hostile_server: HostileServer, client: httpx.AsyncClient, path: str
) -> None:
    cap = 100_000
    result = await exchange(
        client, "GET", hostile_server.url(path), HttpLimits(deadline=10, max_body_bytes=cap)
    )

    assert result.error is None and result.response is not None
    assert result.response.truncated
    assert result.response.body_bytes == cap and len(result.response.body) == cap
    assert result.response.notice is not None and "larger than 100000 bytes" in (
        result.response.notice
    )


@pytest.mark.parametrize(("size", "truncated"), [(4096, False), (4097, True)])
async def test_the_cap_is_exact(client: httpx.AsyncClient, size: int, truncated: bool) -> None:
    with HostileServer(huge_bytes=size) as server:
        result = await exchange(client, "GET", server.url("/huge"), HttpLimits(max_body_bytes=4096))

    assert result.response is not None
    assert (result.response.body_bytes, result.response.truncated) == (4096, truncated)


@pytest.mark.parametrize("path", ["/huge", "/gzip-bomb"])
def test_memory_stays_bounded_by_the_cap(hostile_server: HostileServer, path: str) -> None:
    # 200 MB cost 649 MB of RSS and a 1 GiB gzip bomb 3.1 GB with the old client.request path
    reading = measure_send_memory(hostile_server.url("/json"), hostile_server.url(path))
    cap = HttpLimits().max_body_bytes

    assert reading.growth < 3 * cap + 32 * MiB, f"peak RSS grew {reading.growth / MiB:.0f} MiB"
    assert reading.truncated and reading.body_bytes == cap


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "raw-deflate", "gzip-trailing"])
async def test_compressed_bodies_are_decoded(
    hostile_server: HostileServer, client: httpx.AsyncClient, encoding: str
) -> None:
    result = await exchange(client, "GET", hostile_server.url(f"/encoded?as={encoding}"))

    assert result.response is not None and result.response.json == SMALL_JSON
    assert result.response.body_bytes == len(json.dumps(SMALL_JSON))


async def test_an_encoding_that_is_not_decoded_is_refused_in_words(
    hostile_server: HostileServer, client: httpx.AsyncClient
) -> None:
    result = await exchange(client, "GET", hostile_server.url("/encoded?as=br"))

    assert result.error_kind == "protocol" and result.response is None
    assert result.error is not None
    assert "encoded as br (Content-Encoding), which opsconsole does not decode" in result.error


async def test_a_corrupt_gzip_body_is_an_error_not_an_exception(
    hostile_server: HostileServer, client: httpx.AsyncClient
) -> None:
    result = await exchange(client, "GET", hostile_server.url("/encoded?as=corrupt-gzip"))

    assert result.error_kind == "protocol" and result.response is None
    assert result.error is not None and "cannot be decoded: invalid gzip data" in result.error


# item 10: hostile JSON never crashes


async def test_deep_json_is_a_json_error(
    hostile_server: HostileServer, client: httpx.AsyncClient
) -> None:
    result = await exchange(client, "GET", hostile_server.url("/deep-json"))

    assert result.response is not None and result.response.status == 200
    assert not result.response.is_json and result.response.json is None
    assert result.response.json_error == (
        "the JSON is nested more than 100 levels deep, so it was not parsed"
    )


async def test_a_lone_surrogate_is_a_json_error_and_the_record_can_be_saved(
    hostile_server: HostileServer, client: httpx.AsyncClient
) -> None:
    result = await exchange(client, "GET", hostile_server.url("/surrogate-json"))

    assert result.response is not None
    assert result.response.json_error is not None and "lone surrogate" in result.response.json_error
    # what run state does with it: this raised UnicodeEncodeError and ended the run (exit 3)
    json.dumps(result.response.to_dict(), ensure_ascii=False).encode("utf-8")


async def test_bytes_that_are_not_utf8_are_replaced(
    hostile_server: HostileServer, client: httpx.AsyncClient
) -> None:
    result = await exchange(client, "GET", hostile_server.url("/bad-utf8"))

    assert result.response is not None and result.response.json == {"name": "caf\ufffd"}


async def test_the_record_keeps_the_keys_steps_use(
    hostile_server: HostileServer, client: httpx.AsyncClient
) -> None:
    result = await exchange(client, "GET", hostile_server.url("/json"))

    assert result.response is not None
    record = result.response.to_dict()
    today = {"status", "reason", "headers", "elapsed_ms", "body", "truncated", "is_json", "json"}
    assert set(record) >= today
    assert record["is_json"] and record["json"] == SMALL_JSON
    assert record["headers"]["content-type"] == "application/json"
