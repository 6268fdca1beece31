"""The Textual front end of opsconsole.

``run_console(settings)`` is the one entry point the CLI uses (lazily); every
screen lives in its own module with its ``.tcss`` beside it.
"""

from __future__ import annotations

from .app import OpsConsoleApp, run_console

__all__ = ["OpsConsoleApp", "run_console"]
