"""The http step: one request, its assertions, and captures into run variables."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from ..errors import TemplateError
from ..expectations import evaluate_http, search_json
from ..model import HttpExpect, HttpSpec
from ..run import Assertion, StepStatus
from ..template import references, render, render_value
from . import Outcome, StepContext

__all__ = ["BODY_LIMIT", "describe_transport_error", "perform_request", "run_http"]

#: what is kept of a response body for the screen, evidence and saved state
BODY_LIMIT = 64 * 1024


def describe_transport_error(exc: httpx.HTTPError, url: str, timeout: float) -> str:
    target = httpx.URL(url)
    where = f"{target.host}:{target.port or (443 if target.scheme == 'https' else 80)}"
    if isinstance(exc, httpx.ConnectTimeout):
        return f"connection to {where} timed out after {timeout:g}s"
    if isinstance(exc, httpx.TimeoutException):
        return f"no response from {where} within {timeout:g}s (timeout)"
    if isinstance(exc, httpx.ConnectError):
        text = str(exc).lower()
        if "refused" in text or "errno 111" in text or _caused_by(exc, ConnectionRefusedError):
            return f"connection refused: nothing is listening at {where}"
        if "name or service not known" in text or "nodename" in text or "getaddrinfo" in text:
            return f"cannot resolve host {target.host}"
        return f"cannot connect to {where}: {exc or type(exc).__name__}"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"{where} closed the connection without a valid HTTP response"
    if isinstance(exc, httpx.UnsupportedProtocol):
        return f"unsupported URL {url!r}: use http:// or https://"
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


def response_record(response: httpx.Response, elapsed_ms: float) -> dict[str, Any]:
    text = response.text
    record: dict[str, Any] = {
        "status": response.status_code,
        "reason": response.reason_phrase,
        "headers": dict(response.headers),
        "elapsed_ms": round(elapsed_ms, 1),
        "body": text[:BODY_LIMIT],
        "truncated": len(text) > BODY_LIMIT,
        "is_json": False,
    }
    if text.strip():
        try:
            record["json"] = json.loads(text)
            record["is_json"] = True
        except ValueError:
            pass
    return record


async def perform_request(
    ctx: StepContext, spec: Any, *, purpose: str = "request"
) -> tuple[dict[str, Any], dict[str, Any] | None, str | None]:
    """Render and send; returns (request record, response record or None, error or None)."""
    variables, secret = ctx.variables, ctx.secret
    url = render(spec.url, variables, secret)
    headers = {k: str(v) for k, v in render_value(spec.headers, variables, secret).items()}
    params = render_value(spec.params, variables, secret)
    json_body = render_value(spec.json_body, variables, secret)
    content = render(spec.body, variables, secret) if spec.body is not None else None
    request: dict[str, Any] = {"method": spec.method, "url": url, "headers": headers}
    if params:
        request["params"] = params
    if json_body is not None:
        request["json"] = json_body
    if content is not None:
        request["body"] = content
    started = time.perf_counter()
    try:
        response = await ctx.client.request(
            spec.method,
            url,
            headers=headers,
            params=params or None,
            json=json_body,
            content=content,
            timeout=spec.timeout,
        )
    except httpx.HTTPError as exc:
        return request, None, describe_transport_error(exc, url, spec.timeout)
    except httpx.InvalidURL as exc:
        return request, None, f"invalid URL {url!r}: {exc}"
    return request, response_record(response, (time.perf_counter() - started) * 1000), None


def render_expect(ctx: StepContext, expect: HttpExpect) -> tuple[HttpExpect, dict[str, str]]:
    """Fill ``{{ }}`` references in every expectation; a secret phrase is named, never shown."""
    labels: dict[str, str] = {}
    for phrase in [*expect.body_not_contains, *expect.body_contains]:
        if "{{" in phrase:
            value = render(phrase, ctx.variables, ctx.secret)
            labels[value] = " + ".join(
                f"secret {name[8:]}"
                if name.startswith("secrets.")
                else f"{name} ({render('{{ ' + name + ' }}', ctx.variables)})"
                for name in references(phrase)
            )
    data = expect.model_dump(by_alias=True, exclude_unset=True)
    rendered = HttpExpect.model_validate(render_value(data, ctx.variables, ctx.secret))
    return rendered, labels


def capture_values(
    spec: HttpSpec, response: dict[str, Any]
) -> tuple[dict[str, str], dict[str, str], list[Assertion]]:
    captures: dict[str, str] = {}
    secrets: dict[str, str] = {}
    problems: list[Assertion] = []
    for target, mapping in ((captures, spec.capture), (secrets, spec.capture_secret)):
        for name, path in mapping.items():
            if not response.get("is_json"):
                problems.append(
                    Assertion(
                        name=f"capture {name}",
                        ok=False,
                        detail=f"cannot capture {name}: response is not JSON",
                    )
                )
                continue
            try:
                value = search_json(path, response.get("json"))
            except ValueError as exc:
                problems.append(Assertion(name=f"capture {name}", ok=False, detail=str(exc)))
                continue
            if value is None:
                problems.append(
                    Assertion(
                        name=f"capture {name}",
                        ok=False,
                        detail=f"cannot capture {name}: {path} is missing from the response",
                    )
                )
                continue
            target[name] = value if isinstance(value, str) else json.dumps(value)
    return captures, secrets, problems


async def run_http(spec: HttpSpec, ctx: StepContext) -> Outcome:
    try:
        expect, labels = render_expect(ctx, spec.expect)
        request, response, error = await perform_request(ctx, spec)
    except TemplateError as exc:
        return Outcome(StepStatus.FAILED, f"cannot build the request: {exc}")
    if response is None:
        return Outcome(StepStatus.FAILED, error or "request failed", request=request)
    assertions = evaluate_http(expect, response, secret_phrases=labels)
    captures, secrets, problems = capture_values(spec, response)
    assertions.extend(problems)
    summary = f"{response['status']} {response['reason']} in {response['elapsed_ms']:.0f} ms"
    return Outcome.judged(
        assertions,
        summary,
        request=request,
        response=response,
        captures=captures,
        secret_captures=secrets,
        duration_ms=response["elapsed_ms"],
    )
