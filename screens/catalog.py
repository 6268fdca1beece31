"""The runbook catalog: every runbook file found, parsed or with its errors.

Pure engine calls (no Textual): the home screen fills it from a thread worker
so the first frame never waits for Markdown parsing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opsconsole.errors import RunbookError
    from opsconsole.model import Runbook
    from opsconsole.run import Run

__all__ = ["RunbookEntry", "display_path", "load_catalog"]


def display_path(path: Path | str) -> str:
    """A path as short as it can be while still findable: relative to the cwd, or ``~/``."""
    path = Path(path)
    if not path.is_absolute():
        return str(path)
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        pass
    try:
        return "~/" + str(path.relative_to(Path.home()))
    except ValueError:
        return str(path)


@dataclass
class RunbookEntry:
    """One runbook file: the parsed runbook, or the errors that keep it closed."""

    path: Path
    runbook: Runbook | None = None
    errors: list[RunbookError] = field(default_factory=list)
    #: the newest saved run of this runbook (any environment), if any
    last_run: Run | None = None

    @property
    def key(self) -> str:
        return str(self.path)

    @property
    def problems(self) -> list[RunbookError]:
        """Errors only: a warning (unknown front matter, an unclosed fence) opens anyway."""
        return [error for error in self.errors if not error.is_warning]

    @property
    def ok(self) -> bool:
        return self.runbook is not None and not self.problems

    @property
    def title(self) -> str:
        if self.runbook is not None and self.runbook.title:
            return self.runbook.title
        return self.path.stem

    @property
    def first_error(self) -> str:
        """``path:line: message`` of the first problem (empty when the runbook is fine)."""
        if not self.problems:
            return ""
        error = self.problems[0]
        return f"{display_path(error.path)}:{error.line}: {error.message}"


def load_catalog(
    paths: Iterable[Path | str], home: Path, extra: Iterable[Path] = ()
) -> list[RunbookEntry]:
    """Parse every runbook under ``paths`` (plus ``extra`` files) and attach its last run."""
    from opsconsole.loader import find_runbooks, parse_runbook
    from opsconsole.run import RunStore

    found = find_runbooks([*paths, *extra])
    last_runs = RunStore(home).last_finished()
    entries = []
    for path in found:
        runbook, errors = parse_runbook(path)
        entry = RunbookEntry(path=Path(path), runbook=runbook, errors=list(errors))
        if runbook is not None:
            entry.last_run = last_runs.get(runbook.id)
        entries.append(entry)
    return entries
