"""Secrets never show: one redactor on every path; keyring calls cannot hang the console."""

from __future__ import annotations

import asyncio
import secrets as random
import threading

import keyring
import pytest
from jaraco.classes import properties
from keyring.backend import KeyringBackend
from keyring.errors import PasswordSetError

from opsconsole.errors import SecretUnavailable
from opsconsole.secrets import Redactor, Secret, SecretStore, redact_everywhere


def test_secret_repr_and_str_hide_the_value() -> None:
    value = random.token_urlsafe(16)
    secret = Secret("ops_key", value)
    assert value not in repr(secret) and value not in str(secret) and value not in f"{secret}"
    assert secret.reveal() == value
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(secret)


def test_redactor_masks_raw_and_url_encoded_forms() -> None:
    value = "a/b+c " + random.token_urlsafe(8)
    redactor = Redactor()
    redactor.register(value)
    from urllib.parse import quote, quote_plus

    text = f"raw={value} q={quote(value, safe='')} qp={quote_plus(value)}"
    assert redactor.redact(text) == "raw=*** q=*** qp=***"
    assert redactor.redact_obj({"h": [value], value: 1}) == {"h": ["***"], "***": 1}
    assert value not in redact_everywhere(text)


def test_too_short_secret_is_refused() -> None:
    with pytest.raises(SecretUnavailable):
        Redactor().register("abc")


async def test_environment_variable_wins_and_is_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    value = random.token_urlsafe(12)
    monkeypatch.setenv("OPSCONSOLE_SECRET_OPS_KEY", value)
    redactor = Redactor()
    store = SecretStore("staging", redactor)
    secret = await store.get("ops_key")
    assert secret.reveal() == value
    assert redactor.redact(f"key {value}") == "key ***"


async def test_missing_secret_says_how_to_store_it() -> None:
    store = SecretStore("staging", Redactor())
    with pytest.raises(SecretUnavailable, match="keyring set opsconsole:staging nope"):
        await store.get("nope")


class _HangingKeyring(KeyringBackend):
    # Every backend subclass joins keyring's auto-discovery; a priority that raises keeps
    # this test double from ever being chosen by anything but set_keyring below.
    @properties.classproperty
    def priority(cls) -> float:  # type: ignore[override]
        raise RuntimeError("test double: never auto-selected")

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def get_password(self, service: str, username: str) -> str | None:
        self.release.wait(5)
        return None

    def set_password(self, service: str, username: str, password: str) -> None:
        raise PasswordSetError("read-only test backend")

    def delete_password(self, service: str, username: str) -> None:
        raise PasswordSetError("read-only test backend")


async def test_locked_keyring_times_out_instead_of_hanging() -> None:
    previous = keyring.get_keyring()
    backend = _HangingKeyring()
    keyring.set_keyring(backend)
    try:
        store = SecretStore("prod", Redactor(), timeout=0.2)
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(SecretUnavailable, match="did not answer within 0.2s"):
            await store.get("ops_key")
        assert loop.time() - started < 2
    finally:
        backend.release.set()
        keyring.set_keyring(previous)
