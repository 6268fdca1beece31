"""``ops oauth_callback``: an OAuth authorization whose redirect the browser cannot reach.

On a remote host the authorization's ``redirect_uri`` points at a port (HDM's
8888) that the operator's browser cannot reach. The step starts the
authorization, shows the authorization URL and the exact tunnel command for the
callback port, and takes the full URL the browser was sent to as a paste (no
length limit). It checks the paste before anything is sent: it parses, its
``state`` is the one this run was issued (any other is refused), it carries a
``code`` (or an ``error``, whose description is shown and ends the step);
another host or port than the redirect URI is warned about. Then it submits the
URL and, optionally, verifies the result.

The pasted URL carries the authorization code: its secret parts
(:func:`redirect_secrets`: every parameter but the public ones such as ``state``)
are registered with the redactor the moment it arrives, so the code is ``***`` in
the log, audit, state and evidence, and it reaches the server only as a JSON value
(never a template). Its ``http://host:port/path`` is not a secret: registered
whole, it would mask every other URL of that host by prefix.
"""

from __future__ import annotations

import getpass
import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote_plus, urlsplit

from pydantic import Field, field_validator

from ..artifacts import Artifact, KeyValuesArtifact
from ..errors import TemplateError
from ..expectations import search_json
from ..operator import EnterText
from ..run import Assertion, StepStatus
from ..secrets import MIN_SECRET_LENGTH
from . import register
from .base import Outcome, Produces, StepContext, StepSpec, StepType
from .http import HttpExpect, HttpSpec, RequestFields, send_and_judge

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "CallbackSpec",
    "CallbackStep",
    "Redirect",
    "check_redirect",
    "paste_question",
    "redirect_secrets",
    "refusal",
    "tunnel_command",
]

#: pastes that fail the checks before the step gives up
PASTE_ATTEMPTS = 3


class CallbackStart(HttpSpec):
    """The request that starts the authorization (its answer holds the authorization URL)."""

    method: str = "POST"


class CallbackSubmit(RequestFields):
    """The request that hands the pasted redirect URL to the service."""

    method: str = "POST"
    #: the JSON field that carries the pasted URL
    field: str = "redirect_url"
    expect: HttpExpect = Field(default_factory=HttpExpect)


class CallbackSpec(StepSpec):
    start: CallbackStart
    #: JMESPath into start's JSON answer
    authorization_url: str = "authorization_url"
    #: JMESPath to the issued state; None: the authorization URL's ``state`` parameter
    state: str | None = None
    #: JMESPath to the redirect URI; None: the authorization URL's ``redirect_uri``
    redirect_uri: str | None = None
    #: who to tunnel through (``ops@hdm-1``, usually ``{{ a_variable }}``); shown in the
    #: tunnel command. Without it: this user at this machine's name.
    ssh_target: str | None = None
    submit: CallbackSubmit
    #: optional check afterwards (``GET /spotify/status`` → ``authorized: true``)
    verify: HttpSpec | None = None

    @field_validator("authorization_url", "state", "redirect_uri")
    @classmethod
    def _paths_compile(cls, value: str | None) -> str | None:
        if value is not None:
            import jmespath
            from jmespath.exceptions import JMESPathError

            try:
                jmespath.compile(value)
            except JMESPathError as exc:
                raise ValueError(f"not a JMESPath expression: {value!r} ({exc})") from None
        return value


@dataclass
class Redirect:
    """What a pasted redirect URL says, checked against what this run issued."""

    #: why the paste cannot be used (ask again); empty when usable
    problems: list[str] = field(default_factory=list)
    #: worth saying, not a reason to refuse (another host or port)
    warnings: list[str] = field(default_factory=list)
    code: str = ""
    #: the authorization server said no: (error, error_description)
    error: tuple[str, str] | None = None


def _port(parts: Any) -> int | None:
    try:
        port: int | None = parts.port
    except ValueError:
        return -1
    if port is None and parts.scheme in ("http", "https"):
        return 443 if parts.scheme == "https" else 80
    return port


def check_redirect(pasted: str, issued_state: str, redirect_uri: str) -> Redirect:
    """Check a pasted redirect URL before anything is sent (see the module docstring)."""
    verdict = Redirect()
    text = pasted.strip()
    if not text:
        verdict.problems.append("nothing was pasted")
        return verdict
    try:
        parts = urlsplit(text)
        query = parse_qs(parts.query, keep_blank_values=True)
        port = _port(parts)
    except ValueError:
        verdict.problems.append("this is not a URL")
        return verdict
    if parts.scheme not in ("http", "https") or not parts.netloc or port == -1:
        verdict.problems.append(
            "this is not a full http(s) URL: copy the whole address bar, starting with http"
        )
        return verdict
    states = query.get("state", [])
    if not states:
        verdict.problems.append(
            "the URL has no state parameter: copy the address bar after the redirect"
        )
        return verdict
    if states[0] != issued_state:
        verdict.problems.append(
            "the URL's state is not the one this run was issued: it belongs to another "
            "authorization (an older tab?); approve the authorization URL shown here"
        )
        return verdict
    if query.get("error"):
        verdict.error = (query["error"][0], (query.get("error_description") or [""])[0])
        return verdict
    codes = [code for code in query.get("code", []) if code]
    if not codes:
        verdict.problems.append("the URL has no code: approve first, then copy the address bar")
        return verdict
    verdict.code = codes[0]
    expected = urlsplit(redirect_uri)
    if (parts.hostname, port) != (expected.hostname, _port(expected)):
        verdict.warnings.append(
            f"the pasted URL is for {parts.hostname}:{port}, the redirect URI is "
            f"{expected.hostname}:{_port(expected)}; submitting it anyway"
        )
    return verdict


#: redirect parameters that are not secrets: the state this run was issued (it is in the
#: authorization URL on screen), the server's refusal and its words, the issuer, the scopes
PUBLIC_PARAMETERS = frozenset(
    {"state", "error", "error_description", "error_uri", "iss", "scope"}
)


def redirect_secrets(pasted: str) -> list[str]:
    """What of a pasted redirect URL is secret: every query and fragment value but the
    :data:`PUBLIC_PARAMETERS`, as pasted and decoded, and a password in it. A paste that
    is not a URL, or a code too short to be masked alone, is secret whole."""
    text = pasted.strip()
    whole = [text] if len(text) >= MIN_SECRET_LENGTH else []
    try:
        parts = urlsplit(text)
        password = parts.password
    except ValueError:
        return whole
    if not parts.scheme or not parts.netloc:
        return whole
    found: list[str] = [password] if password else []
    for pair in f"{parts.query}&{parts.fragment}".split("&"):
        name, _, raw = pair.partition("=")
        if unquote_plus(name) in PUBLIC_PARAMETERS or not raw:
            continue
        decoded = unquote_plus(raw)
        if unquote_plus(name) == "code" and len(decoded) < MIN_SECRET_LENGTH:
            return whole
        found += [raw, decoded]
    return [value for value in dict.fromkeys(found) if len(value) >= MIN_SECRET_LENGTH]


def tunnel_command(redirect_uri: str, ssh_target: str | None) -> str:
    """The command an operator runs on their own machine so the browser reaches the port."""
    parts = urlsplit(redirect_uri)
    port = _port(parts) or 80
    host = parts.hostname or "127.0.0.1"
    target = ssh_target or f"{getpass.getuser()}@{socket.gethostname()}"
    return f"ssh -N -L {port}:{host}:{port} {target}"


def _query_value(url: str, name: str) -> str:
    try:
        return (parse_qs(urlsplit(url).query).get(name) or [""])[0]
    except ValueError:
        return ""


def paste_question(url: str, tunnel: str, refused: str = "") -> EnterText:
    """What the operator is asked: the paste, with the URL to open and the tunnel command;
    ``refused``: why the previous paste could not be used."""
    again = f"Refused: {refused}. Paste it again.\n" if refused else ""
    return EnterText(
        prompt="Paste the full URL your browser was sent to after approving",
        detail=again + f"Open: {url}\nTunnel (on your machine): {tunnel}",
        key="redirect_url",
        name="redirect_url",
        secret=True,
        secret_parts=redirect_secrets,
        placeholder="http://127.0.0.1:8888/callback?code=…&state=…",
        visit=url,
        unattended_reason=(
            "needs a person to approve in a browser; run it in the console, "
            "or answer with --answer STEP.redirect_url=URL"
        ),
    )


def refusal(error: str, description: str) -> str:
    """The step's result when the authorization server said no (nothing is submitted)."""
    return (
        f"the authorization was refused: {error}"
        + (f" ({description})" if description else "")
        + "; nothing was submitted. Run the step again for a new authorization URL"
    )


@register
class CallbackStep(StepType[CallbackSpec]):
    kind = "oauth_callback"
    spec = CallbackSpec
    description = "an OAuth authorization finished by pasting the redirect URL (remote hosts)"
    mutates = True

    def default_title(self, spec: CallbackSpec, section_title: str) -> str:
        return f"Authorize via pasted callback: {spec.start.method} {spec.start.url}"

    def produces(self, spec: CallbackSpec) -> Produces:
        return Produces(
            frozenset(spec.start.capture), frozenset(spec.start.capture_secret)
        )

    def describe(self, spec: CallbackSpec, render: Callable[..., str]) -> str:
        lines = [
            f"{spec.start.method} {render(spec.start.url, 'url')}  (start the authorization)",
            "then paste the URL the browser is sent to, checked against this run's state",
            f"{spec.submit.method} {render(spec.submit.url, 'url')}  (hand it over)",
        ]
        if spec.verify is not None:
            lines.append(f"{spec.verify.method} {render(spec.verify.url, 'url')}  (verify)")
        return "\n".join(lines)

    async def run(self, ctx: StepContext[CallbackSpec]) -> Outcome:
        spec = ctx.spec
        artifacts: list[Artifact] = []
        started = await send_and_judge(ctx, spec.start)
        if isinstance(started, Outcome):
            return started
        artifacts += [started.request, started.response]
        if not all(a.ok for a in started.assertions):
            return Outcome.judged(started.assertions, "", artifacts=artifacts)
        document = started.response.document
        try:
            url = search_json(spec.authorization_url, document)
            state = search_json(spec.state, document) if spec.state else None
            redirect = search_json(spec.redirect_uri, document) if spec.redirect_uri else None
        except ValueError as exc:
            return Outcome(StepStatus.FAILED, str(exc), artifacts=artifacts)
        if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
            return Outcome(
                StepStatus.FAILED,
                f"the start answer has no authorization URL at {spec.authorization_url}",
                artifacts=artifacts,
            )
        state = state if isinstance(state, str) and state else _query_value(url, "state")
        if not (isinstance(redirect, str) and redirect):
            redirect = _query_value(url, "redirect_uri")
        if not state or not redirect:
            missing = "state" if not state else "redirect_uri"
            return Outcome(
                StepStatus.FAILED,
                f"the authorization has no {missing}: cannot check a pasted URL against it",
                artifacts=artifacts,
            )
        try:
            target = ctx.render(spec.ssh_target) if spec.ssh_target else None
        except TemplateError as exc:
            return Outcome(StepStatus.FAILED, f"ssh_target: {exc}", artifacts=artifacts)
        tunnel = tunnel_command(redirect, target)
        shown = KeyValuesArtifact(
            title="Authorization",
            items=[
                ("open in your browser", url),
                ("redirect URI", redirect),
                ("tunnel (run on your machine)", tunnel),
            ],
        )
        artifacts.append(shown)
        ctx.checkpoint(artifacts)
        ctx.note(f"Open in your browser: {url}")
        ctx.note(
            f"The browser will be sent to {redirect}. From another machine, run first: "
            f"{tunnel} — or approve, then copy the address bar even if the page fails to load."
        )
        verdict: Redirect | None = None
        pasted = ""
        refused = ""
        for attempt in range(1, PASTE_ATTEMPTS + 1):
            reply = await ctx.ask(paste_question(url, tunnel, refused))
            pasted = (reply.value or "").strip()
            verdict = check_redirect(pasted, state, redirect)
            if not verdict.problems:
                break
            ctx.note(f"Paste {attempt} refused: {verdict.problems[0]}")
            refused = verdict.problems[0]
        assert verdict is not None
        if verdict.problems:
            return Outcome(
                StepStatus.FAILED,
                f"no usable redirect URL after {PASTE_ATTEMPTS} pastes: {verdict.problems[0]}",
                artifacts=artifacts,
            )
        if verdict.error is not None:
            return Outcome(StepStatus.FAILED, refusal(*verdict.error), artifacts=artifacts)
        for warning in verdict.warnings:
            ctx.note(warning)
        # every field, defaults included (POST is the submit's default, not the http step's)
        submit = HttpSpec.model_validate(spec.submit.model_dump(by_alias=True, exclude={"field"}))
        submitted = await send_and_judge(ctx, submit, {spec.submit.field: pasted})
        if isinstance(submitted, Outcome):
            submitted.artifacts = artifacts + submitted.artifacts
            return submitted
        artifacts += [submitted.request, submitted.response]
        assertions: list[Assertion] = [
            Assertion(name="redirect URL", ok=True, detail="state matches; code present"),
            *[a.model_copy(update={"name": f"submit {a.name}"}) for a in submitted.assertions],
        ]
        if not all(a.ok for a in submitted.assertions) or spec.verify is None:
            return Outcome.judged(
                assertions, "authorization handed over", artifacts=artifacts,
                captures=started.captures, secret_captures=started.secrets,
            )
        verified = await send_and_judge(ctx, spec.verify)
        if isinstance(verified, Outcome):
            verified.artifacts = artifacts + verified.artifacts
            return verified
        artifacts += [verified.request, verified.response]
        assertions += [
            a.model_copy(update={"name": f"verify {a.name}"}) for a in verified.assertions
        ]
        return Outcome.judged(
            assertions,
            "authorized: the pasted callback was accepted and verified",
            artifacts=artifacts,
            captures=started.captures,
            secret_captures=started.secrets,
        )
