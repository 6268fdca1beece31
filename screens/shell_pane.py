"""The run's shell session at a glance: its folder, the variables the runbook's blocks set,
and the placeholder values given so far (secrets as ***, everything through the redactor).

Shown under the step list when the runbook has plain shell blocks; ``p`` edits a
placeholder's value (:meth:`WalkthroughScreen.action_edit_placeholder`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.content import Content
from textual.widgets import Static

from .dialogs import home_relative
from .status import visible

if TYPE_CHECKING:
    from opsconsole.session import RunSession
    from opsconsole.shell_session import ShellSession

__all__ = ["ShellVariablesPane", "has_plain_blocks", "run_shell"]

#: characters of one value shown (the evidence keeps the value, redacted)
VALUE_CHARS = 60


def has_plain_blocks(session: RunSession) -> bool:
    return any(
        step.kind == "command" and getattr(step.spec, "plain", False)
        for step in session.runbook.steps
    )


def run_shell(session: RunSession) -> ShellSession:
    """The run's shell session object (made if needed; its process starts with a block)."""
    from opsconsole.steps.command import shell_for

    return shell_for(session.clients, session.runbook, session.run)


class ShellVariablesPane(Static):
    """Folder, variables and placeholders of the run's shell session."""

    DEFAULT_CSS = """
    ShellVariablesPane {
        height: auto;
        max-height: 50%;
        width: 1fr;
        padding: 0 1;
        border-top: solid $primary 40%;
        overflow-y: hidden;
    }
    """

    def show_session(self, session: RunSession) -> None:
        from opsconsole.steps.command import session_variables

        shell = run_shell(session)
        # nothing to show before a block ran or a value was given (the pane takes no room)
        self.display = bool(shell.generation or shell.placeholders)
        redact = session.redactor.redact
        parts: list[str | tuple[str, str]] = [("Shell session", "bold $text-primary")]
        if shell.generation:
            parts += ["\n", ("folder ", "$text-muted"), visible(home_relative(shell.cwd))]
        else:
            parts += ["\n", ("not started: the first plain block starts it", "$text-muted")]
        items = session_variables(shell)
        if not items:
            parts += ["\n", ("No variables yet. Blocks of this run share one shell: what one "
                             "sets, the next sees.", "$text-muted")]
        width = min(max((len(name) for name, _ in items), default=0), 24)
        for name, value in items:
            shown = visible(redact(value))
            if len(shown) > VALUE_CHARS:
                shown = shown[: VALUE_CHARS - 1] + "…"
            parts += ["\n", (visible(name).ljust(width) + " ", "bold"), "= ", shown]
        if shell.placeholders:
            parts += ["\n", ("p edits a placeholder's value", "$text-muted")]
        self.update(Content.assemble(*parts))
