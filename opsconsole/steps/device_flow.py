"""``ops device_flow``: OAuth device authorization (RFC 8628), or a contract shaped like it.

One request starts the authorization (RFC 8628's device authorization
endpoint, or a broker's ``POST /v1/device/session/start``); the operator
approves in a browser, anywhere, with the user code and the verification URL
shown; the step polls (the token endpoint, or a status URL) until the answer
is in; an optional finalize request exchanges the approval for the token. The
token becomes a secret of the run (``{{ secrets.<name> }}``), registered with
the redactor the moment it arrives, optionally kept in the keyring.

Every field is mapped in the runbook (JMESPath into the responses; the state
words that mean pending, slow down, denied, expired, authorized), with RFC
8628's names as the defaults: no code per service.

Polling follows RFC 8628 section 3.5: the first poll waits the interval (5 s
when none is given); polls never overlap; ``slow_down`` adds 5 s to the
interval for every later poll; ``authorization_pending`` keeps polling;
``access_denied``, ``expired_token`` (or 410) and 404 stop with distinct
messages in the runbook's words; no poll is sent after the code expires.
Repeated ``slow_down`` is reported as likely clock drift. The clock is the
session's (``ctx.clock``), so tests drive the rules without waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, cast
from urllib.parse import urlencode

from pydantic import Field, model_validator

from ..artifacts import Artifact, KeyValuesArtifact, RequestArtifact, ResponseArtifact
from ..errors import SecretUnavailable, TemplateError
from ..model import Duration, StrDict, StrList
from ..operator import ApproveInBrowser, Countdown, Note, Progress, StateChange
from ..run import StepStatus
from . import register
from .base import Outcome, Produces, StepContext, StepSpec, StepType
from .http import RequestFields

if TYPE_CHECKING:
    from ..operator import Reply

__all__ = [
    "DEFAULT_INTERVAL",
    "DRIFT_AFTER",
    "SLOW_DOWN_STEP",
    "DeviceFlowSpec",
    "DeviceFlowStep",
    "DeviceRequest",
    "PollSpec",
]

#: RFC 8628 3.5: "If no value is provided, clients MUST use 5 as the default"
DEFAULT_INTERVAL = 5.0
#: RFC 8628 3.5: slow_down: "the interval MUST be increased by 5 seconds for this and all
#: subsequent requests"
SLOW_DOWN_STEP = 5.0
#: this many slow_down answers in a row are reported as likely clock drift
DRIFT_AFTER = 3
#: polls that may fail in a row (network, 5xx) before the step gives up
POLL_ERROR_LIMIT = 2
#: a start response without any expiry: stop polling after this long
DEFAULT_EXPIRY = 900.0

Kind = Literal["pending", "slow_down", "authorized", "denied", "expired", "not_found", "error"]


class DeviceRequest(RequestFields):
    """A request of the flow: RequestFields plus ``form`` (values are form-encoded, so a
    value from a response can never add a field)."""

    form: StrDict = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_body(self) -> DeviceRequest:
        bodies = [b for b in (self.form or None, self.json_body, self.body) if b is not None]
        if len(bodies) > 1:
            raise ValueError("a request has one body: form, json or body")
        return self


class PollSpec(DeviceRequest):
    """How to poll and how to read a poll's answer (RFC 8628 words by default)."""

    method: str = "POST"
    #: JMESPath to the state word in the poll's JSON (RFC 8628: the token error code)
    state: str = "error"
    pending: StrList = Field(default_factory=lambda: ["authorization_pending"])
    slow_down: StrList = Field(default_factory=lambda: ["slow_down"])
    denied: StrList = Field(default_factory=lambda: ["access_denied"])
    expired: StrList = Field(default_factory=lambda: ["expired_token"])
    #: state words meaning "approved"; empty: a 2xx answer that carries the token
    authorized: StrList = Field(default_factory=list)
    #: JMESPath to the server's own words when a poll is refused
    message: str = "error_description || error || message"


class Messages(StepSpec):
    """What the operator reads when the flow stops, in the runbook's words."""

    denied: str = "access was denied in the browser; start again if that was a mistake"
    expired: str = "the code expired before it was approved; restart to get a new code"
    not_found: str = "the server no longer knows this device session; restart the flow"
    drift: str = (
        "the server asked to slow down {count} times: the clocks of this host and "
        "the server likely drift apart, or another client polls with the same code"
    )


class DeviceFlowSpec(StepSpec):
    start: DeviceRequest
    #: run variables from the start response (name -> JMESPath)
    capture: dict[str, str] = Field(default_factory=dict)
    #: secrets from the start response (RFC 8628's device_code by default)
    capture_secret: dict[str, str] = Field(
        default_factory=lambda: {"device_code": "device_code"}
    )
    user_code: str | None = "user_code"
    verification_uri: str = "verification_uri"
    verification_uri_complete: str | None = "verification_uri_complete"
    #: JMESPath to the polling interval in seconds (5 s when the response has none)
    interval: str | None = "interval"
    #: JMESPath to the code's lifetime in seconds, or to its expiry time (ISO 8601 / epoch)
    expires_in: str | None = "expires_in"
    expires_at: str | None = None
    #: never poll longer than this, whatever the server says
    max_wait: Duration = DEFAULT_EXPIRY
    poll: PollSpec
    finalize: DeviceRequest | None = None
    #: JMESPath to the token in the finalize response (or the authorized poll's)
    token: str = "access_token"
    token_expires_in: str | None = "expires_in"
    token_expires_at: str | None = None
    #: the secret's name for later steps: ``{{ secrets.<name> }}``
    secret: str
    #: where the token lives: this run only, or the environment's keyring too
    keep: Literal["run", "keyring"] = "run"
    messages: Messages = Field(default_factory=Messages)


def _text(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _seconds_until(value: object, now: float) -> float | None:
    """Seconds from ``now`` (epoch) to an expiry given as epoch seconds or ISO 8601."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        stamp = float(value) / (1000 if value > 1e11 else 1)  # milliseconds, as JS writes them
    elif isinstance(value, str):
        try:
            stamp = datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    else:
        return None
    return stamp - now if math.isfinite(stamp) else None


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


class _Stop(Exception):  # noqa: N818 - control flow inside run(), never escapes it
    """The flow ends with this outcome."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.summary)
        self.outcome = outcome


class _Restart(Exception):  # noqa: N818
    """The operator asked for a new code."""


@register
class DeviceFlowStep(StepType[DeviceFlowSpec]):
    kind = "device_flow"
    spec = DeviceFlowSpec
    description = "OAuth device authorization: code + URL (+ QR), RFC 8628 polling, token"
    tracks_action = True

    def default_title(self, spec: DeviceFlowSpec, section_title: str) -> str:
        return f"Authorize in a browser: {section_title}"

    def produces(self, spec: DeviceFlowSpec) -> Produces:
        return Produces(
            frozenset(spec.capture), frozenset({*spec.capture_secret, spec.secret})
        )

    def own_values_visible_from(self, source: str) -> int | None:
        # the poll and finalize requests read what the start captured
        for number, line in enumerate(source.splitlines()):
            if re.match(r"(poll|finalize)\s*:", line):
                return number - 1
        return None

    def describe(self, spec: DeviceFlowSpec, render: Callable[..., str]) -> str:
        return (
            f"{spec.start.method} {render(spec.start.url, 'url')}, then poll "
            f"{spec.poll.method} {render(spec.poll.url, 'url')} until approved in a browser"
        )

    async def run(self, ctx: StepContext[DeviceFlowSpec]) -> Outcome:
        while True:
            flow = _Flow(ctx)
            try:
                return await flow.run()
            except _Stop as stop:
                return stop.outcome
            except _Restart:
                ctx.emit(Note(text="restarting: asking for a new code"))
                continue


class _Flow:
    """One attempt: start, show, poll, finalize (a restart makes a new one)."""

    def __init__(self, ctx: StepContext[DeviceFlowSpec]) -> None:
        self.ctx = ctx
        self.spec = ctx.spec
        self.artifacts: list[Artifact] = []
        self.captures: dict[str, str] = {}
        self.secrets: dict[str, str] = {}
        self.polls = 0
        self.interval = DEFAULT_INTERVAL
        self.slow_downs = 0
        self.states: list[str] = []
        self.facts: list[tuple[str, str]] = []
        self.poll_ctx: StepContext[Any] = ctx
        self.started = ctx.clock.monotonic()

    # -- requests ----------------------------------------------------------------------

    async def send(
        self, ctx: StepContext[Any], spec: DeviceRequest, what: str
    ) -> tuple[ResponseArtifact | None, str | None]:
        from ..httpio import HttpLimits, send

        try:
            url = ctx.render(spec.url, "url")
            headers = {k: ctx.render(str(v)) for k, v in spec.headers.items()}
            params = {k: ctx.render(str(v)) for k, v in spec.params.items()}
            form = {k: ctx.render(str(v)) for k, v in spec.form.items()}
            from ..template import render_value, secrets_used

            document = render_value(spec.json_body, ctx.variables, ctx.secret)
            content = ctx.render(spec.body) if spec.body is not None else None
            if ctx.secret_policy is not None:
                used = secrets_used(
                    [spec.url, spec.headers, spec.params, spec.form, spec.json_body, spec.body]
                )
                refusal = ctx.secret_policy.check_destination(used, url)
                if refusal is not None:
                    raise TemplateError(refusal)
        except TemplateError as exc:
            raise TemplateError(f"cannot build the {what} request: {exc}", exc.name) from None
        if form:
            content = urlencode(form)
            if not any(k.lower() == "content-type" for k in headers):
                headers["content-type"] = "application/x-www-form-urlencoded"
        request = RequestArtifact(
            method=spec.method, url=url, headers=headers, params=params, document=document,
            body=content,
        )
        if what == "start":
            self.artifacts.append(request)
            self.ctx.acting()
        sent = await send(
            ctx.clients.http, spec.method, url, headers=headers, params=params or None,
            json=document, content=content, limits=HttpLimits(deadline=spec.timeout),
        )
        if sent.response is None:
            return None, sent.error or "request failed"
        record = sent.response
        return ResponseArtifact(
            status=record.status, reason=record.reason, headers=record.headers,
            elapsed_ms=record.elapsed_ms, body=record.body, truncated=record.truncated,
            body_bytes=record.body_bytes, is_json=record.is_json, document=record.json,
            json_error=record.json_error, notice=record.notice,
        ), None

    def find(self, path: str | None, response: ResponseArtifact) -> Any:
        from ..expectations import search_json

        if not path or not response.is_json:
            return None
        try:
            return search_json(path, response.document)
        except ValueError:
            return None

    def server_words(self, response: ResponseArtifact) -> str:
        if response.status < 300:
            state = self.find(self.spec.poll.state, response)
            if state not in (None, ""):
                return f"{response.status}: {self.spec.poll.state} is {_text(state)}"
        said = self.find(self.spec.poll.message, response)
        words = _text(said) if said not in (None, "") else response.reason
        return f"{response.status} {words}".strip()

    def stop(self, status: StepStatus, summary: str, **extra: Any) -> _Stop:
        facts = [*self.facts, ("polls", str(self.polls)), ("interval", f"{self.interval:g}s")]
        if self.states:
            facts.append(("states", " → ".join(self.states)))
        artifacts = [KeyValuesArtifact(title="Device authorization", items=facts),
                     *self.artifacts]
        return _Stop(Outcome(
            status, summary, artifacts=artifacts, captures=self.captures,
            secret_captures={**self.secrets, **extra.pop("secret_captures", {})}, **extra,
        ))

    # -- the flow ----------------------------------------------------------------------

    async def run(self) -> Outcome:
        ctx, spec = self.ctx, self.spec
        response, error = await self.send(ctx, spec.start, "start")
        if response is None:
            raise self.stop(StepStatus.FAILED, f"could not start: {error}")
        self.artifacts.append(response)
        if response.status >= 400 or not response.is_json:
            why = self.server_words(response) if response.is_json else (
                f"{response.status} {response.reason}: the answer is not JSON")
            raise self.stop(StepStatus.FAILED, f"could not start: {why}")
        self.read_start(response)
        expires = self.expiry(response)
        deadline = self.started + min(expires, spec.max_wait)
        expires_at_wall = time.time() + min(expires, spec.max_wait)
        uri = _text(self.find(spec.verification_uri, response) or "")
        complete = _text(self.find(spec.verification_uri_complete, response) or "")
        code = _text(self.find(spec.user_code, response) or "")
        if not uri and not complete:
            raise self.stop(
                StepStatus.FAILED,
                f"the start response has no verification URL at {spec.verification_uri}",
            )
        self.facts += [("verification URL", uri or complete)]
        if code:
            self.facts.insert(0, ("user code", code))
        self.facts.append(("expires in", _duration(expires)))
        shown = f"open {uri or complete}" + (f" and enter the code {code}" if code else "")
        ctx.emit(Note(text=shown))
        ctx.emit(Countdown(label="code expires", until=expires_at_wall))
        question = ApproveInBrowser(
            prompt="Approve this sign-in in a browser",
            key="approve",
            user_code=code,
            verification_uri=uri or complete,
            verification_uri_complete=complete,
            expires_at=expires_at_wall,
            unattended_reason=(
                "needs a person to approve the sign-in in a browser; run it in the console, "
                "or with --sandbox"
            ),
        )
        loop = asyncio.get_running_loop()
        answer: asyncio.Task[Reply] = loop.create_task(ctx.ask(question))
        try:
            authorized = await self.poll_until_decided(deadline, answer)
        finally:
            if not answer.done():
                answer.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await answer
        return await self.finish(authorized)

    def read_start(self, response: ResponseArtifact) -> None:
        from .trigger import _with_captures

        spec = self.spec
        for target, mapping in ((self.captures, spec.capture), (self.secrets,
                                                               spec.capture_secret)):
            for name, path in mapping.items():
                value = self.find(path, response)
                if value is None:
                    raise self.stop(
                        StepStatus.FAILED,
                        f"the start response has no {path} (for {name})",
                    )
                target[name] = _text(value)
        for value in self.secrets.values():
            # masked from here on: the poll's requests and responses carry it
            with contextlib.suppress(SecretUnavailable):
                self.ctx.redactor.register(value)
        interval = _number(self.find(spec.interval, response))
        self.interval = interval if interval else DEFAULT_INTERVAL
        self.poll_ctx = _with_captures(cast(Any, self.ctx), self.captures, self.secrets)

    def expiry(self, response: ResponseArtifact) -> float:
        spec = self.spec
        seconds = _number(self.find(spec.expires_in, response))
        if seconds is None and spec.expires_at:
            seconds = _seconds_until(self.find(spec.expires_at, response), time.time())
        return DEFAULT_EXPIRY if seconds is None else max(seconds, 0.0)

    async def poll_until_decided(
        self, deadline: float, answer: asyncio.Task[Reply]
    ) -> ResponseArtifact:
        """Poll until approved (the response that said so), or raise _Stop/_Restart."""
        ctx, spec, clock = self.ctx, self.spec, self.ctx.clock
        errors = 0
        last_poll = clock.monotonic()
        while True:
            due = last_poll + self.interval
            if due >= deadline:
                summary = f"{spec.messages.expired} (no poll is sent after the code expires)"
                if self.slow_downs >= DRIFT_AFTER:
                    summary += "; " + spec.messages.drift.format(count=self.slow_downs)
                raise self.stop(StepStatus.FAILED, summary)
            wait = max(due - clock.monotonic(), 0.0)
            ctx.emit(Countdown(label="next poll", until=time.time() + wait))
            self.progress(wait)
            await self.wait_or_answer(wait, answer)
            response, error = await self.send(self.poll_ctx, spec.poll, "poll")
            self.polls += 1
            last_poll = clock.monotonic()
            if response is None:
                errors += 1
                ctx.emit(Note(text=f"poll {self.polls} failed: {error}"))
                if errors > POLL_ERROR_LIMIT:
                    raise self.stop(StepStatus.FAILED, f"polls keep failing: {error}")
                continue
            kind, word = self.classify(response)
            self.record_state(word)
            if kind == "error" and response.status >= 500:
                errors += 1
                if errors > POLL_ERROR_LIMIT:
                    raise self.stop(StepStatus.FAILED,
                                    f"polls keep failing: {self.server_words(response)}")
                continue
            errors = 0
            if kind == "pending":
                continue
            if kind == "slow_down":
                self.slow_downs += 1
                self.interval += SLOW_DOWN_STEP
                ctx.emit(Note(text=f"server asked to slow down: polling every "
                                   f"{self.interval:g}s from now on"))
                if self.slow_downs == DRIFT_AFTER:
                    ctx.emit(Note(text=spec.messages.drift.format(count=self.slow_downs)))
                continue
            self.artifacts.append(response)
            if kind == "authorized":
                return response
            if kind == "denied":
                raise self.stop(StepStatus.FAILED, f"{spec.messages.denied} "
                                                   f"({self.server_words(response)})")
            if kind == "expired":
                raise self.stop(StepStatus.FAILED, f"{spec.messages.expired} "
                                                   f"({self.server_words(response)})")
            if kind == "not_found":
                raise self.stop(StepStatus.FAILED, f"{spec.messages.not_found} "
                                                   f"({self.server_words(response)})")
            raise self.stop(StepStatus.FAILED, f"poll refused: {self.server_words(response)}")

    def progress(self, wait: float) -> None:
        self.ctx.emit(Progress(
            label=f"waiting for approval: {self.polls} poll(s) so far, polling every "
                  f"{self.interval:g}s (next in {_duration(wait)})",
            done=self.polls,
        ))

    async def wait_or_answer(self, wait: float, answer: asyncio.Task[Reply]) -> None:
        """Sleep until the next poll; the operator may cancel or restart meanwhile."""
        sleeper = asyncio.ensure_future(self.ctx.clock.sleep(wait))
        try:
            if not answer.done():
                await asyncio.wait({sleeper, answer}, return_when=asyncio.FIRST_COMPLETED)
            if answer.done():
                reply = answer.result()  # NoAnswer / StepCancelled propagate from here
                if reply.value == "restart":
                    raise _Restart
            await sleeper
        finally:
            if not sleeper.done():
                sleeper.cancel()

    def classify(self, response: ResponseArtifact) -> tuple[Kind, str]:
        poll = self.spec.poll
        found = self.find(poll.state, response)
        word = _text(found) if found not in (None, "") else ""
        if word:
            for kind, words in (
                ("authorized", poll.authorized), ("pending", poll.pending),
                ("slow_down", poll.slow_down), ("denied", poll.denied),
                ("expired", poll.expired),
            ):
                if word in words:
                    return cast(Kind, kind), word
        if 200 <= response.status < 300:
            if not poll.authorized and (
                self.spec.finalize is not None or self.find(self.spec.token, response)
            ):
                return "authorized", word or "authorized"
            return "error", word or str(response.status)
        if response.status == 410:
            return "expired", word or "410"
        if response.status == 404:
            return "not_found", word or "404"
        return "error", word or str(response.status)

    def record_state(self, word: str) -> None:
        if word and (not self.states or self.states[-1] != word):
            self.states.append(word)
            self.ctx.emit(StateChange(state=word))

    async def finish(self, authorized: ResponseArtifact) -> Outcome:
        spec, ctx = self.spec, self.ctx
        source = authorized
        if spec.finalize is not None:
            response, error = await self.send(self.poll_ctx, spec.finalize, "finalize")
            if response is None:
                raise self.stop(StepStatus.FAILED, f"approved, but finalize failed: {error}")
            token_value = self.find(spec.token, response) if response.status < 300 else None
            if isinstance(token_value, str) and token_value:
                with contextlib.suppress(SecretUnavailable):
                    ctx.redactor.register(token_value)  # before the response is kept
            self.artifacts.append(response)
            if response.status == 410:
                raise self.stop(StepStatus.FAILED, f"{spec.messages.expired} "
                                                   f"({self.server_words(response)})")
            if response.status == 404:
                raise self.stop(StepStatus.FAILED, f"{spec.messages.not_found} "
                                                   f"({self.server_words(response)})")
            if response.status >= 300:
                raise self.stop(StepStatus.FAILED,
                                f"approved, but finalize was refused: "
                                f"{self.server_words(response)}")
            source = response
        token = self.find(spec.token, source)
        if not isinstance(token, str) or not token:
            raise self.stop(StepStatus.FAILED, f"approved, but the answer has no token at "
                                               f"{spec.token}")
        with contextlib.suppress(SecretUnavailable):
            ctx.redactor.register(token)
        lifetime = _number(self.find(spec.token_expires_in, source))
        if lifetime is None and spec.token_expires_at:
            lifetime = _seconds_until(self.find(spec.token_expires_at, source), time.time())
        shown = "***" + (f" (expires in {_duration(lifetime)})" if lifetime is not None else "")
        self.facts.append((f"secret {spec.secret}", shown))
        where = "this run"
        if spec.keep == "keyring":
            environment = str(ctx.variables.get("environment", ""))
            problem = await _keep_in_keyring(environment, spec.secret, token)
            where = (f"this run (not the keyring: {problem})" if problem
                     else f"the keyring (opsconsole:{environment}) and this run")
        self.facts.append(("kept in", where))
        summary = (f"authorized after {self.polls} poll(s); token kept as secret "
                   f"{spec.secret} in {where}" + (
                       f", expires in {_duration(lifetime)}" if lifetime is not None else ""))
        raise self.stop(StepStatus.PASSED, summary, secret_captures={spec.secret: token})


async def _keep_in_keyring(environment: str, name: str, value: str,
                           timeout: float = 5.0) -> str | None:
    """Store the token in the environment's keyring off the loop; the problem, or None."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[str | None] = loop.create_future()

    def store() -> None:
        problem: str | None = None
        try:
            import keyring

            keyring.set_password(f"opsconsole:{environment}", name, value)
        except Exception as exc:  # noqa: BLE001 - reported, the token stays in the run
            problem = f"the keyring failed: {type(exc).__name__}"
        def deliver() -> None:
            if not done.done():
                done.set_result(problem)

        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            loop.call_soon_threadsafe(deliver)

    # a daemon thread: a keyring that never answers must not keep the process alive
    threading.Thread(target=store, name=f"keyring set {name}", daemon=True).start()
    try:
        return await asyncio.wait_for(done, timeout)
    except TimeoutError:
        return f"the keyring did not answer within {timeout:g}s"
