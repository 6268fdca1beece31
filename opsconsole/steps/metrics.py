"""``ops metrics``: scrape a ``/metrics`` endpoint and assert on its samples.

The body is parsed with ``prometheus_client``'s own parser (never by hand):
histograms (``_bucket``, ``_sum``, ``_count``), escaped label values, NaN and
+Inf come out as the exposition format defines them. A sample is found by its
name and a subset of its labels; its value is compared with ``ok`` (and, when
``ok`` fails, with ``warn``: passed with a warning). NaN never passes; a
missing sample fails, naming the labels it looked for.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import Field, field_validator

from ..artifacts import Artifact, TableArtifact
from ..model import StrDict
from ..run import Assertion, StepStatus
from ..thresholds import ThresholdField, format_value
from . import register
from .base import Outcome, StepContext, StepSpec, StepType
from .http import RequestFields, exchange, unsent_outcome

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

__all__ = ["MetricsSpec", "MetricsStep", "SampleCheck", "parse_exposition"]


class SampleCheck(StepSpec):
    """One sample to find (name + a subset of its labels) and the value it must have."""

    name: str
    labels: StrDict = Field(default_factory=dict)
    ok: ThresholdField
    warn: ThresholdField | None = None
    #: the metric family must have a ``# HELP`` line
    help: bool = True

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value or not all(ch.isalnum() or ch in "_:" for ch in value):
            raise ValueError(f"invalid metric name {value!r}")
        return value


class MetricsSpec(RequestFields):
    samples: list[SampleCheck] = Field(min_length=1)


@dataclass(frozen=True)
class Found:
    family: str
    documented: bool
    labels: dict[str, str]
    value: float


def parse_exposition(text: str) -> list[Metric]:
    """Every metric family in a Prometheus text-format body (ValueError when it is not)."""
    from prometheus_client.parser import text_string_to_metric_families

    return list(text_string_to_metric_families(text))


def _labels_text(labels: dict[str, str]) -> str:
    if not labels:
        return "{}"
    pairs = (f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in labels.items())
    return "{" + ", ".join(pairs) + "}"


def _find(families: list[Metric], check: SampleCheck) -> list[Found]:
    found = []
    for family in families:
        for sample in family.samples:
            if sample.name != check.name:
                continue
            if all(sample.labels.get(k) == v for k, v in check.labels.items()):
                found.append(
                    Found(family.name, bool(family.documentation), dict(sample.labels),
                          float(sample.value))
                )
    return found


def _failed(name: str, detail: str, row: list[str]) -> tuple[Assertion, list[str], bool]:
    return Assertion(name=name, ok=False, detail=detail), row, False


def judge_sample(families: list[Metric], check: SampleCheck) -> tuple[Assertion, list[str], bool]:
    """(assertion, table row, warned) for one sample check."""
    wanted = _labels_text(check.labels)
    name = check.name + (wanted if check.labels else "")
    matches = _find(families, check)
    expected = f"{check.ok}" + (f" (warn {check.warn})" if check.warn else "")
    if not matches:
        detail = f"no sample {check.name} with labels {wanted} in the response"
        return _failed(name, detail, [name, "-", expected, "missing"])
    if len(matches) > 1:
        shown = "; ".join(_labels_text(m.labels) for m in matches[:3])
        detail = (
            f"{len(matches)} samples {check.name} match labels {wanted} ({shown}"
            f"{'; …' if len(matches) > 3 else ''}): give more labels to pick one"
        )
        return _failed(name, detail, [name, "-", expected, "ambiguous"])
    sample = matches[0]
    value = format_value(sample.value)
    row = [name, value, expected]
    if check.help and not sample.documented:
        detail = f"{check.name}: the metric family {sample.family} has no # HELP line"
        return Assertion(name=name, ok=False, detail=detail), [*row, "no HELP"], False
    if check.ok.met(sample.value):
        detail = f"{check.name} = {value}, expected {check.ok}"
        return Assertion(name=name, ok=True, detail=detail), [*row, "ok"], False
    if check.warn is not None and check.warn.met(sample.value):
        detail = f"{check.name} = {value}: warning, expected {check.ok} (within warn {check.warn})"
        return Assertion(name=name, ok=True, detail=detail), [*row, "warning"], True
    detail = f"{check.name} = {value}, expected {check.ok}"
    if value == "NaN":
        detail += " (NaN is not a number: never a pass)"
    return Assertion(name=name, ok=False, detail=detail), [*row, "failed"], False


@register
class MetricsStep(StepType[MetricsSpec]):
    kind = "metrics"
    spec = MetricsSpec
    description = "scrape a /metrics endpoint; assert on samples by name, labels and value"
    tracks_action = True

    def default_title(self, spec: MetricsSpec, section_title: str) -> str:
        return f"metrics {spec.url}"

    def describe(self, spec: MetricsSpec, render: Callable[..., str]) -> str:
        names = ", ".join(f"{s.name} {s.ok}" for s in spec.samples[:4])
        more = f" (+{len(spec.samples) - 4} more)" if len(spec.samples) > 4 else ""
        return f"{spec.method} {render(spec.url, 'url')}: {names}{more}"

    async def run(self, ctx: StepContext[MetricsSpec]) -> Outcome:
        spec = ctx.spec
        request, response, error, acted = await exchange(ctx, spec)
        if response is None:
            return unsent_outcome(ctx, request, error or "request failed", acted)
        artifacts: list[Artifact] = [request]
        if not 200 <= response.status < 300:
            return Outcome(
                StepStatus.FAILED,
                f"expected status 2xx from the metrics endpoint, got {response.status} "
                f"{response.reason}".rstrip(),
                artifacts=[request, response],
                duration_ms=response.elapsed_ms,
            )
        if response.truncated:
            return Outcome(
                StepStatus.FAILED,
                f"the metrics response was cut at {response.body_bytes:,} bytes: "
                "not judged on a partial scrape",
                artifacts=artifacts,
                duration_ms=response.elapsed_ms,
            )
        try:
            # the parser is pure Python: a large scrape must not hold the event loop
            families = await asyncio.to_thread(parse_exposition, response.body)
        except ValueError as exc:
            return Outcome(
                StepStatus.FAILED,
                f"the response is not in Prometheus text format: {exc}",
                artifacts=[request, response],
                duration_ms=response.elapsed_ms,
            )
        assertions: list[Assertion] = []
        rows: list[list[str]] = []
        warnings: list[str] = []
        for check in spec.samples:
            assertion, row, warned = judge_sample(families, check)
            assertions.append(assertion)
            rows.append(row)
            if warned:
                warnings.append(assertion.detail)
        artifacts.append(
            TableArtifact(
                title="Samples", columns=["sample", "value", "expected", "state"], rows=rows
            )
        )
        summary = f"{len(spec.samples)} sample(s) as expected"
        if warnings:
            summary = f"passed with {len(warnings)} warning(s): " + "; ".join(warnings)
        return Outcome.judged(
            assertions, summary, artifacts=artifacts, duration_ms=response.elapsed_ms
        )
