"""``{{ name }}`` interpolation of run variables and ``{{ secrets.name }}`` secrets."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from .errors import TemplateError

__all__ = ["REFERENCE", "references", "render", "render_value"]

REFERENCE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?)\s*\}\}")


def references(text: str) -> Iterator[str]:
    """Names referenced in ``text``: ``base_url`` or ``secrets.ops_key``."""
    for match in REFERENCE.finditer(text):
        yield match.group(1)


def render(
    text: str,
    variables: Mapping[str, str],
    secret: Callable[[str], str] | None = None,
    *,
    context: str = "text",
) -> str:
    """Replace every reference; an unknown name raises :class:`TemplateError`."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("secrets."):
            if secret is None:
                raise TemplateError(f"secret {name[8:]!r} is not available here")
            return secret(name[8:])
        if "." in name:
            raise TemplateError(f"unknown reference {{{{ {name} }}}}")
        if name not in variables:
            raise TemplateError(f"variable {name!r} has no value in this run")
        return str(variables[name])

    return REFERENCE.sub(replace, text)


def render_value(
    value: Any,
    variables: Mapping[str, str],
    secret: Callable[[str], str] | None = None,
) -> Any:
    """Render every string inside nested dicts/lists (keys included)."""
    if isinstance(value, str):
        return render(value, variables, secret)
    if isinstance(value, dict):
        return {
            render_value(k, variables, secret): render_value(v, variables, secret)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [render_value(item, variables, secret) for item in value]
    return value
