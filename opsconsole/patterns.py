"""Regular expressions on data, with a time bound (interim)."""

from __future__ import annotations

import regex

__all__ = ["fullmatch", "search"]

TIMEOUT = 1.0


def search(pattern: str, text: str, timeout: float = TIMEOUT) -> regex.Match[str] | None:
    return regex.search(pattern, text, timeout=timeout)


def fullmatch(pattern: str, text: str, timeout: float = TIMEOUT) -> regex.Match[str] | None:
    return regex.fullmatch(pattern, text, timeout=timeout)
