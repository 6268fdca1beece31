"""``ops http``: one request, its assertions, and captures into run variables."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BeforeValidator, Field, field_validator, model_validator

from ..artifacts import RequestArtifact, ResponseArtifact
from ..errors import TemplateError
from ..model import Duration, StrDict, StrList, _as_list
from ..run import Assertion, StepStatus
from ..template import references, render_value
from . import register
from .base import Outcome, Produces, StepContext, StepSpec, StepType

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "HttpExpect",
    "HttpSpec",
    "HttpStep",
    "JsonAssertion",
    "RequestFields",
    "capture_values",
    "exchange",
    "render_expect",
]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class JsonAssertion(StepSpec):
    """One assertion on a JSON response: ``path`` is a JMESPath expression."""

    path: str
    equals: Any = None
    not_equals: Any = None
    exists: bool | None = None
    contains: Any = None
    matches: str | None = None
    one_of: list[Any] | None = None
    length: int | None = None

    @field_validator("path")
    @classmethod
    def _compiles(cls, value: str) -> str:
        import jmespath
        from jmespath.exceptions import JMESPathError

        try:
            jmespath.compile(value)
        except JMESPathError as exc:
            raise ValueError(f"invalid JMESPath {value!r}: {exc}") from None
        return value

    @model_validator(mode="after")
    def _has_check(self) -> JsonAssertion:
        if not self.model_fields_set - {"path"}:
            raise ValueError(
                "a JSON assertion needs one of equals, not_equals, exists, contains, "
                "matches, one_of, length"
            )
        return self


class HttpExpect(StepSpec):
    status: Annotated[list[int], BeforeValidator(_as_list)] = Field(default_factory=list)
    json_: list[JsonAssertion] = Field(default_factory=list, alias="json")
    headers: StrDict = Field(default_factory=dict)
    body_contains: StrList = Field(default_factory=list)
    body_not_contains: StrList = Field(default_factory=list)
    body_matches: StrList = Field(default_factory=list)
    body_not_matches: StrList = Field(default_factory=list)
    latency_ms: int | None = Field(default=None, gt=0)

    @field_validator("body_matches", "body_not_matches")
    @classmethod
    def _regexes_compile(cls, values: list[str]) -> list[str]:
        from ..patterns import pattern_problem

        for value in values:
            if "{{" in value:
                continue  # checked once the references are filled in
            problem = pattern_problem(value)
            if problem:
                raise ValueError(problem)
        return values


class RequestFields(StepSpec):
    """A request: method, URL, headers, query parameters, a JSON or text body, a deadline."""

    method: str = "GET"
    url: str
    headers: StrDict = Field(default_factory=dict)
    params: StrDict = Field(default_factory=dict)
    json_body: Any = Field(default=None, alias="json")
    body: str | None = None
    #: total deadline for the whole exchange (connect, headers, body)
    timeout: Duration = 10.0

    @field_validator("method")
    @classmethod
    def _method(cls, value: str) -> str:
        method = value.upper()
        if method not in {"GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"}:
            raise ValueError(f"unsupported HTTP method {value!r}")
        return method


class HttpSpec(RequestFields):
    expect: HttpExpect = Field(default_factory=HttpExpect)
    #: run variable name -> JMESPath into the JSON response
    capture: dict[str, str] = Field(default_factory=dict)
    #: like capture, but the value is a secret (registered with the redactor, never saved)
    capture_secret: dict[str, str] = Field(default_factory=dict)


# -- shared with trigger -------------------------------------------------------------


async def exchange(
    ctx: StepContext[Any], spec: RequestFields, extra_json: dict[str, Any] | None = None
) -> tuple[RequestArtifact, ResponseArtifact | None, str | None, bool]:
    """Render and send one request. ``extra_json``: fields added to the JSON body as they
    are, never rendered (an operator's pasted value: data, not a template).

    Returns (request as sent, response or None, error or None, may_have_acted): the last
    is False only when provably nothing reached the server."""
    from ..httpio import HttpLimits, send

    url = ctx.render(spec.url, "url")
    headers = {k: ctx.render(str(v)) for k, v in spec.headers.items()}
    params = {k: ctx.render(str(v)) for k, v in spec.params.items()}
    document = render_value(spec.json_body, ctx.variables, ctx.secret)
    if extra_json:
        document = {**(document if isinstance(document, dict) else {}), **extra_json}
    content = ctx.render(spec.body) if spec.body is not None else None
    if ctx.secret_policy is not None:
        from ..template import secrets_used

        used = secrets_used([spec.url, spec.headers, spec.params, spec.json_body, spec.body])
        refusal = ctx.secret_policy.check_destination(used, url)
        if refusal is not None:
            raise TemplateError(refusal)
    request = RequestArtifact(
        method=spec.method, url=url, headers=headers, params=params, document=document,
        body=content,
    )
    ctx.acting()
    sent = await send(
        ctx.clients.http,
        spec.method,
        url,
        headers=headers,
        params=params or None,
        json=document,
        content=content,
        limits=HttpLimits(deadline=spec.timeout),
    )
    if sent.response is None:
        return request, None, sent.error or "request failed", sent.may_have_acted
    record = sent.response
    response = ResponseArtifact(
        status=record.status,
        reason=record.reason,
        headers=record.headers,
        elapsed_ms=record.elapsed_ms,
        body=record.body,
        truncated=record.truncated,
        body_bytes=record.body_bytes,
        is_json=record.is_json,
        document=record.json,
        json_error=record.json_error,
        notice=record.notice,
    )
    return request, response, None, True


def render_expect(ctx: StepContext[Any], expect: HttpExpect) -> tuple[HttpExpect, dict[str, str]]:
    """Fill ``{{ }}`` references in every expectation; a secret phrase is named, never shown.

    Values go into regexes (``body_matches``, a JSON check's ``matches``) escaped: data
    never becomes a pattern."""
    labels: dict[str, str] = {}
    for phrase in [*expect.body_not_contains, *expect.body_contains]:
        if "{{" in phrase:
            value = ctx.render(phrase)
            labels[value] = " + ".join(
                f"secret {name[8:]}"
                if name.startswith("secrets.")
                else f"{name} ({ctx.render('{{ ' + name + ' }}')})"
                for name in references(phrase)
            )
    data = expect.model_dump(by_alias=True, exclude_unset=True)
    patterns = {
        key: [ctx.render(p, "pattern") for p in data.pop(key)]
        for key in ("body_matches", "body_not_matches")
        if key in data
    }
    checks = data.pop("json", None)
    data = render_value(data, ctx.variables, ctx.secret)
    if checks is not None:
        data["json"] = [
            {
                key: ctx.render(value, "pattern")
                if key == "matches" and isinstance(value, str)
                else render_value(value, ctx.variables, ctx.secret)
                for key, value in check.items()
            }
            for check in checks
        ]
    # each value is rendered once: a rendered value holding "{{ x }}" stays text
    rendered = HttpExpect.model_validate({**data, **patterns})
    return rendered, labels


def capture_values(
    spec: HttpSpec, response: ResponseArtifact
) -> tuple[dict[str, str], dict[str, str], list[Assertion]]:
    from ..expectations import describe_body, search_json

    captures: dict[str, str] = {}
    secrets: dict[str, str] = {}
    problems: list[Assertion] = []
    for target, mapping in ((captures, spec.capture), (secrets, spec.capture_secret)):
        for name, path in mapping.items():
            if not response.is_json:
                problems.append(
                    Assertion(
                        name=f"capture {name}",
                        ok=False,
                        detail=f"cannot capture {name}: response is not JSON "
                        f"({response.json_error or describe_body(response)})",
                    )
                )
                continue
            try:
                value = search_json(path, response.document)
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


@dataclass
class Judged:
    """A request sent and its response judged: what http and trigger share."""

    request: RequestArtifact
    response: ResponseArtifact
    assertions: list[Assertion]
    captures: dict[str, str]
    secrets: dict[str, str]


async def send_and_judge(
    ctx: StepContext[Any], spec: HttpSpec, extra_json: dict[str, Any] | None = None
) -> Judged | Outcome:
    """Render, send and judge ``spec``; the Outcome when nothing came back to judge."""
    from ..expectations import evaluate_http

    try:
        expect, labels = render_expect(ctx, spec.expect)
        request, response, error, acted = await exchange(ctx, spec, extra_json)
    except TemplateError as exc:
        raise TemplateError(f"cannot build the request: {exc}", exc.name) from None
    if response is None:
        return unsent_outcome(ctx, request, error or "request failed", acted)
    assertions = evaluate_http(expect, response, secret_phrases=labels)
    captures, secrets, problems = capture_values(spec, response)
    assertions.extend(problems)
    return Judged(request, response, assertions, captures, secrets)


def unsent_outcome(
    ctx: StepContext[Any], request: RequestArtifact, error: str, may_have_acted: bool
) -> Outcome:
    """No response: a mutating request that may have reached the server is *unknown*."""
    if ctx.mutating and may_have_acted:
        return Outcome(
            StepStatus.UNKNOWN,
            f"{error}; the request may have been acted on: check the system before "
            "running it again",
            artifacts=[request],
        )
    return Outcome(StepStatus.FAILED, error, artifacts=[request])


# -- the step type -------------------------------------------------------------------


@register
class HttpStep(StepType[HttpSpec]):
    kind = "http"
    spec = HttpSpec
    description = "one request: status, JSON (JMESPath), headers, body, latency; captures"
    tracks_action = True

    def is_mutating(self, spec: HttpSpec) -> bool:
        if spec.mutating is not None:
            return spec.mutating
        return spec.method not in SAFE_METHODS

    def default_title(self, spec: HttpSpec, section_title: str) -> str:
        return f"{spec.method} {spec.url}"

    def produces(self, spec: HttpSpec) -> Produces:
        return Produces(frozenset(spec.capture), frozenset(spec.capture_secret))

    def describe(self, spec: HttpSpec, render: Callable[..., str]) -> str:
        return f"{spec.method} {render(spec.url, 'url')}"

    async def run(self, ctx: StepContext[HttpSpec]) -> Outcome:
        sent = await send_and_judge(ctx, ctx.spec)
        if isinstance(sent, Outcome):
            return sent
        response = sent.response
        summary = f"{response.status} {response.reason} in {response.elapsed_ms:.0f} ms"
        return Outcome.judged(
            sent.assertions,
            summary,
            artifacts=[sent.request, response],
            captures=sent.captures,
            secret_captures=sent.secrets,
            duration_ms=response.elapsed_ms,
        )
