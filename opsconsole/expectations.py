"""Evaluating a step's expectations against what actually happened.

Each check yields an :class:`~opsconsole.run.Assertion` whose detail says, in
operator words, what was expected and what came back. Text shown here is
redacted by the caller.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import jmespath
from jmespath.exceptions import JMESPathError

from .patterns import PatternTimeout
from .patterns import search as search_pattern
from .run import Assertion

if TYPE_CHECKING:
    from .artifacts import ResponseArtifact
    from .steps.command import CommandExpect
    from .steps.http import HttpExpect, JsonAssertion

__all__ = ["evaluate_command", "evaluate_http", "evaluate_json_assertion", "search_json"]

def _short(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe_body(response: ResponseArtifact) -> str:
    headers = {key.lower(): value for key, value in response.headers.items()}
    content_type = headers.get("content-type", "no content-type")
    body = response.body
    snippet = _short(body, 60) if body else "empty body"
    return f"{content_type}: {snippet}"


def search_json(path: str, document: Any) -> Any:
    try:
        return jmespath.search(path, document)
    except JMESPathError as exc:
        raise ValueError(f"JMESPath {path!r} failed: {exc}") from None


def evaluate_json_assertion(check: JsonAssertion, document: Any) -> Assertion:
    name = f"json {check.path}"
    try:
        value = search_json(check.path, document)
    except ValueError as exc:
        return Assertion(name=name, ok=False, detail=str(exc))
    fields = check.model_fields_set
    problems: list[str] = []
    if "exists" in fields:
        exists = value is not None
        if exists != check.exists:
            problems.append(
                "is missing" if check.exists else f"should be absent, is {_short(value)}"
            )
    if "equals" in fields and value != check.equals:
        problems.append(f"expected {_short(check.equals)}, got {_short(value)}")
    if "not_equals" in fields and value == check.not_equals:
        problems.append(f"must not be {_short(value)}")
    if "one_of" in fields and value not in (check.one_of or []):
        problems.append(f"expected one of {_short(check.one_of)}, got {_short(value)}")
    if "contains" in fields:
        try:
            ok = check.contains in value  # type: ignore[operator]
        except TypeError:
            ok = False
        if not ok:
            problems.append(f"{_short(value)} does not contain {_short(check.contains)}")
    if "matches" in fields:
        try:
            found = isinstance(value, str) and search_pattern(check.matches or "", value)
        except PatternTimeout as exc:
            problems.append(str(exc))
        else:
            if not found:
                problems.append(f"{_short(value)} does not match /{check.matches}/")
    if "length" in fields:
        try:
            size = len(value)  # type: ignore[arg-type]
        except TypeError:
            size = None
        if size != check.length:
            problems.append(f"expected length {check.length}, got {size}")
    if problems:
        return Assertion(name=name, ok=False, detail=f"{check.path} " + "; ".join(problems))
    return Assertion(name=name, ok=True, detail=f"{check.path} = {_short(value)}")


def evaluate_http(
    expect: HttpExpect,
    response: ResponseArtifact,
    *,
    secret_phrases: dict[str, str] | None = None,
) -> list[Assertion]:
    """Assertions for one response.

    ``secret_phrases`` maps a rendered must-not-contain value to the way it is
    named on screen (a secret's value is never shown, only ``secret <name>``).
    """
    secret_phrases = secret_phrases or {}
    results: list[Assertion] = []
    status = response.status
    reason = response.reason
    if expect.status:
        ok = status in expect.status
        wanted = " or ".join(str(code) for code in expect.status)
    else:
        ok = 200 <= status < 300
        wanted = "2xx"
    detail = f"expected status {wanted}, got {status} {reason}".strip()
    if not ok and status >= 400 and response.body:
        detail += f" ({describe_body(response)})"
    results.append(
        Assertion(name="status", ok=ok, detail=detail if not ok else f"{status} {reason}".strip())
    )

    if expect.latency_ms is not None:
        elapsed = response.elapsed_ms
        ok = elapsed <= expect.latency_ms
        results.append(
            Assertion(
                name="latency",
                ok=ok,
                detail=f"{elapsed:.0f} ms (budget {expect.latency_ms} ms)"
                + ("" if ok else ": over budget"),
            )
        )

    headers = {key.lower(): value for key, value in response.headers.items()}
    for header, wanted_value in expect.headers.items():
        actual = headers.get(header.lower())
        ok = actual is not None and wanted_value.lower() in actual.lower()
        detail = (
            f"{header}: {actual}"
            if ok
            else (
                f"header {header} missing"
                if actual is None
                else f"{header} is {actual!r}, expected {wanted_value!r}"
            )
        )
        results.append(Assertion(name=f"header {header}", ok=ok, detail=detail))

    body = response.body
    for phrase in expect.body_contains:
        ok = phrase in body
        label = secret_phrases.get(phrase, repr(phrase))
        results.append(
            Assertion(
                name="body contains",
                ok=ok,
                detail=f"body {'contains' if ok else 'does not contain'} {label}",
            )
        )
    for phrase in expect.body_not_contains:
        label = secret_phrases.get(phrase, repr(phrase))
        if not phrase:
            continue
        ok = phrase not in body
        results.append(
            Assertion(
                name="body must not contain",
                ok=ok,
                detail=f"body does not contain {label}" if ok else f"body CONTAINS {label}",
            )
        )
    for pattern in expect.body_matches:
        try:
            ok = search_pattern(pattern, body) is not None
        except PatternTimeout as exc:
            results.append(Assertion(name="body matches", ok=False, detail=str(exc)))
            continue
        results.append(
            Assertion(
                name="body matches", ok=ok, detail=f"/{pattern}/ {'found' if ok else 'not found'}"
            )
        )
    for pattern in expect.body_not_matches:
        try:
            match = search_pattern(pattern, body)
        except PatternTimeout as exc:
            results.append(Assertion(name="body must not match", ok=False, detail=str(exc)))
            continue
        detail = (
            f"/{pattern}/ not found"
            if match is None
            else f"/{pattern}/ found: {_short(match.group(0), 40)!r}"
        )
        results.append(Assertion(name="body must not match", ok=match is None, detail=detail))

    if expect.json_:
        if not response.is_json:
            why = response.json_error or describe_body(response)
            results.append(
                Assertion(name="json", ok=False, detail=f"response is not JSON ({why})")
            )
        else:
            results.extend(
                evaluate_json_assertion(check, response.document) for check in expect.json_
            )
    return results


def exit_meaning(code: int | None, meanings: dict[int, str]) -> str:
    if code is None:
        return ""
    meaning = meanings.get(code)
    if meaning is None and code == 78:
        meaning = "EX_CONFIG: configuration error"
    return f" ({meaning})" if meaning else ""


def evaluate_command(
    expect: CommandExpect,
    exit_code: int | None,
    output: str,
    meanings: dict[int, str],
    *,
    timed_out: float | None = None,
) -> list[Assertion]:
    results: list[Assertion] = []
    described = f"exit {exit_code}{exit_meaning(exit_code, meanings)}"
    if timed_out is not None:
        ok = expect.exit in {"any", "running"}
        results.append(
            Assertion(
                name="exit",
                ok=ok,
                detail=f"still running after {timed_out:g}s; stopped it"
                + ("" if ok else " (expected it to exit by then)"),
            )
        )
    elif expect.exit == "running":
        results.append(
            Assertion(
                name="exit",
                ok=False,
                detail=f"expected it to keep running, but it exited: {described}",
            )
        )
    else:
        wanted = expect.exit
        if wanted == "any":
            ok, want = True, "any"
        elif wanted == "nonzero":
            ok, want = exit_code not in (0, None), "non-zero"
        elif isinstance(wanted, list):
            ok, want = exit_code in wanted, " or ".join(map(str, wanted))
        else:
            ok, want = exit_code == wanted, str(wanted)
        results.append(
            Assertion(
                name="exit",
                ok=ok,
                detail=described if ok else f"expected exit {want}, got {described}",
            )
        )
    for phrase in expect.output_contains:
        ok = phrase in output
        results.append(
            Assertion(
                name="output contains",
                ok=ok,
                detail=f"output {'contains' if ok else 'does not contain'} {phrase!r}",
            )
        )
    for phrase in expect.output_not_contains:
        ok = phrase not in output
        results.append(
            Assertion(
                name="output must not contain",
                ok=ok,
                detail=f"output {'does not contain' if ok else 'CONTAINS'} {phrase!r}",
            )
        )
    return results
