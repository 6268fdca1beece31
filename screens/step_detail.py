"""The walkthrough's step detail: what the step does and what happened when it ran.

Everything shown comes from the engine's already-redacted run state (or, before
a step runs, from its spec with secrets shown as ``***``), as plain text.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import Static

from opsconsole.model import StepKind
from opsconsole.run import StepStatus

from .status import STATUS_STYLE, result_timing, status_content

if TYPE_CHECKING:
    from opsconsole.model import Step
    from opsconsole.run import StepResult
    from opsconsole.session import RunSession

__all__ = ["StepDetail"]

#: lines of command output kept on screen (the evidence keeps everything)
OUTPUT_TAIL = 40
#: characters of a response body shown on screen
BODY_PREVIEW = 4000

_TRUNCATED = "… (truncated on screen; the evidence has it)"

Part = str | Content | tuple[str, str]


def _heading(text: str) -> Content:
    return Content.assemble((text, "bold $text-primary"))


def _json_text(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)


class StepDetail(Vertical):
    """Head (state, kind), outcome, assertions, request/command, response, output."""

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

    def compose(self) -> ComposeResult:
        yield Static(id="step-head", markup=False)
        yield Static(id="step-outcome", classes="detail-block", markup=False)
        yield Static(id="step-action-title", classes="detail-block", markup=False)
        yield Static(id="step-action", classes="detail-code", markup=False)
        yield Static(id="step-response-title", classes="detail-block", markup=False)
        yield Static(id="step-response", classes="detail-code", markup=False)
        yield Static(id="step-output-title", classes="detail-block", markup=False)
        yield Static(id="step-output", classes="detail-code", markup=False)

    def _set(self, widget_id: str, content: Content | None) -> None:
        widget = self.query_one(f"#{widget_id}", Static)
        if content is None or not content:
            widget.display = False
            self._shown.pop(widget_id, None)
            return
        # Content equality ignores styles: compare text and spans, and skip needless relayouts
        key = (content.plain, tuple(content.spans))
        if self._shown.get(widget_id) != key:
            self._shown[widget_id] = key
            widget.update(content)
        widget.display = True

    def show(self, session: RunSession, step: Step, running: bool = False) -> None:
        result = session.result(step.id)
        status = StepStatus.RUNNING if running else result.status
        self._set("step-head", self._head(step, status))
        self._set("step-outcome", self._outcome(step, result, status))
        title, action = self._action(session, step, result)
        self._set("step-action-title", _heading(title) if action else None)
        self._set("step-action", action)
        response = self._response(result)
        self._set("step-response-title", response[0] if response else None)
        self._set("step-response", response[1] if response else None)
        output = self._output(result)
        self._set("step-output-title", output[0] if output else None)
        self._set("step-output", output[1] if output else None)

    # -- pieces ----------------------------------------------------------------------

    def _head(self, step: Step, status: StepStatus) -> Content:
        kind = step.kind.value
        if step.kind is StepKind.COMMAND and step.spec.plain:
            kind = "shell command"
        parts: list[Part] = [
            status_content(status, label=True),
            "  ",
            (step.title, "bold"),
            "\n",
            (f"{kind} · {step.id} · line {step.line}", "$text-muted not bold"),
        ]
        if step.mutating:
            parts += ["  ", ("! mutating", "$text-warning")]
        return Content.assemble(*parts)

    def _outcome(self, step: Step, result: StepResult, status: StepStatus) -> Content:
        parts: list[Part] = []
        if status is StepStatus.RUNNING:
            parts.append(("running…", STATUS_STYLE[status]))
        elif result.detail:
            parts.append((result.detail, STATUS_STYLE[result.status]))
        elif status is StepStatus.PENDING:
            parts.append((self._pending_hint(step), "$text-muted"))
        if (
            result.exit_code is not None
            and step.kind is StepKind.COMMAND
            and f"exit {result.exit_code}" not in result.detail
        ):
            meaning = step.spec.exit_codes.get(result.exit_code, "")
            parts += ["\n", ("exit status ", "$text-muted"), str(result.exit_code)]
            if meaning:
                parts += [" — ", meaning]
        if result.states:
            parts += ["\n", ("states ", "$text-muted"), " → ".join(result.states)]
        if result.answer is not None and step.needs_human:
            parts += ["\n", ("answer ", "$text-muted"), result.answer]
        if result.note:
            parts += ["\n", ("operator note ", "$text-muted"), result.note]
        for assertion in result.assertions:
            mark = ("✓ ", "$text-success") if assertion.ok else ("✗ ", "$text-error bold")
            parts += ["\n", mark, (assertion.name, "bold"), ": ", assertion.detail]
        timing = result_timing(result)
        if timing:
            parts += ["\n", (timing, "$text-muted")]
        return Content.assemble(*parts)

    def _pending_hint(self, step: Step) -> str:
        if step.kind is StepKind.MANUAL:
            return "Not checked yet: enter (or x) to answer."
        if step.kind is StepKind.GATE:
            return "Not decided yet: enter (or g) for go / no-go."
        if step.needs_human:
            return "Not answered yet: enter to answer."
        if step.kind is StepKind.COMMAND and step.spec.plain:
            return "Not run: enter shows the exact command first; s skips it with a reason."
        return "Not run yet: enter (or r) to run it."

    def _action(
        self, session: RunSession, step: Step, result: StepResult
    ) -> tuple[str, Content | None]:
        spec = step.spec
        request = result.request
        not_yet = " (not run yet)" if result.status is StepStatus.PENDING else ""
        if step.kind in {StepKind.HTTP, StepKind.TRIGGER}:
            if request:
                return "Request", self._request(request)
            preview = {
                "method": spec.method,
                "url": self._preview(session, spec.url),
                "headers": {k: self._preview(session, str(v)) for k, v in spec.headers.items()},
            }
            if spec.json_body is not None:
                preview["json"] = spec.json_body
            content = self._request(preview)
            if step.kind is StepKind.TRIGGER:
                follow = spec.follow
                content = Content.assemble(
                    content,
                    "\n",
                    ("then follow ", "$text-muted"),
                    self._preview(session, follow.url),
                    ("\nuntil ", "$text-muted"),
                    f"{follow.state} in {', '.join(follow.succeeded + follow.failed)}",
                )
            return "Request" + (" (not sent yet)" if not_yet else ""), content
        if step.kind is StepKind.COMMAND:
            if request and request.get("command"):
                return "Command", Content("$ " + str(request["command"]))
            command = spec.run if spec.plain else self._preview(session, spec.run)
            return "Command" + not_yet, Content("$ " + command)
        if step.kind is StepKind.MANUAL and spec.detail:
            return "Check", Content(spec.detail)
        if step.kind is StepKind.GATE:
            blockers = session.gate_blockers(step)
            if not blockers:
                return "Phase", Content("Every step of this phase passed or was skipped.")
            names = ", ".join(s.title for s in blockers[:3]) + ("…" if len(blockers) > 3 else "")
            return "Phase", Content(f"{len(blockers)} step(s) not passed yet: {names}")
        if step.kind in {StepKind.INPUT, StepKind.CONFIRM}:
            return "Question", Content(spec.prompt)
        return "", None

    def _preview(self, session: RunSession, text: str) -> str:
        """A template with the run's variables filled in and every secret as ***."""
        from opsconsole.errors import TemplateError
        from opsconsole.template import render

        try:
            return render(text, session.variables, lambda name: "***")
        except TemplateError:
            return text

    def _request(self, request: dict[str, Any]) -> Content:
        parts: list[Part] = [
            (str(request.get("method", "")), "bold"),
            " ",
            str(request.get("url", "")),
        ]
        for name, value in (request.get("headers") or {}).items():
            parts += ["\n", (f"{name}: ", "$text-muted"), str(value)]
        if request.get("params"):
            parts += ["\n", ("params ", "$text-muted"), json.dumps(request["params"])]
        if request.get("json") is not None:
            parts += ["\n", self._highlight(_json_text(request["json"]), "json")]
        elif request.get("body"):
            parts += ["\n", str(request["body"])]
        return Content.assemble(*parts)

    def _highlight(self, code: str, language: str) -> Content:
        from textual.highlight import highlight

        return highlight(code, language=language)

    def _response(self, result: StepResult) -> tuple[Content, Content] | None:
        response = result.response
        if not response:
            return None
        head = Content.assemble(
            ("Response ", "bold $text-primary"),
            (f"{response.get('status', '')} {response.get('reason', '')}", "bold"),
            (f" · {response.get('elapsed_ms', 0):.0f} ms", "$text-muted")
            if isinstance(response.get("elapsed_ms"), int | float)
            else "",
        )
        if response.get("is_json") and "json" in response:
            text = _json_text(response["json"])
            if len(text) > BODY_PREVIEW:
                body = Content(text[:BODY_PREVIEW] + "\n" + _TRUNCATED)
            else:
                body = self._highlight(text, "json")
        else:
            text = str(response.get("body", ""))
            if len(text) > BODY_PREVIEW:
                text = text[:BODY_PREVIEW] + "\n" + _TRUNCATED
            body = Content(text or "(empty body)")
        if response.get("truncated"):
            body = Content.assemble(body, ("\n… body truncated at 64 KiB", "$text-muted"))
        return head, body

    def _output(self, result: StepResult) -> tuple[Content, Content] | None:
        if not result.output:
            return None
        lines = result.output.rstrip("\n").splitlines()
        title = "Output"
        if len(lines) > OUTPUT_TAIL:
            title = f"Output (last {OUTPUT_TAIL} of {len(lines)} lines)"
            lines = lines[-OUTPUT_TAIL:]
        return _heading(title), Content("\n".join(lines))
