"""The walkthrough: one run of one runbook in one environment, walked with the keyboard.

Steps run in a worker (``group="step"``): the worker asks the operator through
modal dialogs, calls :meth:`RunSession.execute` and posts typed messages;
the handlers below are the only code that touches widgets.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Footer, Header, Markdown, OptionList, Static
from textual.worker import Worker, WorkerState

from opsconsole.errors import OpsConsoleError
from opsconsole.operator import (
    Event,
    Note,
    OutputLine,
    Progress,
    Question,
    Reply,
    Started,
    StateChange,
    StepCancelled,
)
from opsconsole.run import FINISHED, RunStatus, StepStatus

from .banner import EnvironmentBanner
from .dialogs import (
    BreakGlassDialog,
    CancelStepDialog,
    ErrorDialog,
    SkipReasonDialog,
    UnknownOutcomeDialog,
)
from .filter_bar import FilterBar
from .progress_log import ProgressLog
from .shell_pane import ShellVariablesPane, has_plain_blocks
from .status import STATUS_ICON, counts_content, counts_text, fit_footer, visible
from .step_detail import StepDetail
from .step_list import StepList
from .views import view_for

if TYPE_CHECKING:
    from textual.timer import Timer

    from opsconsole.config import ConsoleSettings
    from opsconsole.model import Step
    from opsconsole.session import RunSession

#: rows of the detail pane kept for the section text below a step's detail (its margin,
#: rule and title) when the detail keeps its height across a cursor move
SECTION_ROOM = 3

#: what n / N jump between: steps that need the operator's attention
ATTENTION = frozenset({StepStatus.FAILED, StepStatus.UNKNOWN, StepStatus.INCONCLUSIVE})

#: at most one progress-log redraw per this many seconds, however fast a step reports
REDRAW_INTERVAL = 0.1
#: lines kept for one redraw; older ones are counted ("… N lines not shown"), not kept.
#: The log shows about a dozen lines; the step's result keeps its output tail.
LOG_BURST = 100


class ConsoleOperator:
    """The operator channel in the console: questions become modal screens; events are
    buffered and reach the screen as one merged message per redraw, at most one per
    :data:`REDRAW_INTERVAL`, so a step that prints 100,000 lines posts a few dozen
    messages, not 100,000, and the screen formats at most :data:`LOG_BURST` lines each."""

    def __init__(self, screen: WalkthroughScreen) -> None:
        self.screen = screen
        #: steps whose Started has not reached the screen (never dropped: it marks RUNNING)
        self.started: list[str] = []
        self.pending: deque[tuple[str, Event]] = deque(maxlen=LOG_BURST)
        self.latest: dict[str, tuple[str, Event]] = {}
        self.dropped = 0
        self.posted = False
        self._timer: asyncio.TimerHandle | None = None
        self._last_drain = float("-inf")
        #: the step the screen's step worker is walking (set by walk_step)
        self.walking: str | None = None
        #: messages that reached the screen (the flood test reads it)
        self.messages = 0

    async def ask(self, step: Step, question: Question) -> Reply:
        dialog = view_for(step.kind).dialog(self.screen.session, step, question)
        try:
            reply = await self.screen.app.push_screen_wait(dialog)
        except asyncio.CancelledError:
            # the step no longer needs the answer (a device flow got its token): close it
            if dialog.is_attached and self.screen.app.screen is dialog:
                dialog.dismiss(None)
            raise
        if reply is None:
            raise StepCancelled("the operator cancelled")
        return reply

    def event(self, step: Step, event: Event) -> None:
        if isinstance(event, Started):
            self.started.append(step.id)
        elif event.merge_key:
            self.latest[event.merge_key] = (step.id, event)
        else:
            if len(self.pending) == self.pending.maxlen:
                self.dropped += 1  # the deque lets the oldest go
            self.pending.append((step.id, event))
        if self.posted:
            return
        self.posted = True
        loop = asyncio.get_running_loop()
        wait = self._last_drain + REDRAW_INTERVAL - loop.time()
        if wait > 0:
            self._timer = loop.call_later(wait, self._post)
        else:
            self._post()

    def _post(self) -> None:
        self._timer = None
        self.screen.post_message(WalkthroughScreen.StepEvents())

    def flush(self) -> None:
        """Post what is buffered now, so it reaches the screen before the step's end does."""
        if self._timer is not None:
            self._timer.cancel()
            self._post()

    def drain(self) -> tuple[list[str], list[tuple[str, Event]], int]:
        """(steps started, events in order, lines left out) since the last drain."""
        self.posted = False
        self._last_drain = asyncio.get_running_loop().time()
        self.messages += 1
        started, self.started = self.started, []
        events = [*self.pending, *self.latest.values()]
        dropped, self.dropped = self.dropped, 0
        self.pending.clear()
        self.latest.clear()
        return started, events, dropped


__all__ = ["WalkthroughScreen"]


class DetailPane(VerticalScroll):
    """The step detail above its section's prose. When the pane changes size (the
    terminal, the split, the running line below it) the detail's held height is let go:
    it was measured for the old size and could push the section's title out of view."""

    def on_resize(self) -> None:
        self.query_one(StepDetail).styles.min_height = None


class WalkthroughScreen(Screen[None]):
    """Sections and steps on the left, the selected step and its section on the right."""

    CSS_PATH = "walkthrough.tcss"
    AUTO_FOCUS = "StepList"

    BINDINGS: ClassVar[list[BindingType]] = [
        # escape and F1 first: on a narrow footer the last keys are the ones cut off
        Binding("escape", "leave", "Home", tooltip="Back to the runbook list (the run is saved)"),
        Binding("f1", "app.help", "Help", tooltip="Keys of this screen and how to walk a runbook"),
        Binding("r", "run_step", "Run/retry", show=False,
                tooltip="Run (or retry) the selected step"),
        Binding("u", "next_step", "Unfinished", tooltip="Select the next unfinished step"),
        Binding("n", "next_failed", "Next failed", show=False,
                tooltip="Select the next failed (or unknown) step"),
        Binding("N", "previous_failed", "Prev failed", show=False,
                tooltip="Select the previous failed (or unknown) step"),
        Binding("s", "skip_step", "Skip", tooltip="Skip the selected step (a reason is required)"),
        Binding("x", "answer_step", "Answer check", show=False,
                tooltip="Answer the selected manual check"),
        Binding("d", "gate", "Gate", tooltip="Jump to the next gate and decide go / no-go"),
        Binding("e", "export_evidence", "Evidence", tooltip="Export the evidence report"),
        Binding("p", "edit_placeholder", "Placeholders", show=False,
                tooltip="Change a placeholder value given earlier in this run"),
        Binding("slash", "filter", "Filter", show=False,
                tooltip="Filter the steps by title (enter keeps it, escape clears it)"),
        Binding("q", "leave", "Back", show=False,
                tooltip="Back to the runbook list, as escape (keys typed in a field stay there)"),
        Binding("b", "break_glass", "Break glass",
                tooltip="Read-only: let steps that change something run for a while (audited)"),
        Binding("left_square_bracket", "split(-4)", "Narrower", show=False,
                tooltip="Make the step list narrower"),
        Binding("right_square_bracket", "split(4)", "Wider", show=False,
                tooltip="Make the step list wider"),
    ]

    # -- messages from workers -----------------------------------------------------

    class StepEvents(Message):
        """Events are waiting in the operator's buffer (one message per redraw)."""

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, WalkthroughScreen.StepEvents)

    class StepFinished(Message):
        """A step was run, answered or skipped; the session holds its result."""

        def __init__(self, step_id: str) -> None:
            super().__init__()
            self.step_id = step_id

    class StepSettled(Message):
        """A step worker ended without a new result (cancelled, refused)."""

        def __init__(self, step_id: str) -> None:
            super().__init__()
            self.step_id = step_id

    class StepCrashed(Message):
        def __init__(self, step_id: str, error: str) -> None:
            super().__init__()
            self.step_id = step_id
            self.error = error

    class EvidenceExported(Message):
        def __init__(self, path: str) -> None:
            super().__init__()
            self.path = path

    #: the step a worker is running right now (None when idle)
    running_step: reactive[str | None] = reactive(None)

    def __init__(self, session: RunSession, settings: ConsoleSettings) -> None:
        super().__init__()
        self.session = session
        self.settings = settings
        self._section_shown: int | None = None
        self._prose = self._section_prose()
        self.operator = ConsoleOperator(self)
        #: ticks the break-glass countdown on the banner while one is in force
        self._glass_timer: Timer | None = None

    # -- layout ----------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        session = self.session
        statuses = {step.id: session.result(step.id).status for step in session.runbook.steps}
        yield Header()
        yield EnvironmentBanner(id="walk-status")
        with Horizontal(id="walk-body"):
            with Vertical(id="walk-steps-pane"):
                yield FilterBar(id="walk-filter")
                yield StepList(session.runbook, statuses, id="walk-steps")
                if has_plain_blocks(session):
                    yield ShellVariablesPane(id="walk-shell", markup=False)
            with DetailPane(id="walk-detail-pane"):
                yield StepDetail(id="walk-step-detail")
                yield Static(id="walk-section-title", markup=False)
                yield Markdown(id="walk-section-prose")
        yield Static(id="walk-run-state", markup=False)
        log = ProgressLog(id="walk-progress", max_lines=500)
        log.border_title = "Progress"
        yield log
        yield Footer()

    def on_mount(self) -> None:
        session = self.session
        self.title = visible(session.runbook.title)
        self.sub_title = "walkthrough"
        banner = self.query_one(EnvironmentBanner)
        banner.environment_name = session.environment.name
        banner.protected = session.environment.protected
        banner.read_only = session.read_only or session.mutations_blocked() is not None
        self.watch(self.app, "active_faults", self._faults_changed)
        self.set_class(session.environment.protected, "-protected")
        self._update_status()
        steps = session.runbook.steps
        step_id = session.run.cursor or (steps[0].id if steps else None)
        if step_id is not None:
            self.select_step(step_id)
        if session.read_only:
            self._log(f"Opened run {session.run.id} read-only: another console holds it.")
        elif session.mutations_off:
            way = "b breaks glass" if session.glass else "restart without --read-only to run them"
            self._log(f"Run {session.run.id}: {session.mutations_off} ({way}).")
        elif session.resumed:
            self._log(f"Resumed run {session.run.id}.")
        else:
            self._log(f"Started run {session.run.id} in {session.environment.name}.")
        self._show_run_state()
        self._show_shell()
        self._mark_read_only()
        if session.break_glass_left() is not None:  # broken on Home: it covers this run
            self._log("Break-glass in force in this environment: steps that change "
                      "something run until it expires.")
            self._start_glass_timer()

    def _mark_read_only(self) -> None:
        """The step list marks the steps that would be refused here (⊘)."""
        session = self.session
        changed = self.query_one(StepList).set_read_only(
            session.read_only or session.mutations_blocked() is not None
        )
        step = self.selected_step
        if changed and step is not None and step.mutating:
            self._show_step(step.id)

    def _show_shell(self) -> None:
        for pane in self.query(ShellVariablesPane):
            pane.show_session(self.session)

    def _faults_changed(self, faults: tuple[str, ...]) -> None:
        self.query_one(EnvironmentBanner).faults = faults

    async def on_unmount(self) -> None:
        await self.session.close()

    # -- state helpers -----------------------------------------------------------------

    @property
    def run_in_progress(self) -> bool:
        """A run worth asking about before quitting: unfinished and touched, or a step running."""
        session = self.session
        if self.running_step is not None or session.running is not None:
            return True
        if session.finished:
            return False
        return any(
            session.result(step.id).status is not StepStatus.PENDING
            for step in session.runbook.steps
        )

    @property
    def selected_step(self) -> Step | None:
        step_id = self.query_one(StepList).selected_step_id
        return self.session.runbook.step(step_id) if step_id else None

    def select_step(self, step_id: str) -> None:
        self.query_one(StepList).select_step(step_id)
        self._show_step(step_id)

    def _section_prose(self) -> dict[int, str]:
        """Markdown per section with steps; step-less sections before it are folded in."""
        prose: dict[int, str] = {}
        pending: list[str] = []
        for section in self.session.runbook.sections:
            if not section.step_ids:
                if section.prose:
                    pending.append(f"**{section.title}**\n\n{section.prose}")
                continue
            prose[section.index] = "\n\n".join([*pending, section.prose]).strip()
            pending = []
        if pending and prose:  # step-less sections at the end belong to the last one
            last = max(prose)
            prose[last] = "\n\n".join([prose[last], *pending]).strip()
        return prose

    def _log(self, line: str) -> None:
        from rich.text import Text

        self.query_one(ProgressLog).add(Text(visible(line)))

    def _update_status(self) -> None:
        session = self.session
        banner = self.query_one(EnvironmentBanner)
        banner.run_id = session.run.id
        banner.details = counts_content(session.summary())
        banner.compact_details = counts_content(session.summary(), compact=True)

    def _show_step(self, step_id: str) -> None:
        session = self.session
        step = session.runbook.step(step_id)
        detail = self.query_one(StepDetail)
        # Within a section the detail keeps the height it has: a shorter step leaves blank
        # lines rather than pulling the section text up (every moved line is sent again,
        # per key), but never so many that the section's title leaves the pane
        same_section = self._section_shown == step.section
        room = self.query_one("#walk-detail-pane").size.height - SECTION_ROOM
        hold = min(detail.outer_size.height, room)
        detail.styles.min_height = hold if same_section and hold > 0 else None
        detail.show(session, step, running=step_id == self.running_step)
        if not same_section:
            self._section_shown = step.section
            section = session.runbook.sections[step.section]
            self.query_one("#walk-section-title", Static).update(
                Content.assemble(("Section: ", "$text-muted"), (section.title, "bold"))
            )
            self.query_one(Markdown).update(self._prose.get(step.section, ""))
            self.query_one("#walk-detail-pane", VerticalScroll).scroll_home(animate=False)

    def _show_run_state(self) -> None:
        session = self.session
        state = self.query_one("#walk-run-state", Static)
        counts = session.summary()
        state.remove_class("-completed", "-aborted", "-running")
        if self.running_step is not None:
            title = visible(session.runbook.step(self.running_step).title)
            state.update(Content.assemble(("◌ Running: ", "bold"), title, " …"))
            state.add_class("-running")
        elif session.run.status is RunStatus.COMPLETED:
            what = "Rehearsal completed" if session.run.rehearsal else "Run completed"
            if not counts["passed"] and not counts["answered"]:
                what = "Run completed, nothing verified"
            state.update(
                Content(f"{what}: {counts_text(counts)} — press e to export evidence")
            )
            state.add_class("-completed")
        elif session.run.status is RunStatus.ABORTED:
            state.update(
                Content(
                    f"Run stopped (no-go): {counts_text(counts)} — press e to export evidence"
                )
            )
            state.add_class("-aborted")
        else:
            state.update(Content(""))
        state.display = any(
            state.has_class(name) for name in ("-completed", "-aborted", "-running")
        )

    def _refresh_step(self, step_id: str) -> None:
        status = self.session.result(step_id).status
        if step_id == self.running_step:
            status = StepStatus.RUNNING
        self.query_one(StepList).set_status(step_id, status)
        selected = self.query_one(StepList).selected_step_id
        if selected == step_id:
            self._show_step(step_id)

    def watch_running_step(self, old: str | None, new: str | None) -> None:
        for step_id in (old, new):
            if step_id is not None:
                self._refresh_step(step_id)
        self._show_run_state()

    # -- list events -----------------------------------------------------------------

    @on(OptionList.OptionHighlighted, "#walk-steps")
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option.id and not event.option.disabled:
            self._show_step(event.option.id)

    @on(OptionList.OptionSelected, "#walk-steps")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.action_run_step()

    # -- actions ---------------------------------------------------------------------

    def _busy(self) -> bool:
        running = self.running_step or self.session.running
        if running is not None:
            self.notify(
                visible(f"{self.session.runbook.step(running).title} is still running; "
                        "wait for it, or press escape to stop it."),
                severity="warning",
                markup=False,
            )
            return True
        return any(
            worker.is_running for worker in self.workers if worker.group == "step"
        )

    def action_run_step(self) -> None:
        step = self.selected_step
        if step is None or self._busy():
            return
        self.walk_step(step.id, "run")

    def action_answer_step(self) -> None:
        step = self.selected_step
        if step is None or self._busy():
            return
        if not step.needs_human:
            self.notify("x answers manual checks and questions; r runs this step.", markup=False)
            return
        self.walk_step(step.id, "run")

    def action_skip_step(self) -> None:
        step = self.selected_step
        if step is None or self._busy():
            return
        self.walk_step(step.id, "skip")

    def action_next_step(self) -> None:
        steps = self.session.runbook.steps
        current = self.selected_step
        start = self.session.runbook.index_of(current.id) + 1 if current else 0
        for step in [*steps[start:], *steps[:start]]:
            if self.session.result(step.id).status not in FINISHED:
                self.select_step(step.id)
                return
        self.notify("Every step is finished.", markup=False)

    def action_split(self, columns: int) -> None:
        """[ / ]: move the split between the step list and the detail."""
        pane = self.query_one("#walk-steps-pane")
        width = pane.outer_size.width + columns
        pane.styles.width = max(20, min(width, self.size.width - 24))

    def on_resize(self) -> None:
        fit_footer(self)

    def action_next_failed(self) -> None:
        self._jump_failed(forward=True)

    def action_previous_failed(self) -> None:
        self._jump_failed(forward=False)

    def _jump_failed(self, *, forward: bool) -> None:
        """n / N: the next (previous) step that failed or whose outcome is unknown, around."""
        steps = self.session.runbook.steps
        current = self.selected_step
        here = self.session.runbook.index_of(current.id) if current else -1
        order = [*steps[here + 1 :], *steps[: here + 1]] if forward else [
            *reversed(steps[:here]), *reversed(steps[here:])
        ]
        for step in order:
            if self.session.result(step.id).status in ATTENTION:
                self.select_step(step.id)
                return
        self.notify("No failed or unknown step in this run.", markup=False)

    def action_filter(self) -> None:
        self.query_one(FilterBar).open()

    @on(FilterBar.Changed, "#walk-filter")
    def _filter_changed(self, event: FilterBar.Changed) -> None:
        self.query_one(StepList).set_filter(event.value)
        step = self.selected_step
        if step is not None:
            self._show_step(step.id)

    @on(FilterBar.Closed)
    def _filter_closed(self) -> None:
        self.query_one(StepList).focus()

    def action_gate(self) -> None:
        if self._busy():
            return
        for step in self.session.runbook.steps:
            if step.closes_phase and self.session.result(step.id).status not in FINISHED:
                self.select_step(step.id)
                self.walk_step(step.id, "run")
                return
        self.notify("No undecided gate left in this run.", markup=False)

    @work(group="placeholder", exclusive=True, exit_on_error=False)
    async def action_edit_placeholder(self) -> None:
        """p: pick a placeholder answered in this run and give it a new value."""
        from opsconsole.errors import RunStateError
        from opsconsole.operator import Choice, Choose, EnterText
        from opsconsole.steps.command import keep_placeholder

        from .dialogs import ChoiceDialog, InputDialog
        from .shell_pane import run_shell

        session = self.session
        step = self.selected_step
        shell = run_shell(session) if has_plain_blocks(session) else None
        if shell is None or step is None or not shell.placeholders:
            self.notify("No placeholder has a value in this run yet.", markup=False)
            return
        names = sorted(shell.placeholders)
        name = names[0]
        if len(names) > 1:
            picked = await self.app.push_screen_wait(ChoiceDialog(step, Choose(
                prompt="Which placeholder?", note=False,
                choices=tuple(Choice(f"n{i}", f"<{n}>") for i, n in enumerate(names)),
            )))
            if picked is None or not picked.value:
                return
            name = names[int(picked.value[1:])]
        secret = name in shell.secret_placeholders
        reply = await self.app.push_screen_wait(InputDialog(step, EnterText(
            prompt=f"New value for <{name}>", name=name, secret=secret, placeholder=name,
        )))
        if reply is None or reply.value is None:
            return
        if secret:
            session.secrets.put(name, reply.value)  # redacted everywhere from now on
        keep_placeholder(session, shell, name, reply.value, secret=secret, how="edited",
                         step=step.id)
        self._show_shell()
        self._log(f"<{name}> changed: the next blocks that use it get the new value.")
        try:
            session.save()  # kept for a resume (never a secret one)
        except RunStateError as exc:
            self._log(f"<{name}> is not saved for a resume: {exc}")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "break_glass":
            # only where there is glass to break: read-only mode, and this console holds the run
            return bool(self.session.mutations_off) and not self.session.read_only
        return True

    def action_break_glass(self) -> None:
        from opsconsole.session import GLASS_REFUSED

        session = self.session
        if not session.glass:
            self.notify(GLASS_REFUSED[0].upper() + GLASS_REFUSED[1:] + ".",
                        title="Still read-only", severity="warning", markup=False)
            return
        if session.break_glass_left() is not None:
            self.notify("The glass is already broken; the banner shows the time left.",
                        markup=False)
            return
        minutes = self.settings.config.break_glass_minutes
        self.app.push_screen(
            BreakGlassDialog(session.environment.name, minutes),
            callback=lambda reason: self._glass_broken(reason, minutes),
        )

    def _glass_broken(self, reason: str | None, minutes: int) -> None:
        if not reason:
            return
        try:
            expires = self.session.break_glass(reason, minutes)
        except OpsConsoleError as exc:
            self.notify(str(exc), title="Still read-only", severity="error", markup=False)
            return
        self._log(f"Break-glass until {expires}: steps that change something run. "
                  f"Reason: {reason}")
        self.app.remember_glass(  # type: ignore[attr-defined]
            self.session.environment.name, minutes * 60, reason
        )
        self._start_glass_timer()

    def _start_glass_timer(self) -> None:
        self._tick_glass()
        if self._glass_timer is None:
            self._glass_timer = self.set_interval(1, self._tick_glass)

    def _tick_glass(self) -> None:
        """The banner's countdown; when it runs out the console is read-only again."""
        banner = self.query_one(EnvironmentBanner)
        left = self.session.break_glass_left()
        self._mark_read_only()
        if left is None:
            banner.break_glass = ""
            banner.read_only = True
            if self._glass_timer is not None:
                self._glass_timer.stop()
                self._glass_timer = None
                self._log("Break-glass expired: read-only again.")
            return
        whole = int(left)
        banner.read_only = False
        banner.break_glass = f"{whole // 60:02d}:{whole % 60:02d}"

    def action_export_evidence(self) -> None:
        self.export_evidence()

    def action_leave(self) -> None:
        """escape: stop the running step (asking first when it changes something), or go
        back to the runbook list."""
        # the session knows at once; running_step only once the Started event is drawn
        step_id = self.running_step or self.session.running
        if step_id is None and not self._walking():
            self.dismiss()
            return
        step = self.session.runbook.step(step_id) if step_id is not None else None
        if step is not None and step.mutating:
            self.app.push_screen(
                CancelStepDialog(step.title),
                callback=lambda stop: self._cancel_answered(step.id, stop),
            )
            return
        self.cancel_running_step()

    def _walking(self) -> bool:
        return any(worker.is_running for worker in self.workers if worker.group == "step")

    def _cancel_answered(self, step_id: str, stop: bool | None) -> None:
        # the step may have ended while the question was open: never stop another one
        if stop and self.session.running == step_id:
            self.cancel_running_step()

    def cancel_running_step(self) -> None:
        for worker in self.workers:
            if worker.group == "step" and worker.is_running:
                step_id = self.session.running or self.operator.walking
                title = self.session.runbook.step(step_id).title if step_id else "the step"
                self._log(f"⊘ stopping {title}…")
                worker.cancel()

    def jump_to(self, step_id: str) -> None:
        """Select a step (from the command palette)."""
        self.select_step(step_id)
        self.query_one(StepList).focus()

    # -- the step worker -------------------------------------------------------------

    @work(exclusive=True, group="step", exit_on_error=False)
    async def walk_step(self, step_id: str, intent: str) -> None:
        """Ask what needs asking, then run, answer or skip one step (never two at once)."""
        session = self.session
        step = session.runbook.step(step_id)
        self.operator.walking = step_id
        try:
            if intent == "skip":
                reason = await self.app.push_screen_wait(SkipReasonDialog(step))
                if reason is None:
                    return
                session.skip(step_id, reason)
                self.post_message(self.StepFinished(step_id))
                return
            await self._run(step)
        except StepCancelled:
            self.post_message(self.StepSettled(step_id))
        except OpsConsoleError as exc:
            self.notify(
                visible(str(exc)), title="Not done", severity="warning", markup=False, timeout=8
            )
            self.post_message(self.StepSettled(step_id))
        except Exception as exc:  # noqa: BLE001 - shown in a dialog; the run is saved
            try:
                session.save()
            except Exception:  # noqa: BLE001, S110 - saving is best effort here
                pass
            text = session.redactor.redact(f"{type(exc).__name__}: {exc}")
            self.post_message(self.StepCrashed(step_id, text))
        finally:
            # buffered output goes out now, so it is drawn before the step's end (or the
            # worker's cancellation) is handled, never after it
            self.operator.flush()

    async def _run(self, step: Step) -> None:
        session = self.session
        result = session.result(step.id)
        if session.finished:
            self.notify(
                "This run is finished. Open the runbook again to start a new run.",
                markup=False,
            )
            return
        rerun_unknown = False
        if result.status is StepStatus.UNKNOWN:
            if not await self.app.push_screen_wait(UnknownOutcomeDialog(step, result)):
                return
            rerun_unknown = True
        before = result.attempts
        await session.execute(step.id, operator=self.operator, rerun_unknown=rerun_unknown)
        if session.result(step.id).attempts == before:
            self.post_message(self.StepSettled(step.id))  # cancelled before it started
            return
        self.post_message(self.StepFinished(step.id))

    @work(group="evidence", exit_on_error=False)
    async def export_evidence(self) -> None:
        from opsconsole.evidence import evidence_path, render_evidence, write_evidence

        directory = self.settings.evidence_dir or self.settings.home / "evidence"
        try:
            # render here, on the loop the session lives on (a step may be running);
            # only the file write goes to a thread
            text = render_evidence(self.session)
            path = await asyncio.to_thread(
                write_evidence, text, evidence_path(self.session, directory)
            )
            self.session.record_event("evidence.export", path=str(path))
        except OpsConsoleError as exc:
            self.notify(str(exc), title="Evidence not written", severity="error", markup=False)
            return
        except OSError as exc:
            self.notify(
                f"cannot write evidence to {directory}: {exc.strerror or exc}",
                title="Evidence not written",
                severity="error",
                markup=False,
            )
            return
        self.post_message(self.EvidenceExported(str(path)))

    # -- handlers (the only place widgets change) ------------------------------------

    @on(StepEvents)
    def _step_events(self, message: StepEvents) -> None:
        from rich.text import Text

        started, events, dropped = self.operator.drain()
        lines: list[str] = []
        for step_id in started:
            if self.session.running == step_id:  # not already over (its end may come first)
                self.running_step = step_id
            lines.append(f"▶ {self.session.runbook.step(step_id).title}")
        if dropped:
            lines.append(
                f"  … {dropped:,} lines not shown here (the step's result keeps its output tail)"
            )
        for _step_id, event in events:
            if isinstance(event, Note | OutputLine):
                lines.append(f"  {event.text}")
            elif isinstance(event, StateChange):
                lines.append(f"  state: {event.state}" + (f" ({event.detail})" if event.detail
                                                           else ""))
            elif isinstance(event, Progress):
                done = (
                    f" {event.done:,}/{event.total:,}"
                    if event.total and event.done is not None
                    else ""
                )
                share = f" {event.fraction:.0%}" if event.fraction is not None else ""
                lines.append(f"  {event.label}{done}{share}")
        watching = getattr(self.app.screen, "step_events", None)
        if watching is not None and self.app.screen is not self:
            watching([event for _step_id, event in events])  # an open device-flow dialog
        if lines:
            # one write for the whole burst: a single render, and the log trims to max_lines
            self.query_one(ProgressLog).add(Text(visible("\n".join(lines))))
        # a running step's detail follows what it saved so far (progress, measurements)
        running = self.running_step
        if running is not None and any(step_id == running for step_id, _ in events):
            if self.query_one(StepList).selected_step_id == running:
                self._show_step(running)

    @on(StepSettled)
    def _step_settled(self, message: StepSettled) -> None:
        self.running_step = None
        # taken over by another console meanwhile: say so where the environment is shown
        self.query_one(EnvironmentBanner).read_only = (
            self.session.read_only or self.session.mutations_blocked() is not None
        )
        self._mark_read_only()
        self._refresh_step(message.step_id)

    @on(StepFinished)
    def _step_finished(self, message: StepFinished) -> None:
        session = self.session
        step_id = message.step_id
        self.running_step = None
        self._refresh_step(step_id)
        self._update_status()
        result = session.result(step_id)
        step = session.runbook.step(step_id)
        outcome = result.detail or result.status.value
        self._log(f"{STATUS_ICON[result.status]} {step.title}: {outcome}")
        self._show_shell()
        if result.status is StepStatus.FAILED and not session.finished:
            # Stay on a failed step: the operator reads why, then retries (r) or moves on (n).
            self._show_step(step_id)
            self.notify(
                visible(f"{step.title}: {result.detail}\nr retries it; s skips it; u moves on."),
                title="Step failed",
                severity="error",
                markup=False,
                timeout=8,
            )
        elif session.run.cursor is not None:
            self.select_step(session.run.cursor)
        self._show_run_state()
        if session.finished:
            self._announce_finish()

    def _announce_finish(self) -> None:
        counts = self.session.summary()
        if self.session.run.status is RunStatus.COMPLETED:
            self.notify(
                f"{counts_text(counts)}. Press e to export the evidence.",
                title="Rehearsal completed" if self.session.run.rehearsal else "Run completed",
                markup=False,
                timeout=10,
            )
            self._log("Run completed.")
        else:
            self.notify(
                "The gate was decided no-go: this run is stopped. Press e to export the evidence.",
                title="Run stopped",
                severity="warning",
                markup=False,
                timeout=10,
            )
            self._log("Run stopped at a no-go gate.")

    @on(StepCrashed)
    def _step_crashed(self, message: StepCrashed) -> None:
        self.running_step = None
        if message.step_id:
            self._refresh_step(message.step_id)
        self._update_status()
        self._log(f"✗ unexpected error: {message.error}")
        self.app.push_screen(
            ErrorDialog(
                message.error,
                f"The run is saved (run {self.session.run.id}); you can resume it. "
                "Please report this error with the evidence export.",
            )
        )

    @on(EvidenceExported)
    def _evidence_exported(self, message: EvidenceExported) -> None:
        self._log(f"Evidence written to {message.path}")
        self.notify(message.path, title="Evidence exported", markup=False, timeout=10)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "step" and event.state in {
            WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED
        }:
            # a "stop the running step?" question about a step that has ended is moot
            # (dismiss pops the top screen: only when the question is on top)
            if isinstance(self.app.screen, CancelStepDialog):
                self.app.screen.dismiss(None)
        # Backstop: anything that escaped the worker's own handling.
        if event.state is WorkerState.CANCELLED and event.worker.group == "step":
            # running_step is None when the Started event had not been drawn yet
            step_id = self.running_step or self.operator.walking
            self.running_step = None
            self.operator.walking = None
            if step_id is not None:
                self._refresh_step(step_id)
                self._update_status()
                result = self.session.result(step_id)
                self._log(f"{STATUS_ICON[result.status]} {result.detail or 'stopped'}")
            return
        if event.state is WorkerState.ERROR and event.worker.group in {"step", "evidence"}:
            error = event.worker.error
            text = self.session.redactor.redact(f"{type(error).__name__}: {error}")
            if event.worker.group == "step":
                self.post_message(self.StepCrashed(self.running_step or "", text))
            else:
                self.notify(text, title="Evidence not written", severity="error", markup=False)
