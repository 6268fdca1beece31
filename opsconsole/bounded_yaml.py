"""YAML from runbooks, read with bounds: no input can exhaust time, memory or the stack.

PyYAML's ``safe_load`` builds whatever a document describes. From a runbook that
is attacker-shaped text, so :class:`BoundedYamlLoader` refuses, as
:class:`YamlRefused` located to a line (never an exception the caller did not
expect):

- more than :data:`MAX_ALIASES` aliases, or more than :data:`MAX_NODES` values
  once aliases are expanded (an alias bomb is a few hundred bytes on disk and
  gigabytes in memory), and an alias inside the value it refers to;
- nesting deeper than :data:`MAX_DEPTH` (the composer recurses; flow collections
  also make PyYAML's own scanner quadratic);
- integers of more than :data:`MAX_INT_DIGITS` digits (Python refuses to build
  one of 4,300 digits with ``ValueError``);
- duplicate mapping keys (YAML says keys are unique; PyYAML keeps the last one
  silently);
- a scalar its tag cannot build (``2001-02-30`` as a date raises ``ValueError``).

Events come from libyaml when PyYAML was built with it (10x faster than the pure
Python parser, which is the fallback); composing and constructing stay in Python
so every bound above applies either way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

__all__ = [
    "MAX_ALIASES",
    "MAX_DEPTH",
    "MAX_INT_DIGITS",
    "MAX_NODES",
    "BoundedYamlLoader",
    "PurePythonYamlLoader",
    "YamlRefused",
    "load_bounded",
]

MAX_DEPTH = 100
MAX_ALIASES = 100
#: values of a document once its aliases are expanded
MAX_NODES = 50_000
MAX_INT_DIGITS = 100


class YamlRefused(Exception):
    """A document the loader will not build; ``line`` is 0-based within the document."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


class _PythonParser(Reader, Scanner, Parser):
    """PyYAML's pure-Python events, for installs without libyaml."""

    def __init__(self, stream: str) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)

    def fetch_flow_collection_start(self, TokenClass: Any) -> None:
        # Each open '[' or '{' is a possible simple key the scanner re-checks on every
        # token; refuse deep flow nesting while scanning, before that turns quadratic.
        super().fetch_flow_collection_start(TokenClass)
        if self.flow_level > MAX_DEPTH:
            raise YamlRefused(self.line, f"YAML nested more than {MAX_DEPTH} levels deep")


class _Bounds(Composer, SafeConstructor, Resolver):
    """Composing and constructing with the bounds; events come from the parser mixed in."""

    def __init__(self, first_line: int) -> None:
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)
        #: line number of the document's first line in its file, for "first on line N"
        self.first_line = first_line
        self._depth = 0
        self._aliases = 0
        self._expanded = 0
        self._expanded_size: dict[int, int] = {}

    if TYPE_CHECKING:  # provided by the parser this is mixed with

        def check_event(self, *choices: Any) -> bool: ...
        def peek_event(self) -> Any: ...
        def dispose(self) -> None: ...

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise YamlRefused(
                    event.start_mark.line,
                    f"more than {MAX_ALIASES} YAML aliases (*name); write the values out",
                )
            target = self.anchors.get(event.anchor)
            if target is not None:
                size = self._expanded_size.get(id(target))
                if size is None:
                    raise YamlRefused(
                        event.start_mark.line,
                        f"the YAML alias *{event.anchor} is inside the value it refers to",
                    )
                self._count(size, event.start_mark.line)
            return Composer.compose_node(self, parent, index)
        start = self.peek_event().start_mark.line
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise YamlRefused(start, f"YAML nested more than {MAX_DEPTH} levels deep")
        before = self._expanded
        self._count(1, start)
        try:
            node = Composer.compose_node(self, parent, index)
        finally:
            self._depth -= 1
        self._expanded_size[id(node)] = self._expanded - before
        return node

    def _count(self, nodes: int, line: int) -> None:
        self._expanded += nodes
        if self._expanded > MAX_NODES:
            raise YamlRefused(
                line,
                f"YAML expands to more than {MAX_NODES:,} values (an alias bomb?); "
                "write the values out",
            )

    def compose_mapping_node(self, anchor: Any) -> yaml.MappingNode:
        node: yaml.MappingNode = Composer.compose_mapping_node(self, anchor)
        first: dict[tuple[str, str], int] = {}
        for key, _ in node.value:
            if not isinstance(key, yaml.ScalarNode) or key.tag == "tag:yaml.org,2002:merge":
                continue
            ident = (key.tag, key.value)
            if ident in first:
                raise YamlRefused(
                    key.start_mark.line,
                    f"duplicate key {key.value!r} (first on line {self.first_line + first[ident]});"
                    " keep one",
                )
            first[ident] = key.start_mark.line
        return node

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError, TypeError) as exc:
            if isinstance(exc, yaml.YAMLError):
                raise
            value = node.value if isinstance(node, yaml.ScalarNode) else ""
            kind = str(node.tag).rsplit(":", 1)[-1]
            raise YamlRefused(
                node.start_mark.line,
                f"cannot read {value[:40]!r} as a {kind} ({exc}); quote it to keep it as text",
            ) from None

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        if len(node.value) > MAX_INT_DIGITS:
            raise YamlRefused(
                node.start_mark.line,
                f"a number of {len(node.value):,} characters; numbers have at most "
                f"{MAX_INT_DIGITS} digits (quote it to keep it as text)",
            )
        return super().construct_yaml_int(node)  # type: ignore[no-any-return]


_Bounds.add_constructor("tag:yaml.org,2002:int", _Bounds.construct_yaml_int)  # type: ignore[type-var]


class PurePythonYamlLoader(_Bounds, _PythonParser):
    """The bounded loader on PyYAML's pure-Python parser."""

    def __init__(self, stream: str, first_line: int = 1) -> None:
        _PythonParser.__init__(self, stream)
        _Bounds.__init__(self, first_line)


#: the loader ``load_bounded`` uses: libyaml's events when PyYAML has them
BoundedYamlLoader: Callable[[str, int], _Bounds] = PurePythonYamlLoader
if getattr(yaml, "__with_libyaml__", False):
    from yaml._yaml import CParser

    class LibyamlYamlLoader(_Bounds, CParser):  # type: ignore[misc]
        """The bounded loader on libyaml's events (Composer's methods win over CParser's)."""

        def __init__(self, stream: str, first_line: int = 1) -> None:
            CParser.__init__(self, stream)
            _Bounds.__init__(self, first_line)

    BoundedYamlLoader = LibyamlYamlLoader


def load_bounded(
    text: str, first_line: int = 1, loader: Callable[[str, int], _Bounds] | None = None
) -> tuple[Any, yaml.Node | None]:
    """``(data, composed node)`` of one YAML document; (None, None) when it is empty.

    Raises :class:`YamlRefused` or :class:`yaml.YAMLError`, nothing else.
    """
    reader = (loader or BoundedYamlLoader)(text, first_line)
    try:
        node = reader.get_single_node()
        return (reader.construct_document(node) if node is not None else None), node
    finally:
        reader.dispose()
