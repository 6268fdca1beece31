"""Secrets and the one redactor every output path goes through.

Secret values come from ``$OPSCONSOLE_SECRET_<NAME>`` (for CI) or the OS
keyring (service ``opsconsole:<environment>``, username = secret name). Keyring
calls run in a thread with a timeout so a locked keyring cannot freeze the
console. Every value read or produced during a run (captured tokens, secret
inputs) is registered with :class:`Redactor`; screen, logs, audit, evidence
and saved run state all pass through :meth:`Redactor.redact`.
"""

from __future__ import annotations

import asyncio
import os
import threading
import weakref
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

from .errors import SecretUnavailable

__all__ = ["MASK", "Redactor", "Secret", "SecretStore", "redact_everywhere"]

MASK = "***"
#: shorter values would mask ordinary words; such secrets are refused at registration
MIN_SECRET_LENGTH = 4


class Secret:
    """A secret value whose ``repr``/``str`` never show it."""

    __slots__ = ("_value", "name")

    def __init__(self, name: str, value: str) -> None:
        self.name = name
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({self.name!r}, {MASK})"

    __str__ = __repr__

    def __reduce__(self) -> Any:  # never pickle a secret into a file
        raise TypeError("secrets cannot be serialised")


_LIVE_REDACTORS: weakref.WeakSet[Redactor] = weakref.WeakSet()


def redact_everywhere(text: str) -> str:
    """Redact with every live redactor: for last-resort paths such as the crash log."""
    for redactor in list(_LIVE_REDACTORS):
        text = redactor.redact(text)
    return text


class Redactor:
    """Replaces every registered secret value (and its URL-encoded forms) with ``***``."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._ordered: list[str] = []
        self._lock = threading.Lock()
        _LIVE_REDACTORS.add(self)

    def register(self, value: str) -> None:
        if not value:
            return
        if len(value) < MIN_SECRET_LENGTH:
            raise SecretUnavailable(
                f"a secret value shorter than {MIN_SECRET_LENGTH} characters cannot be "
                "redacted reliably; refusing to use it"
            )
        with self._lock:
            for form in {value, quote(value, safe=""), quote_plus(value)}:
                self._values.add(form)
            self._ordered = sorted(self._values, key=len, reverse=True)

    def register_all(self, values: Iterable[str]) -> None:
        for value in values:
            self.register(value)

    def redact(self, text: str) -> str:
        for value in self._ordered:
            if value in text:
                text = text.replace(value, MASK)
        return text

    def redact_obj(self, obj: Any) -> Any:
        if isinstance(obj, str):
            return self.redact(obj)
        if isinstance(obj, dict):
            return {self.redact_obj(k): self.redact_obj(v) for k, v in obj.items()}
        if isinstance(obj, list | tuple):
            return [self.redact_obj(item) for item in obj]
        if isinstance(obj, Secret):
            return MASK
        return obj

    def contains_secret(self, text: str) -> bool:
        return any(value in text for value in self._ordered)


def env_var_name(name: str) -> str:
    return "OPSCONSOLE_SECRET_" + "".join(ch if ch.isalnum() else "_" for ch in name).upper()


class SecretStore:
    """Reads an environment's secrets; caches them for the run and registers them."""

    def __init__(self, environment: str, redactor: Redactor, *, timeout: float = 5.0) -> None:
        self.environment = environment
        self.redactor = redactor
        self.timeout = timeout
        self._cache: dict[str, Secret] = {}

    def put(self, name: str, value: str) -> Secret:
        """Keep a secret produced during the run (a captured token, a secret input)."""
        self.redactor.register(value)
        secret = Secret(name, value)
        self._cache[name] = secret
        return secret

    def cached(self, name: str) -> Secret | None:
        return self._cache.get(name)

    async def get(self, name: str) -> Secret:
        if name in self._cache:
            return self._cache[name]
        value = os.environ.get(env_var_name(name))
        if not value:
            value = await self._from_keyring(name)
        if not value:
            raise SecretUnavailable(
                f"secret {name!r} for environment {self.environment!r} not found: store it "
                f"with `keyring set opsconsole:{self.environment} {name}` or set "
                f"${env_var_name(name)}"
            )
        return self.put(name, value)

    async def _from_keyring(self, name: str) -> str | None:
        def read() -> str | None:
            import keyring
            from keyring.errors import KeyringError

            try:
                return keyring.get_password(f"opsconsole:{self.environment}", name)
            except KeyringError:
                return None
            except Exception:  # noqa: BLE001 - a broken backend is "not found", never a crash
                return None

        try:
            return await asyncio.wait_for(asyncio.to_thread(read), self.timeout)
        except TimeoutError:
            raise SecretUnavailable(
                f"keyring did not answer within {self.timeout:g}s while reading {name!r} "
                "(is the keyring locked?)"
            ) from None

    async def load(self, names: Iterable[str]) -> list[str]:
        """Read several secrets; returns the problems (empty when all were found)."""
        problems = []
        for name in names:
            try:
                await self.get(name)
            except SecretUnavailable as exc:
                problems.append(str(exc))
        return problems
