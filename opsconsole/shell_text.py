"""Shell text as a person reads it: prompts, expected output, continuations, placeholders.

Pure functions (no I/O, no subprocess) the loader uses to turn a fenced block written
for people into the commands it means. :class:`Placeholder` is the interface the
running half (one shell session per run) reads from ``CommandSpec.placeholders``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["Placeholder"]


@dataclass(frozen=True, slots=True)
class Placeholder:
    """A value the operator must supply before a plain shell block runs.

    ``name`` is the placeholder's name (``namespace``, ``PREVIOUS_SHA``, ``ENV``);
    ``kind`` is ``"angle"`` for ``<namespace>``-style text and ``"variable"`` for a
    shell variable used but never set by an earlier block (``$PREVIOUS_SHA``,
    ``${ENV}``); ``secret`` when the name looks like a credential (TOKEN, SECRET,
    PASSWORD, PASSWD, KEY, CREDENTIAL; case-insensitive): ask for it hidden and redact
    it; ``text`` is the exact text in the command (``<namespace>``, ``$PREVIOUS_SHA``,
    ``${ENV}``), so the runner can pass the value as a shell variable in its place
    rather than pasting the value into the command.
    """

    name: str
    kind: Literal["angle", "variable"]
    secret: bool
    text: str
