"""Markdown runbook loader and linter.

A runbook is CommonMark parsed with markdown-it-py: YAML front matter,
headings become sections, task-list items become manual checks, ``ops <kind>``
fences become typed steps (YAML bodies validated by :mod:`opsconsole.model`),
plain shell fences become runnable commands, everything else is prose.

Every problem is a :class:`~opsconsole.errors.RunbookError` located to a line;
the loader collects all of them so ``opsconsole lint`` reports a file at once.
Errors keep a runbook from opening; warnings (unknown front matter, a fence
never closed) do not.

Any file is answered within bounded time and memory: only regular files are
read (a FIFO never blocks), at most :data:`MAX_RUNBOOK_BYTES` and
:data:`MAX_RUNBOOK_LINES`; YAML goes through
:mod:`opsconsole.bounded_yaml`, which refuses alias bombs, deep nesting, huge
integers and duplicate keys as located errors rather than exceptions.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import re
import stat
import textwrap
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from markdown_it import MarkdownIt
from markdown_it.token import Token
from mdit_py_plugins.front_matter import front_matter_plugin
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .bounded_yaml import YamlRefused, load_bounded
from .errors import RunbookError, Severity
from .model import Runbook, Section, Step
from .shell_text import (
    SHELL_LANGUAGES,
    command_title,
    looks_like_command,
    shell_values,
    split_block,
)
from .steps import kinds, step_type
from .steps.base import Produces
from .template import references, template_problems
from .triage import TriageRow, rows_from_table

__all__ = [
    "MAX_RUNBOOK_BYTES",
    "MAX_RUNBOOK_LINES",
    "FrontMatter",
    "LintResult",
    "find_runbooks",
    "lint",
    "lint_paths",
    "load_runbook",
    "parse_runbook",
    "read_runbook_bytes",
]

MIB = 1024 * 1024
#: a runbook is read whole; anything larger is refused before parsing
MAX_RUNBOOK_BYTES = 2 * MIB
#: markdown-it costs up to ~60 µs a line (lists): this keeps any runbook to a few seconds
MAX_RUNBOOK_LINES = 50_000
#: one front matter or ``ops`` block body (real ones are a few hundred bytes)
MAX_YAML_CHARS = 64 * 1024
#: what ids become part of file names (evidence, run state): lower-case slugs
SLUG = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")

#: front matter ``shell``: a bare name (or an absolute path)
_SHELL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")
#: Runme fence attributes opsconsole reads; ``id`` is Runme's own cell identity (ignored)
FENCE_ATTRIBUTES = frozenset({"name", "cwd", "background", "interactive", "excludeFromRunAll"})
BUILTIN_VARIABLES = frozenset({"run_id", "environment"})
_TASK = re.compile(r"^\[( |x|X)\]\s+")
_NESTED_TASK = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+\[( |x|X)\]\s")


class TriageEntry(BaseModel):
    """One front-matter triage row."""

    model_config = ConfigDict(extra="forbid")

    signal: str
    meaning: str
    action: str
    surface: str = ""


class FrontMatter(BaseModel):
    """The fields opsconsole reads; any other field is kept in ``model_extra``.

    Runbooks carry front matter for their site generator or for Runme
    (``weight``, ``aliases``, ``runme``, ``shell``...): an unknown field is a
    warning, never a reason not to open the file.
    """

    model_config = ConfigDict(extra="allow")

    id: str | None = None
    title: str | None = None
    service: str = ""
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    #: the shell plain blocks run in: bash, sh, zsh, dash or an absolute path (Runme's ``shell``)
    shell: str | None = None
    #: the directory plain blocks start in (Runme's ``cwd``)
    cwd: str | None = None
    #: name -> description; a plain list of names is accepted too
    variables: dict[str, str] = Field(default_factory=dict)
    secrets: list[str] = Field(default_factory=list)
    #: failure triage rows (signal, meaning, action, surface), as a Markdown table would give
    triage: list[TriageEntry] = Field(default_factory=list)

    @field_validator("variables", mode="before")
    @classmethod
    def _variables(cls, value: Any) -> Any:
        if value is None:
            return {}
        if isinstance(value, list):
            return {str(name): "" for name in value}
        if isinstance(value, dict):
            return {str(k): "" if v is None else str(v) for k, v in value.items()}
        return value

    @field_validator("id")
    @classmethod
    def _id_is_a_slug(cls, value: str | None) -> str | None:
        if value is not None and (not SLUG.fullmatch(value) or ".." in value):
            raise ValueError(
                "an id is a lower-case slug (letters, digits, '-', '_', '.'; no '/' or '..') "
                "of at most 100 characters"
            )
        return value

    @field_validator("tags", "secrets", mode="before")
    @classmethod
    def _lists(cls, value: Any) -> Any:
        if value is None:
            return []
        if isinstance(value, str):
            return [value]
        return value

    @field_validator("tags", mode="before")
    @classmethod
    def _tags(cls, value: Any) -> Any:
        """``tags: ops, broker`` (a site generator's comma string) is two tags; numbers are text."""
        if isinstance(value, str):
            return [tag.strip() for tag in value.split(",") if tag.strip()]
        if isinstance(value, list):
            return [str(tag) if isinstance(tag, int | float) else tag for tag in value]
        return value

    @field_validator("title", "service", "description", mode="before")
    @classmethod
    def _scalar_text(cls, value: Any) -> Any:
        """``title: 2024`` or a date is text as written, not a type error."""
        if isinstance(value, int | float | _dt.date) and not isinstance(value, bool):
            return str(value)
        return value

    @field_validator("shell")
    @classmethod
    def _shell(cls, value: str | None) -> str | None:
        # a shell the session cannot run opens with a warning (lint) and is asked about
        if value is not None and not (_absolute_path(value) or _SHELL_NAME.fullmatch(value)):
            raise ValueError(
                f"{value!r} is not a shell: give its name (bash, sh, zsh) or an absolute "
                "path (/bin/bash)"
            )
        return value

    @field_validator("cwd")
    @classmethod
    def _cwd(cls, value: str | None) -> str | None:
        if value is not None:
            _check_path(value)
        return value


def _absolute_path(value: str) -> bool:
    return value.startswith("/") and not any(char in value for char in "\0\n\r\t ")


def _check_path(value: str) -> None:
    """A directory as text: one line, no NUL (raises ValueError)."""
    if not value.strip() or any(char in value for char in "\0\n\r"):
        raise ValueError("a directory is a path on one line, e.g. /srv/app or ./broker")


@dataclass
class _Block:
    """An ``ops`` block or shell block waiting to become a step."""

    kind: str
    line: int  # 1-based line of the opening fence
    body: str
    section: int
    info: str
    #: a plain block's fence attributes (Runme: ``{name=deploy background=true}``)
    attributes: dict[str, str] = field(default_factory=dict)
    #: an untagged fence that looks like a command
    guessed: bool = False


@dataclass
class _Parse:
    path: Path
    errors: list[RunbookError] = field(default_factory=list)

    def error(self, line: int, message: str, severity: Severity = "error") -> None:
        self.errors.append(RunbookError(self.path, line, message, severity))

    def warning(self, line: int, message: str) -> None:
        self.error(line, message, "warning")


def _markdown() -> MarkdownIt:
    # Block structure only: prose is kept as source lines, so inline markup is parsed
    # just for titles (_InlineText); tables are read for a section's triage table.
    return MarkdownIt("commonmark").use(front_matter_plugin).enable("table").disable("inline")


def _slug(text: str) -> str:
    import unicodedata

    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:40].strip("-") or "step"


class _InlineText:
    """Plain text of headings and checklist items, without their Markdown markup.

    markdown-it's inline parser costs up to ~30 µs a character on hostile text
    (``![![![…``), so it runs only on short titles that contain markup, and on at
    most :data:`INLINE_BUDGET` characters per runbook; past that a title is its
    source text with whitespace collapsed.
    """

    MAX_SOURCE = 2000
    INLINE_BUDGET = 32 * 1024
    _MARKUP = re.compile(r"[\\`*_\[\]<>&!]")
    _KEPT = frozenset({"text", "text_special", "code_inline", "softbreak", "hardbreak"})

    def __init__(self, md: MarkdownIt) -> None:
        self.md = md
        self.budget = self.INLINE_BUDGET

    def __call__(self, source: str) -> str:
        if (
            len(source) > self.MAX_SOURCE
            or len(source) > self.budget
            or not self._MARKUP.search(source)
        ):
            return " ".join(source.split())
        self.budget -= len(source)
        children: list[Token] = []
        self.md.inline.parse(source, self.md, {}, children)
        text = "".join(
            " " if child.type.endswith("break") else child.content
            for child in children
            if child.type in self._KEPT
        )
        return " ".join(text.split()) or " ".join(source.split())


def _yaml_line(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """0-based line of the YAML node at a pydantic error location."""
    best = node.start_mark.line if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == part or key.value == str(part).rstrip("_"):
                    best = key.start_mark.line
                    node = value
                    break
            else:
                return best
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return best
            node = node.value[part]
            best = node.start_mark.line
        else:
            return best
    return best


_TYPE_TAG = re.compile(r"^(function-|literal\[|list\[|dict\[|int$|str$|float$|bool$|union\[)")


_MAX_MESSAGES_PER_BLOCK = 20


def _validation_messages(exc: ValidationError) -> Iterator[tuple[tuple[Any, ...], str]]:
    """One message per location, in order; linear in the number of pydantic errors
    (a list of 4,000 bad items is 4,000 messages, not 4,000² comparisons)."""
    errors = exc.errors(include_url=False)
    groups: dict[tuple[Any, ...], list[Any]] = {}
    nested: dict[tuple[Any, ...], int] = {}  # errors at or under each raw location prefix
    for error in errors:
        # union members add type tags to the location; one mistake is one message
        loc = tuple(part for part in error["loc"] if not _TYPE_TAG.match(str(part)))
        groups.setdefault(loc, []).append(error)
        raw = tuple(error["loc"])
        for end in range(len(raw) + 1):
            nested[raw[:end]] = nested.get(raw[:end], 0) + 1
    for shown, (loc, group) in enumerate(groups.items()):
        if shown == _MAX_MESSAGES_PER_BLOCK:
            yield loc, f"and {len(groups) - shown} more problems like the ones above"
            return
        error = group[0]
        where = ".".join(str(part) for part in loc)
        message = " ".join(str(error["msg"]).removeprefix("Value error, ").split())
        if (
            error["type"].startswith(("literal_error", "int_", "list_type"))
            and nested.get(loc, 0) > 1
        ):
            message = "expected " + _expected_forms(group)
        if error["type"] == "extra_forbidden":
            message = f"unknown field {where!r}"
        elif error["type"] == "missing":
            message = f"missing required field {where!r}"
        elif where:
            message = f"{where}: {message}"
        yield loc, message


def _expected_forms(group: list[Any]) -> str:
    forms = [" ".join(str(e["msg"]).removeprefix("Input should be ").split()) for e in group]
    return " or ".join(dict.fromkeys(forms))


def _load_yaml(parse: _Parse, text: str, first_line: int, what: str) -> tuple[Any, Any]:
    """Parse YAML; returns (data, composed node) or reports the error."""
    if len(text) > MAX_YAML_CHARS:
        parse.error(
            first_line,
            f"{what}: {len(text) / 1024:.0f} KiB of YAML; the limit is "
            f"{MAX_YAML_CHARS // 1024} KiB",
        )
        return None, None
    try:
        data, node = load_bounded(text, first_line)
    except YamlRefused as exc:
        parse.error(first_line + exc.line, f"{what}: {exc.message}")
        return None, None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        last = max(len(text.rstrip("\n").split("\n")) - 1, 0)
        at_end = mark is not None and (mark.line > last or "<stream end>" in problem)
        if exc.context_mark is not None and exc.context and at_end:
            # the end of the block is no help; where the unclosed construct opened is
            mark = exc.context_mark
            problem = f"{exc.context} that is never closed ({problem})"
        line = first_line + min(mark.line if mark else 0, last)
        parse.error(line, f"{what}: invalid YAML: {' '.join(problem.split())}")
        return None, None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow
        line = first_line + text[: exc.position].count("\n")
        reason = str(exc).split("\n", 1)[0]
        parse.error(line, f"{what}: invalid YAML: {reason}")
        return None, None
    except yaml.YAMLError as exc:
        parse.error(first_line, f"{what}: invalid YAML: {' '.join(str(exc).split())}")
        return None, None
    return data, node


_ATTRIBUTE = re.compile(
    r"""\s*([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*("(?:[^"\\]|\\.)*"|'[^']*'|\[[^\]]*\]|[^\s"',}]+)\s*,?"""
)


def _fence_info(parse: _Parse, line: int, info: str) -> tuple[str, dict[str, str]]:
    """The fence's language and its ``{key=value ...}`` attributes (Runme's form, or its
    JSON form ``{"name":"deploy"}``); malformed attributes are an error at the fence."""
    match = re.match(r"([^\s{]*)\s*(.*)$", info, re.S)
    language, rest = (match.group(1), match.group(2).strip()) if match else ("", "")
    if language and language.lower() not in SHELL_LANGUAGES:
        return language, {}  # another tool's attributes (``js {1,3-4}``): not ours to read
    if not rest.startswith("{") or rest[1:2].isdigit():
        return language, {}  # ``bash {1,3-4}``: lines a docs site highlights
    example = "write them as {name=deploy background=true}"
    if not rest.endswith("}"):
        parse.error(line, f"fence attributes: '{{' is never closed with '}}' ({example})")
        return language, {}
    attributes: dict[str, str] = {}
    if rest[1:].lstrip().startswith('"'):
        try:
            data = json.loads(rest)
        except json.JSONDecodeError as exc:
            parse.error(line, f"fence attributes: invalid JSON ({exc.msg}); {example}")
            return language, {}
        if not isinstance(data, dict):
            parse.error(line, f"fence attributes: {example}")
            return language, {}
        for key, value in data.items():
            if isinstance(value, bool):
                value = "true" if value else "false"
            if not isinstance(value, str | int | float):
                parse.error(line, f"fence attribute {key!r}: a value is text, true or false")
                continue
            attributes[key] = str(value)
        return language, attributes
    inner, at = rest[1:-1], 0
    while at < len(inner):
        if not inner[at:].strip():
            break
        found = _ATTRIBUTE.match(inner, at)
        if not found:
            bad = inner[at:].strip().split()[0]
            parse.error(line, f"fence attributes: cannot read {bad!r}; {example}")
            return language, {}
        value = found.group(2)
        if value[:1] in "\"'":
            value = value[1:-1].replace('\\"', '"') if value[0] == '"' else value[1:-1]
        attributes[found.group(1)] = value
        at = found.end()
    return language, attributes


def _command_attributes(
    parse: _Parse, line: int, attributes: dict[str, str]
) -> dict[str, Any]:
    """CommandSpec fields from Runme fence attributes; problems are reported at the fence."""
    fields: dict[str, Any] = {}
    for key, value in attributes.items():
        if key == "id":
            continue  # Runme's identity of the cell, written by its editor
        if key not in FENCE_ATTRIBUTES:
            parse.warning(line, f"fence attribute {key!r} is not used by opsconsole (ignored)")
            continue
        if key == "name":
            fields["id"] = value
        elif key == "cwd":
            try:
                _check_path(value)
            except ValueError as exc:
                parse.error(line, f"fence attribute cwd: {exc}")
                continue
            fields["cwd"] = value
        else:
            flag = value.lower()
            if flag not in {"true", "false"}:
                parse.error(line, f"fence attribute {key}={value!r}: use true or false")
                continue
            field_name = "exclude_from_run_all" if key == "excludeFromRunAll" else key
            fields[field_name] = flag == "true"
    return fields


_FILE_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def _not_regular(mode: int) -> str | None:
    """Why a file of this mode is not read as a runbook (None: it is a regular file)."""
    if stat.S_ISREG(mode):
        return None
    kind = next((name for test, name in _FILE_KINDS if test(mode)), "a special file")
    return f"not a regular file ({kind})"


def _too_big(size: int | None) -> str:
    shown = f"{size / MIB:.1f} MiB" if size is not None else f"more than {MAX_RUNBOOK_BYTES} bytes"
    return (
        f"runbook is {shown}; the limit is {MAX_RUNBOOK_BYTES // MIB} MiB "
        "(split it into smaller runbooks)"
    )


def read_runbook_bytes(path: Path) -> bytes:
    """The file's bytes, or :class:`RunbookError` (line 1) if it is not a regular file
    of at most :data:`MAX_RUNBOOK_BYTES`.

    Opened with ``O_NONBLOCK`` so a FIFO or device answers at once instead of
    waiting for a writer, and read with a bound even if the file grows meanwhile.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except (OSError, ValueError) as exc:
        try:
            why = _not_regular(os.stat(path).st_mode)  # a socket cannot be opened at all
        except (OSError, ValueError):
            why = None
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise RunbookError(path, 1, why or f"cannot read runbook: {detail}") from None
    try:
        info = os.fstat(fd)
        why = _not_regular(info.st_mode)
        if why:
            raise RunbookError(path, 1, why)
        if info.st_size > MAX_RUNBOOK_BYTES:
            raise RunbookError(path, 1, _too_big(info.st_size))
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_RUNBOOK_BYTES:
            chunk = os.read(fd, min(MIB, MAX_RUNBOOK_BYTES + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > MAX_RUNBOOK_BYTES:
            raise RunbookError(path, 1, _too_big(None))
        return b"".join(chunks)
    except OSError as exc:
        raise RunbookError(path, 1, f"cannot read runbook: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def _shell_problem(shell: str) -> str:
    """Why plain blocks cannot run in the front matter's ``shell`` here, or ""."""
    import shutil

    from .shell_text import shell_dialect

    if shell_dialect(shell) is None:
        return (
            f"shell {shell!r} is not one the shell session runs (bash, sh, zsh): the console "
            "asks before running the plain blocks in bash instead"
        )
    if shutil.which(shell) is None:
        return (
            f"shell {shell!r} is not installed on this machine: the console asks before "
            "running the plain blocks in bash instead"
        )
    return ""


def _front_matter(parse: _Parse, token: Token) -> FrontMatter:
    """The front matter's known fields; unknown ones are kept (``model_extra``) and warned of."""
    data, node = _load_yaml(parse, token.content, 2, "front matter")
    if data is None:
        return FrontMatter()
    if not isinstance(data, dict):
        parse.error(2, "front matter must be a YAML mapping (key: value lines)")
        return FrontMatter()

    key_lines: dict[str, int] = {}
    for key_node, _ in node.value:
        if isinstance(key_node, yaml.ScalarNode):
            key_lines.setdefault(key_node.value, 2 + key_node.start_mark.line)

    def line_of(key: Any) -> int:
        return key_lines.get(str(key), 2)

    fields = {}
    for key, value in data.items():
        if not isinstance(key, str):
            parse.error(line_of(key), f"front matter: a field name is text, not {key!r}")
            continue
        if key not in FrontMatter.model_fields:
            parse.warning(
                line_of(key),
                f"front matter: unknown field {key!r} (kept, not used by opsconsole)",
            )
        fields[key] = value
    shell = fields.get("shell")
    if isinstance(shell, str) and (_absolute_path(shell) or _SHELL_NAME.fullmatch(shell)):
        problem = _shell_problem(shell)
        if problem:
            parse.warning(line_of("shell"), f"front matter: {problem}")
    try:
        return FrontMatter.model_validate(fields)
    except ValidationError as exc:
        bad_keys = set()
        for loc, message in _validation_messages(exc):
            line = _yaml_line(node, loc)
            parse.error(2 + (line or 0), f"front matter: {message}")
            if loc:
                bad_keys.add(loc[0])
    # keep what is valid, so one bad key does not make every variable "unknown"
    salvage = {k: v for k, v in fields.items() if k not in bad_keys}
    try:
        return FrontMatter.model_validate(salvage)
    except ValidationError:
        return FrontMatter()


def _markdown_lines(text: str) -> int:
    """How many lines markdown-it counts (a final newline does not start one)."""
    return text.count("\n") + (0 if text.endswith("\n") or not text else 1)


def _fence_is_closed(token: Token, lines: list[str]) -> bool:
    assert token.map is not None
    first, end = token.map
    if end - first < 2:
        return False
    closing = lines[end - 1].lstrip(" \t>").rstrip()  # blockquote / list item indentation
    marker = token.markup[:1]
    return len(closing) >= len(token.markup) and closing == marker * len(closing)


def parse_runbook(
    path: Path | str, text: str | None = None
) -> tuple[Runbook | None, list[RunbookError]]:
    """Parse a runbook; returns the runbook (None if unusable) and every problem found.

    Problems are errors and warnings (``RunbookError.severity``), sorted by line:
    a runbook with warnings only opens.
    """
    path = Path(path)
    parse = _Parse(path)
    if text is None:
        try:
            raw = read_runbook_bytes(path)
        except RunbookError as error:
            return None, [error]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            parse.error(line, "not UTF-8 text")
            return None, parse.errors
    else:
        raw = text.encode()
        if len(raw) > MAX_RUNBOOK_BYTES:
            return None, [RunbookError(path, 1, _too_big(len(raw)))]
    # A byte-order mark would hide the front matter; markdown-it ends lines at \n, \r\n
    # and \r only (str.splitlines also splits at \f, \x1c, \u2028...), so line numbers
    # here must be cut the same way.
    text = text.removeprefix("\ufeff")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    line_count = _markdown_lines(text)
    if line_count > MAX_RUNBOOK_LINES:
        parse.error(
            1,
            f"runbook has {line_count:,} lines; the limit is {MAX_RUNBOOK_LINES:,} "
            "(split it into smaller runbooks)",
        )
        return None, parse.errors
    markdown = _markdown()
    tokens = markdown.parse(text)
    inline_text = _InlineText(markdown)
    meta = FrontMatter()

    if lines and lines[0].strip() == "---" and not (tokens and tokens[0].type == "front_matter"):
        parse.error(1, "front matter opened with '---' is never closed with a '---' line")
    elif tokens and tokens[0].type == "front_matter":
        meta = _front_matter(parse, tokens[0])

    sections: list[Section] = []
    blocks: list[_Block] = []
    manual: list[tuple[int, int, str, str]] = []  # (line, section, text, detail)
    title_from_h1: str | None = None
    triage: list[TriageRow] = [
        TriageRow(e.signal, e.meaning, e.action, e.surface) for e in meta.triage
    ]
    excluded: list[tuple[int, int]] = []  # 0-based [start, end) ranges hidden from prose

    def current_section(line0: int) -> int:
        if not sections:
            sections.append(Section(index=0, level=0, title="Overview", line=1))
        return len(sections) - 1

    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token.type == "heading_open" and token.map:
            inline = tokens[index + 1]
            title = inline_text(inline.content)
            level = int(token.tag[1])
            if level == 1 and title_from_h1 is None:
                title_from_h1 = title
            sections.append(
                Section(index=len(sections), level=level, title=title, line=token.map[0] + 1)
            )
        elif token.type == "fence" and token.map:
            info = token.info.strip()
            words = info.split()
            line = token.map[0] + 1
            if token.map[1] >= line_count and not _fence_is_closed(token, lines):
                marker = token.markup if len(token.markup) <= 8 else token.markup[:3] + "…"
                parse.warning(
                    line,
                    f"this {marker} fence is never closed: it runs to the end of the file "
                    "(close it with the same fence where the block ends)",
                )
            language, attributes = _fence_info(parse, line, info)
            if words and words[0] == "ops":
                kind = words[1] if len(words) > 1 else ""
                blocks.append(_Block(kind, line, token.content, current_section(line), info))
                excluded.append((token.map[0], token.map[1]))
            elif language.lower() in SHELL_LANGUAGES and token.content.strip():
                blocks.append(
                    _Block("shell", line, token.content, current_section(line), language,
                           attributes)
                )
            elif not language and _untagged_command(token.content):
                blocks.append(
                    _Block("shell", line, token.content, current_section(line), "",
                           attributes, guessed=True)
                )
        elif token.type == "table_open" and sections and "triage" in sections[-1].title.lower():
            index = _triage_table(tokens, index, triage)
            continue
        elif token.type == "inline" and token.map and tokens[index - 1].type == "paragraph_open":
            opener = tokens[index - 2] if index >= 2 else None
            match = _TASK.match(token.content)
            if opener is not None and opener.type == "list_item_open" and match:
                item_map = opener.map or token.map
                text = inline_text(_TASK.sub("", token.content))
                detail_lines = [
                    line
                    for line in lines[token.map[1] : item_map[1]]
                    if not _NESTED_TASK.match(line)  # nested task items are checks of their own
                ]
                detail = textwrap.dedent("\n".join(detail_lines)).strip()
                manual.append((token.map[0] + 1, current_section(token.map[0]), text, detail))
        index += 1

    if not sections:
        sections.append(Section(index=0, level=0, title="Overview", line=1))

    # Prose: each section's source lines up to the next heading, without ops blocks.
    hidden: set[int] = set()
    for start, end in excluded:
        hidden.update(range(start, end))
    for position, section in enumerate(sections):
        start = section.line if section.level else 0
        if section.level == 0 and meta_end(tokens):
            start = meta_end(tokens)
        end = sections[position + 1].line - 1 if position + 1 < len(sections) else len(lines)
        body = [lines[i] for i in range(start, end) if i not in hidden]
        section.prose = "\n".join(body).strip()

    steps = _build_steps(parse, blocks, manual, sections)
    _check_references(parse, steps, meta, lines)

    runbook = Runbook(
        path=path,
        id=meta.id or _slug(path.stem),
        title=meta.title or title_from_h1 or path.stem,
        service=meta.service,
        description=meta.description,
        tags=list(meta.tags),
        variables=dict(meta.variables),
        secrets=list(meta.secrets),
        sections=sections,
        steps=steps,
        digest=hashlib.sha256(raw).hexdigest(),
        shell=meta.shell,
        cwd=meta.cwd,
        front_matter=dict(meta.model_extra or {}),
        triage=triage,
    )
    parse.errors.sort(key=lambda error: error.line)
    return runbook, parse.errors


def _triage_table(tokens: list[Token], index: int, triage: list[TriageRow]) -> int:
    """Read the table opening at ``index`` into ``triage`` when its header names Signal,
    Meaning and Action; returns the index after the table."""
    header: list[str] = []
    rows: list[tuple[int, list[str]]] = []
    cells: list[str] | None = None
    in_head = False
    while index < len(tokens) and tokens[index].type != "table_close":
        token = tokens[index]
        if token.type == "thead_open":
            in_head = True
        elif token.type == "thead_close":
            in_head = False
        elif token.type == "tr_open":
            cells = []
            line = (token.map[0] + 1) if token.map else 0
        elif token.type == "inline" and cells is not None:
            cells.append(token.content.replace("`", "").strip())
        elif token.type == "tr_close" and cells is not None:
            if in_head:
                header = cells
            else:
                rows.append((line, cells))
            cells = None
        index += 1
    triage.extend(rows_from_table(header, rows) or [])
    return index + 1


def _untagged_command(body: str) -> bool:
    """Whether an untagged fence's first line (past ``#`` comments) reads as a command."""
    for line in body.split("\n"):
        text = line.strip()
        if not text:
            continue
        if text.startswith("# ") and not looks_like_command(text[2:]):
            continue  # a comment; the command may follow
        return looks_like_command(text.removeprefix("# "))
    return False


def meta_end(tokens: list[Token]) -> int:
    if tokens and tokens[0].type == "front_matter" and tokens[0].map:
        return tokens[0].map[1]
    return 0


def _build_steps(
    parse: _Parse,
    blocks: list[_Block],
    manual: list[tuple[int, int, str, str]],
    sections: list[Section],
) -> list[Step]:
    from .steps.command import CommandSpec
    from .steps.manual import ManualSpec

    pending: list[tuple[int, Step]] = []
    for line, section, text, detail in manual:
        manual_spec = ManualSpec(text=text, detail=detail)
        pending.append((line, Step("", "manual", text, line, section, manual_spec, text)))

    shell_set: set[str] = set()  # variables set by the plain blocks so far (one session)
    for block in blocks:
        section_title = sections[block.section].title
        if block.kind == "shell":
            shell = split_block(block.info, block.body)
            if not shell.commands.strip():
                continue
            values = shell_values(shell.commands, shell_set)
            shell_set.update(values.sets)
            fields = _command_attributes(parse, block.line, block.attributes)
            try:
                command = CommandSpec(
                    run=shell.commands,
                    plain=True,
                    mutating=True,
                    expected_output=shell.expected_output,
                    guessed=block.guessed,
                    placeholders=values.placeholders,
                    sets=values.sets,
                    **fields,
                )
            except ValidationError as exc:
                for _, message in _validation_messages(exc):
                    parse.error(block.line, f"fence attribute name: {message.removeprefix('id: ')}")
                continue
            title = command_title(shell.commands)
            step = Step(
                command.id or "", "command", title, block.line, block.section, command,
                shell.commands,
            )
            pending.append((block.line, step))
            continue
        try:
            stype = step_type(block.kind)
        except KeyError:
            known = ", ".join(kinds())
            what = f"unknown step kind {block.kind!r}" if block.kind else "missing step kind"
            parse.error(block.line, f"{what} after 'ops' (known: {known})")
            continue
        kind = stype.kind
        data, node = _load_yaml(parse, block.body, block.line + 1, f"ops {kind} block")
        if data is None and node is None and block.body.strip():
            continue
        if data is None:
            data = {}
        if not isinstance(data, dict):
            parse.error(block.line, f"ops {kind} block: the body must be YAML key: value lines")
            continue
        try:
            spec = stype.spec.model_validate(data)
        except ValidationError as exc:
            for loc, message in _validation_messages(exc):
                offset = _yaml_line(node, loc)
                line = block.line + 1 + offset if offset is not None else block.line
                parse.error(line, f"ops {kind}: {message}")
            continue
        for offset, message in stype.lint(spec, block.body):
            parse.error(block.line + 1 + offset, f"ops {kind}: {message}")
        if spec.watch and (stype.human or stype.is_mutating(spec)):
            parse.error(
                block.line + 1 + _key_offset(block.body, "watch"),
                f"ops {kind}: 'watch: true' is for read-only checks; this step "
                + ("needs a person" if stype.human else "changes something")
                + " and cannot run on the dashboard",
            )
        title = spec.title or stype.default_title(spec, section_title)
        step = Step(spec.id or "", kind, title, block.line, block.section, spec, block.body)
        pending.append((block.line, step))

    pending.sort(key=lambda item: item[0])
    steps = [step for _, step in pending]

    seen: dict[str, int] = {}
    for step in steps:
        if step.id:
            if step.id in seen:
                parse.error(
                    step.line, f"duplicate step id {step.id!r} (first used on line {seen[step.id]})"
                )
            seen.setdefault(step.id, step.line)
    counters: dict[int, int] = {}
    #: next suffix to try per base id, so 20,000 sections titled alike stay linear
    next_suffix: dict[str, int] = {}
    for step in steps:
        counters[step.section] = counters.get(step.section, 0) + 1
        if not step.id:
            base = f"{_slug(sections[step.section].title)}-{counters[step.section]}"
            candidate, n = base, next_suffix.get(base, 2)
            if n > 2:
                candidate = f"{base}-{n}"
            while candidate in seen:
                candidate, n = f"{base}-{n}", n + 1
            next_suffix[base] = n
            step.id = candidate
            seen[candidate] = step.line
        sections[step.section].step_ids.append(step.id)
    return steps


def _key_offset(body: str, key: str) -> int:
    """The 0-based line of a top-level ``key:`` in a block body (0 when not found)."""
    pattern = re.compile(rf"{re.escape(key)}\s*:")
    for offset, text in enumerate(body.splitlines()):
        if pattern.match(text):
            return offset
    return 0


def _check_references(
    parse: _Parse, steps: list[Step], meta: FrontMatter, lines: list[str]
) -> None:
    """Every reference names something known *by then*: steps run top to bottom."""
    variables = set(meta.variables) | BUILTIN_VARIABLES
    secrets = set(meta.secrets)
    later: dict[str, int] = {}
    produced = [step.type.produces(step.spec) for step in steps]
    for step, made in zip(steps, produced, strict=True):
        for name in [*made.variables, *made.secrets]:
            later.setdefault(name, step.line)
    configured = set(meta.variables) | BUILTIN_VARIABLES
    for step, made in zip(steps, produced, strict=True):
        if step.type.checks_references(step.spec):
            _check_step_references(parse, step, variables, secrets, later, made)
            if getattr(step.spec, "watch", False):
                _check_watch_references(parse, step, configured)
        # a step's own values are usable from the next step on (and where its kind says)
        variables.update(made.variables)
        secrets.update(made.secrets)


def _check_watch_references(parse: _Parse, step: Step, configured: set[str]) -> None:
    """A watched check runs outside any run: only the environment's values exist there."""
    for offset, text in enumerate(step.source.splitlines()):
        for name in references(text):
            if not name.startswith("secrets.") and name not in configured:
                parse.error(
                    step.line + 1 + offset,
                    f"'watch: true' check uses {{{{ {name} }}}}, which an earlier step "
                    "captures; a watched check runs outside any run and sees only the "
                    "environment's variables and secrets",
                )


def _check_step_references(
    parse: _Parse,
    step: Step,
    variables: set[str],
    secrets: set[str],
    later: dict[str, int],
    made: Produces,
) -> None:
    own_from = step.type.own_values_visible_from(step.source)
    body_lines = step.source.splitlines()
    for offset, text in enumerate(body_lines):
        for problem in template_problems(text):
            parse.error(step.line + 1 + offset, problem)
        for name in references(text):
            line = step.line + 1 + offset
            own_visible = own_from is not None and offset > own_from
            known_secrets = secrets | (made.secrets if own_visible else set())
            known_variables = (
                variables
                | step.type.block_variables(step.spec)
                | (made.variables if own_visible else set())
            )
            if name.startswith("secrets."):
                if name[8:] in known_secrets:
                    continue
                if name[8:] in later:
                    parse.error(
                        line,
                        f"secret {name[8:]!r} is used before the step that "
                        f"captures it (line {later[name[8:]]})",
                    )
                else:
                    parse.error(
                        line,
                        f"unknown secret {name[8:]!r}: list it under 'secrets' in the front matter",
                    )
            elif "." in name:
                parse.error(line, f"unknown reference {{{{ {name} }}}}")
            elif name not in known_variables:
                if name in later:
                    parse.error(
                        line,
                        f"variable {name!r} is used before the step that "
                        f"captures or asks for it (line {later[name]})",
                    )
                else:
                    parse.error(
                        line,
                        f"unknown variable {name!r}: declare it under 'variables' in the front "
                        "matter, capture it in an earlier step or ask for it with an ops input "
                        "step",
                    )


def load_runbook(path: Path | str) -> Runbook:
    """Load a runbook or raise its first error (every error is in ``.errors``).

    Warnings do not stop a runbook from opening; ``parse_runbook`` returns them.
    """
    runbook, problems = parse_runbook(path)
    errors = [problem for problem in problems if not problem.is_warning]
    if errors or runbook is None:
        first = errors[0]
        first.errors = errors
        raise first
    return runbook


def find_runbooks(
    paths: Iterable[Path | str], skipped: list[RunbookError] | None = None
) -> list[Path]:
    """Markdown files under the given files/folders, sorted, without duplicates.

    In a folder, what is named ``*.md`` but is not a regular file (a folder, a
    FIFO, a broken link) is left out, with a warning appended to ``skipped``.
    A path given by name is always returned: reading it says what is wrong.
    """
    found: dict[Path, None] = {}
    for entry in paths:
        entry = Path(entry).expanduser()
        if entry.is_dir():
            for candidate in sorted(entry.rglob("*.md")):
                if candidate.name.lower() == "readme.md" or any(
                    part.startswith(".") for part in candidate.relative_to(entry).parts
                ):
                    continue
                try:
                    why = _not_regular(candidate.stat().st_mode)
                except OSError as exc:
                    why = f"cannot read it: {exc.strerror or exc}"
                if why is None:
                    found[candidate] = None
                elif skipped is not None:
                    skipped.append(RunbookError(candidate, 1, f"skipped: {why}", "warning"))
        else:
            found[entry] = None
    return list(found)


@dataclass
class LintResult:
    """What ``opsconsole lint`` found: how many runbooks were read, and every problem."""

    runbooks: int = 0
    problems: list[RunbookError] = field(default_factory=list)

    @property
    def errors(self) -> list[RunbookError]:
        return [problem for problem in self.problems if not problem.is_warning]

    @property
    def warnings(self) -> list[RunbookError]:
        return [problem for problem in self.problems if problem.is_warning]


def lint(paths: Iterable[Path | str]) -> LintResult:
    """Parse every runbook under ``paths``; one bad file never stops the others."""
    result = LintResult()
    targets = list(paths)
    for entry in targets:
        if not Path(entry).expanduser().exists():
            result.problems.append(RunbookError(entry, 1, "no such file or folder"))
    skipped: list[RunbookError] = []
    found = find_runbooks((p for p in targets if Path(p).expanduser().exists()), skipped)
    result.problems.extend(skipped)
    for path in found:
        result.runbooks += 1
        result.problems.extend(parse_runbook(path)[1])
    return result


def lint_paths(paths: Iterable[Path | str]) -> list[RunbookError]:
    """Every problem (errors and warnings) in the runbooks under ``paths``."""
    return lint(paths).problems
