"""Markdown runbook loader and linter.

A runbook is CommonMark parsed with markdown-it-py: YAML front matter,
headings become sections, task-list items become manual checks, ``ops <kind>``
fences become typed steps (YAML bodies validated by :mod:`opsconsole.model`),
plain shell fences become runnable commands, everything else is prose.

Every problem is a :class:`~opsconsole.errors.RunbookError` located to a line;
the loader collects all of them so ``opsconsole lint`` reports a file at once.
"""

from __future__ import annotations

import hashlib
import re
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

from .errors import RunbookError
from .model import Runbook, Section, Step
from .steps import kinds, step_type
from .steps.base import Produces
from .template import references, template_problems

__all__ = ["find_runbooks", "lint_paths", "load_runbook", "parse_runbook"]

SHELL_LANGUAGES = frozenset({"bash", "sh", "shell", "console", "zsh"})
BUILTIN_VARIABLES = frozenset({"run_id", "environment"})
_TASK = re.compile(r"^\[( |x|X)\]\s+")
_NESTED_TASK = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+\[( |x|X)\]\s")


class FrontMatter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = None
    title: str | None = None
    service: str = ""
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    #: name -> description; a plain list of names is accepted too
    variables: dict[str, str] = Field(default_factory=dict)
    secrets: list[str] = Field(default_factory=list)

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

    @field_validator("tags", "secrets", mode="before")
    @classmethod
    def _lists(cls, value: Any) -> Any:
        if value is None:
            return []
        if isinstance(value, str):
            return [value]
        return value


@dataclass
class _Block:
    """An ``ops`` block or shell block waiting to become a step."""

    kind: str
    line: int  # 1-based line of the opening fence
    body: str
    section: int
    info: str


@dataclass
class _Parse:
    path: Path
    errors: list[RunbookError] = field(default_factory=list)

    def error(self, line: int, message: str) -> None:
        self.errors.append(RunbookError(self.path, line, message))


def _markdown() -> MarkdownIt:
    return MarkdownIt("commonmark").use(front_matter_plugin).enable("table")


def _slug(text: str) -> str:
    import unicodedata

    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:40].strip("-") or "step"


def _inline_text(token: Token) -> str:
    parts = [
        child.content
        for child in token.children or []
        if child.type in {"text", "code_inline", "softbreak"}
    ]
    text = "".join(part if part else " " for part in parts)
    return " ".join(text.split())


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


def _validation_messages(exc: ValidationError) -> Iterator[tuple[tuple[Any, ...], str]]:
    seen: set[tuple[Any, ...]] = set()
    for error in exc.errors(include_url=False):
        # union members add type tags to the location; one mistake is one message
        loc = tuple(part for part in error["loc"] if not _TYPE_TAG.match(str(part)))
        if loc in seen:
            continue
        seen.add(loc)
        where = ".".join(str(part) for part in loc)
        message = " ".join(str(error["msg"]).removeprefix("Value error, ").split())
        if (
            error["type"].startswith(("literal_error", "int_", "list_type"))
            and len([e for e in exc.errors(include_url=False) if e["loc"][: len(loc)] == loc]) > 1
        ):
            message = "expected " + _expected_forms(exc, loc)
        if error["type"] == "extra_forbidden":
            message = f"unknown field {where!r}"
        elif error["type"] == "missing":
            message = f"missing required field {where!r}"
        elif where:
            message = f"{where}: {message}"
        yield loc, message


def _expected_forms(exc: ValidationError, loc: tuple[Any, ...]) -> str:
    forms = []
    for error in exc.errors(include_url=False):
        if tuple(p for p in error["loc"] if not _TYPE_TAG.match(str(p))) == loc:
            text = str(error["msg"]).removeprefix("Input should be ")
            forms.append(" ".join(text.split()))
    return " or ".join(dict.fromkeys(forms))


def _load_yaml(parse: _Parse, text: str, first_line: int, what: str) -> tuple[Any, Any]:
    """Parse YAML; returns (data, composed node) or reports the error."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        if exc.context_mark is not None and "<stream end>" in problem:
            # "got <stream end>" points past the block; where the construct opened is useful
            mark = exc.context_mark
            problem = f"{exc.context} that is never closed ({problem})"
        last = max(len(text.rstrip("\n").splitlines()) - 1, 0)
        line = first_line + min(mark.line if mark else 0, last)
        parse.error(line, f"{what}: invalid YAML: {problem}")
        return None, None
    except yaml.YAMLError as exc:
        parse.error(first_line, f"{what}: invalid YAML: {exc}")
        return None, None
    return data, node


def _shell_commands(info: str, body: str) -> str:
    if info.split()[0] == "console":
        lines: list[str] = []
        for line in body.splitlines():
            if line.startswith("$ "):
                lines.append(line[2:])
            elif line.startswith("> ") and lines and lines[-1].rstrip().endswith("\\"):
                lines.append(line[2:])  # continuation of the command above
        return "\n".join(lines)
    return body.rstrip("\n")


def parse_runbook(
    path: Path | str, text: str | None = None
) -> tuple[Runbook | None, list[RunbookError]]:
    """Parse a runbook; returns the runbook (None if unusable) and every error found."""
    path = Path(path)
    parse = _Parse(path)
    if text is None:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            parse.error(1, f"cannot read runbook: {exc.strerror or exc}")
            return None, parse.errors
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            parse.error(line, "not UTF-8 text")
            return None, parse.errors
    else:
        raw = text.encode()

    lines = text.splitlines()
    tokens = _markdown().parse(text)
    meta = FrontMatter()

    if lines and lines[0].strip() == "---" and not (tokens and tokens[0].type == "front_matter"):
        parse.error(1, "front matter opened with '---' is never closed with a '---' line")
    elif tokens and tokens[0].type == "front_matter":
        data, node = _load_yaml(parse, tokens[0].content, 2, "front matter")
        if data is not None and not isinstance(data, dict):
            parse.error(2, "front matter must be a YAML mapping (key: value lines)")
        elif isinstance(data, dict):
            try:
                meta = FrontMatter.model_validate(data)
            except ValidationError as exc:
                bad_keys = set()
                for loc, message in _validation_messages(exc):
                    line = _yaml_line(node, loc)
                    parse.error(2 + (line or 0), f"front matter: {message}")
                    if loc:
                        bad_keys.add(loc[0])
                # keep what is valid, so one bad key does not make every variable "unknown"
                salvage = {k: v for k, v in data.items() if k not in bad_keys}
                try:
                    meta = FrontMatter.model_validate(salvage)
                except ValidationError:
                    meta = FrontMatter()

    sections: list[Section] = []
    blocks: list[_Block] = []
    manual: list[tuple[int, int, str, str]] = []  # (line, section, text, detail)
    title_from_h1: str | None = None
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
            title = _inline_text(inline) or inline.content
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
            if words and words[0] == "ops":
                kind = words[1] if len(words) > 1 else ""
                blocks.append(_Block(kind, line, token.content, current_section(line), info))
                excluded.append((token.map[0], token.map[1]))
            elif words and words[0].lower() in SHELL_LANGUAGES and token.content.strip():
                blocks.append(_Block("shell", line, token.content, current_section(line), info))
        elif token.type == "inline" and token.map and tokens[index - 1].type == "paragraph_open":
            opener = tokens[index - 2] if index >= 2 else None
            match = _TASK.match(token.content)
            if opener is not None and opener.type == "list_item_open" and match:
                item_map = opener.map or token.map
                text = _inline_text(token)
                text = _TASK.sub("", text)
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
    hidden = set()
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
    )
    parse.errors.sort(key=lambda error: error.line)
    return runbook, parse.errors


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
    from .steps.command import CommandSpec, shell_title
    from .steps.manual import ManualSpec

    pending: list[tuple[int, Step]] = []
    for line, section, text, detail in manual:
        manual_spec = ManualSpec(text=text, detail=detail)
        pending.append((line, Step("", "manual", text, line, section, manual_spec, text)))

    for block in blocks:
        section_title = sections[block.section].title
        if block.kind == "shell":
            run = _shell_commands(block.info, block.body)
            if not run.strip():
                continue
            command = CommandSpec(run=run, plain=True, mutating=True)
            step = Step("", "command", shell_title(run), block.line, block.section, command, run)
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
    for step in steps:
        counters[step.section] = counters.get(step.section, 0) + 1
        if not step.id:
            base = f"{_slug(sections[step.section].title)}-{counters[step.section]}"
            candidate, n = base, 2
            while candidate in seen:
                candidate, n = f"{base}-{n}", n + 1
            step.id = candidate
            seen[candidate] = step.line
        sections[step.section].step_ids.append(step.id)
    return steps


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
    for step, made in zip(steps, produced, strict=True):
        if step.type.checks_references(step.spec):
            _check_step_references(parse, step, variables, secrets, later, made)
        # a step's own values are usable from the next step on (and where its kind says)
        variables.update(made.variables)
        secrets.update(made.secrets)


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
            known_variables = variables | (made.variables if own_visible else set())
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
    """Load a runbook or raise the first :class:`RunbookError` (all are in ``.errors``)."""
    runbook, errors = parse_runbook(path)
    if errors or runbook is None:
        first = errors[0]
        first.errors = errors  # type: ignore[attr-defined]
        raise first
    return runbook


def find_runbooks(paths: Iterable[Path | str]) -> list[Path]:
    """Markdown files under the given files/folders, sorted, without duplicates."""
    found: dict[Path, None] = {}
    for entry in paths:
        entry = Path(entry).expanduser()
        if entry.is_dir():
            for candidate in sorted(entry.rglob("*.md")):
                if candidate.name.lower() != "readme.md" and not any(
                    part.startswith(".") for part in candidate.relative_to(entry).parts
                ):
                    found[candidate] = None
        else:
            found[entry] = None
    return list(found)


def lint_paths(paths: Iterable[Path | str]) -> list[RunbookError]:
    errors: list[RunbookError] = []
    targets = list(paths)
    for entry in targets:
        if not Path(entry).expanduser().exists():
            errors.append(RunbookError(entry, 1, "no such file or folder"))
    for path in find_runbooks(p for p in targets if Path(p).expanduser().exists()):
        errors.extend(parse_runbook(path)[1])
    return errors
