"""A throwaway in-memory keyring for the demo sandbox.

It only ever becomes the keyring through an explicit ``keyring.set_keyring``:
keyring registers every backend subclass for automatic discovery, and a
high-priority empty keyring that won discovery would hide the operator's real
one, so the class takes itself out of that registry.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError

__all__ = ["SandboxKeyring"]


class SandboxKeyring(KeyringBackend):
    """Secrets held in this process's memory only, gone when it exits."""

    priority = 10.0

    def __init__(self, passwords: Mapping[tuple[str, str], str] | None = None) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._passwords: dict[tuple[str, str], str] = dict(passwords or {})
        # Keyring calls run in worker threads (the console keeps them off its UI thread).
        self._lock = threading.Lock()

    def get_password(self, service: str, username: str) -> str | None:
        with self._lock:
            return self._passwords.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        with self._lock:
            self._passwords[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        with self._lock:
            if self._passwords.pop((service, username), None) is None:
                raise PasswordDeleteError(f"no sandbox secret {username!r} for {service!r}")


# KeyringBackendMeta adds every concrete subclass to the shared discovery registry.
KeyringBackend._classes.discard(SandboxKeyring)
