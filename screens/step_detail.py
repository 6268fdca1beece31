"""The walkthrough's step detail: what the step does and what happened when it ran.

Everything shown comes from the engine's already-redacted run state — the
result's envelope and its artifacts, each rendered from its own display
blocks — or, before a step runs, from its view's preview (secrets as ``***``).
Widgets are reused and only updated when their text changes, so moving the
cursor redraws only what differs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import Static

from opsconsole.run import StepStatus

from .status import STATUS_STYLE, result_timing, status_content, visible_content
from .views import heading, request_content, view_for

if TYPE_CHECKING:
    from opsconsole.artifacts import Block
    from opsconsole.model import Step
    from opsconsole.run import StepResult
    from opsconsole.session import RunSession

__all__ = ["StepDetail"]

#: lines of a block kept on screen (the evidence keeps everything)
BLOCK_LINES = 40
#: characters of a block shown on screen
BLOCK_CHARS = 4000
#: artifact blocks the pane has widgets for from the start (more are added when a step
#: has more: nothing is dropped, the pane scrolls)
INITIAL_BLOCKS = 6

_TRUNCATED = "… (cut on screen; the evidence has it)"
#: results beside which the runbook's triage row is shown
_TRIAGED = frozenset({StepStatus.FAILED, StepStatus.UNKNOWN, StepStatus.INCONCLUSIVE})
_SIMULATED = "answered by the sandbox's simulated operator"

Part = str | Content | tuple[str, str]


class StepDetail(Vertical):
    """Head (state, kind), outcome, then the action or what the step produced."""

    DEFAULT_CSS = """
    StepDetail {
        height: auto;
        width: 1fr;
    }
    StepDetail > Static {
        width: 1fr;
        height: auto;
    }
    StepDetail > .detail-block {
        margin-top: 1;
    }
    StepDetail > .detail-code {
        background: $boost;
        padding: 0 1;
    }
    StepDetail > #step-head {
        text-style: bold;
    }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._shown: dict[str, tuple[object, ...]] = {}
        #: widget pairs (title, body) for artifact blocks; grows, never shrinks
        self._blocks_shown = INITIAL_BLOCKS

    def compose(self) -> ComposeResult:
        yield Static(id="step-head", markup=False)
        yield Static(id="step-outcome", classes="detail-block", markup=False)
        yield Static(id="step-triage", classes="detail-block", markup=False)
        for index in range(INITIAL_BLOCKS):
            yield from self._block_widgets(index)

    @staticmethod
    def _block_widgets(index: int) -> tuple[Static, Static]:
        return (
            Static(id=f"step-block-title-{index}", classes="detail-block", markup=False),
            Static(id=f"step-block-{index}", classes="detail-code", markup=False),
        )

    def _set(self, widget_id: str, content: Content | None) -> None:
        widget = self.query_one(f"#{widget_id}", Static)
        if content is None or not content:
            if widget_id in self._shown or widget.display:
                widget.display = False
                self._shown.pop(widget_id, None)
            return
        content = visible_content(content)  # outside text: no escape sequence reaches the tty
        # Content equality ignores styles: compare text and spans, and skip needless relayouts
        key = (content.plain, tuple(content.spans))
        if self._shown.get(widget_id) != key:
            self._shown[widget_id] = key
            widget.update(content)
        if not widget.display:
            widget.display = True

    def show(self, session: RunSession, step: Step, running: bool = False) -> None:
        result = session.result(step.id)
        status = StepStatus.RUNNING if running else result.status
        refused = step.mutating and (session.read_only or session.mutations_blocked() is not None)
        self._set("step-head", self._head(step, status, refused=refused))
        self._set("step-outcome", self._outcome(step, result, status))
        self._set("step-triage", self._triage(session, result, status))
        blocks = self._blocks(session, step, result)
        while self._blocks_shown < len(blocks):
            self.mount(*self._block_widgets(self._blocks_shown))
            self._blocks_shown += 1
        for index in range(self._blocks_shown):
            title, body = blocks[index] if index < len(blocks) else (None, None)
            self._set(f"step-block-title-{index}", title)
            self._set(f"step-block-{index}", body)

    # -- pieces ----------------------------------------------------------------------

    def _head(self, step: Step, status: StepStatus, *, refused: bool = False) -> Content:
        kind = step.kind
        if getattr(step.spec, "plain", False):
            kind = "shell command"
        parts: list[Part] = [
            status_content(status, label=True),
            "  ",
            (step.title, "bold"),
            "\n",
            (f"{kind} · {step.id} · line {step.line}", "$text-muted not bold"),
        ]
        if refused:
            parts += ["  ", ("⊘ read-only: not run here", "$text-error bold")]
        elif step.mutating:
            parts += ["  ", ("! mutating", "$text-warning")]
        return Content.assemble(*parts)

    def _outcome(self, step: Step, result: StepResult, status: StepStatus) -> Content:
        parts: list[Part] = []
        if status is StepStatus.RUNNING:
            parts.append(("running…", STATUS_STYLE[status]))
        elif result.detail:
            parts.append((result.detail, STATUS_STYLE[result.status]))
        elif status is StepStatus.PENDING:
            parts.append((view_for(step.kind).pending_hint(step), "$text-muted"))
        if result.answer is not None and step.needs_human:
            parts += ["\n", ("answer ", "$text-muted"), result.answer]
        note = result.note
        if result.simulated:
            # the simulated operator's own words (and why, for a gate) are not an operator's note
            said = _SIMULATED
            if note.startswith(_SIMULATED):
                said, note = note, ""
            rehearsal = f"{said} (a rehearsal, not evidence)"
            parts += ["\n", (rehearsal, STATUS_STYLE[StepStatus.ANSWERED])]
        if note:
            parts += ["\n", ("operator note ", "$text-muted"), note]
        for assertion in result.assertions:
            mark = ("✓ ", "$text-success") if assertion.ok else ("✗ ", "$text-error bold")
            parts += ["\n", mark, (assertion.name, "bold"), ": ", assertion.detail]
        timing = result_timing(result)
        if result.history:
            timing += f" · {len(result.history)} earlier attempt(s) in the evidence"
        if timing:
            parts += ["\n", (timing, "$text-muted")]
        return Content.assemble(*parts)

    def _triage(
        self, session: RunSession, result: StepResult, status: StepStatus
    ) -> Content | None:
        """The runbook's triage row for this failure: what it means, what to do."""
        if status not in _TRIAGED:
            return None
        from opsconsole.triage import triage_for

        row = triage_for(session.runbook.triage, result)
        if row is None:
            return None
        return Content.assemble(
            ("Triage ", "bold $warning"),
            (f"(runbook line {row.line}: {row.signal})" if row.line else f"({row.signal})",
             "$text-muted"),
            "\n", ("means  ", "$text-muted"), row.meaning,
            "\n", ("do     ", "$text-muted"), (row.action, "bold"),
        )

    def _blocks(
        self, session: RunSession, step: Step, result: StepResult
    ) -> list[tuple[Content, Content]]:
        if not result.artifacts:
            title, action = view_for(step.kind).action(session, step)
            if result.status is StepStatus.PENDING and not step.needs_human:
                title += " (not run yet)"
            return [(heading(title), action)] if action else []
        shown: list[tuple[Content, Content]] = []
        for artifact in result.artifacts:
            if artifact.type == "request":
                shown.append((heading("Request"), request_content(artifact.model_dump())))
                continue
            for block in artifact.blocks():
                shown.append((heading(block.title), self._body(block)))
        return shown

    def _body(self, block: Block) -> Content:
        text = block.text
        lines = text.splitlines()
        cut = False
        if len(lines) > BLOCK_LINES:
            text = "\n".join(lines[-BLOCK_LINES:]) if block.language in {"", "bash"} else "\n".join(
                lines[:BLOCK_LINES]
            )
            cut = True
        if len(text) > BLOCK_CHARS:
            text, cut = text[:BLOCK_CHARS], True
        if block.language == "json" and not cut:
            from textual.highlight import highlight

            return highlight(text, language="json")
        if cut:
            return Content.assemble(text, ("\n" + _TRUNCATED, "$text-muted"))
        return Content(text)
