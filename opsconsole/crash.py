"""The last resort: an unexpected error is written (redacted) to ``<state>/crash.log``.

The operator sees one line saying what happened and where the details are; a
traceback — which may hold request headers or other secrets in its locals —
never reaches the terminal.
"""

from __future__ import annotations

import traceback
from pathlib import Path

from .config import state_dir
from .run import now_iso
from .secrets import redact_everywhere

__all__ = ["crash_summary", "write_crash_log"]


def write_crash_log(exc: BaseException) -> Path | None:
    """Append the redacted traceback (no locals); None if even that cannot be written."""
    try:
        path = state_dir() / "crash.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        text = "".join(traceback.format_exception(exc))
        with path.open("a", encoding="utf-8") as handle:
            handle.write(f"--- {now_iso()}\n{redact_everywhere(text)}\n")
        return path
    except OSError:
        return None


def crash_summary(exc: BaseException, where: Path | None) -> str:
    detail = f"; details in {where}" if where else ""
    return redact_everywhere(f"unexpected {type(exc).__name__}: {exc}{detail}")
