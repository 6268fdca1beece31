"""The dashboard's engine: the read-only checks runbooks mark ``watch: true``, run again and again.

A watched step is an ordinary ``ops`` step (http, metrics, promql...) that only reads
(the loader refuses ``watch`` on a mutating or human step). The dashboard runs it
outside any run: nothing is saved, nothing is audited, no question can be asked,
and ``ctx.acting()`` of a mutating step is refused, so a watch can never act on a
system (the loader already refuses ``watch`` there).

:class:`Watcher` runs one *round* at a time: every watch concurrently, at most
``concurrency`` at once, each within ``timeout`` seconds (a check that hangs is
reported as timed out; the round never waits for it longer). Rounds never
overlap: the caller starts the next one only after the last returned (the
dashboard re-arms its timer then). A failure of one check never ends a round.

Values on their way out are redacted by the same :class:`~opsconsole.secrets.Redactor`
that holds the environment's secrets.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .analysis import SystemClock
from .artifacts import Artifact, MeasurementsArtifact, ResponseArtifact, SeriesArtifact
from .clients import Clients, ClientSettings
from .config import Environment
from .errors import OpsConsoleError, StepRefused, TemplateError
from .model import Runbook, Step
from .operator import Event, NoAnswer, Question, Reply
from .run import StepResult, StepStatus
from .secrets import Redactor, SecretPolicy, SecretStore
from .steps.base import StepContext
from .template import references

__all__ = ["Reading", "Watch", "Watcher", "watches"]

#: how many values a watch keeps for its sparkline
HISTORY = 40
#: checks per set of clients: httpcore's pool scans its connections on every request
#: (quadratic in connections), so a round of many checks uses several small pools
CLIENT_GROUP = 5


@dataclass(frozen=True)
class Watch:
    """One watched step of one runbook."""

    runbook: Runbook
    step: Step

    @property
    def key(self) -> str:
        return f"{self.runbook.id}/{self.step.id}"

    @property
    def service(self) -> str:
        return self.runbook.service or self.runbook.title

    @property
    def section(self) -> str:
        """The title of the runbook section that handles this check."""
        return self.runbook.sections[self.step.section].title


def watches(runbooks: Iterable[Runbook]) -> list[Watch]:
    """Every step marked ``watch: true``, in runbook and document order."""
    return [
        Watch(runbook, step)
        for runbook in runbooks
        for step in runbook.steps
        if getattr(step.spec, "watch", False)
    ]


@dataclass
class Reading:
    """What one check of one watch came to."""

    status: StepStatus
    summary: str
    #: one line per assertion: what was measured against what threshold
    details: list[str] = field(default_factory=list)
    latency_ms: float | None = None
    #: wall-clock time the check finished (time.time())
    at: float = 0.0
    #: the check did not answer within the dashboard's timeout
    timed_out: bool = False
    #: numbers for the sparkline (a range query's values, or this check's own history)
    series: list[float] = field(default_factory=list)


class _NoRun:
    """A watch is not part of a run: a step that asks about its run is not watchable."""

    def result(self, step_id: str) -> StepResult:
        raise StepRefused("a watched check is not part of a run")

    def phase_of(self, step_id: str) -> list[Step]:
        raise StepRefused("a watched check is not part of a run")

    def gate_blockers(self, step: Step) -> list[Step]:
        raise StepRefused("a watched check is not part of a run")


def _numbers(artifacts: Sequence[Artifact]) -> list[float]:
    """Numbers for a sparkline: a PromQL range's points, else the measurements' values."""
    for artifact in artifacts:
        if isinstance(artifact, SeriesArtifact):
            return [p for p in artifact.points if p is not None and math.isfinite(p)]
    values: list[float] = []
    for artifact in artifacts:
        if isinstance(artifact, MeasurementsArtifact):
            for row in artifact.rows:
                try:
                    number = float(row.value)
                except ValueError:
                    continue
                if math.isfinite(number):
                    values.append(number)
    return values


def _latency(artifacts: Sequence[Artifact]) -> float | None:
    for artifact in artifacts:
        if isinstance(artifact, ResponseArtifact):
            return artifact.elapsed_ms
    return None


class Watcher:
    """Runs the watches of one environment, a round at a time."""

    def __init__(
        self,
        environment: Environment,
        items: Sequence[Watch],
        *,
        concurrency: int = 8,
        timeout: float = 10.0,
        redactor: Redactor | None = None,
        clients: Clients | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.environment = environment
        self.items = list(items)
        self.concurrency = concurrency
        self.timeout = timeout
        self.redactor = redactor or Redactor()
        #: one set of clients per CLIENT_GROUP checks (given ``clients``: that one for all),
        #: all sharing one TLS context
        self._groups: list[Clients] = [clients] if clients is not None else []
        if clients is None:
            import httpx

            settings = ClientSettings.for_environment(environment)
            # a CA bundle path is left to each client, as the session's Clients do
            tls = (
                None
                if isinstance(settings.verify, str)
                else httpx.create_ssl_context(verify=settings.verify, trust_env=False)
            )
            self._groups = [
                Clients(settings, ssl_context=tls)
                for _ in range(max(1, -(-len(self.items) // CLIENT_GROUP)))
            ]
        self.clients = self._groups[0]
        self._group_of = {
            item.key: n // CLIENT_GROUP if clients is None else 0
            for n, item in enumerate(self.items)
        }
        self.secrets = SecretStore(
            environment.name, self.redactor, allowed=environment.secrets
        )
        self.policy = SecretPolicy(environment)
        self.clock = SystemClock()
        self.problems: list[str] = []
        self.readings: dict[str, Reading] = {}
        self._history: dict[str, deque[float]] = {}
        self._started = False

    async def start(self) -> list[str]:
        """Read the secrets the watches need; returns the problems (shown, never fatal)."""
        if self._started:
            return self.problems
        self._started = True
        wanted = dict.fromkeys(
            name
            for item in self.items
            for name in item.runbook.secrets
            if name in self.environment.secrets
        )
        self.problems = await self.secrets.load(wanted)
        return self.problems

    def missing(self, item: Watch) -> list[str]:
        """Variables the step uses that this environment does not define."""
        text = item.step.spec.model_dump_json()
        names = []
        for reference in references(text):
            if reference.startswith("secrets."):
                continue
            if reference not in self.environment.variables and reference != "environment":
                names.append(reference)
        return list(dict.fromkeys(names))

    async def round(self) -> dict[str, Reading]:
        """Check every watch once (bounded, concurrent); never raises for one check."""
        await self.start()
        gate = asyncio.Semaphore(self.concurrency)

        async def one(item: Watch) -> None:
            async with gate:
                reading = await self._check(item)
            self.readings[item.key] = reading

        await asyncio.gather(*(one(item) for item in self.items))
        return dict(self.readings)

    async def _check(self, item: Watch) -> Reading:
        missing = self.missing(item)
        if missing:
            return Reading(
                StepStatus.SKIPPED,
                f"not configured: environment {self.environment.name!r} does not define "
                + ", ".join(repr(name) for name in missing),
                at=time.time(),
            )
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout):
                outcome = await item.step.type.run(self._context(item))
        except TimeoutError:
            return self._remember(
                item,
                Reading(
                    StepStatus.INCONCLUSIVE,
                    f"timed out: no answer within {self.timeout:g} s",
                    at=time.time(),
                    timed_out=True,
                ),
            )
        except asyncio.CancelledError:
            raise
        except OpsConsoleError as exc:
            return self._remember(
                item, Reading(StepStatus.FAILED, self.redactor.redact(str(exc)), at=time.time())
            )
        except Exception as exc:  # noqa: BLE001 - one broken check never ends the dashboard
            return self._remember(
                item,
                Reading(
                    StepStatus.FAILED,
                    f"the check stopped unexpectedly ({type(exc).__name__})",
                    at=time.time(),
                ),
            )
        redact = self.redactor.redact
        latency = _latency(outcome.artifacts)
        if latency is None:
            latency = round((time.perf_counter() - started) * 1000, 1)
        return self._remember(
            item,
            Reading(
                outcome.status,
                redact(outcome.summary),
                details=[redact(a.detail) for a in outcome.assertions if a.detail],
                latency_ms=latency,
                at=time.time(),
                series=_numbers(outcome.artifacts),
            ),
        )

    def _remember(self, item: Watch, reading: Reading) -> Reading:
        """A check without a series of its own gets its latency history as a sparkline."""
        if reading.series:
            return reading
        history = self._history.setdefault(item.key, deque(maxlen=HISTORY))
        if reading.latency_ms is not None:
            history.append(reading.latency_ms)
        reading.series = list(history)
        return reading

    def _context(self, item: Watch) -> StepContext[Any]:
        environment = self.environment
        variables: Mapping[str, str] = {
            **environment.variables,
            "environment": environment.name,
        }
        trusted = frozenset(environment.variables)

        def secret(name: str) -> str:
            value = self.secrets.cached(name)
            if value is None:
                raise TemplateError(f"secret {name!r} is not available")
            return value.reveal()

        def render(text: str, context: Any = "text") -> str:
            from .template import render as render_template

            return render_template(text, variables, secret, context=context, trusted=trusted)

        async def ask(question: Question) -> Reply:
            raise NoAnswer("a watched check cannot ask the operator anything")

        def emit(event: Event) -> None:
            return None

        def refuse() -> None:
            # reading steps say "acting" too (a GET goes out); only a mutating one is refused
            if item.step.mutating:
                raise StepRefused("the dashboard only reads: a watched check cannot act")

        return StepContext(
            step=item.step,
            spec=item.step.spec,
            variables=variables,
            secret=secret,
            render=render,
            redactor=self.redactor,
            clients=self._groups[self._group_of[item.key]],
            clock=self.clock,
            run=_NoRun(),
            ask=ask,
            emit=emit,
            checkpoint=lambda artifacts: None,
            secret_labels={},
            mutating=False,
            on_acting=refuse,
            secret_policy=self.policy,
            trusted=trusted,
        )

    async def aclose(self) -> None:
        for clients in self._groups:
            await clients.aclose()
