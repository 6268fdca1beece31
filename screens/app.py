"""The opsconsole App: settings in, screens on top, an exit code out.

The CLI builds :class:`~opsconsole.config.ConsoleSettings` and calls
:func:`run_console`. Heavy modules (the loader, the session, httpx, the
walkthrough's Markdown and syntax highlighting) load after the first frame.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual import work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.filter import Monochrome, NoColor
from textual.reactive import reactive
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from opsconsole.config import ConsoleSettings, Environment
from opsconsole.errors import OpsConsoleError

from .home import HomeScreen
from .mirror import TerminalMirror

if TYPE_CHECKING:
    from rich.console import RenderableType
    from textual.command import Provider

    from opsconsole.run import Run
    from opsconsole.runlock import Holder, RunLock
    from opsconsole.session import RunSession

    from .catalog import RunbookEntry
    from .walkthrough import WalkthroughScreen

__all__ = ["OpsConsoleApp", "run_console"]


def _runbook_commands() -> type[Provider]:
    from .commands import RunbookCommands

    return RunbookCommands


def _step_commands() -> type[Provider]:
    from .commands import StepCommands

    return StepCommands


def _environment_commands() -> type[Provider]:
    from .commands import EnvironmentCommands

    return EnvironmentCommands


def _sandbox_commands() -> type[Provider]:
    from .commands import SandboxCommands

    return SandboxCommands


class OpsConsoleApp(App[int]):
    """Keyboard-first runbook console: Home -> Walkthrough, with modals for every question."""

    TITLE = "opsconsole"
    # Home as a mode (not get_default_screen) so its CSS_PATH is loaded like any screen's.
    MODES: ClassVar[dict[str, str | Callable[[], Screen[Any]]]] = {"home": HomeScreen}
    DEFAULT_MODE: ClassVar[str] = "home"
    COMMANDS = App.COMMANDS | {
        _runbook_commands,
        _step_commands,
        _environment_commands,
        _sandbox_commands,
    }
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f1", "help", "Help", tooltip="Keys of this screen and how to walk a runbook"),
        Binding("question_mark", "help", "Help", show=False, tooltip="Help, as F1"),
        Binding("ctrl+l", "redraw", "Redraw", show=False,
                tooltip="Redraw the whole screen (after the terminal lost its content)"),
    ]

    # NO_COLOR: the NoColor filter drops every colour, so the cursor and focus are shown by
    # text style (Textual's visual styles, used by OptionList and Button, carry no reverse)
    CSS = """
    OptionList:nocolor > .option-list--option-highlighted,
    Button:nocolor:focus {
        text-style: bold underline;
    }
    DataTable:nocolor > .datatable--cursor {
        text-style: reverse bold;
    }
    """

    #: the environment new walkthroughs open in; screens watch it
    environment_name: reactive[str] = reactive("", init=False)
    #: sandbox faults switched on right now (the banners show them)
    active_faults: reactive[tuple[str, ...]] = reactive((), init=False)

    def __init__(
        self, settings: ConsoleSettings, *, key_clock: Callable[[], float] | None = None
    ) -> None:
        super().__init__()
        self.settings = settings
        #: the clock of the dialogs' key guard (held Enter); tests inject their own
        self.key_clock: Callable[[], float] = key_clock or time.monotonic
        if self.no_color:
            # Textual's NO_COLOR filter (Monochrome) turns colours into greys, which still
            # reach the terminal as 256-colour / truecolor sequences: drop colours instead
            self._filters = [
                NoColor() if isinstance(f, Monochrome) else f for f in self._filters
            ]
        #: what the terminal shows: each update sends only the cells that changed
        self.mirror = TerminalMirror()
        self.catalog: list[RunbookEntry] = []
        #: break-glass in force per environment: (monotonic end, reason); a run opened there
        #: meanwhile is covered for what is left of it
        self.glass: dict[str, tuple[float, str]] = {}
        self._startup_warning: str | None = None
        self._initial_opened = False
        self.environment = self._initial_environment()
        self.set_reactive(OpsConsoleApp.environment_name, self.environment.name)
        if settings.sandbox is not None:
            self.set_reactive(
                OpsConsoleApp.active_faults, tuple(sorted(settings.sandbox.active_faults))
            )

    def _initial_environment(self) -> Environment:
        config = self.settings.config
        try:
            return config.environment(self.settings.environment)
        except OpsConsoleError as exc:
            self._startup_warning = str(exc)
            return config.environment(None)

    def on_mount(self) -> None:
        # back from a suspend: the terminal was used by something else, send everything
        self.app_resume_signal.subscribe(self, lambda _app: self.mirror.reset())
        if self._startup_warning:
            self.notify(self._startup_warning, severity="warning", markup=False)

    # -- catalog and navigation ------------------------------------------------------

    def set_catalog(self, entries: list[RunbookEntry]) -> None:
        self.catalog = entries
        initial = self.settings.initial_runbook
        if initial is not None and not self._initial_opened:
            self._initial_opened = True  # once, not on every reload of the catalog
            self.open_runbook(initial)

    def entry_for(self, path: Path) -> RunbookEntry | None:
        wanted = Path(path)
        for entry in self.catalog:
            if entry.path == wanted:
                return entry
        resolved = wanted.resolve()
        for entry in self.catalog:
            if entry.path.resolve() == resolved:
                return entry
        return None

    @property
    def walkthrough(self) -> WalkthroughScreen | None:
        """The open walkthrough, if any (without importing it when none was ever opened)."""
        module = sys.modules.get(f"{__package__}.walkthrough")
        if module is None:
            return None
        WalkthroughScreen = module.WalkthroughScreen  # noqa: N806
        for screen in reversed(self.screen_stack):
            if isinstance(screen, WalkthroughScreen):
                return screen
        return None

    @work(exclusive=True, group="open", exit_on_error=False)
    async def open_runbook(self, path: Path, focus_step: str | None = None) -> None:
        """Open a runbook's walkthrough in the current environment (offering to resume);
        ``focus_step``: select that step (the dashboard opens the check an operator picked)."""
        from opsconsole.run import RunStore, StepStatus
        from opsconsole.runlock import RunLock
        from opsconsole.session import open_session

        from .resume import ResumePrompt, RunHeldPrompt
        from .walkthrough import WalkthroughScreen

        if self.walkthrough is not None:
            self.notify(
                "A walkthrough is open: leave it (escape) before opening another runbook.",
                severity="warning",
            )
            return
        entry = self.entry_for(path)
        if entry is None:
            from .catalog import load_catalog

            found = await asyncio.to_thread(load_catalog, [], self.settings.home, [Path(path)])
            entry = found[0] if found else None
        if entry is None or not entry.ok or entry.runbook is None:
            from .catalog import display_path

            reason = entry.first_error if entry is not None else f"{display_path(path)}: not found"
            self.notify(
                f"Cannot open this runbook until it is fixed:\n{reason}",
                title="Runbook has errors",
                severity="error",
                markup=False,
                timeout=10,
            )
            return
        runbook = entry.runbook
        environment = self.environment
        store = RunStore(self.settings.home)
        try:
            unfinished = await asyncio.to_thread(store.unfinished, runbook.id, environment.name)
        except OpsConsoleError as exc:
            self.notify(str(exc), severity="error", markup=False)
            return
        resume = None
        read_only = False
        lock: RunLock | None = None
        home = self.settings.home
        if unfinished:
            latest = unfinished[0]
            holder = await asyncio.to_thread(RunLock.holder_of, home, latest.id)
            if holder is not None and holder.held:
                # another console holds it (an SSH link that hung, a colleague): never two
                # consoles writing one run
                held = await self.push_screen_wait(RunHeldPrompt(latest, runbook, holder))
                if held is None:
                    return
                resume = latest
                if held == "read-only":
                    read_only = True
                else:
                    lock = await self._take_over(latest, holder)
                    if lock is None:
                        return
            elif not any(r.status is not StepStatus.PENDING for r in latest.results.values()):
                # opened and left without doing anything: nothing to ask, just carry on with it
                resume = latest
            else:
                choice = await self.push_screen_wait(ResumePrompt(latest, runbook))
                if choice is None:
                    return
                if choice == "resume":
                    resume = latest
                else:
                    from opsconsole.session import abandon_run

                    try:
                        await asyncio.to_thread(
                            abandon_run, latest, home, "operator started a new run"
                        )
                    except OpsConsoleError as exc:
                        self.notify(str(exc), severity="error", markup=False)
                        return
        try:
            from opsconsole.config import read_only_reason

            session = open_session(
                runbook, environment, home, resume=resume, read_only=read_only, lock=lock,
                mutations_off=read_only_reason(environment, self.settings.read_only),
                glass=not self.settings.read_only,
            )
            problems = await session.start()
            self._carry_glass(session)
        except OpsConsoleError as exc:
            if lock is not None:
                lock.release()
            self.notify(str(exc), title="Cannot start the run", severity="error", markup=False)
            return
        walkthrough = WalkthroughScreen(session, self.settings)
        await self.push_screen(walkthrough)
        if resume is not None and not read_only:
            await self._restore_faults(resume.id)
        self.remember_faults()
        if focus_step is not None and focus_step in {step.id for step in runbook.steps}:
            walkthrough.jump_to(focus_step)
        for problem in [*problems, *session.warnings]:
            self.notify(problem, title="Warning", severity="warning", markup=False, timeout=10)

    async def _take_over(self, run: Run, holder: Holder) -> RunLock | None:
        """Typed confirmation and a reason, then the lock, then a hard audit record (if that
        cannot be written the take-over is undone: it must never go unrecorded)."""
        from opsconsole.audit import AuditLog
        from opsconsole.errors import AuditUnavailable
        from opsconsole.runlock import RunLock

        from .resume import TakeOverDialog

        reason = await self.push_screen_wait(TakeOverDialog(run, holder))
        if not reason:
            return None
        home = self.settings.home
        try:
            lock = await asyncio.to_thread(RunLock.take_over, home, run.id, reason)
        except OpsConsoleError as exc:
            self.notify(str(exc), title="Cannot take over", severity="error", markup=False)
            return None
        try:
            AuditLog(home / "audit.jsonl").append(
                "run.takeover",
                run=run.id,
                environment=run.environment,
                previous=holder.who_at,
                previous_status=holder.status,
                reason=reason,
                generation=lock.generation,
            )
        except AuditUnavailable as exc:
            lock.release()
            self.notify(str(exc), title="Take-over not recorded", severity="error", markup=False)
            return None
        return lock

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # Backstop for the app's own workers: report, never crash the console.
        if event.state is WorkerState.ERROR and event.worker.group in {"open", "sandbox"}:
            error = event.worker.error
            self.notify(
                f"{type(error).__name__}: {error}",
                title="Unexpected error",
                severity="error",
                markup=False,
                timeout=15,
            )

    # -- environment -----------------------------------------------------------------

    def action_pick_environment(self) -> None:
        from .environments import EnvironmentPicker

        if self.walkthrough is not None:
            self.notify(
                "Leave the walkthrough (escape) before switching environment: "
                "this run belongs to " + self.walkthrough.session.environment.name,
                severity="warning",
                markup=False,
            )
            return
        self.push_screen(
            EnvironmentPicker(self.settings.config, self.environment.name),
            callback=self._environment_picked,
        )

    def _environment_picked(self, name: str | None) -> None:
        if name:
            self.switch_environment(name)

    def switch_environment(self, name: str) -> None:
        if self.walkthrough is not None:
            self.notify(
                "Leave the walkthrough (escape) before switching environment.",
                severity="warning",
            )
            return
        try:
            environment = self.settings.config.environment(name)
        except OpsConsoleError as exc:
            self.notify(str(exc), severity="error", markup=False)
            return
        self.environment = environment
        self.environment_name = environment.name
        if environment.protected:
            self.notify(
                f"{environment.name} is PROTECTED: every mutating step asks you to type its name.",
                title="Protected environment",
                severity="warning",
                markup=False,
            )

    # -- break-glass -----------------------------------------------------------------

    def glass_left(self, environment: str) -> float | None:
        """Seconds left of the break-glass in force in ``environment`` (None: none)."""
        until = self.glass.get(environment)
        left = until[0] - time.monotonic() if until is not None else 0.0
        return left if left > 0 else None

    def remember_glass(self, environment: str, seconds: float, reason: str) -> None:
        self.glass[environment] = (time.monotonic() + seconds, reason)

    def break_glass(self, reason: str, minutes: int) -> str:
        """Break glass on Home (no run open): lift the current environment's configured
        ``read_only`` for ``minutes``, audited first (``break_glass``: reason, operator,
        expiry); runs opened meanwhile are covered for what is left. Never lifts a
        ``--read-only`` given on the command line. Returns the expiry (UTC, ISO)."""
        from datetime import UTC, datetime, timedelta

        from opsconsole.audit import AuditLog
        from opsconsole.session import GLASS_REFUSED, StepRefused

        environment = self.environment
        reason = reason.strip()
        if not reason:
            raise StepRefused("a break-glass needs a reason (it goes into the audit log)")
        if self.settings.read_only:
            raise StepRefused(GLASS_REFUSED)
        if not environment.read_only:
            raise StepRefused(f"{environment.name} is not read-only: there is no glass to break")
        expires = (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat(
            timespec="seconds"
        ).replace("+00:00", "Z")
        AuditLog(self.settings.home / "audit.jsonl").append(
            "break_glass",
            environment=environment.name,
            protected=environment.protected,
            operator=_operator(),
            reason=reason,
            minutes=minutes,
            expires=expires,
        )
        self.remember_glass(environment.name, minutes * 60, reason)
        return expires

    def _carry_glass(self, session: RunSession) -> None:
        """A run opened while a break-glass is in force in its environment is covered for
        the whole minutes left (audited for this run too)."""
        left = self.glass_left(session.environment.name)
        if left is None or left < 60 or not session.mutations_off or not session.glass:
            return
        if session.read_only:
            return
        reason = self.glass[session.environment.name][1]
        session.break_glass(reason, int(left // 60))

    # -- sandbox ---------------------------------------------------------------------

    @work(thread=True, group="sandbox", exit_on_error=False)
    def set_sandbox_fault(self, name: str, active: bool) -> None:
        sandbox = self.settings.sandbox
        if sandbox is None:
            return
        try:
            sandbox.set_fault(name, active)
        except OpsConsoleError as exc:
            self.notify(f"Cannot change fault {name}: {exc}", severity="error", markup=False)
            return
        verb = "injected" if active else "cleared"
        self.notify(f"Sandbox fault {name} {verb}.", markup=False)
        self.call_from_thread(self._faults_changed)

    def _faults_changed(self) -> None:
        sandbox = self.settings.sandbox
        self.active_faults = tuple(sorted(sandbox.active_faults)) if sandbox is not None else ()
        self.remember_faults()

    def _faults_file(self, run_id: str) -> Path:
        from opsconsole.faults import fault_memory

        return fault_memory(self.settings.home, run_id)

    def remember_faults(self) -> None:
        """The sandbox faults in force for the open run, kept beside its state: a demo killed
        mid-run comes back with the same faults when the run is resumed."""
        sandbox, walkthrough = self.settings.sandbox, self.walkthrough
        if sandbox is None or walkthrough is None or walkthrough.session.read_only:
            return
        import json

        from opsconsole.files import atomic_write

        try:
            atomic_write(self._faults_file(walkthrough.session.run.id),
                         json.dumps(sorted(sandbox.active_faults)))
        except OSError as exc:
            self.notify(f"Cannot remember the sandbox faults: {exc.strerror or exc}",
                        severity="warning", markup=False)

    async def _restore_faults(self, run_id: str) -> None:
        """Switch back on the faults that were in force when this run was interrupted."""
        import json

        sandbox = self.settings.sandbox
        if sandbox is None:
            return
        try:
            saved = json.loads(self._faults_file(run_id).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return  # never recorded (not a sandbox run, or an older run): nothing to restore
        wanted = [name for name in saved if isinstance(name, str)]
        missing = sorted(set(wanted) - sandbox.active_faults)
        restored: list[str] = []
        for name in missing:
            try:
                await asyncio.to_thread(sandbox.set_fault, name, True)
            except OpsConsoleError as exc:
                self.notify(f"Cannot restore sandbox fault {name}: {exc}", severity="warning",
                            markup=False)
                continue
            restored.append(name)
        self.active_faults = tuple(sorted(sandbox.active_faults))
        if restored:
            self.notify(
                "Sandbox faults restored as they were when this run stopped: "
                + ", ".join(restored) + ". ctrl+p clears them.",
                title="Faults restored",
                markup=False,
            )

    # -- the terminal --------------------------------------------------------------------

    def _display(self, screen: Screen[Any], renderable: RenderableType | None) -> None:
        # only the cells that differ from what the terminal shows are sent (screens/mirror.py)
        if renderable is not None and not self.is_headless and not self._batch_count:
            renderable = self.mirror.diff(renderable, self.size.width, self.size.height)
        super()._display(screen, renderable)

    def action_redraw(self) -> None:
        """ctrl+l: send the whole screen again."""
        self.mirror.reset()
        self.screen.refresh(layout=True)
        self.refresh(repaint=True)

    # -- unexpected errors -----------------------------------------------------------

    def _fatal_error(self) -> None:
        """An unhandled exception: save the run, log it redacted, show one line, never locals.

        Textual's default prints a traceback with local variables to the terminal, which
        could show a secret (request headers live in locals); this replaces it.
        """
        from rich.text import Text

        from opsconsole.crash import crash_summary, write_crash_log

        error = self._exception or RuntimeError("unknown error")
        saved = ""
        walkthrough = self.walkthrough
        if walkthrough is not None:
            try:
                walkthrough.session.save()
                saved = " The run is saved: start opsconsole again to resume it."
            except Exception:  # noqa: BLE001 - already failing; say what we could not do
                saved = " The run could not be saved."
        summary = crash_summary(error, write_crash_log(error))
        self._exit_renderables.append(Text(f"opsconsole stopped: {summary}.{saved}"))
        self._close_messages_no_wait()

    # -- help and quit ---------------------------------------------------------------

    def action_help(self) -> None:
        from .help import HelpScreen

        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss()
            return
        self.push_screen(HelpScreen(self.screen))

    def run_in_progress(self) -> bool:
        walkthrough = self.walkthrough
        return walkthrough is not None and walkthrough.run_in_progress

    async def action_quit(self) -> None:
        from .dialogs import QuitDialog

        if isinstance(self.screen, QuitDialog):
            self.exit(0)  # ctrl+q twice: the operator means it
            return
        if not self.run_in_progress():
            self.exit(0)
            return
        walkthrough = self.walkthrough
        running = None
        if walkthrough is not None:
            running = walkthrough.running_step or walkthrough.session.running
        step = walkthrough.session.runbook.step(running) if walkthrough and running else None
        self.push_screen(
            QuitDialog(step.title if step else None, bool(step and step.mutating)),
            callback=self._quit_answered,
        )

    def _quit_answered(self, quit_now: bool | None) -> None:
        if quit_now:
            self.exit(0)


def _operator() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name: still audited
        return "operator"


def run_console(settings: ConsoleSettings) -> int:
    """Run the console until the operator quits; returns the process exit code."""
    from opsconsole.process import install_hangup_handlers

    install_hangup_handlers()  # an SSH drop stops the children of a running step
    app = OpsConsoleApp(settings)
    app.run()
    return app.return_code if app.return_code is not None else 0
