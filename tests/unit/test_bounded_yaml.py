"""YAML from runbooks: every hostile document is refused at a line, never an exception."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import yaml

from opsconsole import bounded_yaml
from opsconsole.bounded_yaml import (
    MAX_ALIASES,
    MAX_DEPTH,
    BoundedYamlLoader,
    PurePythonYamlLoader,
    YamlRefused,
    load_bounded,
)

LOADERS: list[Any] = [PurePythonYamlLoader]
if BoundedYamlLoader is not PurePythonYamlLoader:
    LOADERS.append(BoundedYamlLoader)  # libyaml's events

LAUGHS = "\n".join(
    ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    + [
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 9) + "]"
        for i in range(8)
    ]
)


@pytest.fixture(params=LOADERS, ids=lambda loader: loader.__name__)
def load(request: pytest.FixtureRequest) -> Callable[[str], Any]:
    def load(text: str) -> Any:
        return load_bounded(text, 10, request.param)[0]

    return load


def refused(load: Callable[[str], Any], text: str) -> YamlRefused:
    with pytest.raises(YamlRefused) as caught:
        load(text)
    return caught.value


def test_ordinary_documents_load_as_safe_load_does(load: Callable[[str], Any]) -> None:
    text = (
        "url: http://127.0.0.1:1/\nexpect:\n  status: [200, 201]\n  json:\n"
        "    - {path: a.b, equals: 1.5}\nheaders: &h {X-A: '1'}\nagain: *h\n"
        "base: &base {x: 1, y: 2}\nmerged: {<<: *base, y: 3}\nwhen: 2024-02-29\nnothing:\n"
    )
    assert load(text) == yaml.safe_load(text)
    assert load("") is None


def test_an_alias_bomb_is_refused_before_it_expands(load: Callable[[str], Any]) -> None:
    error = refused(load, LAUGHS)
    assert "alias bomb" in error.message
    assert 0 < error.line <= 8


def test_a_merge_key_bomb_is_refused(load: Callable[[str], Any]) -> None:
    text = "m0: &m0 {a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7, h: 8}\n" + "".join(
        f"m{i}: &m{i} {{<<: [" + ", ".join([f"*m{i - 1}"] * 8) + "]}\n" for i in range(1, 7)
    )
    assert "alias bomb" in refused(load, text).message


def test_too_many_aliases(load: Callable[[str], Any]) -> None:
    text = "x: &x 1\nall: [" + ", ".join(["*x"] * (MAX_ALIASES + 1)) + "]\n"
    error = refused(load, text)
    assert error.message.startswith(f"more than {MAX_ALIASES} YAML aliases")
    assert error.line == 1


def test_an_alias_inside_its_own_value(load: Callable[[str], Any]) -> None:
    error = refused(load, "a: 1\nloop: &loop [1, *loop]\n")
    assert error.message == "the YAML alias *loop is inside the value it refers to"
    assert error.line == 1


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("tags: " + "[" * 2000 + "]" * 2000, 0),
        ("tags: " + "{a: " * 2000 + "}" * 2000, 0),
        ("".join("  " * i + "- \n" for i in range(MAX_DEPTH + 5)), MAX_DEPTH),
        ("".join("  " * i + "k:\n" for i in range(MAX_DEPTH + 5)), MAX_DEPTH),
    ],
    ids=["flow-sequences", "flow-mappings", "block-sequences", "block-mappings"],
)
def test_deep_nesting_is_refused(load: Callable[[str], Any], text: str, line: int) -> None:
    error = refused(load, text)
    assert error.message == f"YAML nested more than {MAX_DEPTH} levels deep"
    assert abs(error.line - line) <= 1


def test_nesting_at_the_limit_loads(load: Callable[[str], Any]) -> None:
    depth = MAX_DEPTH - 1
    assert load("a: " + "[" * depth + "]" * depth) is not None


def test_integers_of_thousands_of_digits(load: Callable[[str], Any]) -> None:
    error = refused(load, "title: t\ncount: " + "9" * 4400 + "\n")
    assert error.line == 1 and "at most 100 digits" in error.message
    assert load("count: " + "9" * 100) == {"count": int("9" * 100)}
    assert load('count: "' + "9" * 4400 + '"') == {"count": "9" * 4400}  # quoted: text


@pytest.mark.parametrize(
    ("text", "line", "first"),
    [
        ("title: a\nservice: b\ntitle: c\n", 2, 10),
        ("variables:\n  x: 1\n  y: 2\n  x: 3\n", 3, 11),
        ("list:\n  - {k: 1, k: 2}\n", 1, 11),
    ],
)
def test_duplicate_keys_name_both_lines(
    load: Callable[[str], Any], text: str, line: int, first: int
) -> None:
    error = refused(load, text)
    assert error.line == line
    assert f"(first on line {first})" in error.message


def test_keys_that_only_look_alike_are_not_duplicates(load: Callable[[str], Any]) -> None:
    assert load("1: int\n'1': text\n") == {1: "int", "1": "text"}


@pytest.mark.parametrize(
    ("value", "kind"), [("2001-02-30", "timestamp"), ("2001-13-01", "timestamp")]
)
def test_a_value_its_tag_cannot_build_is_refused_at_its_line(
    load: Callable[[str], Any], value: str, kind: str
) -> None:
    error = refused(load, f"a: 1\nwhen: {value}\n")
    assert error.line == 1
    assert error.message.startswith(f"cannot read {value!r} as a {kind}")


def test_only_yaml_errors_and_refusals_escape(load: Callable[[str], Any]) -> None:
    for text in ("a: [", "!!python/object/apply:os.system ['true']", "a: !!binary 'a'", "\x1b"):
        with pytest.raises(yaml.YAMLError):
            load(text)


def test_libyaml_is_used_when_pyyaml_has_it() -> None:
    assert (BoundedYamlLoader is not PurePythonYamlLoader) == bool(yaml.__with_libyaml__)
    assert bounded_yaml.load_bounded("a: 1")[0] == {"a": 1}
