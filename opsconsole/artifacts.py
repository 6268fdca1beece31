"""Typed artifacts: what a step produced beside its verdict.

A :class:`~opsconsole.run.StepResult` is a common envelope (status, timing,
summary, assertions) plus a list of artifacts. Each artifact renders itself
for every place a result is shown:

- ``blocks()``: neutral display blocks (title, text, language) the console
  turns into widgets (the engine never imports Textual);
- ``markdown()``: the evidence report;
- ``model_dump()``: JSON (``check --json``, saved run state);
- ``junit()``: the text of a JUnit failure.

Artifacts are redacted and *then* capped by the session
(:func:`redact_and_cap`): redact first, truncate after.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "Artifact",
    "Block",
    "CommandArtifact",
    "JobResultArtifact",
    "KeyValuesArtifact",
    "MeasurementsArtifact",
    "OutputArtifact",
    "ProgressArtifact",
    "RequestArtifact",
    "ResponseArtifact",
    "SeriesArtifact",
    "StatesArtifact",
    "TableArtifact",
    "fence",
    "redact_and_cap",
]

#: characters of a body / output kept in saved state and evidence (after redaction)
SAVED_TEXT_LIMIT = 64 * 1024
#: rows of a table kept
SAVED_ROWS_LIMIT = 500


@dataclass(frozen=True)
class Block:
    """One piece of a step's detail: a heading and text (``language`` for highlighting)."""

    title: str
    text: str
    language: str = ""


def fence(text: str, language: str = "") -> str:
    ticks = "```"
    while ticks in text:
        ticks += "`"
    return f"{ticks}{language}\n{text.rstrip()}\n{ticks}"


def _cut_head(text: str, limit: int) -> tuple[str, bool]:
    if len(text) <= limit:
        return text, False
    return text[:limit], True


def _cut_tail(text: str, limit: int) -> tuple[str, bool]:
    if len(text) <= limit:
        return text, False
    return text[-limit:], True


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


class _Artifact(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def blocks(self) -> list[Block]:
        """Every field as JSON: what an artifact without its own rendering shows."""
        fields = self.model_dump(exclude={"type"})
        return [Block(str(getattr(self, "type", "artifact")), _json(fields), "json")]

    def markdown(self) -> str:
        parts = []
        for block in self.blocks():
            parts.append(f"{block.title}:\n\n{fence(block.text, block.language)}")
        return "\n\n".join(parts)

    def junit(self) -> str:
        return "\n".join(f"{block.title}:\n{block.text}" for block in self.blocks())

    def capped(self) -> Self:
        """A copy that fits in saved state (called after redaction)."""
        return self


class RequestArtifact(_Artifact):
    type: Literal["request"] = "request"
    method: str
    url: str
    headers: dict[str, str] = Field(default_factory=dict)
    params: dict[str, str] = Field(default_factory=dict)
    document: Any = None
    body: str | None = None

    def text(self) -> str:
        lines = [f"{self.method} {self.url}"]
        lines += [f"{name}: {value}" for name, value in self.headers.items()]
        if self.params:
            lines.append("params " + json.dumps(self.params, ensure_ascii=False))
        if self.document is not None:
            lines.append(_json(self.document))
        elif self.body:
            lines.append(self.body)
        return "\n".join(lines)

    def blocks(self) -> list[Block]:
        return [Block("Request", self.text(), "http")]

    def capped(self) -> Self:
        if self.body is None:
            return self
        body, cut = _cut_head(self.body, SAVED_TEXT_LIMIT)
        return self.model_copy(update={"body": body + ("\n… (cut)" if cut else "")})


class ResponseArtifact(_Artifact):
    type: Literal["response"] = "response"
    status: int
    reason: str = ""
    headers: dict[str, str] = Field(default_factory=dict)
    elapsed_ms: float = 0.0
    body: str = ""
    #: the body was longer than what is kept (read cap or saved cap)
    truncated: bool = False
    body_bytes: int | None = None
    is_json: bool = False
    document: Any = None
    json_error: str | None = None
    #: what the operator should know about the body (cut at the read cap, ...)
    notice: str | None = None

    def head(self) -> str:
        return f"{self.status} {self.reason}".strip() + f" · {self.elapsed_ms:.0f} ms"

    def blocks(self) -> list[Block]:
        if self.is_json:
            text, language = _json(self.document), "json"
        else:
            text, language = self.body or "(empty body)", ""
        if self.truncated:
            text += "\n… " + (self.notice or "body truncated")
        return [Block(f"Response {self.head()}", text, language)]

    def markdown(self) -> str:
        shown = {
            "status": self.status,
            "reason": self.reason,
            "headers": self.headers,
            "elapsed_ms": self.elapsed_ms,
            "body": self.body,
            "truncated": self.truncated,
        }
        if self.notice:
            shown["notice"] = self.notice
        return f"Response:\n\n{fence(_json(shown), 'json')}"

    def capped(self) -> Self:
        body, cut = _cut_head(self.body, SAVED_TEXT_LIMIT)
        if not cut:
            return self
        # the parsed document of a body too long to keep is kept as (cut) text only
        return self.model_copy(
            update={"body": body, "truncated": True, "document": None, "is_json": False}
        )


class CommandArtifact(_Artifact):
    """The command as it ran: where, with what limits (never the environment's values)."""

    type: Literal["command"] = "command"
    command: str
    where: str = "this machine"
    cwd: str = ""
    timeout_s: float | None = None
    env_names: list[str] = Field(default_factory=list)

    def blocks(self) -> list[Block]:
        return [Block("Command", "$ " + self.command, "bash")]

    def markdown(self) -> str:
        lines = [f"Command ({self.where}" + (f", in {self.cwd}" if self.cwd else "") + "):"]
        lines += ["", fence(self.command, "bash")]
        if self.env_names:
            lines += ["", "Environment passed: " + ", ".join(f"`{n}`" for n in self.env_names)]
        return "\n".join(lines)


class OutputArtifact(_Artifact):
    """A command's output: the tail, with counts of everything it printed."""

    type: Literal["output"] = "output"
    text: str = ""
    lines_total: int = 0
    bytes_total: int = 0
    #: earlier output was dropped (only the tail is kept)
    truncated: bool = False
    exit_code: int | None = None
    #: still running when this was saved (a checkpoint)
    partial: bool = False

    def title(self) -> str:
        title = "Output"
        if self.partial:
            title += " so far"
        if self.truncated:
            title += f" (last part of {self.lines_total} lines)"
        return title

    def blocks(self) -> list[Block]:
        return [Block(self.title(), self.text or "(no output)")]

    def capped(self) -> Self:
        text, cut = _cut_tail(self.text, SAVED_TEXT_LIMIT)
        if not cut:
            return self
        newline = text.find("\n")
        if 0 <= newline < 200:
            text = text[newline + 1 :]  # start at a line boundary
        return self.model_copy(update={"text": text, "truncated": True})


class StatesArtifact(_Artifact):
    """The states a followed job went through."""

    type: Literal["states"] = "states"
    states: list[str] = Field(default_factory=list)

    def blocks(self) -> list[Block]:
        return [Block("States", " → ".join(self.states) or "(none seen)")]

    def markdown(self) -> str:
        return "- States: " + (" → ".join(self.states) or "(none seen)")


class MeasurementRow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phase: str
    value: str = ""
    message: str = ""
    at: float = 0.0


class MeasurementsArtifact(_Artifact):
    """Every measurement of an analysis or a follow, with the verdict."""

    type: Literal["measurements"] = "measurements"
    title: str = "Measurements"
    phase: str = ""
    message: str = ""
    rows: list[MeasurementRow] = Field(default_factory=list)
    #: measurements dropped from the front (only the last SAVED_ROWS_LIMIT are kept)
    dropped: int = 0

    def _lines(self) -> list[str]:
        lines = [f"#{n + 1 + self.dropped} +{row.at:.1f}s {row.phase}" for n, row in
                 enumerate(self.rows)]
        return [
            line + (f" {row.value}" if row.value else "") + (f": {row.message}" if row.message
                                                             else "")
            for line, row in zip(lines, self.rows, strict=True)
        ]

    def blocks(self) -> list[Block]:
        head = f"{self.title}: {self.phase}" + (f" ({self.message})" if self.message else "")
        lines = self._lines()
        if self.dropped:
            lines.insert(0, f"… {self.dropped} earlier measurements not kept")
        return [Block(head, "\n".join(lines) or "(none)")]

    def markdown(self) -> str:
        lines = [
            f"{self.title}: **{self.phase}**" + (f" — {self.message}" if self.message else ""),
            "",
            "| # | at | phase | value | message |",
            "|---|---|---|---|---|",
        ]
        for n, row in enumerate(self.rows, start=1 + self.dropped):
            lines.append(
                f"| {n} | +{row.at:.1f}s | {row.phase} | {_cell(row.value)} | "
                f"{_cell(row.message)} |"
            )
        return "\n".join(lines)

    def capped(self) -> Self:
        if len(self.rows) <= SAVED_ROWS_LIMIT:
            return self
        extra = len(self.rows) - SAVED_ROWS_LIMIT
        return self.model_copy(
            update={"rows": self.rows[extra:], "dropped": self.dropped + extra}
        )


class TableArtifact(_Artifact):
    type: Literal["table"] = "table"
    title: str
    columns: list[str]
    rows: list[list[str]] = Field(default_factory=list)

    def blocks(self) -> list[Block]:
        widths = [
            max([len(c), *(len(r[i]) for r in self.rows if i < len(r))])
            for i, c in enumerate(self.columns)
        ]
        lines = ["  ".join(c.ljust(w) for c, w in zip(self.columns, widths, strict=True))]
        for row in self.rows:
            lines.append("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=False)))
        return [Block(self.title, "\n".join(line.rstrip() for line in lines))]

    def markdown(self) -> str:
        lines = [f"{self.title}:", "", "| " + " | ".join(self.columns) + " |"]
        lines.append("|" + "---|" * len(self.columns))
        lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in self.rows]
        return "\n".join(lines)

    def capped(self) -> Self:
        if len(self.rows) <= SAVED_ROWS_LIMIT:
            return self
        return self.model_copy(update={"rows": self.rows[:SAVED_ROWS_LIMIT]})


class KeyValuesArtifact(_Artifact):
    type: Literal["keyvalues"] = "keyvalues"
    title: str
    items: list[tuple[str, str]] = Field(default_factory=list)

    def blocks(self) -> list[Block]:
        width = max((len(k) for k, _ in self.items), default=0)
        return [Block(self.title, "\n".join(f"{k.ljust(width)}  {v}" for k, v in self.items))]

    def markdown(self) -> str:
        return f"{self.title}:\n\n" + "\n".join(f"- {k}: {v}" for k, v in self.items)


#: eight levels of a sparkline, lowest first
SPARK = "▁▂▃▄▅▆▇█"


class SeriesArtifact(_Artifact):
    """A time series (a PromQL range query) drawn as a sparkline; None is a gap (no data)."""

    type: Literal["series"] = "series"
    title: str = "Series"
    query: str = ""
    #: seconds between points
    step_s: float = 0.0
    points: list[float | None] = Field(default_factory=list)
    #: the threshold shown beside it (``< 0.01``)
    threshold: str = ""

    def sparkline(self, width: int = 60) -> str:
        points = self.points[-width:]
        known = [p for p in points if p is not None]
        if not known:
            return " " * len(points)
        low, high = min(known), max(known)
        span = high - low
        return "".join(
            " " if p is None else SPARK[0 if span == 0 else round((p - low) / span * 7)]
            for p in points
        )

    def summary(self) -> str:
        known = [p for p in self.points if p is not None]
        if not known:
            return f"{len(self.points)} points, no data"
        from .thresholds import format_value

        parts = [
            f"min {format_value(min(known))}",
            f"max {format_value(max(known))}",
            f"last {format_value(known[-1])}",
            f"{len(self.points)} points every {self.step_s:g}s",
        ]
        if self.threshold:
            parts.append(f"threshold {self.threshold}")
        return " · ".join(parts)

    def blocks(self) -> list[Block]:
        return [Block(self.title, f"{self.sparkline()}\n{self.summary()}")]

    def markdown(self) -> str:
        head = f"{self.title} (`{_cell(self.query)}`): {self.summary()}"
        return f"{head}\n\n{fence(self.sparkline())}"

    def capped(self) -> Self:
        if len(self.points) <= SAVED_ROWS_LIMIT:
            return self
        return self.model_copy(update={"points": self.points[-SAVED_ROWS_LIMIT:]})


#: the badge's mark, so it reads without colour too
BADGE_MARK = {"Success": "✓", "Partial": "▲", "Failed": "✗"}


class JobResultArtifact(_Artifact):
    """A job's result as the operator reads it: a badge, per-source statuses, key metrics,
    warnings (the seed's "Manual sync status" panel)."""

    type: Literal["job_result"] = "job_result"
    badge: Literal["Success", "Partial", "Failed"]
    #: the job's own overall status ("" when the runbook does not point at one)
    status: str = ""
    #: source, status, detail ("2 errors: …"), "ok" or "problem"
    sources: list[list[str]] = Field(default_factory=list)
    metrics: list[tuple[str, str]] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)

    def head(self) -> str:
        status = f" (status {self.status})" if self.status else ""
        return f"{BADGE_MARK[self.badge]} {self.badge}{status}"

    def blocks(self) -> list[Block]:
        lines = []
        if self.metrics:
            width = max(len(k) for k, _ in self.metrics)
            lines += [f"{k.ljust(width)}  {v}" for k, v in self.metrics]
        if self.warnings:
            lines += ["", f"Warnings ({len(self.warnings)}):"] if lines else [
                f"Warnings ({len(self.warnings)}):"]
            lines += [f"  ! {w}" for w in self.warnings[:20]]
            if len(self.warnings) > 20:
                lines.append(f"  … {len(self.warnings) - 20} more in the evidence")
        blocks = [Block(f"Result: {self.head()}", "\n".join(lines) or "(no key metrics)")]
        if self.sources:
            table = TableArtifact(
                title="Sources", columns=["source", "status", "detail"],
                rows=[[mark_row(row)[0], *row[1:3]] for row in self.sources],
            )
            blocks += table.blocks()
        return blocks

    def markdown(self) -> str:
        parts = [f"Result: **{self.badge}**" + (f" (status `{self.status}`)" if self.status
                                                  else "")]
        if self.sources:
            parts.append(
                TableArtifact(title="Sources", columns=["source", "status", "detail", "state"],
                              rows=self.sources).markdown()
            )
        if self.metrics:
            parts.append("Key metrics:\n\n" + "\n".join(f"- {k}: {v}" for k, v in self.metrics))
        if self.warnings:
            parts.append("Warnings:\n\n" + "\n".join(f"- {_cell(w)}" for w in self.warnings))
        return "\n\n".join(parts)

    def capped(self) -> Self:
        return self.model_copy(
            update={
                "sources": self.sources[:SAVED_ROWS_LIMIT],
                "warnings": [w[:2000] for w in self.warnings[:SAVED_ROWS_LIMIT]],
            }
        )


def mark_row(row: list[str]) -> list[str]:
    """A source row with its name marked ✓ / ! by its state (the last column)."""
    mark = "✓" if row[-1] == "ok" else "!"
    return [f"{mark} {row[0]}", *row[1:]]


class ProgressArtifact(_Artifact):
    """How far a followed job got: x of y, and the rate."""

    type: Literal["progress"] = "progress"
    label: str = "Progress"
    done: int = 0
    total: int | None = None
    #: items per second since following began (None: not known yet)
    rate: float | None = None
    finished: bool = False
    #: why the job is known to have stalled ("" while it moves)
    stalled: str = ""

    def line(self, width: int = 30) -> str:
        rate = f" · {self.rate:,.1f}/s" if self.rate is not None else ""
        if not self.total:
            return f"{self.done:,} done{rate}"
        share = min(max(self.done / self.total, 0.0), 1.0)
        filled = round(share * width)
        bar = "█" * filled + "░" * (width - filled)
        return f"{bar} {self.done:,} of {self.total:,} ({share:.0%}){rate}"

    def blocks(self) -> list[Block]:
        text = self.line()
        if self.stalled:
            text += f"\n{self.stalled}"
        return [Block(self.label, text)]

    def markdown(self) -> str:
        said = f" — {self.stalled}" if self.stalled else ""
        return f"- {self.label}: {self.line(0).strip()}{said}"


def _cell(text: str) -> str:
    return " ".join(text.replace("|", "\\|").split())


Artifact = Annotated[
    RequestArtifact
    | ResponseArtifact
    | CommandArtifact
    | OutputArtifact
    | StatesArtifact
    | MeasurementsArtifact
    | TableArtifact
    | KeyValuesArtifact
    | SeriesArtifact
    | JobResultArtifact
    | ProgressArtifact,
    Field(discriminator="type"),
]


def redact_and_cap(artifact: Artifact, redact: Callable[[Any], Any]) -> Artifact:
    """Redact every string (keys included), then cut to the saved size: in that order."""
    return type(artifact).model_validate(redact(artifact.model_dump())).capped()
