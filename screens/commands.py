"""Command palette providers (ctrl+p): runbooks, steps, environments, sandbox faults."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Matcher, Provider
from textual.content import Content
from textual.markup import escape

if TYPE_CHECKING:
    from .app import OpsConsoleApp

__all__ = ["EnvironmentCommands", "RunbookCommands", "SandboxCommands", "StepCommands"]

Command = tuple[str, str, Callable[[], object]]


class _Commands(Provider):
    """A fixed list of (title, help, callback), matched fuzzily on the title."""

    @property
    def ops_app(self) -> OpsConsoleApp:
        return self.app  # type: ignore[return-value]

    def commands(self) -> Iterator[Command]:
        yield from ()

    # Titles and help come from runbooks and configs: never let them parse as markup.
    async def discover(self) -> Hits:
        for title, help_text, callback in self.commands():
            yield DiscoveryHit(Content(title), callback, text=title, help=escape(help_text))

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, callback in self.commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(
                    score, self._highlight(matcher, title), callback,
                    text=title, help=escape(help_text),
                )

    def _highlight(self, matcher: Matcher, title: str) -> Content:
        """Like ``Matcher.highlight``, which parses its candidate as markup; this does not."""
        content = Content(title)
        _, offsets = matcher.fuzzy_search.match(matcher.query, title)
        style = self.match_style or "bold underline"
        for offset in offsets:
            if not title[offset].isspace():
                content = content.stylize(style, offset, offset + 1)
        return content


class RunbookCommands(_Commands):
    """Open any runbook (broken ones say why they cannot be opened)."""

    def commands(self) -> Iterator[Command]:
        app = self.ops_app
        for entry in app.catalog:
            help_text = entry.first_error if not entry.ok else (
                entry.runbook.service if entry.runbook is not None else ""
            )
            yield (
                f"Open runbook: {entry.title}",
                help_text or str(entry.path.name),
                partial(app.open_runbook, entry.path),
            )


class StepCommands(_Commands):
    """Jump to any step of the open walkthrough."""

    def commands(self) -> Iterator[Command]:
        from .walkthrough import WalkthroughScreen

        screen = self.screen
        if not isinstance(screen, WalkthroughScreen):
            return
        session = screen.session
        for step in session.runbook.steps:
            status = session.result(step.id).status.value
            yield (
                f"Jump to step: {step.title}",
                f"{step.id} · {step.kind} · {status}",
                partial(screen.jump_to, step.id),
            )


class EnvironmentCommands(_Commands):
    """Switch the environment new walkthroughs open in."""

    def commands(self) -> Iterator[Command]:
        app = self.ops_app
        config = app.settings.config
        for name in config.environment_names():
            environment = config.environment(name)
            marker = " (PROTECTED)" if environment.protected else ""
            current = " — current" if name == app.environment.name else ""
            yield (
                f"Switch environment: {name}{marker}",
                (environment.description or "") + current,
                partial(app.switch_environment, name),
            )


class SandboxCommands(_Commands):
    """Inject or clear the demo sandbox's faults (only when the console runs the sandbox)."""

    def commands(self) -> Iterator[Command]:
        app = self.ops_app
        sandbox = app.settings.sandbox
        if sandbox is None:
            return
        for fault in sandbox.faults():
            state = "active now" if fault.active else "not active"
            yield (
                f"Sandbox: inject fault {fault.name}",
                f"{fault.description} ({state})",
                partial(app.set_sandbox_fault, fault.name, True),
            )
            yield (
                f"Sandbox: clear fault {fault.name}",
                f"back to normal: {fault.name} ({state})",
                partial(app.set_sandbox_fault, fault.name, False),
            )
