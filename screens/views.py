"""What each step kind looks like in the console: its action preview and its dialogs.

The UI side of the step-type registry (Textual's command providers are the
model): a kind may register a :class:`StepView`; any kind without one gets the
generic view, which shows the action the step type describes and asks every
question with the dialog for its type. Nothing here runs or judges a step.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from textual.content import Content

from opsconsole.operator import ApprovePlan, Choose, EnterText, TypeToConfirm
from opsconsole.shell_text import transcript

from .dialogs import (
    ChoiceDialog,
    ConfirmStepDialog,
    Dialog,
    InputDialog,
    ManualCheckDialog,
    PlanDialog,
    TypedConfirmDialog,
)

if TYPE_CHECKING:
    from opsconsole.model import Step
    from opsconsole.operator import Question, Reply
    from opsconsole.session import RunSession
    from opsconsole.template import RenderContext

__all__ = ["StepView", "register_view", "view_for"]


def heading(text: str) -> Content:
    return Content.assemble((text, "bold $text-primary"))


def preview(session: RunSession, text: str, context: RenderContext = "text") -> str:
    """A template filled in as the step will fill it (escaped for ``context``), with
    every secret as ***; the template itself when it cannot be filled yet."""
    from opsconsole.errors import TemplateError
    from opsconsole.template import render

    try:
        return render(
            text,
            session.variables,
            lambda name: "***",
            context=context,
            trusted=session.trusted_variables,
        )
    except TemplateError:
        return text


def request_content(request: dict[str, Any]) -> Content:
    from textual.highlight import highlight

    parts: list[str | Content | tuple[str, str]] = [
        (str(request.get("method", "")), "bold"),
        " ",
        str(request.get("url", "")),
    ]
    for name, value in (request.get("headers") or {}).items():
        parts += ["\n", (f"{name}: ", "$text-muted"), str(value)]
    if request.get("params"):
        parts += ["\n", ("params ", "$text-muted"), json.dumps(request["params"])]
    if request.get("document") is not None:
        text = json.dumps(request["document"], indent=2, ensure_ascii=False)
        parts += ["\n", highlight(text, language="json")]
    elif request.get("body"):
        parts += ["\n", str(request["body"])]
    return Content.assemble(*parts)


class StepView:
    """The generic view: the step type's own description of its action, generic dialogs."""

    def action(self, session: RunSession, step: Step) -> tuple[str, Content | None]:
        """What the step will do, before it runs or when it kept no artifacts."""
        if step.needs_human:
            return "", None
        return "Action", Content(session.describe_action(step))

    def pending_hint(self, step: Step) -> str:
        if step.needs_human:
            return "Not answered yet: enter to answer."
        return "Not run yet: enter (or r) to run it."

    def dialog(self, session: RunSession, step: Step, question: Question) -> Dialog[Reply | None]:
        if isinstance(question, TypeToConfirm):
            return TypedConfirmDialog(step, question)
        if isinstance(question, EnterText):
            return InputDialog(step, question)
        if isinstance(question, ApprovePlan):
            return PlanDialog(step, question, session.environment.name)
        if isinstance(question, Choose):
            return ChoiceDialog(step, question)
        from opsconsole.operator import ApproveInBrowser

        if isinstance(question, ApproveInBrowser):  # a trigger's approve: a connect
            from .device_flow import ConnectDialog

            return ConnectDialog(step, question)
        raise TypeError(f"no dialog for {type(question).__name__}")


class RequestView(StepView):
    """http and trigger: the request as it will be sent (secrets as ***)."""

    def action(self, session: RunSession, step: Step) -> tuple[str, Content | None]:
        spec: Any = step.spec
        request = {
            "method": spec.method,
            "url": preview(session, spec.url, "url"),
            "headers": {k: preview(session, str(v)) for k, v in spec.headers.items()},
            "document": spec.json_body,
        }
        content = request_content(request)
        follow = getattr(spec, "follow", None)
        if follow is not None:
            content = Content.assemble(
                content,
                "\n",
                ("then follow ", "$text-muted"),
                preview(session, follow.url, "url"),
                ("\nuntil ", "$text-muted"),
                f"{follow.state} in {', '.join(follow.succeeded + follow.failed)}",
            )
        confirm = getattr(spec, "confirm", None)
        if confirm:
            content = Content.assemble(
                ("asks first: ", "$text-muted"), preview(session, confirm), "\n", content
            )
        return "Request", content


class CommandView(StepView):
    def action(self, session: RunSession, step: Step) -> tuple[str, Content | None]:
        spec: Any = step.spec
        command = spec.run if spec.plain else preview(session, spec.run, "shell")
        if spec.plain and spec.placeholders:  # values given in this run filled in, secrets ***
            from opsconsole.steps.command import filled_in

            from .shell_pane import run_shell

            command = session.redactor.redact(
                filled_in(spec.run, spec.placeholders, run_shell(session))
            )
        content = Content("$ " + command)
        expected = getattr(spec, "expected_output", None)
        if expected:  # a transcript in the runbook: its sample output is shown, never run
            content = Content.assemble(
                transcript(command),
                ("\n\nexpected output (not run):\n", "$text-muted"),
                (expected, "$text-muted"),
            )
        if getattr(spec, "guessed", False):
            return "Command (guessed from an untagged block)", content
        return "Command", content

    def pending_hint(self, step: Step) -> str:
        if getattr(step.spec, "plain", False):
            return "Not run: enter shows the exact command first; s skips it with a reason."
        return super().pending_hint(step)


class ManualView(StepView):
    def action(self, session: RunSession, step: Step) -> tuple[str, Content | None]:
        detail = getattr(step.spec, "detail", "")
        return ("Check", Content(detail)) if detail else ("", None)

    def pending_hint(self, step: Step) -> str:
        return "Not checked yet: enter (or x) to answer."

    def dialog(self, session: RunSession, step: Step, question: Question) -> Dialog[Reply | None]:
        if isinstance(question, Choose):
            return ManualCheckDialog(step, question)
        return super().dialog(session, step, question)


class ConfirmView(StepView):
    def action(self, session: RunSession, step: Step) -> tuple[str, Content | None]:
        return "Question", Content(preview(session, getattr(step.spec, "prompt", step.title)))

    def dialog(self, session: RunSession, step: Step, question: Question) -> Dialog[Reply | None]:
        if isinstance(question, Choose):
            return ConfirmStepDialog(step, question)
        return super().dialog(session, step, question)


class InputView(StepView):
    def action(self, session: RunSession, step: Step) -> tuple[str, Content | None]:
        return "Question", Content(preview(session, getattr(step.spec, "prompt", step.title)))


class DeviceFlowView(StepView):
    """device_flow: where the sign-in starts and what is polled; its dialog shows the code."""

    def action(self, session: RunSession, step: Step) -> tuple[str, Content | None]:
        spec: Any = step.spec
        return "Sign-in", Content.assemble(
            ("start ", "$text-muted"), f"{spec.start.method} ",
            preview(session, spec.start.url, "url"),
            ("\npoll  ", "$text-muted"), f"{spec.poll.method} ",
            preview(session, spec.poll.url, "url"),
            *(("\nthen  ", "$text-muted"), f"{spec.finalize.method} ",
              preview(session, spec.finalize.url, "url")) if spec.finalize else (),
            ("\ntoken ", "$text-muted"), f"secret {spec.secret} (kept in {spec.keep})",
        )

    def pending_hint(self, step: Step) -> str:
        return "Not run yet: enter (or r) shows a code and a URL to approve in any browser."

    def dialog(self, session: RunSession, step: Step, question: Question) -> Dialog[Reply | None]:
        from opsconsole.operator import ApproveInBrowser

        if isinstance(question, ApproveInBrowser):
            from .device_flow import DeviceFlowDialog

            return DeviceFlowDialog(step, question)
        return super().dialog(session, step, question)


class GateView(StepView):
    def action(self, session: RunSession, step: Step) -> tuple[str, Content | None]:
        blockers = session.gate_blockers(step)
        if not blockers:
            return "Phase", Content("Every step of this phase passed or was skipped.")
        names = ", ".join(s.title for s in blockers[:3]) + ("…" if len(blockers) > 3 else "")
        return "Phase", Content(f"{len(blockers)} step(s) not passed yet: {names}")

    def pending_hint(self, step: Step) -> str:
        return "Not decided yet: enter (or g) for go / no-go."

    def dialog(self, session: RunSession, step: Step, question: Question) -> Dialog[Reply | None]:
        from opsconsole.steps.gate import GateQuestion

        from .gate import GateDialog

        if isinstance(question, GateQuestion):
            return GateDialog(step, question)
        return super().dialog(session, step, question)


class PromqlView(StepView):
    """promql: the query, where it goes, its conditions and how many measurements."""

    def action(self, session: RunSession, step: Step) -> tuple[str, Content | None]:
        spec: Any = step.spec
        parts: list[str | Content | tuple[str, str]] = [
            ("query ", "$text-muted"), str(spec.query),
            ("\non ", "$text-muted"), preview(session, spec.prometheus, "url"),
        ]
        for name in ("success", "failure"):
            if getattr(spec, name) is not None:
                parts += [(f"\n{name} ", "$text-muted"), str(getattr(spec, name))]
        analysis = spec.analysis
        if analysis is not None and analysis.count:
            every = f" every {analysis.interval:g}s" if analysis.interval else ""
            parts += [("\nmeasures ", "$text-muted"), f"{analysis.count} times{every}"]
        return "PromQL", Content.assemble(*parts)


class SamplesView(StepView):
    """metrics: the endpoint and every sample with its threshold."""

    def action(self, session: RunSession, step: Step) -> tuple[str, Content | None]:
        spec: Any = step.spec
        parts: list[str | Content | tuple[str, str]] = [
            (f"{spec.method} ", "bold"), preview(session, spec.url, "url")
        ]
        for sample in spec.samples:
            labels = ",".join(f"{k}={v}" for k, v in sample.labels.items())
            parts += ["\n", sample.name + (f"{{{labels}}}" if labels else ""), " ",
                      (str(sample.ok), "bold")]
            if sample.warn is not None:
                parts += [("  warn ", "$text-muted"), str(sample.warn)]
        return "Scrape", Content.assemble(*parts)


_VIEWS: dict[str, StepView] = {
    "http": RequestView(),
    "trigger": RequestView(),
    "command": CommandView(),
    "manual": ManualView(),
    "confirm": ConfirmView(),
    "input": InputView(),
    "gate": GateView(),
    "device_flow": DeviceFlowView(),
    "promql": PromqlView(),
    "metrics": SamplesView(),
}
_GENERIC = StepView()


def register_view(kind: str, view: StepView) -> None:
    """Give a step kind its own look (a plugin's kind may; the generic view serves the rest)."""
    _VIEWS[kind] = view


def view_for(kind: str) -> StepView:
    return _VIEWS.get(kind, _GENERIC)
