"""A runbook's failure triage table, and which row a failed step matches.

Runbooks keep a table of known failures: where it shows (surface), what it
looks like (signal: ``401 invalid broker client token``), what it means and
what to do. The loader reads it from an ordinary Markdown table under a
heading that says "Triage" (columns Signal, Meaning, Action, optionally
Surface; matched by name, in any order) or from ``triage:`` in the front
matter. When a step fails, the row whose signal its failure shows is put
beside the failure: on screen, in ``check`` (JSON, text, JUnit) and in the
evidence.

A signal matches when its words appear in the failure (its summary, its failed
assertions, the status and body of its responses), ignoring case and spacing,
and, when the signal starts with an HTTP status (``404 device session not
found``), that status appears too. The row with the longest signal wins.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .run import StepResult

__all__ = ["TriageRow", "match_triage", "rows_from_table", "triage_for"]

_STATUS = re.compile(r"^\s*([1-5]\d\d)\b\s*(.*)$", re.S)
#: how much of a response body is searched for a signal
_BODY_CHARS = 8192


@dataclass(frozen=True)
class TriageRow:
    signal: str
    meaning: str
    action: str
    surface: str = ""
    #: line of the row in the runbook (0: front matter)
    line: int = 0

    def to_dict(self) -> dict[str, str]:
        data = asdict(self)
        data.pop("line")
        return data

    def text(self) -> str:
        """One line for text reports: meaning, then what to do."""
        return f"{self.meaning} → {self.action}"


def _norm(text: str) -> str:
    return " ".join(text.replace("`", "").split()).casefold()


def rows_from_table(
    header: Sequence[str], rows: Iterable[tuple[int, Sequence[str]]]
) -> list[TriageRow] | None:
    """Rows of a table whose header names Signal, Meaning and Action (None: not a triage
    table). ``rows`` are (line, cells)."""
    names = [_norm(cell) for cell in header]
    try:
        signal, meaning, action = (names.index(n) for n in ("signal", "meaning", "action"))
    except ValueError:
        return None
    surface = names.index("surface") if "surface" in names else None

    def cell(cells: Sequence[str], index: int | None) -> str:
        return cells[index].strip() if index is not None and index < len(cells) else ""

    found = []
    for line, cells in rows:
        row = TriageRow(
            signal=cell(cells, signal), meaning=cell(cells, meaning),
            action=cell(cells, action), surface=cell(cells, surface), line=line,
        )
        if row.signal:
            found.append(row)
    return found


def match_triage(rows: Sequence[TriageRow], texts: Iterable[str]) -> TriageRow | None:
    """The row whose signal the texts show (the most specific one), or None."""
    haystack = _norm("\n".join(texts))
    if not haystack:
        return None
    best: tuple[int, TriageRow] | None = None
    for row in rows:
        signal = row.signal.replace("`", "")
        status = _STATUS.match(signal)
        words = _norm(status.group(2) if status else signal)
        if not words or words not in haystack:
            continue
        if status and not re.search(rf"(?<!\d){status.group(1)}(?!\d)", haystack):
            continue
        score = len(words) + (3 if status else 0)
        if best is None or score > best[0]:
            best = (score, row)
    return best[1] if best else None


def triage_for(rows: Sequence[TriageRow], result: StepResult) -> TriageRow | None:
    """The triage row for a failed (or unknown) step's result, or None."""
    if not rows:
        return None
    texts = [result.detail]
    texts += [a.detail for a in result.assertions if not a.ok]
    for artifact in result.artifacts:
        if artifact.type == "response":
            texts.append(f"{artifact.status} {artifact.reason} {artifact.body[:_BODY_CHARS]}")
    return match_triage(rows, texts)
