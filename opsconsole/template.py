"""``{{ name }}`` interpolation of run variables and ``{{ secrets.name }}`` secrets.

Data never becomes code. :func:`render` is told where the result goes, and a
value is made inert there:

``text``
    as it is (headers, JSON bodies, ``env:`` values: they are data already).
``shell``
    quoted for the spot of the command it lands in: ``shlex.quote`` outside
    quotes, backslash escapes inside ``"..."``, ``'\\''`` inside ``'...'``,
    and escapes inside a here-document. Refused (:class:`TemplateError`): a value
    with a line break inside a here-document, and any reference inside backticks,
    inside ``${...}`` or right after a backslash.
``url``
    percent-encoded with ``quote(safe="")`` (``/``, ``?``, ``#``, ``&`` included)
    in the path, the query and the fragment; which part a reference is in is
    decided by the template's own ``/``, ``?`` and ``#``, never by the value.
    A reference in the host part must look like ``host`` or ``host:port``.
``pattern``
    ``re.escape``-d, so it matches itself literally.

``{{ name | raw }}`` inserts a value as it is: the runbook author's statement
that the variable *is* a whole URL, a piece of command or a regex. Without the
mark, exactly one kind of reference is raw by default: in a ``url`` template, a
reference at the very start whose name is in ``trusted`` (the caller passes
the environment's own variables that no capture or input has replaced, e.g.
``{{ base_url }}/api/jobs``). A captured or typed value is never raw unless
the runbook says ``| raw``.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Any, Literal
from urllib.parse import quote

from .errors import TemplateError

__all__ = [
    "FILTERS",
    "REFERENCE",
    "RenderContext",
    "references",
    "render",
    "render_value",
    "secrets_used",
    "template_problems",
]

REFERENCE = re.compile(
    r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?)"
    r"\s*(?:\|\s*([A-Za-z_][A-Za-z0-9_]*)\s*)?\}\}"
)
#: filters a reference may carry: ``{{ name | raw }}``
FILTERS = frozenset({"raw"})

RenderContext = Literal["text", "shell", "url", "pattern"]


def references(text: str) -> Iterator[str]:
    """Names referenced in ``text``: ``base_url`` or ``secrets.ops_key`` (filters dropped)."""
    for match in REFERENCE.finditer(text):
        yield match.group(1)


def template_problems(text: str) -> list[str]:
    """What is wrong with the references themselves (an unknown filter), for lint."""
    return [
        f"unknown filter {match.group(2)!r} in {match.group(0)} (known: raw)"
        for match in REFERENCE.finditer(text)
        if match.group(2) is not None and match.group(2) not in FILTERS
    ]


def secrets_used(value: Any) -> set[str]:
    """Names of the secrets referenced anywhere in nested strings, dicts (keys too), lists."""
    if isinstance(value, str):
        return {name[8:] for name in references(value) if name.startswith("secrets.")}
    if isinstance(value, dict):
        return set().union(*(secrets_used(k) | secrets_used(v) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return set().union(*(secrets_used(item) for item in value))
    return set()


def _lookup(
    match: re.Match[str], variables: Mapping[str, str], secret: Callable[[str], str] | None
) -> str:
    name, kind = match.group(1), match.group(2)
    if kind is not None and kind not in FILTERS:
        raise TemplateError(f"unknown filter {kind!r} in {match.group(0)} (known: raw)")
    if name.startswith("secrets."):
        if secret is None:
            raise TemplateError(f"secret {name[8:]!r} is not available here", name)
        return secret(name[8:])
    if "." in name:
        raise TemplateError(f"unknown reference {{{{ {name} }}}}")
    if name not in variables:
        raise TemplateError(f"variable {name!r} has no value in this run", name)
    return str(variables[name])


def render(
    text: str,
    variables: Mapping[str, str],
    secret: Callable[[str], str] | None = None,
    *,
    context: RenderContext = "text",
    trusted: Collection[str] = (),
) -> str:
    """Replace every reference, made inert for ``context``; problems raise :class:`TemplateError`.

    ``trusted``: names whose values come from the environment's config (only these
    may open a ``url`` template unmarked).
    """
    matches = list(REFERENCE.finditer(text))
    if not matches:
        return text
    values = [_lookup(match, variables, secret) for match in matches]
    raw = [match.group(2) == "raw" for match in matches]
    if context == "text":
        inert = values
    elif context == "pattern":
        inert = [
            value if is_raw else re.escape(value) for value, is_raw in zip(values, raw, strict=True)
        ]
    elif context == "shell":
        spots = _shell_spots(text, [(m.start(), m.end()) for m in matches])
        inert = [
            value if is_raw else _quote_for_shell(value, spot, match.group(0))
            for value, is_raw, spot, match in zip(values, raw, spots, matches, strict=True)
        ]
    elif context == "url":
        inert = _url_values(text, matches, values, raw, trusted)
    else:
        raise ValueError(f"unknown render context {context!r}")
    out = []
    position = 0
    for match, value in zip(matches, inert, strict=True):
        out.append(text[position : match.start()])
        out.append(value)
        position = match.end()
    out.append(text[position:])
    return "".join(out)


def render_value(
    value: Any,
    variables: Mapping[str, str],
    secret: Callable[[str], str] | None = None,
    *,
    context: RenderContext = "text",
) -> Any:
    """Render every string inside nested dicts/lists (keys included); values stay data."""
    if isinstance(value, str):
        return render(value, variables, secret, context=context)
    if isinstance(value, dict):
        return {
            render_value(k, variables, secret, context=context): render_value(
                v, variables, secret, context=context
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [render_value(item, variables, secret, context=context) for item in value]
    return value


# -- shell ------------------------------------------------------------------------------

_WORD_BREAK = frozenset(" \t\n;&|()<>")
_HEREDOC = re.compile(r"<<(-?)[ \t]*((?:[^\s;&|<>()'\"\\]|\\.|'[^']*'|\"[^\"]*\")+)")


def _shell_spots(text: str, spans: list[tuple[int, int]]) -> list[str]:
    """Where each reference sits in the command: plain, comment, single, double, ansi,
    backtick, param (inside ``${ }``), escaped, heredoc or quoted-heredoc.

    A small POSIX/bash lexer over the template's own text (the values are not
    looked at): quotes, ``$( )`` with its parentheses and ``case`` patterns,
    backticks, comments, here-strings and here-documents."""
    spots: list[str] = []
    # frames: [kind, paren or brace depth, open case statements]; kinds: top, subst ($( )),
    # backtick, single, double, ansi, param (${ })
    stack: list[list[Any]] = [["top", 0, 0]]
    pending: list[tuple[str, bool, bool]] = []  # here-documents opened on this line
    i, size = 0, len(text)

    def spot_here() -> str:
        for inside in ("param", "backtick"):
            if any(frame[0] == inside for frame in stack):
                return inside
        kind = stack[-1][0]
        return "plain" if kind in {"top", "subst"} else str(kind)

    def escape_at(at: int) -> int:
        # a backslash right before a reference would eat the quoting put around its value
        if len(spots) < len(spans) and spans[len(spots)][0] == at + 1:
            spots.append("escaped")
            return spans[len(spots) - 1][1]
        return at + 2

    while i < size:
        if len(spots) < len(spans) and spans[len(spots)][0] <= i:
            i = max(i, spans[len(spots)][1])
            spots.append(spot_here())
            continue
        kind = stack[-1][0]
        char = text[i]
        if kind == "param":  # ${ ... }: bash's quoting inside it differs; refused below
            if char == "{":
                stack[-1][1] += 1
            elif char == "}":
                if stack[-1][1]:
                    stack[-1][1] -= 1
                else:
                    stack.pop()
            i += 1
        elif text.startswith("${", i) and kind not in {"single", "ansi"}:
            stack.append(["param", 0, 0])
            i += 2
        elif kind == "single":
            if char == "'":
                stack.pop()
            i += 1
        elif kind == "ansi":
            if char == "\\":
                i = escape_at(i)
                continue
            if char == "'":
                stack.pop()
            i += 1
        elif kind == "double":
            if char == "\\":
                i = escape_at(i)
            elif char == '"':
                stack.pop()
                i += 1
            elif text.startswith("$(", i):
                stack.append(["subst", 0, 0])
                i += 2
            elif char == "`":
                stack.append(["backtick", 0, 0])
                i += 1
            else:
                i += 1
        else:  # unquoted: top level, inside $( ) or inside backticks
            if char == "\\":
                i = escape_at(i)
            elif char == "'":
                stack.append(["single", 0, 0])
                i += 1
            elif text.startswith("$'", i):
                stack.append(["ansi", 0, 0])
                i += 2
            elif text.startswith('$"', i) or char == '"':
                stack.append(["double", 0, 0])
                i += 2 if char == "$" else 1
            elif text.startswith("$(", i):
                stack.append(["subst", 0, 0])
                i += 2
            elif char == "`":
                if kind == "backtick":
                    stack.pop()
                else:
                    stack.append(["backtick", 0, 0])
                i += 1
            elif char == "(" and kind == "subst":
                stack[-1][1] += 1
                i += 1
            elif char == ")" and kind == "subst":
                if stack[-1][1]:
                    stack[-1][1] -= 1
                elif not stack[-1][2]:  # inside case ... esac a ")" ends a pattern
                    stack.pop()
                i += 1
            elif kind == "subst" and _keyword_at(text, i, "case"):
                stack[-1][2] += 1
                i += 4
            elif kind == "subst" and _keyword_at(text, i, "esac"):
                stack[-1][2] = max(0, stack[-1][2] - 1)
                i += 4
            elif char == "#" and (i == 0 or text[i - 1] in _WORD_BREAK):
                end = text.find("\n", i)
                end = size if end < 0 else end
                while len(spots) < len(spans) and spans[len(spots)][0] < end:
                    spots.append("comment")
                    end = max(end, spans[len(spots) - 1][1])
                i = end
            elif text.startswith("<<<", i):
                i += 3  # a here-string: its word is an ordinary word
            elif text.startswith("<<", i):
                opened = _HEREDOC.match(text, i)
                word = opened.group(2) if opened else ""
                delimiter = re.sub(r"\\(.)", r"\1", word).replace("'", "").replace('"', "")
                if (
                    opened is None
                    or any(i <= start < opened.end() for start, _ in spans)
                    or not _has_line(text, opened.end(), delimiter, bool(opened.group(1)))
                ):
                    i += 2  # not a here-document (an arithmetic shift, say)
                    continue
                quoted = any(c in word for c in "'\"\\")
                pending.append((delimiter, bool(opened.group(1)), quoted))
                i = opened.end()
            elif char == "\n" and pending:
                i = _skip_heredocs(text, i + 1, pending, spans, spots)
                pending = []
            else:
                i += 1
    while len(spots) < len(spans):  # pragma: no cover - every span is reached above
        spots.append("plain")
    return spots


def _keyword_at(text: str, at: int, word: str) -> bool:
    end = at + len(word)
    return (
        text.startswith(word, at)
        and (at == 0 or text[at - 1] in _WORD_BREAK)
        and (end == len(text) or text[end] in _WORD_BREAK)
    )


def _has_line(text: str, at: int, delimiter: str, strip_tabs: bool) -> bool:
    """Whether a line after ``at`` closes a here-document with ``delimiter``."""
    for line in text[at:].split("\n")[1:]:
        if (line.lstrip("\t") if strip_tabs else line) == delimiter:
            return True
    return False


def _skip_heredocs(
    text: str,
    i: int,
    pending: list[tuple[str, bool, bool]],
    spans: list[tuple[int, int]],
    spots: list[str],
) -> int:
    """Walk the bodies of the here-documents opened on the previous line; return where
    the command goes on. References inside a body get a heredoc spot."""
    for delimiter, strip_tabs, quoted in pending:
        spot = ("quoted-heredoc:" if quoted else "heredoc:") + delimiter
        while i < len(text):
            end = text.find("\n", i)
            end = len(text) if end < 0 else end
            line = text[i:end]
            if (line.lstrip("\t") if strip_tabs else line) == delimiter:
                i = end + 1
                break
            while len(spots) < len(spans) and spans[len(spots)][0] < end:
                spots.append(spot)
            i = end + 1
    return i


def _quote_for_shell(value: str, spot: str, reference: str) -> str:
    if spot == "plain":
        return shlex.quote(value)
    if spot == "comment":  # a line break would end the comment: the rest would run
        return value.replace("\n", "\\n")
    if spot == "double":
        return re.sub(r'([\\$`"])', r"\\\1", value)
    if spot == "single":
        return value.replace("'", "'\\''")
    if spot == "ansi":
        return value.replace("\\", "\\\\").replace("'", "\\'")
    if spot == "escaped":
        raise TemplateError(
            f"a backslash right before {reference} would undo the quoting of its value: "
            "remove the backslash"
        )
    if spot == "param":
        raise TemplateError(
            f"{reference} is inside ${{...}}, where it cannot be quoted safely: "
            "assign it to a variable first (X={{ name }}) and use ${X...}"
        )
    if spot == "backtick":
        raise TemplateError(
            f"{reference} is inside backticks, where it cannot be quoted safely: use $( ) instead"
        )
    kind, _, delimiter = spot.partition(":")
    if "\n" in value or (delimiter and delimiter in value):
        raise TemplateError(
            f"the value of {reference} has a line break or the word {delimiter}, which could "
            "end the here-document early; pass it with env: instead"
        )
    if kind == "heredoc":
        return re.sub(r"([\\$`])", r"\\\1", value)
    return value  # quoted-heredoc: nothing in it is expanded


# -- url --------------------------------------------------------------------------------

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_HOST = re.compile(r"[A-Za-z0-9._~-]+(?::[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](?::[0-9]{1,5})?")


def _url_part_after(part: str, literal: str) -> str:
    """The URL part (authority, path, query, fragment) the template is in after ``literal``."""
    for char in literal:
        if char == "#":
            return "fragment"
        if char == "?" and part != "fragment":
            part = "query"
        elif char == "/" and part == "authority":
            part = "path"
    return part


def _url_values(
    text: str,
    matches: list[re.Match[str]],
    values: list[str],
    raw: list[bool],
    trusted: Collection[str],
) -> list[str]:
    out = []
    part = "path"
    position = 0
    for index, (match, value, is_raw) in enumerate(zip(matches, values, raw, strict=True)):
        literal = text[position : match.start()]
        if index == 0 and match.start() == 0:
            name = match.group(1)
            if not is_raw and name not in trusted:
                raise TemplateError(
                    f"{match.group(0)} starts the URL but is not one of the environment's "
                    "variables (a value captured or entered during the run is never taken as "
                    f"a URL); if it holds a whole URL, write {{{{ {name} | raw }}}}"
                )
            out.append(value)
            position = match.end()
            continue
        if index == 0:
            scheme = _SCHEME.match(literal)
            if scheme is not None:
                part = _url_part_after("authority", literal[scheme.end() :])
            else:
                part = _url_part_after("path", literal)
        else:
            part = _url_part_after(part, literal)
        position = match.end()
        if is_raw:
            out.append(value)
        elif part == "authority":
            if not _HOST.fullmatch(value):
                raise TemplateError(
                    f"the value of {match.group(0)} is not a host name or host:port"
                )
            out.append(value)
        else:
            if part == "path" and value in {".", ".."}:
                raise TemplateError(
                    f"the value of {match.group(0)} is {value!r}, which would change the path"
                )
            out.append(quote(value, safe=""))
    return out
