"""What a rendered URL makes a real client send to a real server on loopback."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from opsconsole.template import render


class _Recorder(BaseHTTPRequestHandler):
    seen: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        type(self).seen.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, list[str]]]:
    seen: list[str] = []
    handler = type("Recorder", (_Recorder,), {"seen": seen})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", seen
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_captured_traversal_reaches_the_server_as_one_segment(
    server: tuple[str, list[str]],
) -> None:
    base_url, seen = server
    variables = {"base_url": base_url, "created_job_id": "../../admin/delete?all=1#"}
    url = render(
        "{{ base_url }}/api/v1/ops/jobs/{{ created_job_id }}",
        variables,
        context="url",
        trusted={"base_url"},
    )
    assert httpx.get(url, timeout=10).status_code == 200
    assert seen == ["/api/v1/ops/jobs/..%2F..%2Fadmin%2Fdelete%3Fall%3D1%23"]


def test_captured_query_value_cannot_add_a_parameter(server: tuple[str, list[str]]) -> None:
    base_url, seen = server
    url = render(
        "{{ base_url }}/api/v1/ops/jobs?status={{ status }}&limit=5",
        {"base_url": base_url, "status": "failed&limit=100000&delete=all"},
        context="url",
        trusted={"base_url"},
    )
    httpx.get(url, timeout=10)
    assert seen == ["/api/v1/ops/jobs?status=failed%26limit%3D100000%26delete%3Dall&limit=5"]
