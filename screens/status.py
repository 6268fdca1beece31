"""How step and run states look on screen: icons, colours, one-line summaries.

Styles are theme variables resolved by Textual's Content, never colours.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from textual.content import Content

from opsconsole.run import RunStatus, StepStatus

if TYPE_CHECKING:
    from typing import Any

    from textual.screen import Screen

    from opsconsole.model import Step
    from opsconsole.run import Run, StepResult

__all__ = [
    "MUTATING_MARK",
    "READ_ONLY_MARK",
    "fit_footer",
    "STATUS_ICON",
    "STATUS_STYLE",
    "counts_content",
    "counts_text",
    "format_time",
    "last_run_summary",
    "run_counts",
    "status_content",
    "step_line",
    "visible",
    "visible_content",
]

STATUS_ICON: dict[StepStatus, str] = {
    StepStatus.PENDING: "·",
    StepStatus.RUNNING: "◌",
    StepStatus.PASSED: "✓",
    StepStatus.FAILED: "✗",
    StepStatus.SKIPPED: "↷",
    StepStatus.UNKNOWN: "?",
    StepStatus.INCONCLUSIVE: "≟",
    StepStatus.CANCELLED: "⊘",
    StepStatus.ANSWERED: "~",
}

STATUS_STYLE: dict[StepStatus, str] = {
    StepStatus.PENDING: "$text-muted",
    StepStatus.RUNNING: "$text-accent bold",
    StepStatus.PASSED: "$text-success",
    StepStatus.FAILED: "$text-error bold",
    StepStatus.SKIPPED: "$text-muted",
    StepStatus.UNKNOWN: "$text-warning bold",
    StepStatus.INCONCLUSIVE: "$text-warning",
    StepStatus.CANCELLED: "$text-muted",
    StepStatus.ANSWERED: "$text-secondary",
}

#: shown in counts only when non-zero
OPTIONAL_COUNTS = frozenset(
    {StepStatus.ANSWERED, StepStatus.INCONCLUSIVE, StepStatus.CANCELLED}
)

#: marks a step that changes something (shown after the state icon)
MUTATING_MARK = "!"
#: a step that changes something and is refused here (read-only mode): a text mark that
#: survives NO_COLOR, in the place of the mutating mark
READ_ONLY_MARK = "⊘"


# Textual writes text to the terminal as it is (it drops only BEL, BS, VT, FF and CR), so an
# escape sequence in a command's output, a response body or a runbook title would reach the
# operator's terminal (retitle it, clear it, set its clipboard). Control characters and
# bidirectional overrides are drawn as symbols of the same width instead, so the spans of a
# Content stay valid: C0 as Unicode control pictures (ESC is ␛), DEL as ␡, the rest as �.
_VISIBLE = str.maketrans(
    {
        **{code: 0x2400 + code for code in range(0x20) if code not in (0x09, 0x0A)},
        0x7F: 0x2421,
        **{code: 0xFFFD for code in range(0x80, 0xA0)},
        **{code: 0xFFFD for code in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))},
    }
)


def visible(text: str) -> str:
    """``text`` safe to draw: control characters shown as symbols (tab and newline kept)."""
    return text.translate(_VISIBLE)


def visible_content(content: Content) -> Content:
    """:func:`visible` for styled content (one symbol per character: spans stay valid)."""
    plain = content.plain
    safe = plain.translate(_VISIBLE)
    if safe == plain:
        return content
    return Content(safe, spans=list(content.spans))


def fit_footer(screen: Screen[Any]) -> None:
    """A narrow terminal keeps every key it can in the footer: compact spacing below 100
    columns, and no command-palette hint below 80 (^p still works; help lists it)."""
    from textual.widgets import Footer

    for footer in screen.query(Footer):
        width = screen.size.width
        footer.compact = width < 100
        footer.show_command_palette = width >= 80


def status_content(status: StepStatus, *, label: bool = False) -> Content:
    text = STATUS_ICON[status] + (f" {status.value.upper()}" if label else "")
    return Content.assemble((text, STATUS_STYLE[status]))


def step_line(step: Step, status: StepStatus, *, read_only: bool = False) -> Content:
    """One line of the step list: state icon, mutating mark, title. ``read_only``: steps
    that change something are refused here, and marked so (⊘) before anyone presses."""
    mark: str | tuple[str, str] = " "
    if step.mutating:
        mark = (READ_ONLY_MARK, "$text-error bold") if read_only else (
            MUTATING_MARK, "$text-warning bold"
        )
    return Content.assemble(
        (STATUS_ICON[status], STATUS_STYLE[status]), mark, " ", visible(step.title)
    )


def run_counts(run: Run) -> dict[str, int]:
    counts = {status.value: 0 for status in StepStatus}
    for result in run.results.values():
        counts[result.status.value] += 1
    return counts


def counts_content(counts: dict[str, int], *, compact: bool = False) -> Content:
    """``✓4 ✗1 ↷0 ?0 ·25``; ``compact`` (a narrow banner) leaves out every zero."""
    parts: list[str | tuple[str, str]] = []
    for status in (StepStatus.PASSED, StepStatus.ANSWERED, StepStatus.FAILED,
                   StepStatus.SKIPPED, StepStatus.UNKNOWN, StepStatus.INCONCLUSIVE,
                   StepStatus.CANCELLED, StepStatus.PENDING):
        count = counts.get(status.value, 0)
        if not count and (compact or status in OPTIONAL_COUNTS):
            continue
        if parts:
            parts.append(" ")
        parts.append((f"{STATUS_ICON[status]}{count}", STATUS_STYLE[status]))
    return Content.assemble(*parts)


def counts_text(counts: dict[str, int]) -> str:
    """``4 passed, 2 answered, 1 failed, 0 skipped, 1 unknown``: every status that
    happened (passed, failed and skipped always), in words for summaries and toasts."""
    parts = []
    for status in (StepStatus.PASSED, StepStatus.ANSWERED, StepStatus.FAILED,
                   StepStatus.SKIPPED, StepStatus.UNKNOWN, StepStatus.INCONCLUSIVE,
                   StepStatus.CANCELLED):
        count = counts.get(status.value, 0)
        if count or status in {StepStatus.PASSED, StepStatus.FAILED, StepStatus.SKIPPED}:
            label = "answered by the simulated operator" if status is StepStatus.ANSWERED else (
                status.value
            )
            parts.append(f"{count} {label}")
    return ", ".join(parts)


def format_time(iso: str | None) -> str:
    """``2025-03-14T03:12:09.123Z`` -> ``2025-03-14 03:12 UTC`` (runs are stamped in UTC)."""
    if not iso:
        return "—"
    try:
        moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def last_run_summary(run: Run | None) -> tuple[str, str]:
    """The home table's 'Last run' cell: (text, theme style)."""
    if run is None:
        return "never run", "$text-muted"
    counts = run_counts(run)
    if run.status is RunStatus.IN_PROGRESS:
        return "… in progress", "$text-warning"
    if run.status is RunStatus.ABORTED:
        return "✗ aborted (no-go)", "$text-error"
    if counts["failed"] or counts["unknown"] or counts["inconclusive"]:
        bad = counts["failed"] + counts["unknown"] + counts["inconclusive"]
        return f"✗ {bad} not passed", "$text-error"
    tally = f"{counts['passed']}/{counts['failed']}/{counts['skipped']}"  # passed/failed/skipped
    if run.rehearsal:  # answers came from the simulated operator: practised, not verified
        return f"~ rehearsal {tally}", STATUS_STYLE[StepStatus.ANSWERED]
    if not counts["passed"]:
        return "○ nothing verified", "$text-warning"
    return f"✓ completed {tally}", "$text-success"


def result_timing(result: StepResult) -> str:
    parts = []
    if result.attempts:
        parts.append(f"attempt {result.attempts}")
    if result.started_at:
        parts.append(f"started {format_time(result.started_at)}")
    if result.duration_ms is not None:
        ms = result.duration_ms
        parts.append(f"took {ms:.0f} ms" if ms < 10_000 else f"took {ms / 1000:.1f} s")
    return " · ".join(parts)
