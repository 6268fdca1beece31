"""The last resort: an unexpected error is written (redacted) to ``<state>/crash.log``.

The operator sees one line saying what happened and where the details are; a
traceback — which may hold request headers or other secrets in its locals —
never reaches the terminal.
"""

from __future__ import annotations

import traceback
from pathlib import Path

from .config import state_dir
from .files import append_private
from .run import now_iso
from .secrets import redact_everywhere

__all__ = ["crash_summary", "write_crash_log"]


def write_crash_log(exc: BaseException, *, with_message: bool = True) -> Path | None:
    """Append the redacted traceback (no locals) to a 0600 file; None if that cannot be done.

    ``with_message=False`` leaves out the exception's messages (the frames stay): for an
    error raised while a step held response data, whose secrets the redactor may not
    know yet (a token the step was about to capture)."""
    try:
        path = state_dir() / "crash.log"
        if with_message:
            text = "".join(traceback.format_exception(exc))
        else:
            text = "".join(traceback.format_tb(exc.__traceback__)) + (
                f"{type(exc).__module__}.{type(exc).__qualname__} "
                "(message withheld: it may hold response data)\n"
            )
        append_private(path, f"--- {now_iso()}\n{redact_everywhere(text)}\n")
        return path
    except OSError:
        return None


def crash_summary(exc: BaseException, where: Path | None) -> str:
    detail = f"; details in {where}" if where else ""
    return redact_everywhere(f"unexpected {type(exc).__name__}: {exc}{detail}")
