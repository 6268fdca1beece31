"""opsconsole's engine: runbooks, steps, runs, audit and evidence. Never imports Textual."""

__all__ = ["__version__"]

__version__ = "0.1.0"
