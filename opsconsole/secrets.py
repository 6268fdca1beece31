"""Secrets, where they may go, and the one redactor every output path goes through.

Secret values come from ``$OPSCONSOLE_SECRET_<NAME>`` (for CI) or the OS
keyring (service ``opsconsole:<environment>``, username = secret name), and
only for names the environment lists under ``secrets`` in the config. A keyring
lookup runs in a daemon thread that is abandoned when it does not answer in
time, so a locked or broken keyring can neither freeze the console nor keep
the process from exiting. Every value read or produced during a run (captured
tokens, secret inputs) is registered with :class:`Redactor`; screen, logs,
audit, evidence and saved run state all pass through :meth:`Redactor.redact`.

The redactor masks each secret in every form it leaked in practice (URL, JSON,
hex and base64 encodings, base64 of a longer string that embeds it) and any
8-character or longer *prefix* or *ending* of any of those forms, so text that
was cut (a server that truncates a token, a command output of which only the
tail is kept) is still masked. :class:`SecretPolicy` decides which hosts may receive a secret.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import threading
import weakref
from bisect import bisect_left, bisect_right
from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, quote_plus

from .errors import SecretUnavailable

if TYPE_CHECKING:
    from ahocorasick_rs import AhoCorasick

    from .config import Environment

__all__ = [
    "MASK",
    "MIN_SECRET_LENGTH",
    "PREFIX_LENGTH",
    "Redactor",
    "Secret",
    "SecretPolicy",
    "SecretStore",
    "env_var_name",
    "redact_everywhere",
    "secret_forms",
    "undeclared_secrets",
]

MASK = "***"
#: shorter values would mask ordinary words; such secrets are refused at registration
MIN_SECRET_LENGTH = 4
#: no run of this many characters that starts a secret's form (or ends the raw secret)
#: is ever written; shorter fragments are too common to mask
PREFIX_LENGTH = 8


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


# -- the encoded forms of a secret ------------------------------------------------------

_PERCENT_ESCAPE = re.compile(r"%[0-9A-F]{2}")
#: joins the strings of a structure so one pass searches them all; a match that spans
#: two strings only makes both be redacted one by one, which is exact
_JOIN = "\x00"


def _base64_middles(data: bytes, encode: Any) -> set[str]:
    """The characters of ``data``'s base64 that do not depend on its neighbours.

    Inside a longer base64 string (HTTP Basic ``user:secret``) the secret starts
    at one of three byte alignments; for each, the characters whose 6 bits all
    come from the secret are the same whatever surrounds it.
    """
    middles = set()
    for offset in range(3):
        encoded = encode(b"\0" * offset + data + b"\0\0").decode("ascii")
        start = (8 * offset + 5) // 6
        end = (8 * (offset + len(data))) // 6
        middles.add(encoded[start:end])
    return middles


def secret_forms(value: str) -> set[str]:
    """Every form in which ``value`` has been seen leaking: raw, URL, JSON, regex-escaped,
    hex, base64."""
    forms = {value}
    for encoded in (
        quote(value, safe=""),
        quote(value, safe="/"),
        quote_plus(value, safe=""),
        quote_plus(value, safe="/"),
    ):
        forms.add(encoded)
        forms.add(_PERCENT_ESCAPE.sub(lambda m: m.group(0).lower(), encoded))
    for ascii_only in (True, False):
        escaped = json.dumps(value, ensure_ascii=ascii_only)[1:-1]
        forms.add(escaped)
        forms.add(escaped.replace("/", "\\/"))
    # a secret inside a runbook's pattern is escaped (template "pattern" context), and an
    # assertion names its pattern: "/key=abc\\-def/ not found"
    forms.add(re.escape(value))
    data = value.encode("utf-8", errors="surrogatepass")
    forms.add(data.hex())
    forms.add(data.hex().upper())
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        full = encode(data).decode("ascii")
        forms.add(full)
        forms.add(full.rstrip("="))
        forms.update(_base64_middles(data, encode))
    return {form for form in forms if len(form) >= MIN_SECRET_LENGTH}


# -- the redactor -----------------------------------------------------------------------


class _Matcher:
    """One Aho–Corasick automaton over every secret's seeds.

    A *seed* is the first :data:`PREFIX_LENGTH` characters of a form. Where a seed
    occurs, the text is masked as far as it keeps following the longest form that
    starts with that seed. A *tail* is a form's last :data:`PREFIX_LENGTH` characters:
    where one occurs, the text is masked back as far as it keeps matching the form's
    end, so every ending of 8 or more characters of every form is masked (only whole
    endings: a run from the middle of a URL-shaped secret, such as ``.com/api``, is
    common text). Matched whole: forms shorter than a seed. Building costs the total
    length of the forms, not its square: a 16 KB pasted value is registered at once.
    """

    def __init__(self, forms: set[str]) -> None:
        from ahocorasick_rs import AhoCorasick

        heads: dict[str, set[str]] = {}
        tails: dict[str, set[str]] = {}
        exact: set[str] = set()
        for form in forms:
            if len(form) >= PREFIX_LENGTH:
                heads.setdefault(form[:PREFIX_LENGTH], set()).add(form)
                # a cut that kept the end of a secret, in any form, is a leak too: a
                # command's output keeps its tail, and a long line reaches the screen in
                # pieces
                if len(form) > PREFIX_LENGTH:
                    tails.setdefault(form[-PREFIX_LENGTH:], set()).add(form)
            else:
                exact.add(form)
        self.patterns = sorted(heads.keys() | tails.keys() | exact)
        self.heads = [sorted(heads.get(p, ()), key=len, reverse=True) for p in self.patterns]
        self.tails = [sorted(tails.get(p, ()), key=len, reverse=True) for p in self.patterns]
        self.automaton: AhoCorasick | None = AhoCorasick(self.patterns) if self.patterns else None

    def spans(self, text: str) -> list[tuple[int, int]]:
        """The merged (start, end) ranges of ``text`` that must be masked."""
        if self.automaton is None:
            return []
        found = self.automaton.find_matches_as_indexes(text, overlapping=True)
        if not found:
            return []
        spans = []
        for index, start, end in found:
            heads, tails = self.heads[index], self.tails[index]
            if heads:
                end = max(end, start + max(_extent(text, start, form) for form in heads))
            if tails:
                start = min(start, end - max(_back(text, end, form) for form in tails))
            spans.append((start, end))
        spans.sort()
        merged = [spans[0]]
        for start, end in spans[1:]:
            last_start, last_end = merged[-1]
            if start <= last_end:
                merged[-1] = (last_start, max(last_end, end))
            else:
                merged.append((start, end))
        return merged


def _back(text: str, end: int, form: str) -> int:
    """How many trailing characters of ``form`` end ``text[:end]`` (its tail is known to)."""
    if text.endswith(form, 0, end):
        return len(form)
    low, high = PREFIX_LENGTH, len(form) - 1
    while low < high:
        middle = (low + high + 1) // 2
        if text.endswith(form[-middle:], 0, end):
            low = middle
        else:
            high = middle - 1
    return low


def _extent(text: str, at: int, anchor: str) -> int:
    """How many leading characters of ``anchor`` appear in ``text`` at ``at`` (seed known)."""
    if text.startswith(anchor, at):
        return len(anchor)
    low, high = PREFIX_LENGTH, len(anchor) - 1
    while low < high:
        middle = (low + high + 1) // 2
        if text.startswith(anchor[:middle], at):
            low = middle
        else:
            high = middle - 1
    return low


def _collect(obj: Any, strings: list[str], sizes: dict[int, tuple[int, bool]]) -> bool:
    """Gather the strings of a structure in walk order and, per container, how many
    strings it holds and whether a :class:`Secret` is inside; True if one is."""
    if isinstance(obj, str):
        strings.append(obj)
        return False
    if isinstance(obj, Secret):
        return True
    first = len(strings)
    found = False
    if isinstance(obj, dict):
        for key, value in obj.items():
            found = _collect(key, strings, sizes) or found
            found = _collect(value, strings, sizes) or found
    elif isinstance(obj, list | tuple | set | frozenset):
        for item in obj:
            found = _collect(item, strings, sizes) or found
    else:
        return False
    sizes[id(obj)] = (len(strings) - first, found)
    return found


_LIVE_REDACTORS: weakref.WeakSet[Redactor] = weakref.WeakSet()


def redact_everywhere(text: str) -> str:
    """Redact with every live redactor: for last-resort paths such as the crash log."""
    for redactor in list(_LIVE_REDACTORS):
        text = redactor.redact(text)
    return text


class Redactor:
    """Replaces every registered secret, in any of its forms or cut short, with ``***``.

    What is masked, for each registered value: every form from :func:`secret_forms`,
    any prefix and any ending of :data:`PREFIX_LENGTH` (8) or more characters of each
    form. A value shorter than
    8 characters is masked whole (its longer encodings still by 8-character
    prefixes); values shorter than :data:`MIN_SECRET_LENGTH` are refused.
    """

    def __init__(self) -> None:
        self._raw: set[str] = set()
        self._forms: set[str] = set()
        self._matcher: _Matcher | None = None
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
            if value in self._raw:
                return
            self._raw.add(value)
            self._forms |= secret_forms(value)
            self._matcher = None  # rebuilt on next use: registering several costs one build

    def register_all(self, values: Iterable[str]) -> None:
        for value in values:
            self.register(value)

    def _current(self) -> _Matcher:
        matcher = self._matcher
        if matcher is None:
            with self._lock:
                matcher = self._matcher
                if matcher is None:
                    matcher = self._matcher = _Matcher(self._forms)
        return matcher

    def redact(self, text: str) -> str:
        if not self._raw or not text:
            return text
        spans = self._current().spans(text)
        if not spans:
            return text
        parts = []
        position = 0
        for start, end in spans:
            parts.append(text[position:start])
            parts.append(MASK)
            position = end
        parts.append(text[position:])
        return "".join(parts)

    def redact_obj(self, obj: Any) -> Any:
        """Redact every string in nested dicts (keys too), lists, tuples and sets.

        Never modifies ``obj``: returns it itself when nothing in it needs masking,
        otherwise a copy that shares the parts that needed nothing. All strings are
        searched in one pass.
        """
        strings: list[str] = []
        sizes: dict[int, tuple[int, bool]] = {}
        has_secret_object = _collect(obj, strings, sizes)
        hits: set[int] = set()
        if self._raw and strings:
            starts = []
            offset = 0
            for text in strings:
                starts.append(offset)
                offset += len(text) + len(_JOIN)
            for start, end in self._current().spans(_JOIN.join(strings)):
                first = bisect_right(starts, start) - 1
                last = bisect_right(starts, end - 1) - 1
                hits.update(range(first, last + 1))
        if not hits and not has_secret_object:
            return obj
        return self._rebuild(obj, 0, sorted(hits), sizes)[0]

    def _rebuild(
        self, obj: Any, at: int, hits: list[int], sizes: dict[int, tuple[int, bool]]
    ) -> tuple[Any, int]:
        """(redacted ``obj``, index of the next string); ``at`` is its first string's index."""
        if isinstance(obj, str):
            hit = bisect_left(hits, at) < len(hits) and hits[bisect_left(hits, at)] == at
            return (self.redact(obj) if hit else obj), at + 1
        if isinstance(obj, Secret):
            return MASK, at
        if id(obj) not in sizes:
            return obj, at
        size, secret_inside = sizes[id(obj)]
        following = bisect_left(hits, at)
        if not secret_inside and (following == len(hits) or hits[following] >= at + size):
            return obj, at + size  # nothing to mask in here: shared, not copied
        if isinstance(obj, dict):
            out = {}
            for key, value in obj.items():
                new_key, at = self._rebuild(key, at, hits, sizes)
                out[new_key], at = self._rebuild(value, at, hits, sizes)
            return out, at
        items = []
        for item in obj:
            new_item, at = self._rebuild(item, at, hits, sizes)
            items.append(new_item)
        return (items if isinstance(obj, list) else type(obj)(items)), at

    def contains_secret(self, text: str) -> bool:
        return bool(self._raw) and bool(self._current().spans(text))

    def spans(self, text: str) -> list[tuple[int, int]]:
        """The merged (start, end) ranges of ``text`` that :meth:`redact` masks."""
        return self._current().spans(text) if self._raw and text else []

    @property
    def longest(self) -> int:
        """The length of the longest form of any registered secret (0: none): a stream cut
        this far before its end never splits a secret that the rest would complete."""
        return max(map(len, self._forms), default=0)


# -- which secrets an environment provides, and where they may be sent ----------------


def env_var_name(name: str) -> str:
    return "OPSCONSOLE_SECRET_" + "".join(ch if ch.isalnum() else "_" for ch in name).upper()


def undeclared_secrets(
    runbook_secrets: list[str], environment: Environment, *, runbook: str = "this runbook"
) -> list[str]:
    """One problem per secret the runbook needs that the environment does not list."""
    where = environment.origin or "the config file"
    return [
        f"runbook {runbook} needs secret {name!r}, but environment {environment.name!r} "
        f"does not list it under secrets in {where}"
        for name in dict.fromkeys(runbook_secrets)
        if name not in environment.secrets
    ]


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _destination(url: str) -> tuple[str, int | None] | None:
    """(host, port) the request goes to, as httpx will send it; None if it cannot tell."""
    import httpx

    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        return None
    if not parsed.host:
        return None
    return parsed.host.lower(), parsed.port or _DEFAULT_PORTS.get(parsed.scheme)


def _show(host: str, port: int | None) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"{shown}:{port}" if port is not None else shown


def _host_matches(rule: str, host: str, port: int | None) -> bool:
    """``rule`` is ``host:port``, ``host`` (any port), ``*.domain[:port]`` or ``*``."""
    rule = rule.strip().lower()
    if rule == "*":
        return True
    rule_port: int | None = None
    if rule.startswith("["):  # [v6]:port
        name, _, rest = rule[1:].partition("]")
        if rest.startswith(":") and rest[1:].isdigit():
            rule_port = int(rest[1:])
    else:
        name, colon, tail = rule.rpartition(":")
        if colon and tail.isdigit():
            rule_port = int(tail)
        else:
            name = rule
    if rule_port is not None and rule_port != port:
        return False
    if name.startswith("*."):
        return host.endswith(name[1:])
    return host == name


class SecretPolicy:
    """Which hosts each secret of an environment may be sent to.

    ``[environments.NAME.secret_hosts]`` names them per secret; a secret without an
    entry (including secrets captured during the run) goes only to the hosts of the
    URLs among the environment's variables (host and port, default port by scheme).
    """

    def __init__(self, environment: Environment) -> None:
        self.environment = environment
        defaults = []
        for value in environment.variables.values():
            if "://" in value:
                target = _destination(value)
                if target is not None:
                    defaults.append(_show(*target))
        self.default_hosts: list[str] = list(dict.fromkeys(defaults))

    def hosts_for(self, name: str) -> list[str]:
        return self.environment.secret_hosts.get(name, self.default_hosts)

    def check_destination(self, secret_names_used: set[str], url: str) -> str | None:
        """The refusal message when ``url`` may not receive one of the secrets, else None."""
        if not secret_names_used:
            return None
        target = _destination(url)
        env = self.environment.name
        for name in sorted(secret_names_used):
            if target is None:
                return f"refused to send secret {name!r}: cannot tell which host {url!r} is"
            rules = self.hosts_for(name)
            if any(_host_matches(rule, *target) for rule in rules):
                continue
            where = _show(*target)
            allowed = ", ".join(rules) or "no host (the environment has no URL variables)"
            return (
                f"refused to send secret {name!r} to {where}: environment {env!r} sends it "
                f"only to {allowed}. If {where} should receive it, list it under "
                f"[environments.{env}.secret_hosts] {name} in "
                f"{self.environment.origin or 'the config file'}"
            )
        return None


# -- reading secrets --------------------------------------------------------------------

_NO_BACKEND = "no keyring backend is available"


def _keyring_lookup(service: str, name: str) -> tuple[str | None, str | None]:
    """(value, problem): runs in an abandonable thread, so it may block forever."""
    try:
        import keyring
        from keyring.errors import KeyringError, NoKeyringError

        try:
            return keyring.get_password(service, name), None
        except NoKeyringError:
            return None, _NO_BACKEND
        except KeyringError as exc:
            return None, f"the keyring failed: {type(exc).__name__}: {exc}"
    except Exception as exc:  # noqa: BLE001 - a broken backend is reported, never a crash
        return None, f"the keyring failed: {type(exc).__name__}"


class SecretStore:
    """Reads an environment's secrets; caches them for the run and registers them.

    ``allowed`` is the environment's list of secret names (None: any name, for
    tests and tools); a name outside it is never looked up.
    """

    def __init__(
        self,
        environment: str,
        redactor: Redactor,
        *,
        timeout: float = 5.0,
        allowed: Collection[str] | None = None,
    ) -> None:
        self.environment = environment
        self.redactor = redactor
        self.timeout = timeout
        self.allowed = None if allowed is None else frozenset(allowed)
        self._cache: dict[str, Secret] = {}
        self._keyring_stuck = False

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
        if self.allowed is not None and name not in self.allowed:
            raise SecretUnavailable(
                f"secret {name!r} is not listed under secrets for environment "
                f"{self.environment!r}; it is not read"
            )
        variable = env_var_name(name)
        value = os.environ.get(variable)
        if not value:
            value = await self._from_keyring(name)
        if not value:
            raise SecretUnavailable(
                f"secret {name!r} for environment {self.environment!r} not found: store it "
                f"with `keyring set opsconsole:{self.environment} {name}` or set ${variable}"
            )
        return self.put(name, value)

    async def _from_keyring(self, name: str) -> str | None:
        variable = env_var_name(name)
        if self._keyring_stuck:
            raise SecretUnavailable(
                f"keyring did not answer earlier in this run; not asking it again for "
                f"{name!r}: unlock it and start again, or set ${variable}"
            )
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[tuple[str | None, str | None]] = loop.create_future()

        def deliver(outcome: tuple[str | None, str | None]) -> None:
            if not answer.done():
                answer.set_result(outcome)

        def lookup() -> None:
            outcome = _keyring_lookup(f"opsconsole:{self.environment}", name)
            try:
                loop.call_soon_threadsafe(deliver, outcome)
            except RuntimeError:
                pass  # the loop is closed: nobody is waiting any more

        # A daemon thread, not the loop's executor: asyncio joins its executor at
        # shutdown, so a backend that never answers would keep the process alive.
        threading.Thread(target=lookup, name=f"keyring {name}", daemon=True).start()
        try:
            value, problem = await asyncio.wait_for(answer, self.timeout)
        except TimeoutError:
            self._keyring_stuck = True
            raise SecretUnavailable(
                f"keyring did not answer within {self.timeout:g}s while reading {name!r} "
                f"(is the keyring locked?); unlock it, or set ${variable}"
            ) from None
        if problem == _NO_BACKEND:
            raise SecretUnavailable(
                f"{_NO_BACKEND} to read secret {name!r} for environment "
                f"{self.environment!r}: set ${variable} instead (environment variables "
                f"OPSCONSOLE_SECRET_<NAME> are how CI and machines without a keyring "
                f"provide secrets)"
            )
        if problem is not None:
            raise SecretUnavailable(
                f"cannot read secret {name!r} for environment {self.environment!r}: "
                f"{problem}; set ${variable} instead"
            )
        return value

    async def load(self, names: Iterable[str]) -> list[str]:
        """Read several secrets; returns the problems (empty when all were found)."""
        problems = []
        for name in names:
            try:
                await self.get(name)
            except SecretUnavailable as exc:
                problems.append(str(exc))
        return problems
