"""Secrets never show: one redactor on every path; keyring calls cannot hang the console."""

from __future__ import annotations

import asyncio
import base64
import os
import random as rand
import secrets as random
import string
import subprocess
import sys
import threading
from pathlib import Path

import keyring
import pytest
from jaraco.classes import properties
from keyring.backend import KeyringBackend
from keyring.errors import PasswordSetError

from opsconsole.config import Environment, load_config
from opsconsole.errors import ConfigError, SecretUnavailable
from opsconsole.secrets import (
    Redactor,
    Secret,
    SecretPolicy,
    SecretStore,
    redact_everywhere,
    undeclared_secrets,
)
from tests.conftest import REPO
from tests.leak_forms import assert_no_leak, encoded_forms


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
    from keyring.backends import null

    previous = keyring.get_keyring()
    keyring.set_keyring(null.Keyring())  # a backend that works and has no such entry
    try:
        store = SecretStore("staging", Redactor())
        with pytest.raises(SecretUnavailable, match="keyring set opsconsole:staging nope"):
            await store.get("nope")
    finally:
        keyring.set_keyring(previous)


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


# -- redaction covers what leaks in practice ----------------------------------------------


#: a secret that every encoding changes: '/', '+', '"', a space and a non-ASCII letter
def awkward_secret() -> str:
    return random.token_urlsafe(18) + '/+" é' + random.token_urlsafe(6)


def test_every_encoded_form_is_masked() -> None:
    value = awkward_secret()
    redactor = Redactor()
    redactor.register(value)
    text = "\n".join(f"form {i}: <{form}>" for i, form in enumerate(encoded_forms(value)))
    redacted = redactor.redact(text)
    assert_no_leak(redacted, value)
    assert redacted.count("***") == len(encoded_forms(value))


@pytest.mark.parametrize("user", ["u", "us", "usr", "operator"])
def test_secret_inside_http_basic_auth_is_masked_at_every_alignment(user: str) -> None:
    value = random.token_urlsafe(24)
    redactor = Redactor()
    redactor.register(value)
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        for credentials in (f"{user}:{value}", f"{user}:{value}:trailing-data"):
            header = "Authorization: Basic " + encode(credentials.encode()).decode()
            assert_no_leak(redactor.redact(header), value)


def test_text_cut_by_someone_else_never_keeps_eight_characters() -> None:
    value = awkward_secret()
    redactor = Redactor()
    redactor.register(value)
    for form in encoded_forms(value):
        for cut in range(8, len(form)):
            assert_no_leak(redactor.redact(f"token={form[:cut]}… (truncated)"), value)
    for start in range(1, len(value) - 8):  # a cut that kept the end
        assert_no_leak(redactor.redact(f"…{value[start:]}"), value)


LONG_VALUE_SCRIPT = """
import resource, secrets, sys
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
from opsconsole.secrets import Redactor
value = secrets.token_urlsafe(12_000)  # 16,000 characters: a 16 KB pasted URL's code
redactor = Redactor()
redactor.register(value)
text = f"a {value[5000:]} b {value[:9000]} c"
sys.stdout.write(redactor.redact(text))
"""


def test_a_16_kb_secret_is_registered_within_a_gigabyte_and_its_cuts_are_masked() -> None:
    """Masking every ending must not cost the square of the length: a pasted 16 KB URL
    (its code) is registered the moment it arrives. Run under a 1 GiB address-space limit."""
    done = subprocess.run(
        [sys.executable, "-c", LONG_VALUE_SCRIPT], capture_output=True, text=True,
        timeout=120, cwd=REPO,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout == "a *** b *** c"


def test_short_secret_is_masked_whole_and_its_longer_encodings_by_prefix() -> None:
    value = "k7Q" + rand.choice("xyz") + "z9"  # 6 characters: no 8-character prefix exists
    redactor = Redactor()
    redactor.register(value)
    assert redactor.redact(f"a {value} b") == "a *** b"
    assert redactor.redact(f"a {value[:5]} b") == f"a {value[:5]} b"  # documented: not masked
    hex_form = value.encode().hex()
    assert redactor.redact(f"h={hex_form[:9]}") == "h=***"


def test_text_without_secrets_is_unchanged() -> None:
    redactor = Redactor()
    redactor.register_all(random.token_urlsafe(32) for _ in range(10))
    text = "".join(rand.choice(string.ascii_letters + " {}:,\n") for _ in range(50_000))
    assert redactor.redact(text) == text
    assert not redactor.contains_secret(text)


def test_redact_obj_covers_keys_tuples_sets_and_nested_dumps() -> None:
    value = random.token_urlsafe(16)
    redactor = Redactor()
    redactor.register(value)
    dumped = {
        "results": {value: {"request": {"headers": ("x", f"Bearer {value}")}}},
        "tags": {f"t-{value}"},
        "n": 3,
        "none": None,
        "secret": Secret("x", value),
    }
    redacted = redactor.redact_obj(dumped)
    assert redacted == {
        "results": {"***": {"request": {"headers": ("x", "Bearer ***")}}},
        "tags": {"t-***"},
        "n": 3,
        "none": None,
        "secret": "***",
    }
    assert_no_leak(repr(redacted), value)
    clean = {"a": ["b", ("c",)]}
    assert redactor.redact_obj(clean) is clean  # nothing to mask: no copy


# -- secrets are an allowlist per environment ----------------------------------------------


def test_runbook_secret_not_listed_by_the_environment_is_named_with_both() -> None:
    staging = Environment(name="staging", secrets=["runner_token"], origin="/etc/ops.toml")
    problems = undeclared_secrets(["ops_key", "runner_token"], staging, runbook="v2-control-plane")
    assert problems == [
        "runbook v2-control-plane needs secret 'ops_key', but environment 'staging' does not "
        "list it under secrets in /etc/ops.toml"
    ]


async def test_store_never_reads_a_secret_the_environment_does_not_list(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPSCONSOLE_SECRET_PROD_ROOT_KEY", random.token_urlsafe(12))
    redactor = Redactor()
    store = SecretStore("staging", redactor, allowed=["ops_key"])
    with pytest.raises(SecretUnavailable, match="not listed under secrets for environment"):
        await store.get("prod_root_key")
    assert store.cached("prod_root_key") is None


def test_config_secret_hosts_parsed_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        """
[environments.staging]
secrets = ["ops_key"]
[environments.staging.secret_hosts]
ops_key = ["127.0.0.1:8010", "*.example.internal"]
"""
    )
    staging = load_config(path).environment("staging")
    assert staging.secret_hosts == {"ops_key": ["127.0.0.1:8010", "*.example.internal"]}
    assert staging.origin == str(path)
    for body, message in [
        (
            'secrets = []\n[environments.s.secret_hosts]\nops_key = ["h"]',
            "not listed under secrets",
        ),
        ('secrets = ["k"]\n[environments.s.secret_hosts]\nk = "h"', "expected a list of names"),
        ('secrets = ["k"]\n[environments.s.secret_hosts]\nk = ["http://h/"]', "is not host:port"),
    ]:
        path.write_text("[environments.s]\n" + body + "\n")
        with pytest.raises(ConfigError, match=message):
            load_config(path)


def policy_for(**secret_hosts: list[str]) -> SecretPolicy:
    return SecretPolicy(
        Environment(
            name="staging",
            variables={
                "base_url": "http://127.0.0.1:8010",
                "runner_url": "https://runner.example.internal/v1",
                "region": "eu-west-1",
            },
            secrets=["ops_key", "runner_token"],
            secret_hosts=secret_hosts,
            origin="/etc/ops.toml",
        )
    )


def test_secret_goes_only_to_the_hosts_of_the_environments_urls_by_default() -> None:
    policy = policy_for()
    assert policy.default_hosts == ["127.0.0.1:8010", "runner.example.internal:443"]
    ok = {"ops_key"}
    assert policy.check_destination(ok, "http://127.0.0.1:8010/api/v1/ops/jobs") is None
    assert policy.check_destination(ok, "https://runner.example.internal/jobs") is None
    assert policy.check_destination(set(), "http://attacker.example/") is None
    refused = policy.check_destination(ok, "http://127.0.0.1:9999/collect?x=1")
    assert refused is not None
    assert "refused to send secret 'ops_key' to 127.0.0.1:9999" in refused
    assert "[environments.staging.secret_hosts] ops_key in /etc/ops.toml" in refused
    assert "x=1" not in refused  # only host:port is named, never the URL's query
    assert policy.check_destination(ok, "http://runner.example.internal/jobs") is not None
    assert policy.check_destination(ok, "not a url") is not None


def test_secret_hosts_replace_the_default_per_secret() -> None:
    policy = policy_for(ops_key=["*.example.internal", "127.0.0.1:8011"])
    ops = {"ops_key"}
    assert policy.check_destination(ops, "https://cp.example.internal/x") is None
    assert policy.check_destination(ops, "http://127.0.0.1:8011/x") is None
    assert policy.check_destination(ops, "http://127.0.0.1:8010/x") is not None
    assert policy.check_destination(ops, "https://example.internal.evil.test/") is not None
    both = {"ops_key", "runner_token"}
    refused = policy.check_destination(both, "https://cp.example.internal/x")
    assert refused is not None and "'runner_token'" in refused  # default hosts for the other


# -- the keyring cannot keep the process alive ---------------------------------------------

_FOREVER_KEYRING = """
import asyncio, sys, threading
import keyring
from jaraco.classes import properties
from keyring.backend import KeyringBackend
from opsconsole.errors import SecretUnavailable
from opsconsole.secrets import Redactor, SecretStore

class Forever(KeyringBackend):
    @properties.classproperty
    def priority(cls):
        raise RuntimeError("never auto-selected")
    def get_password(self, service, username):
        threading.Event().wait()  # a backend that never answers
    def set_password(self, service, username, password):
        raise RuntimeError
    def delete_password(self, service, username):
        raise RuntimeError

keyring.set_keyring(Forever())

async def main():
    store = SecretStore("prod", Redactor(), timeout=0.5)
    for name in ("ops_key", "runner_token"):
        try:
            await store.get(name)
        except SecretUnavailable as exc:
            print(exc, flush=True)

asyncio.run(main())
"""


def test_a_keyring_that_never_answers_does_not_keep_the_process_alive(tmp_path: Path) -> None:
    script = tmp_path / "check_like.py"
    script.write_text(_FOREVER_KEYRING)
    try:
        done = subprocess.run(
            [sys.executable, str(script)],
            capture_output=True,
            text=True,
            timeout=20,
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the process never exited: it waited for the keyring thread")
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.splitlines()
    assert "keyring did not answer within 0.5s while reading 'ops_key'" in first
    assert "$OPSCONSOLE_SECRET_OPS_KEY" in first
    assert "not asking it again for 'runner_token'" in second


async def test_no_keyring_backend_says_so_and_points_to_environment_variables() -> None:
    from keyring.backends import fail

    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        with pytest.raises(SecretUnavailable) as caught:
            await SecretStore("staging", Redactor()).get("ops_key")
    finally:
        keyring.set_keyring(previous)
    message = str(caught.value)
    assert "no keyring backend is available" in message
    assert "$OPSCONSOLE_SECRET_OPS_KEY" in message
    assert "not found" not in message


def test_url_shaped_secret_masks_its_prefixes_and_endings_not_its_middle() -> None:
    value = "https://hooks.example.test/services/" + random.token_urlsafe(24)
    redactor = Redactor()
    redactor.register(value)
    # the price of the prefix rule: any text that starts like the secret for 8+ characters
    assert redactor.redact("see https://docs.example.test/") == "see ***docs.example.test/"
    # a run from the middle is common text and stays; the end of the secret does not
    assert redactor.redact("GET /services/ ok") == "GET /services/ ok"
    assert redactor.redact(f"…{value[-12:]}") == "…***"


def test_leak_helper_finds_every_form_and_never_shows_the_value(tmp_path: Path) -> None:
    value = awkward_secret()
    for form in encoded_forms(value):
        for leaked in (form, form[:8]):
            (tmp_path / "state.json").write_text(f'{{"detail": "{leaked}"}}')
            with pytest.raises(AssertionError) as caught:
                assert_no_leak(tmp_path, value)
            assert value not in str(caught.value) and value[:8] not in str(caught.value)
    (tmp_path / "state.json").write_text('{"detail": "***"}')
    assert_no_leak(tmp_path, value)
