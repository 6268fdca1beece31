"""Assertions say what was expected and what came back."""

from __future__ import annotations

from opsconsole.artifacts import ResponseArtifact
from opsconsole.expectations import evaluate_command, evaluate_http
from opsconsole.steps.command import CommandExpect
from opsconsole.steps.http import HttpExpect


def response(
    status=200,
    body='{"status": "ok", "items": [1, 2]}',
    content_type="application/json",
    elapsed=12.0,
):
    import json

    record = ResponseArtifact(
        status=status,
        reason="OK" if status == 200 else "Error",
        headers={"content-type": content_type},
        body=body,
        elapsed_ms=elapsed,
    )
    try:
        record.document = json.loads(body)
        record.is_json = True
    except ValueError:
        pass
    return record


def failures(assertions):
    return [a.detail for a in assertions if not a.ok]


def test_default_status_is_2xx_and_explains_a_500_html_body() -> None:
    assert failures(evaluate_http(HttpExpect(), response())) == []
    html = response(500, "<html><body>Internal Server Error</body></html>", "text/html")
    (detail,) = failures(evaluate_http(HttpExpect(), html))
    assert detail.startswith("expected status 2xx, got 500 Error (text/html: <html>")


def test_json_assertions_and_non_json_body() -> None:
    expect = HttpExpect.model_validate(
        {
            "json": [
                {"path": "status", "equals": "ok"},
                {"path": "items", "length": 3},
                {"path": "missing", "exists": True},
                {"path": "status", "one_of": ["ok", "degraded"]},
            ]
        }
    )
    assert failures(evaluate_http(expect, response())) == [
        "items expected length 3, got 2",
        "missing is missing",
    ]
    (detail,) = failures(evaluate_http(expect, response(200, "hello world", "text/plain")))
    assert detail == "response is not JSON (text/plain: hello world)"


def test_secret_phrase_is_named_never_shown() -> None:
    leaked = "tok-ABCDEF123456"
    expect = HttpExpect(body_not_contains=[leaked], body_not_matches=["(?i)token|url|key"])
    result = evaluate_http(
        expect,
        response(body=f'{{"runner_token": "{leaked}"}}'),
        secret_phrases={leaked: "secret runner_token"},
    )
    details = failures(result)
    assert "body CONTAINS secret runner_token" in details
    assert any(d.startswith("/(?i)token|url|key/ found") for d in details)
    assert not any(leaked in d for d in details)


def test_headers_latency_and_body_contains() -> None:
    expect = HttpExpect(headers={"Content-Type": "json"}, latency_ms=10, body_contains=["items"])
    details = failures(evaluate_http(expect, response(elapsed=25.0)))
    assert details == ["25 ms (budget 10 ms): over budget"]


def test_command_exit_meanings_and_running() -> None:
    nonzero = CommandExpect(exit="nonzero", output_contains=["ValidationError"])
    assert failures(evaluate_command(nonzero, 78, "pydantic ValidationError", {})) == []
    (detail,) = failures(evaluate_command(CommandExpect(), 78, "", {}))
    assert detail == "expected exit 0, got exit 78 (EX_CONFIG: configuration error)"
    (detail,) = failures(evaluate_command(CommandExpect(), 3, "", {3: "startup failed"}))
    assert detail.endswith("exit 3 (startup failed)")
    stays_up = CommandExpect(exit="running")
    assert failures(evaluate_command(stays_up, None, "", {}, timed_out=3.0)) == []
    assert failures(evaluate_command(stays_up, 1, "", {})) == [
        "expected it to keep running, but it exited: exit 1"
    ]
    (detail,) = failures(evaluate_command(nonzero, None, "ValidationError", {}, timed_out=15.0))
    assert detail == "still running after 15s; stopped it (expected it to exit by then)"
