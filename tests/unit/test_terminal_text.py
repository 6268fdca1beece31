"""Text from runbooks and servers never reaches the terminal as control sequences."""

from __future__ import annotations

import json

import pytest

from opsconsole.terminal_text import terminal_safe, terminal_safe_json

HOSTILE = (
    "title\x1b]0;retitled\x07 \x1b[2J\x1b[1A\x1b[2Kfake line \x9b31m c1 \x7f del "
    "\u202eevil\u202c \u2066iso\u2069 \r overwrite \x00 nul \x08 bs"
)


def test_every_control_character_becomes_a_visible_escape() -> None:
    safe = terminal_safe(HOSTILE)
    assert all(ord(char) >= 0x20 or char in "\n\t" for char in safe)
    assert not any(0x7F <= ord(char) <= 0x9F for char in safe)
    assert "\u202e" not in safe and "\u2066" not in safe
    assert "\\x1b]0;retitled\\x07" in safe
    assert "\\x9b31m" in safe and "\\u202eevil\\u202c" in safe and "\\x0d overwrite" in safe


@pytest.mark.parametrize(
    "text", ["plain words", "Grüße, 日本語, emoji 🚀, arrows → ✓ ✗ ↷", "tab\tand\nnewline"]
)
def test_printable_text_is_left_alone(text: str) -> None:
    assert terminal_safe(text) == text


def test_one_line_also_escapes_line_breaks() -> None:
    forged = "real message\nrunbooks/x.md:1: forged error\rover"
    assert terminal_safe(forged, one_line=True) == (
        "real message\\x0arunbooks/x.md:1: forged error\\x0dover"
    )
    assert terminal_safe("a\tb", one_line=True) == "a\tb"


def test_json_stays_valid_and_decodes_to_the_same_values() -> None:
    value = {"title": HOSTILE, "plain": "Grüße ✓"}
    dumped = json.dumps(value, ensure_ascii=False)
    safe = terminal_safe_json(dumped)
    assert json.loads(safe) == value
    assert not any(
        ord(char) < 0x20 or 0x7F <= ord(char) <= 0x9F or char in "\u202e\u2066\u2069"
        for char in safe
    )
    assert "Grüße ✓" in safe
