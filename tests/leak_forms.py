"""The forms a secret leaks in, and a check that none of them is anywhere in some output.

Written independently of ``opsconsole.secrets`` on purpose: it is the oracle the
redactor is tested against, so it must not share the redactor's code.

    from tests.leak_forms import assert_no_leak, encoded_forms
    secret = secrets.token_urlsafe(24) + "/+é"          # exercises every encoding
    server_returns(" ".join(encoded_forms(secret)))     # seed every form
    ...
    assert_no_leak(home, secret)                         # a directory, a file, str or bytes

Counted, for the secret: the raw value; its URL-encoded forms (``quote`` with
``safe=''`` and ``safe='/'``, ``quote_plus``, upper- and lower-case ``%xx``);
JSON-escaped (with and without ``\\/``, ASCII-only or not); hex (both cases);
base64 (standard and URL-safe, padded or not) and the stable middle of its
base64 inside a longer string at each of the three byte alignments (HTTP Basic
``user:secret``); the first 8 characters of every one of these forms; and every
8-character window of the raw secret. Messages name the form and the place,
never the secret.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from urllib.parse import quote, quote_plus

__all__ = ["WINDOW", "assert_no_leak", "encoded_forms", "leak_needles"]

WINDOW = 8


def _lower_escapes(text: str) -> str:
    return re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), text)


def _named_forms(secret: str) -> dict[str, str]:
    data = secret.encode("utf-8")
    forms: dict[str, str] = {"raw": secret}
    for label, encoded in (
        ("url quote safe=''", quote(secret, safe="")),
        ("url quote safe='/'", quote(secret, safe="/")),
        ("url quote_plus", quote_plus(secret)),
    ):
        forms[label] = encoded
        forms[label + " lower-case %xx"] = _lower_escapes(encoded)
    for ascii_only in (True, False):
        escaped = json.dumps(secret, ensure_ascii=ascii_only)[1:-1]
        label = "json" + ("" if ascii_only else " (not ascii-only)")
        forms[label] = escaped
        forms[label + r" with \/"] = escaped.replace("/", "\\/")
    forms["hex"] = data.hex()
    forms["HEX"] = data.hex().upper()
    for label, encode in (
        ("base64", base64.b64encode),
        ("base64 url-safe", base64.urlsafe_b64encode),
    ):
        full = encode(data).decode()
        forms[label] = full
        forms[label + " unpadded"] = full.rstrip("=")
        for before in range(3):
            # the characters of base64(b"x" * before + secret + ...) fixed by the secret alone
            encoded = encode(b"x" * before + data + b"yy").decode()
            first = -(-8 * before // 6)
            last = 8 * (before + len(data)) // 6
            forms[f"{label} inside a longer string (alignment {before})"] = encoded[first:last]
    return forms


def encoded_forms(secret: str) -> list[str]:
    """Every full form of ``secret`` (raw first), without duplicates."""
    return list(dict.fromkeys(_named_forms(secret).values()))


def leak_needles(secret: str) -> dict[str, str]:
    """needle -> what it is: any of these in output is a leak."""
    needles: dict[str, str] = {}
    for label, form in _named_forms(secret).items():
        needles.setdefault(form, f"the secret's {label} form")
        if len(form) > WINDOW:
            needles.setdefault(form[:WINDOW], f"the first {WINDOW} characters of its {label} form")
    for start in range(1, len(secret) - WINDOW + 1):
        needles.setdefault(
            secret[start : start + WINDOW], f"{WINDOW} characters of the secret from offset {start}"
        )
    return needles


def _sources(target: str | bytes | Path) -> list[tuple[str, bytes]]:
    if isinstance(target, bytes):
        return [("the output", target)]
    if isinstance(target, str):
        return [("the output", target.encode("utf-8", errors="surrogatepass"))]
    if target.is_dir():
        return [
            (str(path), path.read_bytes()) for path in sorted(target.rglob("*")) if path.is_file()
        ]
    return [(str(target), target.read_bytes())]


def assert_no_leak(target: str | bytes | Path, secret: str) -> None:
    """Fail (naming form and place, never the value) if any form of ``secret`` is in ``target``.

    ``target``: text, bytes, a file, or a directory (every file under it).
    """
    needles = {
        needle.encode("utf-8", errors="surrogatepass"): what
        for needle, what in leak_needles(secret).items()
    }
    found = []
    for where, data in _sources(target):
        for needle, what in needles.items():
            at = data.find(needle)
            if at >= 0:
                found.append(f"{what} in {where} at byte {at} ({data.count(needle)} times)")
    assert not found, "secret leaked: " + "; ".join(found[:10])
