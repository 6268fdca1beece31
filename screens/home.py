"""Home: the runbooks the console knows, their last runs, and the environment."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.style import Style
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.content import Content
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from .banner import EnvironmentBanner
from .filter_bar import FilterBar

if TYPE_CHECKING:
    from textual.timer import Timer

    from opsconsole.model import Runbook

    from .app import OpsConsoleApp
    from .catalog import RunbookEntry

__all__ = ["HomeScreen", "RunbookTable"]

#: fixed widths of the narrow columns; title, service and tags share the rest
_STEPS_WIDTH = 5
_LAST_RUN_WIDTH = 18


class RunbookTable(DataTable[Text]):
    """The runbook list; enter opens the highlighted runbook."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "Open", tooltip="Open the highlighted runbook"),
        Binding("home", "first_row", "First runbook", show=False),
        Binding("end", "last_row", "Last runbook", show=False),
        Binding("j", "cursor_down", "Down", show=False, tooltip="Next runbook (as ↓)"),
        Binding("k", "cursor_up", "Up", show=False, tooltip="Previous runbook (as ↑)"),
        Binding("g", "first_row", "First", show=False, tooltip="First runbook (as home)"),
        Binding("G", "last_row", "Last", show=False, tooltip="Last runbook (as end)"),
    ]

    def action_first_row(self) -> None:
        if self.row_count:
            self.move_cursor(row=0)

    def action_last_row(self) -> None:
        if self.row_count:
            self.move_cursor(row=self.row_count - 1)


class HomeScreen(Screen[None]):
    """The first screen: pick a runbook and an environment."""

    CSS_PATH = "home.tcss"
    AUTO_FOCUS = "RunbookTable"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("e", "pick_environment", "Environment", tooltip="Switch the environment"),
        Binding("r", "reload", "Reload", tooltip="Read the runbook files again"),
        Binding("d", "dashboard", "Dashboard", tooltip="Health checks of this environment"),
        Binding("slash", "filter", "Filter", tooltip="Filter the runbooks (escape clears)"),
        Binding("q", "app.quit", "Quit", show=False, tooltip="Quit opsconsole (as ctrl+q)"),
        Binding("b", "break_glass", "Break glass",
                tooltip="Read-only: let steps that change something run for a while (audited)"),
    ]

    class CatalogLoaded(Message):
        """The runbook files were parsed (posted by the catalog worker)."""

        def __init__(self, entries: list[RunbookEntry]) -> None:
            super().__init__()
            self.entries = entries

    class CatalogFailed(Message):
        def __init__(self, reason: str) -> None:
            super().__init__()
            self.reason = reason

    def __init__(self) -> None:
        super().__init__()
        self._entries: dict[str, RunbookEntry] = {}
        self._table_width = 0
        self._columns: list[str] = []
        #: ticks the break-glass countdown on the banner while one is in force
        self._glass_timer: Timer | None = None

    @property
    def ops_app(self) -> OpsConsoleApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Header()
        yield EnvironmentBanner(id="home-environment")
        yield FilterBar(id="home-filter")
        yield RunbookTable(id="runbooks", cursor_type="row", zebra_stripes=True)
        yield Static(Content("Reading runbooks…"), id="runbook-detail", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "runbooks"
        self.watch(self.app, "environment_name", self._environment_changed)
        self.watch(self.app, "active_faults", self._faults_changed)
        self._build_columns()
        # parse after the first frame: the operator sees the console at once
        self.call_after_refresh(self.load_catalog)

    def action_dashboard(self) -> None:
        from .dashboard import DashboardScreen

        runbooks = [
            entry.runbook
            for entry in self._entries.values()
            if entry.ok and entry.runbook is not None
        ]
        self.app.push_screen(DashboardScreen(runbooks))

    def on_screen_resume(self) -> None:
        # Back from a walkthrough: the last-run column may have changed, and a break-glass
        # may have been broken there
        self._tick_glass()
        if self._entries:
            self.load_catalog()

    def _faults_changed(self, faults: tuple[str, ...]) -> None:
        self.query_one(EnvironmentBanner).faults = faults

    def _environment_changed(self, name: str) -> None:
        environment = self.ops_app.environment
        banner = self.query_one(EnvironmentBanner)
        banner.environment_name = environment.name
        banner.protected = environment.protected
        banner.description = environment.description
        banner.read_only = environment.read_only or self.ops_app.settings.read_only
        self.set_class(environment.protected, "-protected")
        self._tick_glass()

    # -- break-glass -----------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "break_glass":  # only where there is glass: a read-only environment
            return self.ops_app.environment.read_only or self.ops_app.settings.read_only
        return True

    def action_break_glass(self) -> None:
        from opsconsole.session import GLASS_REFUSED

        from .dialogs import BreakGlassDialog

        app = self.ops_app
        environment = app.environment
        if app.settings.read_only:
            self.notify(GLASS_REFUSED[0].upper() + GLASS_REFUSED[1:] + ".",
                        title="Still read-only", severity="warning", markup=False)
            return
        if app.glass_left(environment.name) is not None:
            self.notify("The glass is already broken; the banner shows the time left.",
                        markup=False)
            return
        minutes = app.settings.config.break_glass_minutes
        self.app.push_screen(
            BreakGlassDialog(environment.name, minutes),
            callback=lambda reason: self._glass_broken(reason, minutes),
        )

    def _glass_broken(self, reason: str | None, minutes: int) -> None:
        from opsconsole.errors import OpsConsoleError

        if not reason:
            return
        try:
            expires = self.ops_app.break_glass(reason, minutes)
        except OpsConsoleError as exc:
            self.notify(str(exc), title="Still read-only", severity="error", markup=False)
            return
        self.notify(f"Steps that change something run in {self.ops_app.environment.name} "
                    f"until {expires} (runbooks opened meanwhile too).",
                    title="Break-glass", markup=False)
        self._tick_glass()

    def _tick_glass(self) -> None:
        """The banner's countdown while a break-glass is in force here."""
        app = self.ops_app
        environment = app.environment
        banner = self.query_one(EnvironmentBanner)
        left = app.glass_left(environment.name)
        if left is None or app.settings.read_only:
            banner.break_glass = ""
            banner.read_only = environment.read_only or app.settings.read_only
            if self._glass_timer is not None:
                self._glass_timer.stop()
                self._glass_timer = None
            return
        whole = int(left)
        banner.read_only = False
        banner.break_glass = f"{whole // 60:02d}:{whole % 60:02d}"
        if self._glass_timer is None:
            self._glass_timer = self.set_interval(1, self._tick_glass)

    # -- the catalog ---------------------------------------------------------------

    @work(thread=True, exclusive=True, group="catalog", exit_on_error=False)
    def load_catalog(self) -> None:
        from .catalog import load_catalog

        settings = self.ops_app.settings
        extra = [settings.initial_runbook] if settings.initial_runbook else []
        try:
            entries = load_catalog(settings.runbook_paths, settings.home, extra)
        except Exception as exc:  # noqa: BLE001 - shown to the operator, never a traceback
            self.post_message(self.CatalogFailed(f"{type(exc).__name__}: {exc}"))
            return
        self.post_message(self.CatalogLoaded(entries))

    @on(CatalogFailed)
    def _catalog_failed(self, message: CatalogFailed) -> None:
        self.query_one("#runbook-detail", Static).update(
            Content.assemble(("Cannot read the runbooks: ", "$text-error bold"), message.reason)
        )

    @on(CatalogLoaded)
    def _catalog_loaded(self, message: CatalogLoaded) -> None:
        self.ops_app.set_catalog(message.entries)
        self._entries = {entry.key: entry for entry in message.entries}
        self._fill_table()

    # -- the table -----------------------------------------------------------------

    def on_resize(self) -> None:
        from .status import fit_footer

        fit_footer(self)
        table = self.query_one(RunbookTable)
        if table.size.width and table.size.width != self._table_width:
            self._build_columns()
            self._fill_table()

    def _build_columns(self) -> None:
        table = self.query_one(RunbookTable)
        width = table.size.width or self.app.size.width
        self._table_width = width
        # room for the wide columns: the width less a cell for the scrollbar and the two
        # narrow columns with their padding (1 each side). A narrow terminal gives the title
        # the room: tags go first, then the service (the detail below shows both).
        room = width - 1 - _STEPS_WIDTH - _LAST_RUN_WIDTH - 2 * 2
        self._columns = (
            ["title", "service", "tags"]
            if room >= 60
            else ["title", "service"]
            if room >= 40
            else ["title"]
        )
        room = max(room - 2 * len(self._columns), 12)
        shares = {3: (45, 30), 2: (65, 35), 1: (100, 0)}[len(self._columns)]
        title = room * shares[0] // 100
        service = room * shares[1] // 100
        table.clear(columns=True)
        table.add_column("Runbook", width=title if len(self._columns) > 1 else room, key="title")
        if "service" in self._columns:
            table.add_column(
                "Service",
                width=service if "tags" in self._columns else room - title,
                key="service",
            )
        if "tags" in self._columns:
            table.add_column("Tags", width=room - title - service, key="tags")
        self._columns += ["steps", "last"]
        table.add_column("Steps", width=_STEPS_WIDTH, key="steps")
        table.add_column("Last run", width=_LAST_RUN_WIDTH, key="last")

    def _theme_style(self, variable: str, *, bold: bool = False) -> Style:
        """A Rich style for DataTable cells from a theme variable such as ``$text-error``."""
        color = self.app.theme_variables.get(variable.lstrip("$"))
        try:
            return Style(color=color, bold=bold)
        except Exception:  # noqa: BLE001 - a theme value rich cannot parse: plain text
            return Style(bold=bold)

    def _cell(self, text: str, style: Style | str = "") -> Text:
        from .status import visible

        return Text(visible(text), style=style, no_wrap=True, overflow="ellipsis", end="")

    def _fill_table(self) -> None:
        from .status import last_run_summary

        table = self.query_one(RunbookTable)
        highlighted = None
        if table.row_count and table.cursor_row is not None:
            try:
                highlighted = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
            except Exception:  # noqa: BLE001 - an empty or rebuilt table has no cursor cell
                highlighted = None
        table.clear()
        wanted = self.query_one(FilterBar).value.casefold()
        for entry in self._entries.values():
            if wanted and not self._matches(entry, wanted):
                continue
            if entry.ok and entry.runbook is not None:
                runbook = entry.runbook
                text, variable = last_run_summary(entry.last_run)
                muted = variable == "$text-muted"
                style = Style(dim=True) if muted else self._theme_style(variable)
                cells = {
                    "title": self._cell(runbook.title, Style(bold=True)),
                    "service": self._cell(runbook.service or "—"),
                    "tags": self._cell(", ".join(runbook.tags) or "—"),
                    "steps": self._cell(str(len(runbook.steps))),
                    "last": self._cell(text, style),
                }
                table.add_row(*(cells[name] for name in self._columns), key=entry.key)
            else:
                error = self._theme_style("$text-error")
                cells = {name: self._cell("—") for name in self._columns}
                cells["title"] = self._cell(entry.title, error)
                cells["last"] = self._cell("✗ cannot open", error)
                table.add_row(*(cells[name] for name in self._columns), key=entry.key)
        if highlighted in self._entries and any(key.value == highlighted for key in table.rows):
            table.move_cursor(row=table.get_row_index(highlighted))
        if not self._entries:
            self.query_one("#runbook-detail", Static).update(
                Content("No runbooks found. Add folders to runbook_paths in the config.")
            )
        else:
            self._show_detail()

    @staticmethod
    def _matches(entry: RunbookEntry, wanted: str) -> bool:
        runbook = entry.runbook
        words = [entry.title, str(entry.path.name)]
        if runbook is not None:
            words += [runbook.title, runbook.service or "", *runbook.tags]
        return wanted in " ".join(words).casefold()

    def action_filter(self) -> None:
        self.query_one(FilterBar).open()

    @on(FilterBar.Changed, "#home-filter")
    def _filter_changed(self) -> None:
        self._fill_table()

    @on(FilterBar.Closed)
    def _filter_closed(self) -> None:
        self.query_one(RunbookTable).focus()

    @property
    def highlighted_entry(self) -> RunbookEntry | None:
        table = self.query_one(RunbookTable)
        if not table.row_count:
            return None
        try:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        except Exception:  # noqa: BLE001
            return None
        return self._entries.get(key or "")

    def _show_detail(self) -> None:
        from .catalog import display_path
        from .status import counts_text, format_time, run_counts

        entry = self.highlighted_entry
        detail = self.query_one("#runbook-detail", Static)
        detail.set_class(entry is not None and not entry.ok, "-broken")
        if entry is None:
            detail.update(Content(""))
            return
        if not entry.ok:
            more = len(entry.problems) - 1
            also = f" (and {more} more problem{'s' if more > 1 else ''})" if more > 0 else ""
            detail.update(
                Content.assemble(
                    ("✗ Cannot open: ", "bold"),
                    entry.first_error,
                    also,
                    "\n",
                    ("Fix the file (opsconsole lint checks it), then press r to reload.", "dim"),
                )
            )
            return
        runbook = entry.runbook
        assert runbook is not None
        lines: list[str | tuple[str, str]] = [(display_path(entry.path), "$text-muted")]
        hidden = [
            f"{label}: {value}"
            for key, label, value in (
                ("service", "service", runbook.service),
                ("tags", "tags", ", ".join(runbook.tags)),
            )
            if key not in self._columns and value
        ]
        if hidden:  # the columns a narrow terminal left out
            lines += [("  " + " · ".join(hidden), "$text-muted")]
        if runbook.description:
            lines += ["\n", " ".join(runbook.description.split())]
        outline = self._outline(runbook)
        run = entry.last_run
        if run is not None:
            counts = run_counts(run)
            when = (
                f"finished {format_time(run.finished_at)}"
                if run.finished_at
                else f"started {format_time(run.started_at)}"
            )
            lines += [
                "\n",
                ("Last run ", "bold"),
                f"{run.id} in {run.environment}: {run.status.value.replace('_', ' ')}"
                + (" (a rehearsal)" if run.rehearsal else "")
                + f", {counts_text(counts)} ({when})",
            ]
        detail.update(Content.assemble(*lines, *outline))

    @staticmethod
    def _outline(runbook: Runbook) -> list[str | tuple[str, str]]:
        """The runbook's phases with their step counts (the room a tall terminal has)."""
        from .status import visible

        parts: list[str | tuple[str, str]] = ["\n", ("Sections", "bold")]
        for section in runbook.sections:
            if not section.step_ids:
                continue
            steps = [runbook.step(step_id) for step_id in section.step_ids]
            manual = sum(step.needs_human for step in steps)
            mutating = sum(step.mutating for step in steps)
            extra = [f"{manual} manual"] if manual else []
            extra += [f"{mutating} change something"] if mutating else []
            count = f"{len(steps)} step{'s' if len(steps) != 1 else ''}"
            parts += [
                "\n  ",
                visible(section.title),
                (f"  {count}" + (f" ({', '.join(extra)})" if extra else ""), "$text-muted"),
            ]
        return parts

    @on(DataTable.RowHighlighted)
    def _row_highlighted(self) -> None:
        self._show_detail()

    @on(DataTable.RowSelected)
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        entry = self._entries.get(event.row_key.value or "")
        if entry is not None:
            self.ops_app.open_runbook(entry.path)

    # -- actions -------------------------------------------------------------------

    def action_pick_environment(self) -> None:
        self.ops_app.action_pick_environment()

    def action_reload(self) -> None:
        self.query_one("#runbook-detail", Static).update(Content("Reading runbooks…"))
        self.load_catalog()
