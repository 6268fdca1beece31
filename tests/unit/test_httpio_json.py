"""JSON from a response is parsed only when later code can hold it without crashing."""

from __future__ import annotations

import pytest

from opsconsole.httpio import parse_json_body


@pytest.mark.parametrize(("depth", "parsed"), [(100, True), (101, False), (900, False)])
def test_json_deeper_than_the_limit_is_not_parsed(depth: int, parsed: bool) -> None:
    # 900 parses with json.loads, but recursive code (redaction, saving) further down a deep
    # stack would then hit RecursionError: the limit keeps a margin
    text = "[" * depth + "]" * depth
    is_json, value, error = parse_json_body(
        text, "application/json", truncated=False, max_depth=100
    )

    assert is_json is parsed and (value is not None) is parsed
    assert (error is None) is parsed


def test_a_surrogate_pair_is_fine_and_a_lone_one_in_a_key_is_not() -> None:
    assert parse_json_body('{"e": "\\ud83d\\ude00"}', "", truncated=False, max_depth=100)[1] == {
        "e": "\U0001f600"
    }
    is_json, _, error = parse_json_body('{"\\udfff": 1}', "", truncated=False, max_depth=100)
    assert not is_json and error is not None and "lone surrogate" in error


@pytest.mark.parametrize(
    ("text", "content_type", "expected"),
    [
        ("plain words", "text/plain", (False, None, None)),
        ("42", "text/plain", (False, None, None)),
        ("42", "application/problem+json", (True, 42, None)),
        ("", "application/json", (False, None, None)),
        ("\ufeff[1]", "text/plain", (True, [1], None)),
    ],
)
def test_only_what_looks_like_json_is_parsed(
    text: str, content_type: str, expected: tuple[object, ...]
) -> None:
    assert parse_json_body(text, content_type, truncated=False, max_depth=100) == expected


def test_broken_or_cut_json_says_why() -> None:
    _, _, broken = parse_json_body('{"a": ', "application/json", truncated=False, max_depth=100)
    _, _, cut = parse_json_body('{"a": 1}', "application/json", truncated=True, max_depth=100)

    assert broken is not None and broken.startswith("the body looks like JSON but does not parse")
    assert cut == "the body was cut at the size limit, so it was not parsed as JSON"
