"""Text from runbooks and servers, made safe to write to a terminal.

A runbook title, a file name or a response body can carry escape sequences
(``\\x1b]0;…``, ``\\x1b[2J``, ``\\x9b…``) that would retitle, clear or rewrite the
operator's terminal, and bidirectional overrides that make text read differently
from what it is. Before the CLI prints such text, every control character is
replaced by a visible escape (``\\x1b``, ``\\x9b``, ``\\u202e``); printable text,
including any language, is left alone.
"""

from __future__ import annotations

import re

__all__ = ["terminal_safe", "terminal_safe_json"]

# C0 controls except tab and newline, DEL, C1 controls, and the bidirectional
# embeddings, overrides and isolates (U+202A..U+202E, U+2066..U+2069).
_UNSAFE_KEEP_NEWLINES = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_UNSAFE_ONE_LINE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# json.dumps already escapes C0 controls; these are the rest it writes raw.
_UNSAFE_IN_JSON = re.compile("[\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal_safe(text: str, *, one_line: bool = False) -> str:
    """``text`` with control characters shown as ``\\xNN``/``\\uNNNN`` escapes.

    ``one_line`` escapes newlines too, so a value cannot start a line of its own
    (a forged ``path:1: ...`` line in ``lint`` output, say).
    """
    pattern = _UNSAFE_ONE_LINE if one_line else _UNSAFE_KEEP_NEWLINES
    return pattern.sub(_visible, text)


def terminal_safe_json(text: str) -> str:
    """Serialised JSON with the control characters json.dumps keeps raw escaped as ``\\uNNNN``.

    The result is still valid JSON that decodes to the same values.
    """
    return _UNSAFE_IN_JSON.sub(lambda match: f"\\u{ord(match.group()):04x}", text)
